"""The one place sparknoise builds a Spark session: Delta-enabled, for jobs, tests, the demo and benchmarks.

Library functions never call this (they never configure a session); entry points do when no
session exists. Runs on the driver only.

* :func:`job_session` is what the CLI, ``jobs/*.py`` under spark-submit and the demo use: the active
  session if there is one (Databricks, spark-submit, a notebook), else ``getOrCreate()`` with Delta
  added; it never sets the master.
* :func:`local_spark` is the same builder pinned to a local master with quiet logs and no UI, for
  tests and benchmarks.

The Delta jars come from Maven Central through Spark's package resolution and are cached under
``~/.cache/sparknoise/ivy`` so later runs resolve offline.
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


def _delta_builder(app_name: str, *, local: bool) -> SparkSession.Builder:
    """A builder with the Delta extension and catalog, the Delta jars (resolved into the project's
    ivy cache), UTC and, for a local JVM, the small-table Delta settings."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use this interpreter
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.jars.packages", DELTA_PACKAGE)
        .config("spark.jars.ivy", IVY_CACHE)
        .config("spark.sql.session.timeZone", "UTC")
    )
    for key, value in {**DELTA_CONF, **(LOCAL_DELTA_CONF if local else {})}.items():
        builder = builder.config(key, value)
    return builder


def job_session(app_name: str = "sparknoise") -> SparkSession:
    """The job's session: the active one, else ``getOrCreate()`` with Delta enabled (never sets master).

    On Databricks (DATABRICKS_RUNTIME_VERSION set) Delta is built in and nothing is added. Elsewhere
    the Delta extension and catalog are configured, and the Delta jars are requested from Maven
    Central (effective when this process launches the JVM; with spark-submit pass --packages).
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if "DATABRICKS_RUNTIME_VERSION" in os.environ:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        return SparkSession.builder.appName(app_name).getOrCreate()
    return _delta_builder(app_name, local=_local_default_master()).getOrCreate()


def _local_default_master() -> bool:
    """True when getOrCreate will launch a JVM with Spark's default master (local[*]): not under
    spark-submit (which has started the JVM already), not Spark Connect, no --master given."""
    if "PYSPARK_GATEWAY_PORT" in os.environ or "SPARK_REMOTE" in os.environ or "SPARK_CONNECT_MODE_ENABLED" in \
            os.environ:
        return False
    return "--master" not in os.environ.get("PYSPARK_SUBMIT_ARGS", "")


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
    builder = (
        _delta_builder(app_name, local=True)
        .master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.log.level", "WARN")
    )
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    if driver_memory is not None:
        builder = builder.config("spark.driver.memory", driver_memory)
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
