"""Native Spark helpers of CROWDLAB: constants and exact, order-independent sums over items.

The per-item maths runs in numpy (:mod:`sparknoise.multiannotator.kernels`); what stays native is
the aggregation: sums over items of doubles are decimal sums (exact, so the same on every
partitioning; cleanlab's numpy sums differ from the exact value by a few ulps, far below the 1e-9
parity tolerance).
"""

from __future__ import annotations

from sparknoise.core.row_expressions import EXACT, exact_sum  # noqa: F401 - the sums over items

CLIPPING_LOWER_BOUND = 1e-6  # lower clip of error rates, weights and the entropy score's confidence
