"""Data-issue input: column checks on the driver, one validating aggregation on the executors.

Preparation (driver, no job): the id column (integer or string) becomes ``__au_id``; the features,
given as numeric columns (``features=[...]``) or one Spark ML vector / numeric array column
(``features_col=``), become one ``array<double>`` column ``__au_x`` (a null entry stays null); the
label column (any type) ``__au_label``. Non-numeric feature columns, a missing column or both
feature arguments at once raise before any job runs.

Validation (:func:`profile`, one aggregation over all rows, one row to the driver): the row count,
per feature column the null-or-NaN count, the vector length range (one length for every row), the
null labels; and the distinct ids; only when some repeat, a second aggregation finds at most 5 examples.
Nulls in the features are an error only for the nearest-neighbour types (``outlier``,
``near_duplicate``): the ``null`` issue type reports them row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.inputs import INTEGRAL_TYPES, NUMERIC_TYPES, unfolded
from sparknoise.core.inputs import input_field as _field
from sparknoise.errors import ConfigError, InputError

ID = "__au_id"
X = "__au_x"  # array<double>: the feature vector (entries may be null or NaN until validated)
LABEL = "__au_label"



@dataclass(frozen=True)
class AuditInput:
    """The input with its working columns, the names it was given and what validation counted."""

    df: DataFrame
    id_col: str
    feature_names: tuple  # the feature columns, or (features_col,)
    features_col: str | None
    label_col: str | None
    n_rows: int = 0
    dim: int = 0
    null_features: tuple = ()  # per feature column (or the vector column): rows with a null or NaN value

    @property
    def has_features(self) -> bool:
        return bool(self.feature_names)


def _is_vector(dt: T.DataType) -> bool:
    return type(dt).__name__ == "VectorUDT"


def _vector_column(df: DataFrame, name: str) -> Column:
    dt = _field(df, name, "features", "features_col").dataType
    if _is_vector(dt):
        from pyspark.ml.functions import vector_to_array

        # vector_to_array refuses a null vector: a null row stays null (the null type reports it)
        return F.when(F.col(name).isNotNull(), vector_to_array(F.col(name), "float64"))
    if isinstance(dt, T.ArrayType) and isinstance(dt.elementType, NUMERIC_TYPES):
        return F.transform(F.col(name), lambda v: v.cast("double"))
    raise InputError(
        f"features column '{name}' has type {dt.simpleString()}; features_col must be a Spark ML vector or an "
        "array of numbers. Assemble numeric columns with VectorAssembler, or pass them as features=[...].",
        column=name)


def prepare(df: DataFrame, *, id_col: str, features: Sequence[str] | None, features_col: str | None,
            label_col: str | None) -> AuditInput:
    """Check the columns' types (driver only, no job) and add the working columns."""
    ident = _field(df, id_col, "id", "id_col")
    if not isinstance(ident.dataType, (*INTEGRAL_TYPES, T.StringType)):
        raise InputError(f"id column '{id_col}' has type {ident.dataType.simpleString()}; ids must be an integer "
                         "or string column (they name rows, pairs and sets). Cast it, or add a unique id.",
                         column=id_col)
    if features is not None and features_col is not None:
        raise ConfigError("pass the features either as features=[numeric columns] or as features_col=<vector "
                          "column>, not both.")
    names: tuple = ()
    x: Column | None = None
    if features is not None:
        if isinstance(features, str):
            raise ConfigError(f"features={features!r} must be a list of column names (use features_col= for one "
                              "vector or array column).")
        names = tuple(features)
        if not names:
            raise ConfigError("features=[] names no column; pass the numeric feature columns, or features_col=.")
        for name in names:
            dt = _field(df, name, "feature", "features").dataType
            if not isinstance(dt, NUMERIC_TYPES):
                raise InputError(
                    f"feature column '{name}' has type {dt.simpleString()}; features must be numbers (int, long, "
                    f"float, double or decimal). Encode it as numbers, or leave it out of features=[...].",
                    column=name)
        x = F.array(*[F.col(n).cast("double") for n in names])
    elif features_col is not None:
        names = (features_col,)
        x = _vector_column(df, features_col)
    if label_col is not None:
        _field(df, label_col, "label", "label_col")
    ident_col = F.col(id_col).cast("long") if isinstance(ident.dataType, INTEGRAL_TYPES) else F.col(id_col)
    out = unfolded(df).withColumn(ID, ident_col)
    if x is not None:
        out = out.withColumn(X, x)
    if label_col is not None:
        out = out.withColumn(LABEL, F.col(label_col))
    return AuditInput(df=out, id_col=id_col, feature_names=names, features_col=features_col, label_col=label_col)


