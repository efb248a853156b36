"""Per-class confident thresholds t_k (reference note section 1.1), from pass-1 class statistics."""

from __future__ import annotations

import numpy as np

from sparknoise.constants import CONFIDENT_THRESHOLDS_LOWER_BOUND, MISSING_CLASS_THRESHOLD


def confident_thresholds(label_counts: np.ndarray, self_confidence_sums: np.ndarray) -> np.ndarray:
    """t_k = mean self-confidence of the rows labelled k (2.0 for a class with no rows), >= 2e-6."""
    counts = np.asarray(label_counts, dtype=np.int64)
    sums = np.asarray(self_confidence_sums, dtype=np.float64)
    t = np.full(len(counts), MISSING_CLASS_THRESHOLD, dtype=np.float64)
    present = counts > 0
    t[present] = sums[present] / counts[present]
    return np.maximum(t, CONFIDENT_THRESHOLDS_LOWER_BOUND)
