"""The ``runs`` table: one row per job run (detect, inject, evaluate), written last or on failure."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

from pyspark.sql import SparkSession

from sparknoise._version import __version__
from sparknoise.jobs.config import canonical_json, config_hash
from sparknoise.jobs.tables import write_run_rows

RUNS_SCHEMA = (
    "run_id string, status string, error string, started_at timestamp, finished_at timestamp, "
    "input_location string, input_version long, config string, config_sha256 string, sparknoise_version string, "
    "n_rows long, n_classes int, classes string, num_flagged long, num_label_issues long, rounds int, "
    "thresholds array<double>, confident_joint array<array<long>>, noise_matrix array<array<double>>, "
    "inverse_noise_matrix array<array<double>>, prior array<double>, timings string, job string, metrics string, n_skipped long"
)


def new_run_id() -> str:
    """A fresh run id: UTC time plus a random suffix, sortable."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def start_record(cfg: dict, job: str) -> tuple[dict, dict, dict]:
    """(cfg with its run id, the runs record so far, the commit metadata) for a job run."""
    cfg = json.loads(json.dumps(cfg))
    cfg["run"]["id"] = cfg["run"]["id"] or new_run_id()
    run_id = cfg["run"]["id"]
    meta = {"run_id": run_id, "config_sha256": config_hash(cfg), "sparknoise_version": __version__}
    record: dict[str, Any] = {
        "run_id": run_id, "status": "running", "error": None, "started_at": dt.datetime.now(dt.timezone.utc),
        "config": canonical_json(cfg), "config_sha256": meta["config_sha256"],
        "sparknoise_version": __version__, "job": job,
    }
    return cfg, record, meta


def write_run_record(spark: SparkSession, location: str, record: dict, timings: dict, clock: float,
                     meta: dict) -> None:
    """Append (or replace, for the same run id) the run's row; missing fields are null."""
    record = dict(record)
    record["finished_at"] = dt.datetime.now(dt.timezone.utc)
    timings["total"] = round(time.perf_counter() - clock, 3)
    record["timings"] = json.dumps(timings, sort_keys=True)
    names = [f.split(" ")[0] for f in RUNS_SCHEMA.split(", ")]
    row = tuple(record.get(n) for n in names)
    write_run_rows(spark.createDataFrame([row], RUNS_SCHEMA), location, run_id=record["run_id"], metadata=meta,
                   merge_schema=True)
