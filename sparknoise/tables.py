"""Reading the input at a pinned version and writing run outputs to Delta (paths or catalog tables).

Every write is one Delta commit that replaces the rows of one run id (``replaceWhere``), so a
re-run replaces its own rows, another run id appends, and a failed or killed write changes
nothing. Every commit carries ``userMetadata`` (run id, config hash, sparknoise version). All of
it goes through the DataFrame and SQL APIs, so it works on Spark Connect too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from sparknoise.config import is_path
from sparknoise.errors import InputError


@dataclass(frozen=True)
class PinnedInput:
    """The input as read for the whole run."""

    df: DataFrame
    location: str
    version: int | None  # Delta version read (None for Parquet)


def _delta_ref(location: str) -> str:
    return f"delta.`{location}`" if is_path(location) else location


def latest_version(spark: SparkSession, location: str) -> int:
    """The current Delta version of a path or table (one small metadata query)."""
    row = spark.sql(f"DESCRIBE HISTORY {_delta_ref(location)} LIMIT 1").select("version").first()
    return int(row["version"])


def read_input(spark: SparkSession, *, path: str | None, table: str | None, fmt: str = "delta",
               version: int | None = None) -> PinnedInput:
    """Read the input; a Delta input is pinned to one version for every pass of the run."""
    location = path or table
    assert location is not None
    try:
        if path and fmt == "parquet":
            return PinnedInput(spark.read.parquet(path), path, None)
        pinned = int(version) if version is not None else latest_version(spark, location)
        reader = spark.read.format("delta").option("versionAsOf", pinned)
        df = reader.load(path) if path else reader.table(table)
        df.schema  # noqa: B018 - resolve now, so a missing input fails before any work
        return PinnedInput(df, location, pinned)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - report any read failure as bad input
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot read input {location!r} (version {version}): {first}") from None


def table_exists(spark: SparkSession, location: str) -> bool:
    """Whether a Delta table exists at a path or under a name."""
    try:
        spark.sql(f"DESCRIBE DETAIL {_delta_ref(location)}").select("format").first()
        return True
    except Exception:  # noqa: BLE001
        return False


def write_run_rows(df: DataFrame, location: str, *, run_id: str, metadata: dict, merge_schema: bool = False) -> None:
    """Replace this run's rows at ``location`` (create the table if needed) in one Delta commit.

    ``merge_schema`` lets the commit add new columns to an existing table (the runs log gains
    columns across versions; old rows read them as null).
    """
    spark = df.sparkSession
    writer = df.write.format("delta").option("userMetadata", json.dumps(metadata, sort_keys=True))
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if table_exists(spark, location):
        safe = run_id.replace("'", "''")
        writer = writer.mode("overwrite").option("replaceWhere", f"run_id = '{safe}'")
    else:
        writer = writer.mode("append")
    if is_path(location):
        writer.save(location)
    else:
        writer.saveAsTable(location)


def read_table(spark: SparkSession, location: str) -> DataFrame:
    """Read a Delta output by path or name."""
    return spark.read.format("delta").load(location) if is_path(location) else spark.read.table(location)
