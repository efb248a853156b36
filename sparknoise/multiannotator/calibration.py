"""cleanlab's temperature search for multi-annotator probabilities, in one Spark job.

cleanlab scores a coarse grid of temperatures (0.1 ... 8), then a fine grid around the best one,
by the mean soft cross-entropy between each item's (packed) empirical label distribution and
softmax(ln p / T). Every fine point is bit-identical to a point of the fixed set of 33 candidates
(the coarse points and three interior points of each interval, numpy ``linspace``), so one
aggregation over the items (executors) scores all 33 at once and the driver takes the two
argmins over 33 numbers. The per-item scores are numpy, as cleanlab computes them (an Arrow UDF). The search never returns 8 (cleanlab's fine grid stops at 7.25).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from pyspark.sql import functions as F

from sparknoise.multiannotator import expressions as X
from sparknoise.multiannotator.udfs import cross_entropy_udf

COARSE = [0.1, 0.2, 0.5, 0.8, 1, 2, 3, 5, 8]
FINE_SEARCH_SIZE = 4


def fine_grid(best: int) -> np.ndarray:
    """cleanlab's fine search range around coarse index ``best`` (numpy linspace, same floats)."""
    grid = np.array([])
    if best != 0:
        grid = np.append(np.linspace(COARSE[best - 1], COARSE[best], FINE_SEARCH_SIZE, endpoint=False), grid)
    if best != len(COARSE) - 1:
        grid = np.append(grid, np.linspace(COARSE[best], COARSE[best + 1], FINE_SEARCH_SIZE + 1, endpoint=True))
    return grid


def candidates() -> list[float]:
    """Every temperature either grid can score (33 distinct floats)."""
    values = {float(t) for t in COARSE}
    for i in range(len(COARSE)):
        values |= {float(t) for t in fine_grid(i)}
    return sorted(values)


def best_temperature(b) -> float:
    """The temperature cleanlab's ``find_best_temp_scaler`` picks, from one aggregation."""
    temps = candidates()
    ce = cross_entropy_udf(b.K, temps)(F.col("cells"), F.col("m"), F.col("p"))
    frame = b.frame.select(ce.alias("ce"))
    sums = [X.exact_sum(F.get(F.col("ce"), i)).alias(f"s{i}") for i in range(len(temps))]
    bad = [F.sum(F.get(F.col("ce"), i).isNull().cast("long")).alias(f"b{i}") for i in range(len(temps))]
    row = frame.agg(*sums, *bad).first()
    ce = {t: (float("nan") if row[f"b{i}"] else float(row[f"s{i}"] or Decimal(0)) / b.n_items)
          for i, t in enumerate(temps)}
    coarse = np.array([ce[float(t)] for t in COARSE])
    fine = fine_grid(int(np.argmin(coarse)))
    return float(fine[int(np.argmin(np.array([ce[float(t)] for t in fine])))])
