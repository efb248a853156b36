"""Reading the input at a pinned version and writing run outputs to Delta (paths or catalog tables).

Every write is one Delta commit that replaces the rows of one run id (``replaceWhere``), so a
re-run replaces its own rows, another run id appends, and a failed or killed write changes
nothing. Every commit carries ``userMetadata`` (run id, config hash, sparknoise version). All of
it goes through the DataFrame and SQL APIs, so it works on Spark Connect too.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.errors import InputError
from sparknoise.storage import is_path, materialised, read_table

__all__ = ["is_path", "materialised", "read_table"]  # re-exported: the jobs read and write through this module

log = logging.getLogger("sparknoise")


@dataclass(frozen=True)
class PinnedInput:
    """The input as read for the whole run."""

    df: DataFrame
    location: str
    version: int | None  # Delta version read (None for Parquet)


def _delta_ref(location: str) -> str:
    """SQL reference to a Delta path or table; ``delta.`path``` needs an absolute path, so local
    relative paths (``demo-output/input``) are made absolute against the working directory."""
    if not is_path(location):
        return location
    if "://" not in location and not location.startswith(("/", "file:")):
        location = os.path.abspath(location)
    return f"delta.`{location}`"


def latest_version(spark: SparkSession, location: str) -> int:
    """The current Delta version of a path or table (one small metadata query)."""
    row = spark.sql(f"DESCRIBE HISTORY {_delta_ref(location)} LIMIT 1").select("version").first()
    return int(row["version"])


def commit_version(spark: SparkSession, location: str, run_id: str) -> int | None:
    """The newest Delta version of ``location`` whose commit ``userMetadata`` names ``run_id`` (None: no such commit).

    Reads the table's history (one row per commit, never its data); exact under concurrent writers,
    since every job commit carries its run id."""
    hist = spark.sql(f"DESCRIBE HISTORY {_delta_ref(location)}")
    row = hist.filter(F.get_json_object("userMetadata", "$.run_id") == run_id).agg(F.max("version")).first()
    return None if row is None or row[0] is None else int(row[0])


def _local_path(location: str) -> str | None:
    """The local file-system path of a location, or None (remote URI or catalog table)."""
    if not is_path(location):
        return None
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", location)
    if scheme and scheme.group(1).lower() != "file":  # s3://, abfss://, dbfs:/, hdfs://...
        return None
    if location.startswith("file:"):
        return "/" + location[len("file:"):].lstrip("/")
    return os.path.abspath(location)


def read_input(spark: SparkSession, *, path: str | None, table: str | None, fmt: str = "delta",
               version: int | None = None) -> PinnedInput:
    """Read the input; a Delta input is pinned to one version for every pass of the run.

    Every failure is an InputError naming the key (``input.path`` or ``input.table``) and what to
    change: a local path that does not exist, a folder that is not a Delta table (Parquet needs
    ``input.format: parquet``), a table the catalog does not know, a version that does not exist.
    """
    location = path or table
    assert location is not None
    key = "input.path" if path else "input.table"
    local = _local_path(path) if path else None
    if local is not None and not os.path.exists(local):
        raise InputError(f"'{key}' {path!r} does not exist ({local}); check the path")
    if local is not None and fmt == "delta" and not os.path.isdir(os.path.join(local, "_delta_log")):
        hint = ("it holds Parquet files: set input.format: parquet" if _has_parquet(local)
                else "set input.format: parquet for a Parquet folder")
        raise InputError(f"'{key}' {path!r} is not a Delta table (no _delta_log folder); {hint}")
    try:
        if path and fmt == "parquet":
            df = spark.read.parquet(path)
            df.schema  # noqa: B018 - resolve now (Spark Connect resolves lazily)
            return PinnedInput(df, path, None)
        pinned = int(version) if version is not None else latest_version(spark, location)
        reader = spark.read.format("delta").option("versionAsOf", pinned)
        df = reader.load(path) if path else reader.table(table)
        df.schema  # noqa: B018 - resolve now, so a missing input fails before any work
        return PinnedInput(df, location, pinned)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - report any read failure as bad input
        text = str(e)
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        if table and _catalog_missing(text):
            raise InputError(catalog_message(key, table)) from None
        if "TABLE_OR_VIEW_NOT_FOUND" in text or "DELTA_TABLE_NOT_FOUND" in text:
            raise InputError(f"'{key}' {location!r} is not a table in this session's catalog; check the name "
                             "(catalog.schema.table) or give a path in input.path") from None
        if "not a Delta table" in text or "DELTA_TABLE_ONLY_OPERATION" in text or "DELTA_MISSING_DELTA_TABLE" in text:
            raise InputError(f"'{key}' {location!r} is not a Delta table; for Parquet set input.format: parquet")\
                from None
        if version is not None and ("VERSION" in text.upper() or "version" in text):
            raise InputError(f"'input.version' {version} cannot be read from {location!r}: {first[:300]}") from None
        raise InputError(f"'{key}' {location!r} cannot be read (version {version}): {first[:300]}") from None


# Spark's errors for a catalog.schema.table name whose catalog the session does not have: the name
# falls to the session catalog (spark_catalog), which takes one-part schemas only.
_NO_CATALOG = ("REQUIRES_SINGLE_PART_NAMESPACE", "CATALOG_NOT_FOUND", "requires a single-part namespace")


def _catalog_missing(text: str) -> bool:
    return any(marker in text for marker in _NO_CATALOG)


def catalog_message(key: str, name: str) -> str:
    """One line for a three-part table name whose catalog this session does not have."""
    catalog = name.split(".")[0].strip("`")
    return (f"'{key}' {name!r}: catalog {catalog!r} is not configured in this Spark session. Three-part names "
            "(catalog.schema.table) need Unity Catalog (Databricks) or a configured catalog; locally, give a "
            f"path instead (e.g. sparknoise-output/{name.split('.')[-1].strip('`')})")


def _unknown_catalog(spark: SparkSession, name: str) -> bool:
    """True when ``name`` is catalog.schema.table and the session has no catalog of that name."""
    parts = re.findall(r"`(?:[^`]|``)+`|[^.]+", name)
    if len(parts) != 3:
        return False
    try:
        known = {c.name.lower() for c in spark.catalog.listCatalogs()}  # the configured catalogs: a handful
    except Exception:  # noqa: BLE001 - a session that cannot list them: let the write say what is wrong
        return False
    return parts[0].strip("`").lower() not in known


def _has_parquet(folder: str) -> bool:
    return os.path.isdir(folder) and any(name.endswith(".parquet") for name in os.listdir(folder))


def job_input(spark: SparkSession, inp: dict, label_cols: Sequence[str] | None = None) -> tuple[PinnedInput, DataFrame]:
    """The job's input section applied: the pinned read, ``input.where``, ``input.drop``, then
    ``input.label_sep`` (the label columns, default ``input.label_col``, split into tag arrays)."""
    pinned = read_input(spark, path=inp["path"], table=inp["table"], fmt=inp["format"], version=inp["version"])
    df = filtered(pinned.df, inp["where"])
    drop = list(inp.get("drop") or [])
    missing = [c for c in drop if c not in df.columns]
    if missing:
        raise InputError(f"'input.drop': column(s) {missing} are not in the input; available: {df.columns}",
                         column=missing[0])
    df = df.drop(*drop) if drop else df
    if inp.get("label_sep") is not None:
        for column in label_cols or [inp["label_col"]]:
            df = split_tags(df, column, inp["label_sep"])
    return pinned, df


def split_tags(df: DataFrame, column: str, sep: str) -> DataFrame:
    """``column`` (a delimited string per row) replaced by its tags, ``array<string>`` (executors, per row).

    The string is split at every ``sep`` (literally, not a pattern); each piece is trimmed of
    surrounding spaces and empty pieces are dropped, so ``""`` (and ``" | "``) is a row with no
    tags and ``"a|b|"`` is ``[a, b]``; a null string stays null (the invalid-row policy sees it).
    Raises :class:`InputError` when ``column`` is missing or is not a string column.
    """
    if column not in df.columns:
        raise InputError(f"'input.label_sep': label column '{column}' is not in the input; available: {df.columns}",
                         column=column)
    dtype = df.schema[column].dataType
    if not isinstance(dtype, T.StringType):
        raise InputError(f"'input.label_sep' splits a string label column, but '{column}' has type "
                         f"{dtype.simpleString()}; drop input.label_sep for an array column.", column=column)
    pieces = F.transform(F.split(F.col(column), "\\Q" + sep + "\\E"), lambda t: F.trim(t))
    return df.withColumn(column, F.filter(pieces, lambda t: F.length(t) > F.lit(0)))


# Delta's optimistic concurrency: another run committed to the same table first (its rows never
# overlap ours, but Delta checks conflicts per file, not per run id), or created it first.
_RETRYABLE = ("concurrent", "protocolchanged", "metadatachanged", "delta_protocol_changed",
              "delta_metadata_changed", "already exists", "delta_table_already_exists", "filealreadyexists")
WRITE_ATTEMPTS = 8


def _retryable(error: Exception) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return any(marker in text for marker in _RETRYABLE)


def write_run_rows(df: DataFrame, location: str, *, run_id: str, metadata: dict, merge_schema: bool = False) -> None:
    """Replace this run's rows at ``location`` (create the table if needed) in one Delta commit.

    ``merge_schema`` lets the commit add new columns to an existing table (the runs log gains
    columns across versions; old rows read them as null). A commit that loses a race with
    another run's commit is retried: it replaces only its own run id's rows, so retrying is safe.
    """
    safe = run_id.replace("'", "''")
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        # An overwrite limited to the run's rows; on a missing table it creates the table.
        writer = (df.write.format("delta").option("userMetadata", json.dumps(metadata, sort_keys=True))
                  .mode("overwrite").option("replaceWhere", f"run_id = '{safe}'"))
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        try:
            if is_path(location):
                writer.save(location)
            else:
                writer.saveAsTable(location)
            return
        except Exception as e:  # noqa: BLE001 - only Delta's write conflicts are retried
            if attempt == WRITE_ATTEMPTS or not _retryable(e):
                raise
            pause = min(8.0, 0.25 * 2 ** attempt) * (0.5 + random.random())
            log.warning(
                "write to %s conflicted with another commit (attempt %d/%d): %s; retrying in %.1fs", location,
                attempt, WRITE_ATTEMPTS, str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__,
                pause)
            time.sleep(pause)


def scratch_location(base: str | None, anchor: str, run_id: str) -> str:
    """A run's scratch folder (or table-name prefix): ``base``, default ``_sparknoise_scratch`` beside ``anchor``."""
    import re

    if base is None:
        base = (os.path.join(os.path.dirname(anchor.rstrip("/")), "_sparknoise_scratch") if is_path(anchor)
                else f"{anchor}_scratch")
    if is_path(base):
        return f"{base.rstrip('/')}/{run_id}"
    return f"{base}_{re.sub(r'[^A-Za-z0-9_]', '_', run_id)}"


