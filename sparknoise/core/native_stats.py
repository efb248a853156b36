"""Pass 1 as one native aggregation: row checks, per-class counts and exact self-confidence sums.

The JVM twin of class_stats.py's Arrow kernel, used on the native route (at any K: the only
K-term expression, the row sum, is an unrolled chain up to ``row_expressions.NATIVE_MAX_CLASSES``
and a left-to-right ``aggregate`` above, the same additions in the same order). It runs on the
executors with whole-stage code generation and returns K + a few rows to the driver: per label
index (clamped: null, each negative label code, K for every label >= K, else 0..K-1), the row
count, the two halves of the fixed-point self-confidence sum and the count of each
probability-row problem. Measured at 10M rows x 10 classes on 2 cores: 3.8 s, against 16.5 s for
the Arrow pass, whose JVM-to-Python transfer alone costs 7.8 s.

The rules are those of the Arrow pass (row by row, same codes):

* a null, negative-code or too-large label (>= K);
* a null probability row, a row whose length is not K, a null entry (the K-term row sum is null);
* NaN (``array_max`` is NaN: Spark orders NaN above every number), an entry below -1e-6 or above
  1 + 1e-6, a row sum (added left to right) more than the tolerance away from 1.

Self-confidence ``p`` of a valid row is summed exactly as two integers: ``hi = floor(p·2³¹)`` and
``lo = rint((p·2³¹ - hi)·2³¹)`` (both exact in float64), summed as longs. The sum does not depend
on partitioning or order, and equals the Arrow pass's to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

from sparknoise.core import class_stats, row_expressions
from sparknoise.core.constants import PROBABILITY_RANGE_SLACK
from sparknoise.core.inputs import LABEL_INDEX, PROBS, PreparedInput

_SCALE = 2.0**31
_PROBLEMS = {
    "null_probs": class_stats.NULL_PROBS,
    "wrong_length": class_stats.WRONG_LENGTH,
    "null_entry": class_stats.NULL_ENTRY,
    "nan": class_stats.NAN_PROB,
    "negative": class_stats.NEGATIVE_PROB,
    "above_one": class_stats.PROB_ABOVE_ONE,
    "row_sum_off": class_stats.ROW_SUM_OFF,
}


@dataclass(frozen=True)
class ClassStats:
    """Pass 1's K-sized result: counts, fixed-point sum halves (exact ints) and problem counts."""

    counts: np.ndarray  # (K,) int64
    hi_sums: list[int]
    lo_sums: list[int]
    problems: dict[int, int]
    largest_label: int = -1  # the largest label >= K (LABEL_TOO_LARGE), else -1


def row_sum(probs: Column, num_classes: int) -> Column:
    """The K entries added left to right (null if any entry is null; a short row is refused by the
    length test beside it).

    Up to NATIVE_MAX_CLASSES an unrolled chain (generated code); above, ``aggregate`` from the first
    entry over the others: the same float64 additions in the same order, in an expression of constant
    depth (a K-deep chain overflows the JVM stack at K in the hundreds).
    """
    if num_classes > row_expressions.NATIVE_MAX_CLASSES:
        rest = F.slice(probs, F.lit(2), F.lit(num_classes - 1))
        return F.aggregate(rest, F.get(probs, F.lit(0)), lambda acc, x: acc + x)
    total = F.get(probs, F.lit(0))
    for j in range(1, num_classes):
        total = total + F.get(probs, F.lit(j))
    return total


def class_stats_native(prepared: PreparedInput, num_classes: int, row_sum_tolerance: float) -> ClassStats:
    """Run pass 1 natively; one Spark job, at most K + 4 rows collected."""
    K = num_classes
    probs, label = F.col(PROBS), F.col(LABEL_INDEX)
    key = (
        F.when(label.isNull(), F.lit(class_stats.NULL_LABEL))
        .when(label < 0, label)
        .when(label >= K, F.lit(K))
        .otherwise(label)
    )
    present = probs.isNotNull()
    shaped = present & (F.size(probs) == F.lit(K))
    total = row_sum(probs, K)
    numbers = shaped & total.isNotNull()
    top = F.array_max(probs)
    nan = numbers & F.isnan(top)
    finite = numbers & ~F.isnan(top)
    flags = {
        "null_probs": ~present,
        "wrong_length": present & ~shaped,
        "null_entry": shaped & total.isNull(),
        "nan": nan,
        "negative": numbers & (F.array_min(probs) < F.lit(-PROBABILITY_RANGE_SLACK)),
        "above_one": finite & (top > F.lit(1.0 + PROBABILITY_RANGE_SLACK)),
        "row_sum_off": finite & (F.abs(total - F.lit(1.0)) > F.lit(float(row_sum_tolerance))),
    }
    sc = F.get(probs, label)
    usable = (label >= 0) & (label < K) & finite & (F.abs(sc) < F.lit(2.0))  # |p| < 2: the halves fit
    scaled = sc * F.lit(_SCALE)
    hi = F.floor(scaled)
    lo = F.rint((scaled - hi) * F.lit(_SCALE)).cast("long")
    rows = (
        prepared.df.select(
            key.alias("k"),
            F.when(usable, F.lit(1)).alias("ok"),
            F.when(usable, hi).alias("hi"),
            F.when(usable, lo).alias("lo"),
            F.when(label >= K, label).alias("label"),
            *[F.when(c, F.lit(1)).alias(name) for name, c in flags.items()],
        )
        .groupBy("k")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("ok").alias("ok"),
            F.sum("hi").alias("hi"),
            F.sum("lo").alias("lo"),
            F.max("label").alias("largest"),
            *[F.count(name).alias(name) for name in flags],
        )
        .collect()
    )  # <= K + 4 rows
    counts = np.zeros(K, dtype=np.int64)
    hi_sums, lo_sums = [0] * K, [0] * K
    problems: dict[int, int] = {}
    largest = -1

    def note(code: int, n: int) -> None:
        if n:
            problems[code] = problems.get(code, 0) + int(n)

    for r in rows:
        k = int(r["k"])
        if 0 <= k < K:
            counts[k] = r["ok"]
            hi_sums[k], lo_sums[k] = int(r["hi"] or 0), int(r["lo"] or 0)
        elif k == K:
            note(class_stats.LABEL_TOO_LARGE, r["rows"])
            largest = int(r["largest"])
        else:
            note(k, r["rows"])  # NULL_LABEL or the negative label codes of inputs.py
        for name, code in _PROBLEMS.items():
            note(code, r[name])
    return ClassStats(counts=counts, hi_sums=hi_sums, lo_sums=lo_sums, problems=problems, largest_label=largest)
