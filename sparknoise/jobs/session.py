"""The one place sparknoise builds a Spark session: Delta-enabled, for jobs, tests, the demo and benchmarks.

Library functions never call this (they never configure a session); entry points do when no
session exists. Runs on the driver only.

* :func:`job_session` is what the CLI, ``jobs/*.py`` under spark-submit and the demo use: the active
  session if there is one (Databricks, spark-submit, a notebook), else ``getOrCreate()`` with Delta
  added; it never sets the master. When it launches a local JVM (Spark's default ``local[*]``) it
  binds the driver to loopback (``SPARK_LOCAL_IP=127.0.0.1`` unless set), so Spark does not warn
  on every run that the hostname resolves to a loopback address.
* :func:`local_spark` is the same builder pinned to a local master with quiet logs and no UI, for
  tests and benchmarks.

The Delta jars come from Maven Central through Spark's package resolution (Ivy) into
``~/.cache/sparknoise/ivy``. The first session that resolves them records the jar files it got in
a manifest beside them; later sessions pass those files as ``spark.jars`` and skip Ivy entirely
(no resolution chatter, no network). A manifest naming a missing file is ignored.

Sessions this module launches also keep the console for sparknoise's own progress: Spark's
progress bars are off, and the JVM logs through ``sparknoise/jobs/log4j2.properties`` (warnings
and errors only; the known-harmless ``dev.ludovic.netlib`` "no native BLAS" warning is dropped).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
from typing import Iterator, Mapping

from pyspark.sql import SparkSession

# The Python package is delta-spark 4.4.1 (pinned in constraints.txt). Maven Central carries the Delta
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


LOG4J_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
# Settings for a JVM this module launches: the console shows sparknoise's progress, not Spark's.
QUIET_CONF = {"spark.ui.showConsoleProgress": "false"}


def _driver_java_options() -> str:
    """Our log configuration, and no native BLAS attempt on a machine that has none.

    Spark ML's BLAS (dev.ludovic.netlib) otherwise loads its JNI wrapper, whose native code prints
    "netlib-blas: JNI_OnLoad: dlopen(libblas.so.3) failed" straight to stderr before falling back
    to the Java implementation; with a system BLAS (OpenBLAS, MKL) installed the native one is used.
    """
    import ctypes.util

    options = []
    if os.path.isfile(LOG4J_CONF):  # not when the package runs from a zip (spark-submit --py-files)
        options.append(f"-Dlog4j2.configurationFile=file:{LOG4J_CONF}")
    if not any(ctypes.util.find_library(name) for name in ("blas", "openblas", "mkl_rt")):
        options.append("-Ddev.ludovic.netlib.blas.allowNative=false")
    return " ".join(options)


if _driver_java_options():
    QUIET_CONF["spark.driver.extraJavaOptions"] = _driver_java_options()


def _manifest() -> str:
    """The file listing the jars Ivy resolved for DELTA_PACKAGE (one per package string)."""
    digest = hashlib.sha256(DELTA_PACKAGE.encode()).hexdigest()[:12]
    return os.path.join(IVY_CACHE, f"sparknoise-jars-{digest}.txt")


def _local_file(uri: str) -> str:
    """``file:///a/b.jar`` or ``/a/b.jar`` -> ``/a/b.jar``."""
    return "/" + uri[len("file:"):].lstrip("/") if uri.startswith("file:") else uri


def delta_jars_conf() -> dict[str, str]:
    """How a launched JVM gets the Delta jars: the recorded jar files, else Ivy resolution of DELTA_PACKAGE."""
    try:
        with open(_manifest()) as f:
            jars = [line.strip() for line in f if line.strip()]
    except OSError:
        jars = []
    if jars and all(os.path.isfile(_local_file(j)) for j in jars):
        return {"spark.jars": ",".join(jars)}
    return {"spark.jars.packages": DELTA_PACKAGE, "spark.jars.ivy": IVY_CACHE}


def record_delta_jars(spark: SparkSession) -> None:
    """After a launch that resolved DELTA_PACKAGE through Ivy: remember the jar files for next time."""
    if os.path.exists(_manifest()):
        return
    try:
        jars = [j for j in (spark.conf.get("spark.jars", "") or "").split(",") if j]
    except Exception:  # noqa: BLE001 - a session that does not expose it: nothing to record
        return
    if any("delta-spark" in j for j in jars) and all(j.startswith(("file:", "/")) for j in jars):
        os.makedirs(IVY_CACHE, exist_ok=True)
        tmp = f"{_manifest()}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write("\n".join(jars) + "\n")
        os.replace(tmp, _manifest())


def _delta_builder(app_name: str, *, local: bool) -> SparkSession.Builder:
    """A builder with the Delta extension and catalog, UTC, quiet console settings and, for a local
    JVM, the small-table Delta settings (the jars are added by :func:`_launched`)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use this interpreter
    builder = SparkSession.builder.appName(app_name).config("spark.sql.session.timeZone", "UTC")
    conf = {**QUIET_CONF, **DELTA_CONF, **(LOCAL_DELTA_CONF if local else {})}
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder


@contextlib.contextmanager
def _resolution_lock() -> Iterator[None]:
    """An exclusive lock on the Ivy cache while a JVM launch may resolve the Delta jars.

    Two processes resolving into one Ivy cache at once corrupt each other's resolution files (seen
    on a clean machine: two pytest workers starting together both failed with "io problem while
    parsing ivy file ... ivy-4.4.0.xml.original (No such file or directory)" and the JVM exited).
    Launches that find the manifest never take it; the first launch resolves while later ones wait,
    then read the manifest it wrote.
    """
    os.makedirs(IVY_CACHE, exist_ok=True)
    with open(os.path.join(IVY_CACHE, ".resolve.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _launched(builder: SparkSession.Builder) -> SparkSession:
    """``getOrCreate()`` with the Delta jars (:func:`delta_jars_conf`); when this call launches the JVM
    (not spark-submit, not Connect) and must resolve them through Ivy, one process at a time does so
    (:func:`_resolution_lock`) and the jars it got are remembered."""
    launches = not any(k in os.environ for k in ("PYSPARK_GATEWAY_PORT", "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"))
    conf = delta_jars_conf()
    if not launches or "spark.jars" in conf:
        for key, value in conf.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
    with _resolution_lock():
        for key, value in delta_jars_conf().items():  # again: the launch we waited for may have recorded them
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        record_delta_jars(session)
    return session


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
    local = _local_default_master()
    if local:  # this process launches a local JVM: bind it to loopback, as local_spark does
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return _launched(_delta_builder(app_name, local=local))


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
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.log.level", "WARN")
    )
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    if driver_memory is not None:
        builder = builder.config("spark.driver.memory", driver_memory)
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    return _launched(builder)
