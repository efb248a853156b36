"""Regression input: column checks on the driver, then one validating aggregation on the executors.

Preparation (driver, no job): the label and prediction columns must be numeric (any integral or
fractional Spark type, read as ``double`` in the working columns ``__rg_y`` and ``__rg_p``); the id
column an integer or string. A frame built from local data gets a shuffle above its rows first
(core ``unfolded``) so the passes run on the executors as over a table.

Validation (:func:`check_values`, one aggregation over all rows, returning one row of counts): a
null, NaN or infinite label; a null, NaN or infinite prediction; and, when asked, a null or
duplicate id (a second small aggregation, at most 5 example ids reach the driver). The first
problem raises :class:`InputError` naming the column, the count and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.inputs import INTEGRAL_TYPES, NUMERIC_TYPES, unfolded
from sparknoise.core.inputs import input_field as _field
from sparknoise.errors import InputError

LABEL = "__rg_y"  # double: the given label
PREDICTION = "__rg_p"  # double: the (out-of-fold) prediction
WORKING = (LABEL, PREDICTION)



@dataclass(frozen=True)
class RegressionInput:
    """The input with the working columns added, and the names it was given."""

    df: DataFrame
    label_col: str
    prediction_col: str
    id_col: str | None


def numeric_column(df: DataFrame, name: str, role: str, arg: str) -> Column:
    """``name`` as a double column; raises naming ``name`` when it is not numeric (driver, no job)."""
    field = _field(df, name, role, arg)
    if not isinstance(field.dataType, NUMERIC_TYPES):
        raise InputError(
            f"{role} column '{name}' has type {field.dataType.simpleString()}; a regression {role} must be a "
            f"number (int, long, float, double or decimal). Cast it (F.col('{name}').cast('double')), or pass "
            f"the right column as {arg}=...", column=name)
    return F.col(name).cast("double")


def prepare(df: DataFrame, *, label_col: str, prediction_col: str, id_col: str | None) -> RegressionInput:
    """Check the columns' types (driver only, no job) and add ``__rg_y`` and ``__rg_p``."""
    label = numeric_column(df, label_col, "label", "label_col")
    prediction = numeric_column(df, prediction_col, "prediction", "prediction_col")
    if id_col is not None:
        ident = _field(df, id_col, "id", "id_col")
        if not isinstance(ident.dataType, (*INTEGRAL_TYPES, T.StringType)):
            raise InputError(
                f"id column '{id_col}' has type {ident.dataType.simpleString()}; ids must be an integer or "
                "string column (they break ties and join results back). Cast it, or add a unique id.",
                column=id_col)
    out = unfolded(df).withColumn(LABEL, label).withColumn(PREDICTION, prediction)
    return RegressionInput(df=out, label_col=label_col, prediction_col=prediction_col, id_col=id_col)


def _bad(c: Column) -> Column:
    return c.isNull() | F.isnan(c) | (F.abs(c) == F.lit(float("inf")))


def check_values(inp: RegressionInput, *, check_ids: bool = True) -> int:
    """Raise on the first bad value (one aggregation, one row to the driver); return the row count."""
    row = inp.df.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(_bad(F.col(LABEL)).cast("long")).alias("bad_label"),
        F.sum(_bad(F.col(PREDICTION)).cast("long")).alias("bad_prediction"),
    ).collect()[0]  # one aggregate row
    n = int(row["n"])
    if row["bad_label"]:
        raise InputError(
            f"label column '{inp.label_col}' has {row['bad_label']} null, NaN or infinite value(s); every row "
            f"needs a finite number. Drop or fill those rows (df.dropna(subset=['{inp.label_col}'])).",
            column=inp.label_col)
    if row["bad_prediction"]:
        raise InputError(
            f"prediction column '{inp.prediction_col}' has {row['bad_prediction']} null, NaN or infinite "
            "value(s); every row needs a finite (out-of-fold) prediction. Recompute the predictions for "
            "those rows.", column=inp.prediction_col)
    if n == 0:
        raise InputError(f"the input has no rows; there is nothing to score in '{inp.label_col}'.",
                         column=inp.label_col)
    if check_ids and inp.id_col is not None:
        ident = inp.id_col
        bad = (inp.df.groupBy(F.col(ident)).count().filter((F.col("count") > 1) | F.col(ident).isNull())
               .limit(5).collect())  # at most 5 example ids
        if any(r[ident] is None for r in bad):
            raise InputError(f"id column '{ident}' has null values; every row needs a unique non-null id.",
                             column=ident)
        if bad:
            raise InputError(f"id column '{ident}' has duplicate values (for example {[r[ident] for r in bad]}); "
                             "ids must be unique per row. Deduplicate the input or build a unique id.", column=ident)
    return n
