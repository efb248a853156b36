"""issue_rank: 1 = most suspicious flagged row, by label quality ascending, ties by id ascending.

A global sort would move every flagged row into one partition. Instead the flagged rows are
bucketed by score into equal-width ranges; one small aggregation gives each bucket's size (the
offsets), and a ``row_number`` window *within* each bucket finishes the rank. Rows that are not
flagged never move.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

RANK_BUCKETS = 512
_BUCKET = "__sn_rank_bucket"


def rank_bucket(score: Column, n_buckets: int = RANK_BUCKETS) -> Column:
    """Equal-width bucket of a score in [0, 1] (clamped): monotone in the score."""
    b = F.floor(score * F.lit(float(n_buckets))).cast("int")
    return F.least(F.greatest(b, F.lit(0)), F.lit(n_buckets - 1))


def bucket_offsets(counts: dict[int, int], n_buckets: int = RANK_BUCKETS) -> np.ndarray:
    """offsets[b] = number of flagged rows in buckets below b."""
    sizes = np.zeros(n_buckets, dtype=np.int64)
    for b, n in counts.items():
        sizes[b] = n
    return np.concatenate([[0], np.cumsum(sizes)[:-1]])


def offsets_literal(offsets: np.ndarray) -> Column:
    """The offsets as one array literal, parsed by the JVM in one call (a ``F.lit`` per entry made
    1,500 Python-JVM round trips per call at 512 buckets)."""
    return F.expr("array(" + ", ".join(str(int(o)) for o in offsets) + ")")


def with_issue_rank(
    annotated: DataFrame,
    flagged: DataFrame,
    *,
    flag_col: str,
    score_col: str,
    id_col: str,
    offsets: np.ndarray,
) -> DataFrame:
    """Add ``issue_rank`` (int, null for unflagged rows) to every row; keeps every row exactly once.

    ``flagged`` is ``annotated``'s flagged rows (the caller may have a cheaper plan for them than
    filtering ``annotated``).
    """
    offsets_arr = offsets_literal(offsets)
    flagged = flagged.withColumn(_BUCKET, rank_bucket(F.col(score_col)))
    within = Window.partitionBy(_BUCKET).orderBy(F.col(score_col).asc(), F.col(id_col).asc())
    ranked = flagged.withColumn(
        "issue_rank",
        (F.element_at(offsets_arr, F.col(_BUCKET) + 1) + F.row_number().over(within)).cast("int"),
    ).drop(_BUCKET)
    kept = annotated.filter(~F.col(flag_col)).withColumn("issue_rank", F.lit(None).cast("int"))
    return kept.unionByName(ranked)


def with_issue_rank_split(
    cleared: DataFrame,
    candidates: DataFrame,
    *,
    flag_col: str,
    score_col: str,
    id_col: str,
    offsets: np.ndarray,
) -> DataFrame:
    """``with_issue_rank`` for rows already split by a cheap test: ``cleared`` rows are unflagged,
    ``candidates`` carry the flag. Candidates go through the rank window, their unflagged rows in
    one extra window partition (key null) whose numbers are dropped, so no Filter tests the flag.
    """
    offsets_arr = offsets_literal(offsets)
    flagged = F.col(flag_col)
    bucket = F.when(flagged, rank_bucket(F.col(score_col)))
    within = Window.partitionBy(_BUCKET).orderBy(F.col(score_col).asc(), F.col(id_col).asc())
    ranked = (
        candidates.withColumn(_BUCKET, bucket)
        .withColumn(
            "issue_rank",
            F.when(flagged, (F.element_at(offsets_arr, F.col(_BUCKET) + 1) + F.row_number().over(within)).cast("int")),
        )
        .drop(_BUCKET)
    )
    kept = cleared.withColumn("issue_rank", F.lit(None).cast("int"))
    return kept.unionByName(ranked)
