"""A local Spark Connect session (SparkSession.builder.remote("local[2]")) for the Connect suite.

Run in its own process (make test-connect): pyspark refuses a local Connect session next to a
classic one.
"""

from __future__ import annotations

import os
import sys
import warnings

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # parity_cases, ml_data
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    from sparknoise.jobs.session import DELTA_CONF, LOCAL_DELTA_CONF, QUIET_CONF, delta_jars_conf

    builder = (
        SparkSession.builder.remote("local[2]")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        # Delta for the job tests: the local Connect server starts with these; pyspark then warns that
        # the static ones cannot be set again at runtime, which is harmless
    )
    # the server's JVM logs like the sessions sparknoise launches (warnings only, no MLCache noise)
    for key, value in {**delta_jars_conf(), **QUIET_CONF, **DELTA_CONF, **LOCAL_DELTA_CONF}.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        session = builder.getOrCreate()
    assert "connect" in type(session).__module__
    yield session
    session.stop()