def remove_scratch(spark: SparkSession, location: str) -> None:
    """Remove a run's scratch data: a local folder is deleted; catalog tables named ``<location>_*``
    are dropped. A remote folder (s3://, abfss://, dbfs:) is left: deleting files there needs the
    Hadoop file system, which Spark Connect does not expose; the job logs where it is."""
    import shutil

    if not is_path(location):
        _drop_scratch_tables(spark, location)
        return
    path = _local_path(location)
    if path is None:
        log.info("scratch data of the run left at %s (remote storage): delete it when no longer needed", location)
        return
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
        parent = os.path.dirname(path)
        if os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)


def _drop_scratch_tables(spark: SparkSession, prefix: str) -> None:
    """DROP every table whose name starts with ``<prefix>_`` in the prefix's schema."""
    parts = prefix.split(".")
    schema, stem = (".".join(parts[:-1]), parts[-1]) if len(parts) > 1 else (None, parts[0])
    try:
        shown = spark.sql(f"SHOW TABLES IN {schema}" if schema else "SHOW TABLES").collect()  # one schema's names
    except Exception as e:  # noqa: BLE001 - never fail a run over its clean-up
        log.warning("could not list scratch tables %s_*: %s", prefix, str(e).splitlines()[0][:200])
        return
    for row in shown:
        name = row["tableName"]
        if name.lower().startswith(f"{stem.lower()}_") and not row["isTemporary"]:
            full = f"{schema}.{name}" if schema else name
            try:
                spark.sql(f"DROP TABLE IF EXISTS {full}")
            except Exception as e:  # noqa: BLE001
                log.warning("could not drop scratch table %s: %s", full, str(e).splitlines()[0][:200])


