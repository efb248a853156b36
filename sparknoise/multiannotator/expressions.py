"""Native Spark helpers of CROWDLAB: constants and exact, order-independent sums over items.

The per-item maths runs in numpy (:mod:`sparknoise.multiannotator.kernels`); what stays native is
the aggregation: sums over items of doubles are decimal sums (exact, so the same on every
partitioning; cleanlab's numpy sums differ from the exact value by a few ulps, far below the 1e-9
parity tolerance).
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

CLIPPING_LOWER_BOUND = 1e-6  # lower clip of error rates, weights and the entropy score's confidence
# Deterministic, partition-independent float sums: every term is rounded to 18 decimals (an error
# below 1e-18 per term) and the decimals are added exactly, so the sum never depends on row order.
EXACT = "decimal(38,18)"


def exact_sum(value: Column) -> Column:
    """An order-independent sum of a double column, as a decimal aggregate (see EXACT)."""
    return F.sum(value.cast(EXACT))
