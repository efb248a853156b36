"""Named releases of a cleaned dataset: what a release records and how to read one back.

A release pins three tables so anyone can compare and reproduce a cleaning: the detect run's
original input (its location and the Delta version the run read), and the ``cleaned`` and ``audit``
tables at the versions one apply run committed. ``sparknoise publish`` writes one row per release
to the ``releases`` Delta table (names are unique and rows are never changed);
:func:`read_release` reads the three frames back at their pinned versions (Delta time travel).

Runs on the driver: it reads one row of ``releases``; the frames stay lazy on the executors.
Classic and Spark Connect alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparknoise.errors import ConfigError, InputError
from sparknoise.storage import read_table, read_version

RELEASES_SCHEMA = (
    "release string, release_uid string, created_at timestamp, note string, apply_run_id string, "
    "detect_run_id string, input_location string, input_format string, input_version long, "
    "cleaned_location string, cleaned_version long, audit_location string, audit_version long, "
    "config_sha256 string, detect_config_sha256 string, counts string, sparknoise_version string, manifest string"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_release_name(name: str) -> str:
    """A release name: letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit (at most 128)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"release name {name!r} is not valid: use letters, digits, '.', '_' and '-', starting "
                          "with a letter or digit (e.g. v1 or 2026-12-clean)")
    return name


@dataclass(frozen=True)
class Release:
    """A release read back: the pinned frames (lazy) and its ``releases`` row."""

    name: str
    original: DataFrame  # the detect run's input table at the version that run read (all its rows)
    cleaned: DataFrame  # the cleaned rows of the release's detect run, at the pinned version
    audit: DataFrame  # the audit rows of the release's detect run, at the pinned version
    record: dict[str, Any]  # the releases row (counts parsed into a dict)

    @property
    def counts(self) -> dict[str, Any]:
        """Rows per action, per source, protected rows changed and (with a split column) per split."""
        return self.record["counts"]


def release_row(spark: SparkSession, releases: str, name: str) -> dict[str, Any] | None:
    """The releases row named ``name`` as a dict (counts parsed), or None; reads at most one row."""
    try:
        table = read_table(spark, releases)
        table.schema  # noqa: B018 - a missing table fails here
    except Exception:  # noqa: BLE001 - no releases table yet
        return None
    rows = table.filter(F.col("release") == name).orderBy("created_at").limit(1).collect()
    if not rows:
        return None
    record = rows[0].asDict()
    record["counts"] = json.loads(record["counts"]) if record.get("counts") else {}
    return record


def read_release(spark: SparkSession, releases: str, name: str) -> Release:
    """The original, cleaned and audit frames of release ``name`` at their pinned Delta versions.

    Args:
        releases: the ``releases`` table (path or catalog name; ``output.releases`` of the jobs).
        name: the release name given to ``sparknoise publish --release``.

    The original is the whole input table the detect run read (before its ``input.where``); cleaned
    and audit hold the rows of the release's detect run only. Raises :class:`InputError` naming the
    table when the release does not exist.
    """
    record = release_row(spark, releases, name)
    if record is None:
        raise InputError(f"no release {name!r} in the releases table {releases!r}; `sparknoise releases` lists them")
    if record["input_format"] == "parquet":
        original = spark.read.parquet(record["input_location"])
    else:
        original = read_version(spark, record["input_location"], record["input_version"])
    run = F.col("run_id") == record["detect_run_id"]
    cleaned = read_version(spark, record["cleaned_location"], record["cleaned_version"]).filter(run)
    audit = read_version(spark, record["audit_location"], record["audit_version"]).filter(run)
    return Release(name=name, original=original, cleaned=cleaned, audit=audit, record=record)
