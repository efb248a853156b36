"""Act on an audit: drop duplicate rows and the train-side copies of train/test leakage.

``find_data_issues`` (and the ``audit`` job) find sets of exact or near duplicates and the pairs of
duplicates that straddle the split (leakage); this module turns them into a cleaned table and an
audit trail, the way :func:`sparknoise.apply_cleaning` does for label verdicts. Rules, per row of the
audited table:

1. ``drop_duplicates="keep_first"``: in each duplicate set (``duplicate_sets``: a set id and its
   member ids), the member with the smallest id is kept and every other member removed. With
   ``split_col`` the rule runs within each split of a set (the first train member and the first
   test member are both kept), so deduplication never deletes a test row because a train row is
   its copy: that is leakage (rule 2). ``"none"`` leaves duplicates alone.
2. ``drop_leakage="train"``: for each leakage pair (``leakage``: ``id``, ``other_id``, ``split``,
   ``other_split``, ``distance``) the member whose split is ``train_split`` is removed, so the
   evaluation split keeps its rows and training loses the copies of them. A pair with neither side
   in ``train_split`` (e.g. validation vs test) is left alone. ``"none"`` leaves leakage alone.
3. every other row is kept.

A row removed by both rules gets one audit row whose ``issue_type`` is ``duplicate,leakage`` and
whose ``reason`` holds both sentences (sorted). ``cleaned`` is the audited table without the removed
rows plus ``action`` (``kept``); ``audit`` has one row per removed row: the id, ``action``
(``removed``), ``source`` (``policy``: the apply settings decided it, no reviewer), ``issue_type``,
``reason`` (which rule, the kept copy's id, the set or pair), the split with ``split_col``, and
``applied_at``. Everything is lazy and runs on the executors: the set members are exploded into
(set, id) rows, the first member per set (and split) is a window minimum, the removals are a union
grouped by id and joined back to the rows (a shuffle join: removals can be millions of rows).
Nothing row-level reaches the driver; ``summary()`` is one small aggregation.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from sparknoise.cleaning.result import _ACTION, _PROTECTED, _SOURCE, CleaningResult
from sparknoise.errors import ConfigError, InputError

DROP_DUPLICATES = ("keep_first", "none")
DROP_LEAKAGE = ("train", "none")

_TYPE, _REASON = "__sn_issue_type", "__sn_reason"


def _require(frame: DataFrame, name: str, columns: tuple[str, ...], fix: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{name} has no column(s) {missing}; {fix}; available: {frame.columns}", column=missing[0])


def _duplicate_removals(rows: DataFrame, duplicate_sets: DataFrame, id_col: str, split_col: str | None) -> DataFrame:
    """(id, issue_type, reason) for every member of a set that is not its first (per split)."""
    _require(duplicate_sets, "duplicate_sets", ("near_duplicate_set_id", "members"),
             "pass res.duplicate_sets() of find_data_issues or an audit run's duplicate_sets table")
    members = duplicate_sets.select(F.col("near_duplicate_set_id").alias("__sn_set"),
                                    F.explode("members").alias(id_col))
    exact = F.lit("duplicate")
    if "exact" in duplicate_sets.columns:
        members = members.join(duplicate_sets.select(F.col("near_duplicate_set_id").alias("__sn_set"),
                                                     F.col("exact").alias("__sn_exact")), "__sn_set")
        exact = F.when(F.col("__sn_exact"), F.lit("exact duplicate")).otherwise(F.lit("near duplicate"))
    within = ["__sn_set"]
    if split_col:
        members = members.join(rows.select(id_col, F.col(split_col).alias("__sn_split")), id_col)
        within.append("__sn_split")
    first = F.min(F.col(id_col)).over(Window.partitionBy(*within))
    members = members.withColumn("__sn_first", first)
    where = F.concat(F.lit(" (set "), F.col("__sn_set").cast("string"),
                     F.concat(F.lit(", split "), F.col("__sn_split").cast("string")) if split_col else F.lit(""),
                     F.lit(")"))
    return members.where(F.col(id_col) != F.col("__sn_first")).select(
        F.col(id_col), F.lit("duplicate").alias(_TYPE),
        F.concat(exact, F.lit(" of id "), F.col("__sn_first").cast("string"), where,
                 F.lit(": removed by apply.drop_duplicates=keep_first")).alias(_REASON))


def _leakage_removals(leakage: DataFrame, id_col: str, train_split: str) -> DataFrame:
    """(id, issue_type, reason) for the train-side member of every leakage pair."""
    _require(leakage, "leakage", ("id", "other_id", "split", "other_split", "distance"),
             "pass res.leakage() of find_data_issues or an audit run's leakage table")

    def side(me: str, other: str, my_split: str, other_split: str) -> DataFrame:
        return leakage.where(F.col(my_split).cast("string") == F.lit(train_split)).select(
            F.col(me).alias(id_col), F.lit("leakage").alias(_TYPE),
            F.concat(F.lit(f"{train_split}-side copy of id "), F.col(other).cast("string"), F.lit(" in split "),
                     F.col(other_split).cast("string"), F.lit(" (distance "),
                     F.format_number(F.col("distance"), 6), F.lit("): removed by apply.drop_leakage=train")
                     ).alias(_REASON))

    return side("id", "other_id", "split", "other_split").unionByName(
        side("other_id", "id", "other_split", "split"))


def apply_data_issues(
    rows: DataFrame,
    *,
    id_col: str = "id",
    duplicate_sets: DataFrame | None = None,
    leakage: DataFrame | None = None,
    drop_duplicates: str = "keep_first",
    drop_leakage: str = "train",
    split_col: str | None = None,
    train_split: str = "train",
    applied_at: dt.datetime | None = None,
) -> CleaningResult:
    """Remove duplicates and train-side leakage copies from an audited table; see the module docstring.

    Args:
        rows: the audited table (every row, with ``id_col`` and, if given, ``split_col``).
        duplicate_sets: ``res.duplicate_sets()`` of :func:`sparknoise.find_data_issues` (or an audit
            run's table): ``near_duplicate_set_id``, ``members`` (ids), optional ``exact``.
        leakage: ``res.leakage()`` (or an audit run's table): ``id``, ``other_id``, ``split``,
            ``other_split``, ``distance``.
        drop_duplicates: ``keep_first`` (default) or ``none``.
        drop_leakage: ``train`` (default: remove the ``train_split`` member of each pair) or ``none``.
        split_col: the split column of ``rows``; deduplication then keeps the first member per split.
        train_split: the split value whose copies leakage removes (default ``train``).
        applied_at: the time recorded in ``audit`` (default: now, UTC).

    Returns:
        a :class:`CleaningResult`: ``cleaned``, ``audit`` and ``summary()`` (removed rows count under
        source ``policy``).
    """
    if drop_duplicates not in DROP_DUPLICATES:
        raise ConfigError(f"drop_duplicates {drop_duplicates!r} is unknown; use one of {list(DROP_DUPLICATES)}")
    if drop_leakage not in DROP_LEAKAGE:
        raise ConfigError(f"drop_leakage {drop_leakage!r} is unknown; use one of {list(DROP_LEAKAGE)}")
    _require(rows, "the audited table", (id_col, *([split_col] if split_col else [])),
             "pass the table that was audited, with its id (and split) column")
    applied_at = applied_at or dt.datetime.now(dt.timezone.utc)
    parts = []
    if drop_duplicates == "keep_first" and duplicate_sets is not None:
        parts.append(_duplicate_removals(rows, duplicate_sets, id_col, split_col))
    if drop_leakage == "train" and leakage is not None:
        parts.append(_leakage_removals(leakage, id_col, train_split))
    if parts:
        union = parts[0]
        for p in parts[1:]:
            union = union.unionByName(p)
        removed = union.groupBy(id_col).agg(
            F.concat_ws(",", F.array_sort(F.collect_set(_TYPE))).alias(_TYPE),
            F.concat_ws("; ", F.array_sort(F.collect_set(_REASON))).alias(_REASON))
    else:
        removed = rows.sparkSession.createDataFrame([], rows.select(id_col).schema).select(
            id_col, F.lit(None).cast("string").alias(_TYPE), F.lit(None).cast("string").alias(_REASON))
    marked = rows.join(removed, id_col, "left")
    gone = F.col(_TYPE).isNotNull()
    decided = marked.select(F.col(id_col), F.when(gone, F.lit("removed")).otherwise(F.lit("kept")).alias(_ACTION),
                            F.when(gone, F.lit("policy")).otherwise(F.lit("none")).alias(_SOURCE),
                            F.lit(False).alias(_PROTECTED))
    cleaned = marked.where(~gone).select(*rows.columns, F.lit("kept").alias("action"))
    audit = marked.where(gone).select(
        *([F.col("run_id")] if "run_id" in rows.columns else []),
        F.col(id_col), F.lit("removed").alias("action"), F.lit("policy").alias("source"),
        F.lit(False).alias("protected"),
        *([F.col(split_col)] if split_col and split_col != id_col else []),
        F.col(_TYPE).alias("issue_type"), F.col(_REASON).alias("reason"),
        F.lit(applied_at).cast("timestamp").alias("applied_at"))
    return CleaningResult(cleaned=cleaned, audit=audit, decided=decided)


__all__ = ["DROP_DUPLICATES", "DROP_LEAKAGE", "apply_data_issues"]
