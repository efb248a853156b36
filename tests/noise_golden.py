"""A fixed table and the exact noise sparknoise injects into it (the same on every engine)."""

from __future__ import annotations

import numpy as np

NM = [[0.8, 0.1, 0.0], [0.15, 0.9, 0.3], [0.05, 0.0, 0.7]]
# (sum of flipped ids, sum of flipped ids x new label) for uniform 20% seed 7 and for the matrix NM seed 7,
# recorded on classic local Spark.
GOLDEN = {"uniform": (416995, 435530), "class_conditional": (411251, 367093)}
# task="regression" on the same integer labels, REGRESSION_MIX, default_value -1, seed 7: the sum of the ids
# each mode hit (shift, swap, unit, default), then the sum over all rows of floor(1000 * label + 0.5).
REGRESSION_MIX = {"shift": 0.05, "swap": 0.1, "unit": 0.1, "default": 0.05}
GOLDEN["regression"] = (103198, 207787, 210977, 89157, 2659296)


def table(spark):
    ids = np.arange(2000, dtype=np.int64)
    return spark.createDataFrame([(int(i), int(i * 7 % 3)) for i in ids], "id long, label long")


def regression_noise(spark):
    import sparknoise as sn

    return sn.inject_label_noise(table(spark), "label", task="regression", mode=REGRESSION_MIX, default_value=-1,
                                 seed=7)


def regression_fingerprint(rows) -> tuple[int, ...]:
    """The fingerprint from collected rows (the classic suite asserts more on the same rows)."""
    import math

    ids = tuple(sum(r["id"] for r in rows if r["noise_mode"] == m) for m in REGRESSION_MIX)
    return (*ids, sum(math.floor(1000 * r["label"] + 0.5) for r in rows))


def fingerprint(spark, mode: str) -> tuple[int, ...]:
    import sparknoise as sn

    if mode == "regression":  # summed in Spark (on Connect); the same integers as regression_fingerprint
        from pyspark.sql import functions as F

        aggs = [F.sum(F.when(F.col("noise_mode") == m, F.col("id")).otherwise(0)).alias(m) for m in REGRESSION_MIX]
        row = regression_noise(spark).agg(
            *aggs, F.sum(F.floor(F.lit(1000.0) * F.col("label") + F.lit(0.5)).cast("long")).alias("v")).first()
        return tuple(int(x) for x in row)
    kwargs = {"noise_rate": 0.2} if mode == "uniform" else {"noise_matrix": NM}
    out = sn.inject_label_noise(table(spark), "label", mode=mode, seed=7, **kwargs)
    row = out.filter("is_noisy").selectExpr("sum(id) AS a", "sum(id * label) AS b").first()
    return int(row["a"]), int(row["b"])
