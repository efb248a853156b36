"""Row-level Confident Learning math on numpy batches.

These functions see one batch of rows at a time (an Arrow batch inside a Spark UDF), never a
whole class or table. They reproduce cleanlab 2.9.0's element-wise operations in the same order,
so that float results are bit-identical to cleanlab on the same float64 input.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy.special import xlogy

from sparknoise.core.constants import CLIPPING_LOWER_BOUND, FLOATING_POINT_COMPARISON

QUALITY_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")


def probs_matrix(arr: pa.Array, num_classes: int) -> np.ndarray:
    """A list<double> Arrow array of equal-length rows as a C-contiguous float64 (n, K) matrix."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    values = arr.flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values, dtype=np.float64).reshape(len(arr), num_classes)


def int_column(arr: pa.Array) -> np.ndarray:
    """An integer Arrow array (no nulls) as int64 numpy."""
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int64)


def id_column(arr: pa.Array) -> np.ndarray:
    """Row ids as numpy: int64 for integer ids, an object array of str for string ids."""
    if pa.types.is_integer(arr.type):
        return int_column(arr)
    return np.asarray(arr.to_pylist(), dtype=object)


def argmax_first(P: np.ndarray) -> np.ndarray:
    """Index of the row maximum, lowest index on ties (numpy's argmax)."""
    return P.argmax(axis=1)


def guessed_true_labels(P: np.ndarray, thresholds_minus_slack: np.ndarray) -> np.ndarray:
    """cleanlab's confident-joint guess per row, or -1 for a row confident in no class.

    A row is confident in class k when ``p_ik >= t_k - 1e-6``. With one confident class that class
    is the guess; with several, the row's global argmax is (the collision rule, even when the
    argmax class itself is not confident).
    """
    confident = P >= thresholds_minus_slack
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, P.argmax(axis=1), confident.argmax(axis=1))
    guess[n_confident == 0] = -1
    return guess


def keep_out(P: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The final safeguard: True where the given label, nudged up by 1e-6, is the row argmax.

    Such rows are never reported by the prune, confident_learning and predicted_neq_given methods.
    """
    biased = P.copy()
    rows = np.arange(len(labels))
    biased[rows, labels] += FLOATING_POINT_COMPARISON
    return biased.argmax(axis=1) == labels


def self_confidence(P: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """p_{i, s_i}: the predicted probability of the given label."""
    return P[np.arange(len(labels)), labels]


def normalized_margin(P: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(p_{i,s_i} - max_{k != s_i} p_ik + 1) / 2, in cleanlab's operation order."""
    n, k = P.shape
    sc = self_confidence(P, labels)
    others = np.delete(P, np.arange(n) * k + labels, axis=None).reshape(n, k - 1)
    return (sc - np.max(others, axis=-1) + 1) / 2


def normalized_entropy(P: np.ndarray) -> np.ndarray:
    """Entropy of each row divided by log(K), with 0 log 0 = 0."""
    clipped = np.clip(P, 0.0, 1.0)  # validation allows 1e-6 of slack; entropy needs [0, 1]
    return -np.sum(xlogy(clipped, clipped), axis=1) / np.log(P.shape[1])


def confidence_weighted_entropy(P: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """cleanlab's confidence-weighted entropy score: ln(1 + x) / max(x, 1e-6), x = H / sc."""
    sc = np.clip(self_confidence(P, labels), CLIPPING_LOWER_BOUND, None)
    x = normalized_entropy(P) / sc
    return np.log(x + 1) / np.clip(x, CLIPPING_LOWER_BOUND, None)


def quality_scores(P: np.ndarray, labels: np.ndarray, method: str) -> np.ndarray:
    """Label quality score per row (lower = more likely mislabeled)."""
    if method == "self_confidence":
        return self_confidence(P, labels)
    if method == "normalized_margin":
        return normalized_margin(P, labels)
    if method == "confidence_weighted_entropy":
        return confidence_weighted_entropy(P, labels)
    raise ValueError(f"unknown label quality method {method!r}")


def row_sum_off(P: np.ndarray, tolerance: float) -> np.ndarray:
    """True where a probability row does not sum to 1 within ``tolerance``."""
    return np.abs(P.sum(axis=1) - 1.0) > tolerance