def check_persistent_name(spark: SparkSession, key: str, location: str) -> None:
    """A table *name* (not a path) needs a catalog that outlives the session.

    Local sessions without a metastore use Spark's in-memory catalog: a table written there by
    name lands in ./spark-warehouse and is unknown to every later session. That is an error naming
    the key and suggesting a path.
    """
    if is_path(location):
        return
    try:
        implementation = spark.conf.get("spark.sql.catalogImplementation")  # its default when unset: in-memory
    except Exception:  # noqa: BLE001 - a session that does not say: assume a real catalog
        return
    if str(implementation).lower() == "in-memory":
        raise InputError(f"'{key}' {location!r} is a table name, but this session's catalog is in-memory (no "
                         "metastore): the table would be lost when the session ends. Give a path instead, e.g. "
                         f"sparknoise-output/{location.split('.')[-1].strip('`')}, or run with a metastore "
                         "(Hive, Unity Catalog)")


def filtered(df: DataFrame, where: str | None, *, key: str = "input.where") -> DataFrame:
    """``df.where(where)``, checked now: a boolean SQL expression over the input's columns, or InputError."""
    if not where:
        return df
    if not isinstance(where, str):
        raise InputError(f"'{key}' must be a SQL boolean expression (a string), not {where!r}")
    try:
        out = df.where(where)
        out.schema  # noqa: B018 - analyse now (Spark Connect analyses lazily)
    except Exception as e:  # noqa: BLE001 - parse and analysis errors alike
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"'{key}' {where!r} is not a boolean expression over the input's columns "
                         f"{df.columns}: {first[:300]}") from None
    return out


