"""Exact rank segments per group, without sorting a group: the primitive behind exact-count noise.

Every row has a group ``g`` in 0..G-1, a score, a unique id and a bucket (an integer that never
decreases as the score grows). In each group, rows are ordered by (score asc, id asc); a row of
0-based rank ``r`` gets segment ``#{b in bounds[g] : b <= r}`` for the group's increasing
cumulative bounds. Example: bounds [30, 50] give ranks 0..29 segment 0, 30..49 segment 1, the
rest segment 2.

How, with no N-sized sort and nothing row-level on the driver:

1. one aggregation counts rows per (group, bucket) (G x buckets numbers reach the driver);
2. the driver finds the bucket holding each bound's rank; only those *boundary buckets* need
   exact ranks, got by a ``row_number`` window over their few rows, per (group, bucket);
3. every other row's segment is ``#{bounds below its bucket}``, a broadcast join on the group.

The result depends only on (group, score, id) values: never on partitioning or on the engine.
"""

from __future__ import annotations

import logging

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

log = logging.getLogger("sparknoise")

GROUP = "__sn_group"
SCORE = "__sn_score"
BUCKET = "__sn_bucket"
SEGMENT = "__sn_segment"
_LO = "__sn_bucket_lo"
_INSIDE = "__sn_bounds_inside"
_BASE = "__sn_base_segment"
_BELOW = "__sn_boundary_buckets"


def uniform_hash(id_col: str, seed: int, salt: int) -> Column:
    """A deterministic value in (0, 1) from (id, seed, salt): 53 bits of xxhash64, centred."""
    h = F.xxhash64(F.col(id_col), F.lit(int(seed)), F.lit(int(salt))).bitwiseAND(F.lit((1 << 53) - 1))
    return (h.cast("double") + F.lit(0.5)) / F.lit(float(1 << 53))


def linear_bucket(score: Column, n_buckets: int) -> Column:
    """Bucket of a score in [0, 1): equal-width buckets."""
    return F.least(F.floor(score * F.lit(float(n_buckets))), F.lit(n_buckets - 1)).cast("int")


def log_bucket(score: Column, n_buckets: int, per_octave: int = 32, lowest_octave: int = -30) -> Column:
    """Bucket of a non-negative score on a log2 scale (``per_octave`` buckets per doubling)."""
    pos = (F.log2(F.greatest(score, F.lit(1e-300))) - F.lit(float(lowest_octave))) * F.lit(float(per_octave))
    return F.least(F.greatest(F.floor(pos), F.lit(0.0)), F.lit(float(n_buckets - 1))).cast("int")


def assign_segments(df: DataFrame, *, group: Column, score: Column, bucket: Column, id_col: str,
                    bounds: list[list[int]], n_buckets: int) -> DataFrame:
    """``df`` plus ``__sn_segment`` (int); see the module docstring. ``bounds[g]`` must be sorted.

    Adds the working columns ``__sn_group``, ``__sn_score`` and ``__sn_bucket`` (kept, so callers
    can reuse them). Runs one aggregation now; the returned frame reads ``df`` twice more.
    """
    spark = df.sparkSession
    base = df.withColumn(GROUP, group.cast("int")).withColumn(SCORE, score.cast("double")).withColumn(BUCKET, bucket)
    n_groups = len(bounds)
    counts = np.zeros((n_groups, n_buckets), dtype=np.int64)
    for row in base.groupBy(GROUP, BUCKET).count().collect():  # at most G x n_buckets rows
        counts[row[0], row[1]] = row[2]
    cum = np.cumsum(counts, axis=1)
    lo = cum - counts
    boundary: dict[tuple[int, int], list[int]] = {}
    groups = []
    for g in range(n_groups):
        total = int(cum[g, -1]) if n_buckets else 0
        always = 0  # bounds at or below rank 0 count for every row of the group
        below_buckets = []
        for b in sorted(int(x) for x in bounds[g]):
            if b <= 0:
                always += 1
            elif b < total:
                k = int(np.searchsorted(cum[g], b, side="right"))  # the bucket holding rank b
                boundary.setdefault((g, k), []).append(b)
                below_buckets.append(k)
        groups.append((g, always, below_buckets))
    log.debug("rank segments: %d groups, %d boundary buckets", n_groups, len(boundary))
    group_tbl = spark.createDataFrame(groups, f"{GROUP} int, {_BASE} int, {_BELOW} array<int>")
    bucket_rows = [(g, k, int(lo[g, k]), inside) for (g, k), inside in boundary.items()]
    bucket_tbl = spark.createDataFrame(bucket_rows, f"{GROUP} int, {BUCKET} int, {_LO} long, {_INSIDE} array<long>")
    with_group = base.join(F.broadcast(group_tbl), GROUP, "inner")
    # Rows in a boundary bucket: exact rank within the bucket by (score, id).
    edge = with_group.join(F.broadcast(bucket_tbl), [GROUP, BUCKET], "inner")
    order = Window.partitionBy(GROUP, BUCKET).orderBy(F.col(SCORE).asc(), F.col(id_col).asc())
    edge = edge.withColumn("__sn_rank", F.col(_LO) + F.row_number().over(order) - F.lit(1))
    rank = F.col("__sn_rank")
    edge = edge.withColumn(
        SEGMENT,
        (F.col(_BASE) + F.size(F.filter(F.col(_BELOW), lambda x: x < F.col(BUCKET)))
         + F.size(F.filter(F.col(_INSIDE), lambda x: x <= rank))).cast("int"),
    ).drop(_LO, _INSIDE, "__sn_rank")
    inner = with_group.join(F.broadcast(bucket_tbl.select(GROUP, BUCKET)), [GROUP, BUCKET], "left_anti")
    inner = inner.withColumn(
        SEGMENT, (F.col(_BASE) + F.size(F.filter(F.col(_BELOW), lambda x: x < F.col(BUCKET)))).cast("int"))
    return inner.unionByName(edge).drop(_BASE, _BELOW)
