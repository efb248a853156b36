"""A local Spark Connect session (SparkSession.builder.remote("local[2]")) for the Connect suite.

Run in its own process (make test-connect): pyspark refuses a local Connect session next to a
classic one.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # parity_cases, ml_data
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.remote("local[2]")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    assert "connect" in type(session).__module__
    yield session
    session.stop()