def check_output_location(spark: SparkSession, key: str, location: str) -> None:
    """An output must be a Delta table or not exist yet (never overwrite another kind of dataset), and
    a table name needs a persistent catalog (:func:`check_persistent_name`)."""
    if not is_path(location) and _unknown_catalog(spark, location):
        raise InputError(catalog_message(key, location))
    check_persistent_name(spark, key, location)
    local = _local_path(location)
    if local is not None:
        holds_other = os.path.isfile(local) or (
            os.path.isdir(local) and os.listdir(local) and not os.path.isdir(os.path.join(local, "_delta_log")))
        if holds_other:
            raise InputError(f"'{key}' {location!r} already holds files that are not a Delta table; choose another "
                             "location or remove them")
        return
    try:
        fmt = spark.sql(f"DESCRIBE DETAIL {_delta_ref(location)}").select("format").first()["format"]
    except Exception as e:  # noqa: BLE001
        if "not a delta table" in str(e).lower():
            raise InputError(f"'{key}' {location!r} holds a dataset that is not a Delta table; choose another "
                             "location") from None
        return  # does not exist yet
    if fmt and str(fmt).lower() != "delta":
        raise InputError(f"'{key}' {location!r} is a {fmt} table, not Delta; choose another table name")


def run_rows(spark: SparkSession, location: str, key: str, run_id: str) -> DataFrame:
    """The rows of one run id in an output table; InputError naming ``key`` when it cannot be read."""
    try:
        df = read_table(spark, location)
        df.schema  # noqa: B018 - resolve now: a missing table fails here
    except Exception as e:  # noqa: BLE001 - a missing or unreadable table
        if not is_path(location) and _catalog_missing(str(e)):
            raise InputError(catalog_message(key, location)) from None
        missing = _missing(e)
        raise InputError(f"'{key}' {location!r} " + ("does not exist" if missing else "cannot be read")
                         + f"; point {key} at the table the detect run wrote (run detect first, with the same "
                         "--config)") from None
    return df.filter(F.col("run_id") == run_id)


def _missing(error: Exception) -> bool:
    text = str(error)
    return any(m in text for m in ("PATH_NOT_FOUND", "TABLE_OR_VIEW_NOT_FOUND", "DELTA_TABLE_NOT_FOUND",
                                   "DELTA_PATH_DOES_NOT_EXIST", "does not exist", "is not a Delta table"))