def _bad(c: Column) -> Column:
    return c.isNull() | F.isnan(c)


def profile(inp: AuditInput) -> AuditInput:
    """Count rows, null/NaN features per column, vector lengths and null labels (one aggregation, one
    row to the driver), and check the ids are unique (limit(5) examples); returns the input with the
    counts. Raises InputError on a null label, a null or duplicate id, vectors of differing lengths."""
    aggs = [F.count(F.lit(1)).alias("n"), F.sum(F.col(ID).isNull().cast("long")).alias("null_id"),
            F.count_distinct(F.col(ID)).alias("distinct_id")]
    if inp.has_features:
        if inp.features_col is None:
            for i, _ in enumerate(inp.feature_names):
                aggs.append(F.sum(_bad(F.col(X)[i]).cast("long")).alias(f"null_{i}"))
        else:
            bad_row = F.col(X).isNull() | F.exists(F.col(X), _bad)
            aggs += [F.sum(bad_row.cast("long")).alias("null_0"),
                     F.min(F.size(F.col(X))).alias("dmin"), F.max(F.size(F.col(X))).alias("dmax")]
    if inp.label_col is not None:
        aggs.append(F.sum(F.col(LABEL).isNull().cast("long")).alias("null_label"))
    row = inp.df.agg(*aggs).collect()[0]  # one aggregate row
    n = int(row["n"])
    if n == 0:
        raise InputError("the input has no rows; there is nothing to audit.", column=inp.id_col)
    if row["null_id"]:
        raise InputError(f"id column '{inp.id_col}' has {row['null_id']} null value(s); every row needs a unique "
                         "non-null id.", column=inp.id_col)
    if inp.label_col is not None and row["null_label"]:
        raise InputError(f"label column '{inp.label_col}' has {row['null_label']} null value(s); every row needs a "
                         f"label. Drop those rows or leave label_col out.", column=inp.label_col)
    dim = len(inp.feature_names)
    if inp.features_col is not None:
        dmin, dmax = row["dmin"], row["dmax"]
        if dmin is not None and dmin >= 0 and dmin != dmax:
            raise InputError(f"features column '{inp.features_col}' holds vectors of lengths {dmin} to {dmax}; every "
                             "row needs the same number of features.", column=inp.features_col)
        dim = int(dmax) if dmax is not None and dmax >= 0 else 0
    nulls = tuple(int(row[f"null_{i}"] or 0) for i in range(len(inp.feature_names))) if inp.has_features else ()
    dup = [] if int(row["distinct_id"]) == n else (
        inp.df.groupBy(F.col(ID)).count().filter(F.col("count") > 1).limit(5).collect())  # <= 5 example ids
    if dup:
        raise InputError(f"id column '{inp.id_col}' has duplicate values (for example {[r[ID] for r in dup]}); ids "
                         "must be unique per row. Deduplicate the input or build a unique id.", column=inp.id_col)
    return AuditInput(df=inp.df, id_col=inp.id_col, feature_names=inp.feature_names, features_col=inp.features_col,
                      label_col=inp.label_col, n_rows=n, dim=dim, null_features=nulls)


def require_clean_features(inp: AuditInput, issue_type: str) -> None:
    """Raise for a nearest-neighbour type when a feature column has a null or NaN (driver, no job)."""
    for name, count in zip(inp.feature_names, inp.null_features):
        if count:
            raise InputError(
                f"feature column '{name}' has {count} row(s) with a null or NaN value; the '{issue_type}' issue "
                "type needs complete feature vectors. The 'null' issue type reports those rows "
                "(issue_types=['null']): drop or impute them, then audit again.", column=name)
