"""One session-scoped local SparkSession with Delta for the whole suite (DESIGN.md section 8)."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from sparknoise.jobs.session import local_spark

    session = local_spark("sparknoise-tests", master="local[2]", shuffle_partitions=4)
    yield session
    session.stop()
