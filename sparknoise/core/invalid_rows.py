"""Rows a job cannot use: null ids, null or NaN labels, null or non-finite features or probabilities.

By default such rows are an error (one message naming the column, the count
and the fix); with ``on_invalid: skip`` the job excludes them and counts them in its runs row. One
aggregation counts every kind at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.errors import InputError

POLICIES = ("error", "skip")
_FLOATS = (T.FloatType, T.DoubleType)


@dataclass(frozen=True)
class Screened:
    """The usable rows, and how many rows were left out per column (empty when none)."""

    df: DataFrame
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        """Rows left out (a row with several bad columns counts once)."""
        return int(self.skipped.get("__rows__", 0))


def _not_finite(col: Column) -> Column:
    return F.isnan(col) | (F.abs(col) == F.lit(float("inf")))


def _bad_array(col: Column, *, finite: bool) -> Column:
    def bad(x: Column) -> Column:
        return x.isNull() | (_not_finite(x) if finite else F.isnan(x))

    return col.isNull() | F.exists(col, bad)


_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


def check_feature_types(df: DataFrame, features: Sequence[str] | None, features_col: str | None) -> None:
    """Feature columns must be numeric; a features column a vector or an array of numbers."""
    from pyspark.ml.linalg import VectorUDT

    for name in features or []:
        dtype = df.schema[name].dataType
        if not isinstance(dtype, _NUMERIC):
            raise InputError(f"feature column '{name}' is {dtype.simpleString()}, not numeric; cast it or leave it "
                             "out of the features", column=name)
    if features_col:
        dtype = df.schema[features_col].dataType
        ok = isinstance(dtype, VectorUDT) or (isinstance(dtype, T.ArrayType) and
                                              isinstance(dtype.elementType, _NUMERIC))
        if not ok:
            raise InputError(f"features column '{features_col}' is {dtype.simpleString()}; it must be an ML vector "
                             "(or an array of numbers)", column=features_col)


def invalid_conditions(df: DataFrame, *, id_col: str, label_col: str, features: Sequence[str] | None = None,
                       features_col: str | None = None, probs_col: str | None = None) -> dict[str, Column]:
    """Column name -> a boolean expression that is true on rows with an unusable value there."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import VectorUDT

    check_feature_types(df, features, features_col)
    schema = df.schema
    out: dict[str, Column] = {id_col: F.col(id_col).isNull()}
    label = F.col(label_col)
    out[label_col] = label.isNull() | F.isnan(label) if isinstance(schema[label_col].dataType, _FLOATS) \
        else label.isNull()
    for name in features or []:
        col = F.col(name)
        out[name] = col.isNull() | _not_finite(col.cast("double"))
    if features_col:
        col = F.col(features_col)
        values = vector_to_array(col) if isinstance(schema[features_col].dataType, VectorUDT) else col
        out[features_col] = col.isNull() | _bad_array(values, finite=True)
    if probs_col:
        col = F.col(probs_col)
        values = vector_to_array(col) if isinstance(schema[probs_col].dataType, VectorUDT) else col
        out[probs_col] = _bad_array(values, finite=False)
    return out


@dataclass(frozen=True)
class ClassLabelRules:
    """Class labels without ``input.classes``: integral numbers (when numeric), at most ``max_classes`` values.

    ``max_key`` / ``classes_key`` name the config keys the messages point at.
    """

    max_classes: int
    max_key: str = "detection.max_classes"
    classes_key: str = "input.classes"


def _label_aggregations(df: DataFrame, label_col: str) -> list[Column]:
    label = F.col(label_col)
    dtype = df.schema[label_col].dataType
    aggs = [F.approx_count_distinct(label).alias("distinct_labels")]
    if isinstance(dtype, (*_FLOATS, T.DecimalType)):
        value = label.cast("double")
        fractional = value.isNotNull() & ~F.isnan(value) & (value != F.floor(value))
        aggs += [F.sum(fractional.cast("long")).alias("fractional_labels"),
                 F.min(F.when(fractional, value)).alias("fractional_example")]
    return aggs


def _check_class_labels(df: DataFrame, label_col: str, counts, rules: ClassLabelRules) -> None:
    """One short line when the label column looks continuous or holds more values than classes can be."""
    regression = "regression targets are not supported by sparknoise yet"
    fractional = int(counts["fractional_labels"] or 0) if "fractional_labels" in counts else 0
    if fractional:
        raise InputError(
            f"label column '{label_col}' holds continuous values: {fractional:,} row(s) are not whole numbers (e.g. "
            f"{counts['fractional_example']!r}). Class labels are needed ({regression}); if these values are classes, "
            f"list them in {rules.classes_key}.",
            column=label_col,
        )
    approx = int(counts["distinct_labels"] or 0)
    if approx > rules.max_classes:  # approximate (HyperLogLog): confirmed by a bounded exact count
        exact = df.select(label_col).where(F.col(label_col).isNotNull()).distinct().limit(rules.max_classes + 1).count()
        if exact > rules.max_classes:
            raise InputError(
                f"label column '{label_col}' has about {approx:,} distinct values, more than {rules.max_key}: "
                f"{rules.max_classes}. A continuous target? {regression[0].upper() + regression[1:]}; for that many "
                f"classes, raise {rules.max_key} or list them in {rules.classes_key}.",
                column=label_col,
            )


def screen_invalid(df: DataFrame, policy: str, *, key: str = "input.on_invalid",
                   class_labels: ClassLabelRules | None = None, **columns) -> Screened:
    """Raise on unusable rows (``policy='error'``) or leave them out (``'skip'``); one aggregation.

    ``columns``: ``id_col``, ``label_col`` and optionally ``features``, ``features_col``,
    ``probs_col`` as for :func:`invalid_conditions`. ``class_labels``: the same aggregation also
    checks that the labels look like classes (:class:`ClassLabelRules`): a float label with a
    non-integral value, or more distinct labels than ``max_classes`` (approximately counted, then
    confirmed by a bounded exact count), raises :class:`InputError`.
    """
    if policy not in POLICIES:
        raise InputError(f"'{key}' must be one of {list(POLICIES)}, not {policy!r}")
    label_col = columns["label_col"]
    if class_labels is not None and label_col in df.columns:
        from sparknoise.core.inputs import check_label_type

        check_label_type(df.schema[label_col])
    conditions = invalid_conditions(df, **columns)
    any_bad = F.lit(False)
    for cond in conditions.values():
        any_bad = any_bad | F.coalesce(cond, F.lit(True))
    aggs = [F.sum(F.coalesce(c, F.lit(True)).cast("long")).alias(f"c{i}") for i, c in enumerate(conditions.values())]
    if class_labels is not None:
        aggs += _label_aggregations(df, label_col)
    counts = df.agg(*aggs, F.sum(any_bad.cast("long")).alias("rows")).first()
    per_column = {name: int(counts[f"c{i}"] or 0) for i, name in enumerate(conditions)}
    bad = {name: n for name, n in per_column.items() if n}
    if class_labels is not None and (not bad or policy == "skip"):
        _check_class_labels(df, label_col, counts.asDict(), class_labels)
    if not bad:
        return Screened(df)
    if policy == "error":
        name, n = next(iter(bad.items()))
        what = "null" if name in (columns.get("id_col"), columns.get("label_col")) else "null, NaN or infinite"
        raise InputError(
            f"column '{name}' has {n} row(s) with {what} values; fix or drop them, or set {key}: skip to leave "
            f"such rows out (all columns with bad rows: {bad})",
            column=name,
        )
    return Screened(df.where(~any_bad), {**bad, "__rows__": int(counts["rows"] or 0)})
