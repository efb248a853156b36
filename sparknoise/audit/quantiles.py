"""Exact quantiles of a numeric column as numpy computes them, in memory bounded at any row count.

Datalab's rules take medians and quartiles of per-row values (``np.median``, ``np.percentile`` with
linear interpolation). Spark's exact ``percentile`` aggregate keeps every distinct value of its
partition in one hash map and merges them all in one task: at 10M distinct distances that exhausted a
2 GB heap. Here the same answers come from two aggregations (executors), and only a few thousand
values reach the driver:

1. ``percentile_approx`` (accuracy ``ACCURACY``, rank error at most N / ACCURACY) brackets each
   needed order statistic ``x_(r)`` (0-based rank r of the sorted values) between the approximate
   quantiles at ``r / (N - 1) -+ 2 / ACCURACY``.
2. One aggregation counts, per bracket ``[lo, hi]``, the values below ``lo``, equal to ``lo`` and
   equal to ``hi``, and collects the values strictly between (about ``4 N / ACCURACY`` of them, so ties
   at a bracket end, e.g. many zero distances, are counted rather than collected). The sorted values
   from ``lo`` to ``hi`` then start at rank ``count(< lo)``, so ``x_(r)`` is read off exactly. Should a
   bracket miss its rank (the approximation outside its guarantee), the bracket is widened 8x and
   the step repeated; the last resort is the whole range.

The driver then interpolates as numpy does: ``np.percentile(a, 100 q)``: virtual index
``h = N q + (1 - q) - 1``, ``x_(floor h)`` and ``x_(floor h + 1)`` blended by numpy's ``_lerp`` (the
``b - (b - a)(1 - t)`` form from ``t >= 0.5``); ``np.median``: the middle value, or the mean of the two
middle values. Nulls are left out (the callers' columns have none).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

ACCURACY = 10_000
WIDEN = 8
V = "__au_qv"


def _brackets(df: DataFrame, ranks: list[int], n: int, eps: float) -> list[tuple[float, float]]:
    if eps >= 1.0:
        lo_hi = df.agg(F.min(V), F.max(V)).collect()[0]  # one aggregate row
        return [(float(lo_hi[0]), float(lo_hi[1]))] * len(ranks)
    fracs = []
    for r in ranks:
        f = r / (n - 1) if n > 1 else 0.0
        fracs += [max(0.0, f - 2 * eps), min(1.0, f + 2 * eps)]
    row = df.agg(F.percentile_approx(F.col(V), F.array(*[F.lit(f) for f in fracs]),
                                     ACCURACY).alias("q")).collect()[0]  # one row: 2 per rank
    q = [float(v) for v in row["q"]]
    return [(q[2 * i], q[2 * i + 1]) for i in range(len(ranks))]


def order_statistics(df: DataFrame, column: Column, ranks: Sequence[int], n: int) -> dict[int, float]:
    """``{r: x_(r)}``: the values of 0-based rank r in the sorted non-null values of ``column``
    (``n`` of them), exactly (module docstring: two aggregations, a few thousand values to the driver)."""
    want = sorted(set(int(r) for r in ranks))
    vals = df.select(column.cast("double").alias(V)).filter(F.col(V).isNotNull())
    out: dict[int, float] = {}
    eps = 1.0 / ACCURACY
    while want:
        brackets = _brackets(vals, want, n, eps)
        aggs = []
        for i, (lo, hi) in enumerate(brackets):
            x = F.col(V)
            aggs += [F.sum((x < lo).cast("long")).alias(f"lt{i}"), F.sum((x == lo).cast("long")).alias(f"eqlo{i}"),
                     F.sum((x == hi).cast("long")).alias(f"eqhi{i}"),
                     F.collect_list(F.when((x > lo) & (x < hi), x)).alias(f"mid{i}")]
        row = vals.agg(*aggs).collect()[0]  # one aggregate row: counts and the values inside each bracket
        missed = []
        for i, r in enumerate(want):
            lo, hi = brackets[i]
            below, eq_lo = int(row[f"lt{i}"] or 0), int(row[f"eqlo{i}"] or 0)
            mid = np.sort(np.asarray(row[f"mid{i}"], dtype=np.float64))
            eq_hi = 0 if hi == lo else int(row[f"eqhi{i}"] or 0)
            j = r - below
            if 0 <= j < eq_lo:
                out[r] = lo
            elif eq_lo <= j < eq_lo + len(mid):
                out[r] = float(mid[j - eq_lo])
            elif eq_lo + len(mid) <= j < eq_lo + len(mid) + eq_hi:
                out[r] = hi
            else:
                missed.append(r)
        want, eps = missed, eps * WIDEN
    return out


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's ``_lerp`` (float64): ``a + (b - a) t``, or ``b - (b - a)(1 - t)`` from t >= 0.5."""
    a, b, t = np.float64(a), np.float64(b), np.float64(t)
    diff = b - a
    return float(b - diff * (np.float64(1) - t)) if t >= 0.5 else float(a + diff * t)


def numpy_quantiles(df: DataFrame, column: Column, qs: Sequence[float | str], n: int) -> list[float]:
    """Exact quantiles of ``column`` over ``n`` non-null values, each ``q`` in [0, 1] as
    ``np.percentile(values, 100 * q)`` (linear) or ``"median"`` as ``np.median(values)``."""
    plan = []
    for q in qs:
        if q == "median":
            plan.append(("median", [(n - 1) // 2, n // 2]))
        else:
            qf = np.float64(q)
            h = np.float64(n) * qf + (np.float64(1) + qf * np.float64(-1)) - np.float64(1)
            lo = int(math.floor(h))
            plan.append((float(h - lo), [min(max(lo, 0), n - 1), min(max(lo + 1, 0), n - 1)]))
    stats = order_statistics(df, column, [r for _, rs in plan for r in rs], n)
    out = []
    for how, (r0, r1) in plan:
        a, b = stats[r0], stats[r1]
        if how == "median":
            out.append(a if r0 == r1 else float((np.float64(a) + np.float64(b)) / np.float64(2)))
        else:
            out.append(_lerp(a, b, how))
    return out
