"""Exact n-th smallest value of a double column, ties by id: counting passes, no row-level collect.

The regression rule needs two order statistics of unbounded doubles: the median of the adjusted
residuals (any non-negative double) and the ``ceil(N k)``-th lowest quality score (in [0, 1]), and
the k search needs the ``ceil(N k)``-th largest absolute residual. The core engine's selection
(``core/selection.py``) keys probability margins in [-1, 1] from (label, probs) batches through
Arrow; here the keys are single native double columns of any range, so a small native refinement
does the same job:

1. one aggregation gives the candidates' count, min and max;
2. while more than ``final_rows`` candidates remain and they are not all equal, one grouped
   aggregation counts them (with each bucket's min and max) in ``n_buckets`` equal-width buckets
   over [min, max] (at most ``n_buckets`` rows reach the driver); the driver keeps the bucket that
   holds the wanted rank, and the next pass reads only the rows of that bucket (the same bucket
   expression, so the membership is exact, whatever the rounding of the bucket arithmetic). The
   minimum falls in bucket 0 and the maximum in a later one, so every pass strictly shrinks the
   candidates; in floating point the range shrinks by about ``n_buckets`` per pass;
3. a top-k sort (``orderBy(value, id).limit(rank)``: each partition keeps its best ``rank`` rows)
   over the remaining <= ``final_rows`` candidates picks the exact element; at most ``rank`` <=
   ``final_rows`` (value, id) pairs reach the driver. When more than ``final_rows`` candidates are
   all equal (massive exact ties), the pairs up to the rank within that tie do: as many as the tie.

Everything runs on the executors as native expressions; the driver sees counts and the picked rows.
"""

from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

N_BUCKETS = 1024
FINAL_ROWS = 20_000
MAX_PASSES = 200  # doubles have 64 bits; a pass that does not shrink the range cannot happen


def _bucket(value: Column, lo: float, width: float, n_buckets: int) -> Column:
    return F.least(F.greatest(F.floor((value - F.lit(lo)) / F.lit(width)), F.lit(0)),
                   F.lit(n_buckets - 1)).cast("int")


def nth_smallest(df: DataFrame, value_col: str, id_col: str, ranks: tuple[int, ...], *, n_rows: int | None = None,
                 n_buckets: int = N_BUCKETS, final_rows: int = FINAL_ROWS) -> list[tuple[float, object]]:
    """The ``ranks``-th (1-based) rows of ``df`` by (value ascending, id ascending): their (value, id).

    ``value_col`` must be a non-null, non-NaN double (callers check); -0.0 should be normalised
    (``+ 0.0``) by the caller, as Spark orders -0.0 before 0.0. ``n_rows``, when the caller knows
    it, saves the first aggregation on small inputs (one window job picks every rank). The counting
    passes need a finite range: an infinite value there raises ``ValueError``.
    """
    if n_rows is not None and n_rows <= final_rows:
        return _pick(df, F.lit(True), value_col, id_col, list(ranks))
    stats = df.agg(F.count(F.lit(1)).alias("n"), F.min(value_col).alias("lo"),
                   F.max(value_col).alias("hi")).collect()[0]  # one aggregate row
    n, lo, hi = int(stats["n"]), stats["lo"], stats["hi"]
    if n <= final_rows:
        return _pick(df, F.lit(True), value_col, id_col, list(ranks))
    if math.isinf(lo) or math.isinf(hi):
        raise ValueError(f"{value_col} has infinite values")
    # several ranks share the first counting pass (the same buckets over [lo, hi])
    first = _counts(df, F.lit(True), value_col, lo, hi, n_buckets) if len(ranks) > 1 and lo != hi else None
    return [_refined(df, value_col, id_col, r, n, lo, hi, n_buckets, final_rows, first) for r in ranks]


def _counts(df: DataFrame, cond: Column, value_col: str, lo: float, hi: float, n_buckets: int) -> list[tuple]:
    """(bucket, count, min, max) of the rows meeting ``cond`` in ``n_buckets`` equal-width buckets over [lo, hi]."""
    bucket = _bucket(F.col(value_col), lo, (hi - lo) / n_buckets, n_buckets)
    return sorted(
        (r["b"], int(r["n"]), r["lo"], r["hi"])
        for r in df.filter(cond).groupBy(bucket.alias("b")).agg(
            F.count(F.lit(1)).alias("n"), F.min(value_col).alias("lo"), F.max(value_col).alias("hi")).collect()
    )  # <= n_buckets rows


def _refined(df: DataFrame, value_col: str, id_col: str, rank: int, n: int, lo: float, hi: float, n_buckets: int,
             final_rows: int, first: list[tuple] | None = None) -> tuple[float, object]:
    if not 1 <= rank <= n:
        raise ValueError(f"rank {rank} outside 1..{n}")
    cond: Column = F.lit(True)
    for _ in range(MAX_PASSES):
        if n <= final_rows or lo == hi:
            break
        bucket = _bucket(F.col(value_col), lo, (hi - lo) / n_buckets, n_buckets)
        counts = first if first is not None else _counts(df, cond, value_col, lo, hi, n_buckets)
        first = None
        before = 0
        for b, size, b_lo, b_hi in counts:
            if before + size >= rank:
                cond = cond & (bucket == F.lit(b))
                rank -= before
                n, lo, hi = size, b_lo, b_hi
                break
            before += size
    else:  # pragma: no cover - the range shrinks every pass
        raise RuntimeError(f"selection of {value_col} did not converge")
    return _pick(df, cond, value_col, id_col, [rank])[0]


def _pick(df: DataFrame, cond: Column, value_col: str, id_col: str, ranks: list[int]) -> list[tuple[float, object]]:
    """The ranks-th rows by (value, id) among the (few) rows meeting ``cond``: one window job."""
    # a top-k sort (TakeOrderedAndProject: each partition keeps its best max(ranks) rows), not a window over
    # one partition; max(ranks) <= final_rows once the passes have narrowed the candidates
    rows = (df.filter(cond).select(value_col, id_col).orderBy(F.col(value_col).asc(), F.col(id_col).asc())
            .limit(max(ranks)).collect())  # <= final_rows rows
    if len(rows) < max(ranks):
        raise ValueError(f"ranks {[r for r in ranks if r > len(rows)]} exceed the rows of {value_col}")
    return [(rows[r - 1][value_col], rows[r - 1][id_col]) for r in ranks]
