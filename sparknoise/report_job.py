"""`sparknoise report --run-id ID`: the HTML label-health report of a detect run, from its Delta tables."""

from __future__ import annotations

import logging
import time

from pyspark.sql import SparkSession

from sparknoise.report_data import TOP_ROWS, from_tables
from sparknoise.report_html import write_report

log = logging.getLogger("sparknoise")


def run_report(spark: SparkSession, cfg: dict, run_id: str, path: str, *, top: int = TOP_ROWS) -> str:
    """Read the run's rows of the configured output tables and write the report to ``path``."""
    started = time.perf_counter()
    data = from_tables(spark, cfg["output"], run_id, top=top)
    write_report(data, path)
    log.info("report of run %s (%d rows, %d classes, %d flagged) written to %s in %.1fs", run_id, data.n_rows,
             len(data.classes), data.num_flagged, path, time.perf_counter() - started)
    return path
