"""Where tables live: Delta paths or catalog names, and write-once materialisation.

Shared by the library (``evaluate_label_noise`` can materialise its intermediate tables) and the
jobs. Runs on the driver; the reads and writes are ordinary DataFrame operations, so everything
here works on classic and Spark Connect sessions.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

log = logging.getLogger("sparknoise")


def is_path(location: str) -> bool:
    """A string with a '/' or a scheme (``s3://``, ``dbfs:``) is a path, else a catalog table name."""
    return "/" in location or "://" in location


def read_table(spark: SparkSession, location: str) -> DataFrame:
    """Read a Delta output by path or name."""
    return spark.read.format("delta").load(location) if is_path(location) else spark.read.table(location)


def read_version(spark: SparkSession, location: str, version: int | None) -> DataFrame:
    """A Delta path or table as of ``version`` (Delta time travel); the latest version when None."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", int(version))
    return reader.load(location) if is_path(location) else reader.table(location)


def _with_metadata(out: DataFrame, like: DataFrame) -> DataFrame:
    """``out`` with the column metadata of ``like`` (the probabilities' classes) put back."""
    for column in like.columns:
        meta = like.schema[column].metadata
        if meta:
            out = out.withColumn(column, F.col(column).alias(column, metadata=meta))
    return out


def materialised(df: DataFrame, scratch: str | None, name: str) -> DataFrame:
    """``df`` computed once: written to the Delta location ``scratch/name`` and read back, or without
    ``scratch`` a ``localCheckpoint`` (computed now, kept in the executors' block stores).

    Never a cache (which Spark Connect and serverless compute do not offer). ``localCheckpoint`` works
    on classic sessions and on Spark Connect since 4.0; where the engine refuses it, ``df`` is returned
    as is with a logged warning, and each later action recomputes it (pass ``scratch`` there). Column
    metadata (the probabilities' classes) is kept either way.
    """
    if scratch is None:
        try:
            out = df.localCheckpoint(eager=True)
        except Exception as e:  # noqa: BLE001 - an engine without checkpoints: recompute, and say so
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            log.warning("cannot materialise %s with localCheckpoint (%s); every later step recomputes it: pass a "
                        "scratch location to write it once", name, first)
            return df
        return _with_metadata(out, df)
    location = f"{scratch.rstrip('/')}/{name}" if is_path(scratch) else f"{scratch}_{name.replace('.', '_')}"
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if is_path(location):
        writer.save(location)
    else:
        writer.saveAsTable(location)
    return _with_metadata(read_table(df.sparkSession, location), df)
