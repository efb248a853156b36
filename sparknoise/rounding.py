"""Sum-preserving rounding of K- and KxK-sized arrays (driver side, numpy).

Mirrors cleanlab 2.9.0's ``round_preserving_sum``: round half to even, then fix the total with
+-1 steps on the entries with the largest (or smallest) residuals, ordered by numpy's default
argsort exactly as cleanlab orders them.
"""

from __future__ import annotations

import numpy as np

from sparknoise.constants import FLOATING_POINT_COMPARISON


def round_preserving_sum(values: np.ndarray) -> np.ndarray:
    """Round to integers so that the rounded total equals the rounded original total."""
    floats = np.asarray(values, dtype=float)
    ints = floats.round()
    orig_sum = np.sum(floats).round()
    int_sum = np.sum(ints).round()
    while abs(int_sum - orig_sum) > FLOATING_POINT_COMPARISON:
        diff = np.round(orig_sum - int_sum)
        increment = -1 if int(diff < 0.0) else 1
        changes = min(int(abs(diff)), len(floats))
        indices = np.argsort(floats - ints)[::-increment][:changes]
        for i in indices:
            ints[i] = ints[i] + increment
        int_sum = np.sum(ints).round()
    return ints.astype(int)


def round_preserving_row_totals(matrix: np.ndarray) -> np.ndarray:
    """Apply :func:`round_preserving_sum` to every row of a 2-D array."""
    return np.apply_along_axis(round_preserving_sum, 1, matrix).astype(int)
