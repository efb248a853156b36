"""Normalise a user DataFrame into sparknoise's working columns (no Spark job runs here).

The working columns are a label *index* (int, position of the label in ``classes``) and the
probabilities as ``array<double>``. Every other column is carried along untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.errors import ConfigError, InputError

LABEL_INDEX = "__sn_label"
PROBS = "__sn_probs"
# Column-metadata key under which cross_val_predict_proba records the class values of its
# probability column, so find_label_issues maps indices back to label values without being told.
METADATA_KEY = "sparknoise"

# Label-index codes for the values that cannot be mapped (the validation pass counts them).
NOT_A_CLASS = -1  # not in `classes`, or an integer outside 0..K-1 / negative
NOT_INTEGRAL = -2  # a float label like 1.5 with classes=None
NAN_LABEL = -3

OUTPUT_COLUMNS = ("label_quality", "predicted_label", "is_label_issue", "issue_rank", "sample_weight")


LOCAL_PARTITIONS = 8

# probs_repair="clip": probabilities a hair outside [0, 1] (published float32 probabilities reach
# 1.00001) are clipped into it, and their row divided by its sum, when the row is that close.
PROBS_REPAIRS = ("none", "clip")
CLIP_TOLERANCE = 1e-4
REPAIR_SUM_TOLERANCE = 1e-3
REPAIRED = "__sn_repaired"


def clipped_probs(probs: Column) -> tuple[Column, Column]:
    """(the repaired probabilities, whether the row was repaired): native, per row.

    A row with an entry outside [0, 1] is repaired when every such entry is within CLIP_TOLERANCE
    of the interval and the clipped row sums to 1 within REPAIR_SUM_TOLERANCE: each entry is
    clipped into [0, 1], then divided by the clipped row's sum (added left to right). Every other
    row (valid, or further off, which validation then refuses) is left exactly as it was.
    """
    tol = CLIP_TOLERANCE
    outside = F.exists(probs, lambda x: (x < 0) | (x > 1))
    clipped = F.transform(probs, lambda x: F.when((x < 0) & (x >= -tol), F.lit(0.0))
                          .when((x > 1) & (x <= 1 + tol), F.lit(1.0)).otherwise(x))
    total = F.aggregate(clipped, F.lit(0.0), lambda acc, x: acc + x)
    fixable = (outside & ~F.exists(clipped, lambda x: (x < 0) | (x > 1))
               & (F.abs(total - F.lit(1.0)) <= F.lit(REPAIR_SUM_TOLERANCE)))
    fixable = F.coalesce(fixable, F.lit(False))
    return F.when(fixable, F.transform(clipped, lambda x: x / total)).otherwise(probs), fixable


def unfolded(df: DataFrame) -> DataFrame:
    """``df``, with a shuffle right above its rows when they live in the query plan itself.

    A frame built from local data (``spark.createDataFrame(pandas_df)`` or a list) carries its rows
    inside the plan (a LocalRelation). Spark's optimizer then evaluates every projection stacked
    on such rows on the *driver*, once per query and once per union branch (the rule
    ConvertToLocalRelation), keeping a new copy of the rows in every plan, and it ships the rows
    inside every task. sparknoise's pipelines stack many projections, joins and unions on their
    input, so a pandas-built frame of 20,000 rows exhausted a default 1 GB driver. A repartition
    into LOCAL_PARTITIONS partitions (local data is driver-sized) makes the plan above it run on
    the executors, exactly as over a table. Results never depend on partitioning.
    Only an analysis call (``isLocal``), no Spark job; frames read from tables are returned as is.
    """
    return df.repartition(LOCAL_PARTITIONS) if _is_local(df) else df


def local_rows(df: DataFrame) -> DataFrame:
    """A frame built from local data, made to run on the executors without a shuffle per pass.

    A lazy ``localCheckpoint``: the first job computes the rows into the executors' block stores
    (the LocalRelation's own partitions, no shuffle) and every later pass reads them from there, so
    the plans above hold no copy of the rows and no pass re-ships them (see :func:`unfolded` for
    why the rows must leave the plan). A ``repartition(LOCAL_PARTITIONS)`` made each pass of
    find_label_issues start with a shuffle job of its own (18 jobs for a 5,000-row call, 11 now).
    Where the engine refuses checkpoints the repartition is used. Only an analysis call, no job;
    results never depend on partitioning. Column metadata (the classes of a probability column)
    is kept.
    """
    try:
        out = df.coalesce(1).localCheckpoint(eager=False)
    except Exception:  # noqa: BLE001 - an engine without checkpoints: the shuffle of before
        return df.repartition(LOCAL_PARTITIONS)
    meta = {f.name: f.metadata for f in df.schema.fields if f.metadata}
    if any(out.schema[name].metadata != m for name, m in meta.items()):
        out = out.select(*[F.col(f.name).alias(f.name, metadata=meta[f.name]) if f.name in meta else F.col(f.name)
                           for f in out.schema.fields])
    return out


def _is_local(df: DataFrame) -> bool:
    try:
        return df.isLocal()
    except Exception:  # noqa: BLE001 - a plan that cannot say: leave it as it is
        return False


# the Spark types of integer and of numeric columns (shared by every input module)
INTEGRAL_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
NUMERIC_TYPES = (*INTEGRAL_TYPES, T.FloatType, T.DoubleType, T.DecimalType)
_NUMERIC = NUMERIC_TYPES
_INTEGRAL = INTEGRAL_TYPES


def input_field(df: DataFrame, name: str, role: str, arg: str, where: str = "the input") -> T.StructField:
    """The schema field ``name`` of ``df`` (driver, no job); a missing column raises :class:`InputError`
    naming it, the columns there are and the argument ``arg`` that chooses it."""
    fields = {f.name: f for f in df.schema.fields}
    if name not in fields:
        raise InputError(f"{role} column '{name}' is not in {where}; available columns: {sorted(fields)}. "
                         f"Pass the right name as {arg}=...", column=name)
    return fields[name]


def classes_from_metadata(df: DataFrame, probs_col: str) -> tuple | None:
    """The class values recorded by cross_val_predict_proba on a probability column, if any."""
    meta = df.schema[probs_col].metadata or {}
    classes = meta.get(METADATA_KEY, {}).get("classes")
    return tuple(classes) if classes is not None else None


@dataclass(frozen=True)
class PreparedInput:
    """A DataFrame with the working columns added, and what is known about it before any job runs."""

    df: DataFrame
    label_col: str
    probs_col: str
    id_col: str
    label_type: T.DataType
    id_type: T.DataType
    classes: tuple[Any, ...] | None  # None: labels are the integers 0..K-1, K read from the data
    local: bool = False  # the rows were held by the driver (built from local data): small by construction
    # local inputs: the same working columns over the driver-held rows themselves (a LocalRelation),
    # which Spark evaluates on the driver without a job; only for constant-size reads (num_classes_of)
    local_df: DataFrame | None = None


def _field(df: DataFrame, name: str, role: str) -> T.StructField:
    fields = {f.name: f for f in df.schema.fields}
    if name not in fields:
        raise InputError(
            f"{role} column '{name}' is not in the input; available columns: {sorted(fields)}. "
            f"Pass the right name as {role}_col=...",
            column=name,
        )
    return fields[name]


def _is_vector(dtype: T.DataType) -> bool:
    return dtype.typeName() == "vector" or type(dtype).__name__ == "VectorUDT"


def probs_as_double_array(field: T.StructField) -> Column:
    """The probability column as array<double>, from array<float|double|...> or an ML vector."""
    dtype = field.dataType
    if isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, _NUMERIC):
        return F.col(field.name).cast(T.ArrayType(T.DoubleType()))
    if _is_vector(dtype):
        from pyspark.ml.functions import vector_to_array

        return vector_to_array(F.col(field.name), "float64")
    raise InputError(
        f"probability column '{field.name}' has type {dtype.simpleString()}; expected "
        "array<double>, array<float> or a Spark ML vector (such as a classifier's 'probability'). "
        "Convert it, or point probs_col at the right column.",
        column=field.name,
    )


def check_label_type(field: T.StructField) -> None:
    """Refuse label types no classification API here takes (no Spark job): arrays (multi-label), maps, structs."""
    dtype = field.dataType
    if isinstance(dtype, T.ArrayType):
        raise InputError(
            f"label column '{field.name}' holds arrays ({dtype.simpleString()}): multi-label (array) labels are not "
            "supported by find_label_issues yet; it needs one label per row.",
            column=field.name,
        )
    if isinstance(dtype, (T.MapType, T.StructType)):
        raise InputError(
            f"label column '{field.name}' has type {dtype.simpleString()}; a label must be one value per row "
            "(an integer, string or other scalar class value).",
            column=field.name,
        )


def label_index(field: T.StructField, classes: Sequence[Any] | None) -> Column:
    check_label_type(field)
    label = F.col(field.name)
    dtype = field.dataType
    if classes is not None:
        values = F.array(*[F.lit(c).cast(dtype) for c in classes])
        index = F.array_position(values, label).cast("int") - 1
        if isinstance(dtype, (T.FloatType, T.DoubleType)):
            index = F.when(F.isnan(label), F.lit(NAN_LABEL)).otherwise(index)
        return F.when(label.isNull(), F.lit(None).cast("int")).otherwise(index)
    if isinstance(dtype, _INTEGRAL):
        in_range = (label >= 0) & (label <= F.lit(2**31 - 1))
        return F.when(in_range, label.cast("int")).otherwise(F.lit(NOT_A_CLASS))
    if isinstance(dtype, (T.FloatType, T.DoubleType, T.DecimalType)):
        as_double = label.cast("double")
        nan = F.isnan(as_double) if not isinstance(dtype, T.DecimalType) else F.lit(False)
        integral = as_double == F.floor(as_double)
        in_range = (as_double >= 0) & (as_double <= F.lit(float(2**31 - 1)))
        return (
            F.when(label.isNull(), F.lit(None).cast("int"))
            .when(nan, F.lit(NAN_LABEL))
            .when(~integral, F.lit(NOT_INTEGRAL))
            .when(in_range, as_double.cast("int"))
            .otherwise(F.lit(NOT_A_CLASS))
        )
    raise InputError(
        f"label column '{field.name}' has type {dtype.simpleString()}; without `classes` labels must "
        "be the integers 0..K-1 (any integer type, or integral floats). For string or other labels "
        "pass classes=[...] listing the label value of each probability index.",
        column=field.name,
    )


def prepare_input(
    df: DataFrame,
    *,
    label_col: str,
    probs_col: str,
    id_col: str,
    classes: Sequence[Any] | None = None,
    check_output_columns: bool = True,
    probs_repair: str = "none",
) -> PreparedInput:
    """Check names and types and add the working columns; raises :class:`InputError`.

    ``probs_repair="clip"`` also repairs probabilities a hair outside [0, 1] (:func:`clipped_probs`)
    and marks the repaired rows in ``__sn_repaired``.
    """
    local = _is_local(df)
    local_df = df if local else None
    if local:
        df = local_rows(df)
    label_field = _field(df, label_col, "label")
    probs_field = _field(df, probs_col, "probs")
    id_field = _field(df, id_col, "id")
    if not isinstance(id_field.dataType, (*_INTEGRAL, T.StringType)):
        raise InputError(
            f"id column '{id_col}' has type {id_field.dataType.simpleString()}; ids must be an "
            "integer or string column (they break ties and join results back). Cast it, or add one "
            "with a stable unique value per row.",
            column=id_col,
        )
    if classes is not None:
        classes = tuple(classes)
        if len(set(classes)) != len(classes):
            raise InputError(f"classes {list(classes)} has repeated values; list each label value once.")
        if len(classes) < 2:
            raise InputError(
                f"classes {list(classes)} has fewer than 2 classes; Confident Learning needs at least 2.",
                column=label_col,
            )
    if check_output_columns:
        clash = [c for c in OUTPUT_COLUMNS if c in df.columns]
        if clash:
            raise InputError(
                f"the input already has result column(s) {clash}; drop or rename them before "
                f"finding label issues (df.drop(*cols); in a job, set input.drop: {clash}).",
                column=clash[0],
            )
    if probs_repair not in PROBS_REPAIRS:
        raise ConfigError(f"probs_repair {probs_repair!r} is unknown; use one of {list(PROBS_REPAIRS)}")
    probs = probs_as_double_array(probs_field)

    def working(frame: DataFrame) -> DataFrame:
        out = frame.withColumn(LABEL_INDEX, label_index(label_field, classes))
        if probs_repair == "clip":
            repaired, flag = clipped_probs(probs)
            return out.withColumn(PROBS, repaired).withColumn(REPAIRED, flag)
        return out.withColumn(PROBS, probs)

    return PreparedInput(
        df=working(df),
        label_col=label_col,
        probs_col=probs_col,
        id_col=id_col,
        label_type=label_field.dataType,
        id_type=id_field.dataType,
        classes=classes,
        local=local,
        local_df=working(local_df) if local_df is not None else None,
    )


def validated(prepared: PreparedInput) -> PreparedInput:
    """``prepared`` with the label index as a plain expression, once validation has passed.

    Before validation the index must also encode what is wrong with a label (null, NaN, not a
    class), a ``CASE WHEN``. Once every label is known to be a class, the index is a cast (or the
    position in ``classes``). The hot passes use the index in one term per class, and Spark inlines
    it there: with the ``CASE WHEN`` the native boundary scan measured 4x slower at 1M x 10.
    """
    label = F.col(prepared.label_col)
    if prepared.classes is not None:
        values = F.array(*[F.lit(c).cast(prepared.label_type) for c in prepared.classes])
        index = F.array_position(values, label).cast("int") - F.lit(1)
    else:
        index = label.cast("int")
    return replace(prepared, df=prepared.df.withColumn(LABEL_INDEX, index))


def drop_working_columns(df: DataFrame) -> DataFrame:
    """The DataFrame without sparknoise's working columns."""
    return df.drop(*[c for c in df.columns if c.startswith("__sn_")])
