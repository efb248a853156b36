"""A fixed table and the exact noise sparknoise injects into it (the same on every engine)."""

from __future__ import annotations

import numpy as np

NM = [[0.8, 0.1, 0.0], [0.15, 0.9, 0.3], [0.05, 0.0, 0.7]]
# (sum of flipped ids, sum of flipped ids x new label) for uniform 20% seed 7 and for the matrix NM seed 7,
# recorded on classic local Spark.
GOLDEN = {"uniform": (416995, 435530), "class_conditional": (411251, 367093)}


def table(spark):
    ids = np.arange(2000, dtype=np.int64)
    return spark.createDataFrame([(int(i), int(i * 7 % 3)) for i in ids], "id long, label long")


def fingerprint(spark, mode: str) -> tuple[int, int]:
    import sparknoise as sn

    kwargs = {"noise_rate": 0.2} if mode == "uniform" else {"noise_matrix": NM}
    out = sn.inject_label_noise(table(spark), "label", mode=mode, seed=7, **kwargs)
    row = out.filter("is_noisy").selectExpr("sum(id) AS a", "sum(id * label) AS b").first()
    return int(row["a"]), int(row["b"])
