"""Where tables live: Delta paths or catalog names, and write-once materialisation.

Shared by the library (``evaluate_label_noise`` can materialise its intermediate tables) and the
jobs. Runs on the driver; the reads and writes are ordinary DataFrame operations, so everything
here works on classic and Spark Connect sessions.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


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


def materialised(df: DataFrame, scratch: str | None, name: str) -> DataFrame:
    """``df`` written once to the Delta location ``scratch/name`` and read back (as is without scratch).

    Optional materialisation goes through a table write and read, never a cache (which Spark
    Connect and serverless compute do not offer). Column metadata (the probabilities' classes) is kept.
    """
    if scratch is None:
        return df
    location = f"{scratch.rstrip('/')}/{name}" if is_path(scratch) else f"{scratch}_{name.replace('.', '_')}"
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if is_path(location):
        writer.save(location)
    else:
        writer.saveAsTable(location)
    out = read_table(df.sparkSession, location)
    for column in df.columns:
        meta = df.schema[column].metadata
        if meta:
            out = out.withColumn(column, F.col(column).alias(column, metadata=meta))
    return out
