"""A local Spark session with Delta Lake, for jobs, tests, the demo and benchmarks.

Library functions never call this (they never configure a session); entry points do when no
session exists. The Delta jars come from Maven Central through Spark's package resolution and are
cached under ``~/.cache/sparknoise/ivy`` so later runs resolve offline.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping

from pyspark.sql import SparkSession

# The Python package is delta-spark 4.4.1 (pinned in pyproject). Maven Central carries the Delta
# jars for Spark 4.2 up to 4.4.0 (no 4.4.1 jar exists there), and the 4.4.1 Python API runs
# unchanged on the 4.4.0 jars. Override with SPARKNOISE_DELTA_PACKAGE if your mirror has another.
DELTA_PACKAGE = os.environ.get("SPARKNOISE_DELTA_PACKAGE", "io.delta:delta-spark_4.2_2.13:4.4.0")
IVY_CACHE = os.path.expanduser(os.environ.get("SPARKNOISE_IVY_CACHE", "~/.cache/sparknoise/ivy"))

# Delta rebuilds a table's state with this many tasks (default 50): far too many for the small logs of
# local tables on a few cores. Set for local sessions only, never on a cluster's.
LOCAL_DELTA_CONF = {"spark.databricks.delta.snapshotPartitions": "2"}

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def local_spark(
    app_name: str = "sparknoise",
    master: str = "local[*]",
    *,
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Get or create a local SparkSession with Delta enabled, UTC, UI off, quiet logs."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use this interpreter
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.jars.packages", DELTA_PACKAGE)
        .config("spark.jars.ivy", IVY_CACHE)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.log.level", "WARN")
    )
    for key, value in {**DELTA_CONF, **LOCAL_DELTA_CONF}.items():
        builder = builder.config(key, value)
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    if driver_memory is not None:
        builder = builder.config("spark.driver.memory", driver_memory)
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
