"""Stratified k-fold assignment from a hash of (id, seed): exact, deterministic, no driver rows.

Within each class, rows are ordered by ``xxhash64(id, seed)`` (ties by id) and dealt round-robin
to the folds, so every class's rows are spread over the folds with counts differing by at most
one, and the assignment does not depend on partitioning, executors or the engine.

To avoid sorting a whole class in one task, rows are first bucketed by the high bits of the hash
(monotone in the hash), a small aggregation gives each (class, bucket)'s size, and a
``row_number`` window within each (class, bucket) finishes the position within the class.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sparknoise.errors import InputError

FOLD_BUCKETS = 256
_HASH = "__sn_fold_hash"
_BUCKET = "__sn_fold_bucket"


def _hash(id_col: str, seed: int) -> Column:
    return F.xxhash64(F.col(id_col), F.lit(int(seed)).cast("long"))


def _bucket(h: Column) -> Column:
    # the top 8 bits of the signed hash, shifted to 0..255: monotone in the hash
    return (F.shiftright(h, 56) + F.lit(128)).cast("int")


def assign_folds(df: DataFrame, *, label_col: str, id_col: str, n_folds: int, seed: int,
                 fold_col: str = "fold") -> DataFrame:
    """Add ``fold_col`` (int in 0..n_folds-1), stratified by ``label_col``.

    Raises :class:`InputError` when a class has fewer rows than folds.
    """
    if n_folds < 2:
        raise InputError(f"n_folds={n_folds} must be at least 2.")
    hashed = df.withColumn(_HASH, _hash(id_col, seed)).withColumn(_BUCKET, _bucket(F.col(_HASH)))
    sizes = hashed.groupBy(F.col(label_col).alias("y"), F.col(_BUCKET).alias("b")).count().collect()
    # <= classes x 256 rows
    per_class: dict = {}
    for r in sizes:
        per_class.setdefault(r["y"], np.zeros(FOLD_BUCKETS, dtype=np.int64))[r["b"]] = r["count"]
    small = {y: int(c.sum()) for y, c in per_class.items() if c.sum() < n_folds}
    if small:
        raise InputError(
            f"label column '{label_col}' has classes with fewer rows than the {n_folds} folds: {small}; "
            "drop those classes, merge them, or use fewer folds.",
            column=label_col,
        )
    rows = [(y, b, int(off)) for y, c in per_class.items()
            for b, off in enumerate(np.concatenate([[0], np.cumsum(c)[:-1]])) if c[b] > 0]
    offsets = df.sparkSession.createDataFrame(rows, _offset_schema(df, label_col))
    within = Window.partitionBy(label_col, _BUCKET).orderBy(F.col(_HASH), F.col(id_col))
    position = F.col("__sn_offset") + F.row_number().over(within) - 1
    return (
        hashed.join(F.broadcast(offsets), on=[label_col, _BUCKET])
        .withColumn(fold_col, (position % F.lit(n_folds)).cast("int"))
        .select(*df.columns, fold_col)
    )


def _offset_schema(df: DataFrame, label_col: str) -> str:
    label_type = df.schema[label_col].dataType.simpleString()
    return f"`{label_col}` {label_type}, {_BUCKET} int, __sn_offset long"
