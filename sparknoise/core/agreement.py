"""Agreement of Confident Learning with the out-of-fold loss ranking: ``loss_rank`` and ``confidence``.

A row's out-of-fold log loss is ``-log p_given``, the model's probability of its given label, so
ranking rows by loss (highest first) is ranking them by ``p_given`` ascending; ties go to the lower
id. ``loss_rank`` is that rank among *all* rows (1 = the highest loss). A flagged row is of
``high`` confidence when it is also within the top p% by loss, p being the fraction Confident
Learning flagged (so: ``loss_rank <= num_flagged``), else ``medium``: where both methods flag a row,
its label is almost certainly wrong.

How, lazily and with nothing row-level on the driver: rows are bucketed by ``p_given``
(4,096 equal-width buckets); one aggregation gives each bucket's size, a window over those few
counts their offsets, and a ``row_number`` window over the rows of the buckets that hold a flagged
row finishes the exact rank. Runs on the executors; every action on the result re-reads ``rows``.
"""

from __future__ import annotations

from typing import Any, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sparknoise.core.inputs import label_index, probs_as_double_array
from sparknoise.errors import InputError

LOSS_RANK = "loss_rank"
CONFIDENCE = "confidence"
LOSS_BUCKETS = 4096
_P = "__sn_p_given"
_BUCKET = "__sn_loss_bucket"
_LO = "__sn_loss_lo"


def given_label_probability(df: DataFrame, *, label_col: str, probs_col: str, classes: Sequence[Any],
                            rank_by: str) -> Column:
    """The probability of each row's given label (null when the label is not one of ``classes``).

    With ``rank_by="self_confidence"`` that is the row's ``label_quality`` already (the same double),
    so the probabilities are not read again; otherwise it is read from ``probs_col``.
    """
    if rank_by == "self_confidence" and "label_quality" in df.columns:
        return F.col("label_quality")
    if probs_col not in df.columns:
        raise InputError(f"the rows have no probability column '{probs_col}' to rank them by loss; keep it in "
                         "the rows (rank_by other than self_confidence needs it)", column=probs_col)
    index = label_index(df.schema[label_col], tuple(classes))
    probs = probs_as_double_array(df.schema[probs_col])
    return F.when(index >= 0, F.get(probs, index))


def flagged_with_agreement(rows: DataFrame, *, label_col: str, probs_col: str, id_col: str,
                           classes: Sequence[Any], num_flagged: int, rank_by: str = "self_confidence",
                           flag_col: str = "is_label_issue") -> DataFrame:
    """The flagged rows of ``rows`` with ``loss_rank`` (int) and ``confidence`` (high | medium) added."""
    p = given_label_probability(rows, label_col=label_col, probs_col=probs_col, classes=classes, rank_by=rank_by)
    bucket = F.least(F.greatest(F.floor(F.coalesce(p, F.lit(0.0)) * LOSS_BUCKETS).cast("int"), F.lit(0)),
                     F.lit(LOSS_BUCKETS - 1))
    base = rows.select(F.col(id_col), p.alias(_P), F.col(flag_col).alias("__sn_flag"), bucket.alias(_BUCKET))
    sizes = base.groupBy(_BUCKET).agg(F.count(F.lit(1)).alias("__sn_n"),
                                      F.max(F.col("__sn_flag").cast("int")).alias("__sn_has_flag"))
    # Each bucket's offset = the rows in the buckets below it. The <= LOSS_BUCKETS bucket sizes are packed
    # into one sorted array (one row) and summed per position: no unpartitioned window (which makes Spark
    # warn about moving all data to one partition), no driver round trip.
    packed = sizes.agg(F.array_sort(F.collect_list(F.struct(
        F.col(_BUCKET).alias("b"), F.col("__sn_n").alias("n"), F.col("__sn_has_flag").alias("f")))).alias("s"))
    offsets = (packed.select("s", F.posexplode("s").alias("i", "e"))
               .select(F.col("e.b").alias(_BUCKET), F.col("e.f").alias("f"),
                       F.aggregate(F.slice("s", 1, F.col("i")), F.lit(0).cast("long"),
                                   lambda acc, x: acc + x["n"]).alias(_LO))
               .filter(F.col("f") == 1).select(_BUCKET, _LO))
    order = Window.partitionBy(_BUCKET).orderBy(F.col(_P).asc_nulls_first(), F.col(id_col).asc())
    ranks = (base.join(F.broadcast(offsets), _BUCKET, "inner")
             .withColumn(LOSS_RANK, (F.col(_LO) + F.row_number().over(order)).cast("int"))
             .filter(F.col("__sn_flag")).select(id_col, LOSS_RANK))
    return (rows.filter(F.col(flag_col)).join(ranks, id_col, "inner")
            .withColumn(CONFIDENCE, F.when(F.col(LOSS_RANK) <= F.lit(int(num_flagged)), F.lit("high"))
                        .otherwise(F.lit("medium"))))
