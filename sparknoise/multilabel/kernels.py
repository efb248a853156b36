"""Row-level multi-label maths on numpy batches (executors, one Arrow batch at a time).

cleanlab 2.9.0's ``multilabel_classification`` reduces a K-class tag problem to K binary
problems: class ``c`` of row ``i`` has the given label ``y_ic`` (1 when the tag is in the row's set)
and the two-column probabilities ``[1 - p_ic, p_ic]`` (``stack_complement``). Every function here
builds those binary columns in the same float64 operations and hands them to the multiclass
kernels of :mod:`sparknoise.core.kernels`, so per-class values are bit-identical to cleanlab's.

Nothing here sees more than one batch of rows.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pyarrow as pa

from sparknoise.core import kernels

EPSILON = 1e-6  # cleanlab.internal.constants.EPSILON (softmax temperature floor)
SCORE_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
AGGREGATORS = ("exponential_moving_average", "softmin")
DEFAULT_AGGREGATOR = {"method": "exponential_moving_average", "alpha": 0.8}


def binary_probs(p: np.ndarray) -> np.ndarray:
    """cleanlab's ``stack_complement``: the (n, 2) matrix [1 - p, p] of one class's column."""
    return np.vstack((1 - p, p)).T


def split(P2: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A (n, 2K) batch of [probabilities | multi-hot labels] as (P (n, K) float64, Y (n, K) int64)."""
    return P2[:, :num_classes], P2[:, num_classes:].astype(np.int64)


def multi_hot(labels: pa.Array, num_classes: int) -> np.ndarray:
    """A list<int> Arrow array of class indices (validated: in 0..K-1, no nulls) as an (n, K) 0/1 matrix.

    Repeated tags count once (as sklearn's MultiLabelBinarizer, which cleanlab uses).
    """
    if isinstance(labels, pa.ChunkedArray):
        labels = labels.combine_chunks()
    n = len(labels)
    offsets = labels.offsets.to_numpy(zero_copy_only=False)
    values = labels.values.to_numpy(zero_copy_only=False)[offsets[0]: offsets[-1]].astype(np.int64)
    rows = np.repeat(np.arange(n), np.diff(offsets))
    Y = np.zeros((n, num_classes), dtype=np.int64)
    Y[rows, values] = 1
    return Y


def adjusted(Pc: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """cleanlab's ``_subtract_confident_thresholds`` on one class's (n, 2) binary probabilities."""
    adj = Pc - thresholds
    adj += thresholds.max()
    adj /= adj.sum(axis=1, keepdims=True)
    return adj


def per_class_scores(P: np.ndarray, Y: np.ndarray, method: str, thresholds: np.ndarray | None = None) -> np.ndarray:
    """(n, K) label quality of each class annotation: cleanlab's ``get_label_quality_scores_per_class``.

    ``thresholds`` (K, 2): ``adjust_pred_probs=True``, each class's binary probabilities minus its
    confident thresholds, renormalised (self_confidence and normalized_margin only, as in cleanlab).
    """
    out = np.zeros(Y.shape)
    for c in range(Y.shape[1]):
        Pc = binary_probs(P[:, c])
        if thresholds is not None:
            Pc = adjusted(Pc, thresholds[c])
        out[:, c] = kernels.quality_scores(Pc, Y[:, c], method)
    return out


def exponential_moving_average(s: np.ndarray, *, alpha: float | None = None, axis: int = 1, **_) -> np.ndarray:
    """cleanlab's EMA aggregator: scores sorted descending, EMA_t = alpha s_t + (1 - alpha) EMA_{t-1}."""
    K = s.shape[1]
    s_sorted = np.fliplr(np.sort(s, axis=axis))
    if alpha is None:
        alpha = float(2 / (K + 1))
    if not (0 <= alpha <= 1):
        raise ValueError(f"alpha must be in the interval [0, 1], got {alpha}")
    s_T = s_sorted.T
    s_ema, s_next = s_T[0], s_T[1:]
    for s_i in s_next:
        s_ema = alpha * s_i + (1 - alpha) * s_ema
    return s_ema


def _softmax(x: np.ndarray, temperature: float = 1.0, axis: int | None = None, shift: bool = False) -> np.ndarray:
    x = x / max(temperature, EPSILON)
    if shift:
        x = x - np.max(x, axis=axis, keepdims=True)
    exp_x = np.exp(x)
    return exp_x / np.sum(exp_x, axis=axis, keepdims=True)


def softmin(s: np.ndarray, *, temperature: float = 0.1, axis: int = 1, **_) -> np.ndarray:
    """cleanlab's softmin aggregator: sum_k s_k softmax((1 - s) / temperature)_k."""
    return np.einsum("ij,ij->i", s, _softmax(x=1 - s, temperature=temperature, axis=axis, shift=True))


def aggregator(kwargs: dict[str, Any] | None) -> Callable[[np.ndarray], np.ndarray]:
    """cleanlab's ``Aggregator(**aggregator_kwargs)`` as a function of the (n, K) per-class scores.

    ``method`` is ``exponential_moving_average`` (``alpha``; None = 2 / (K + 1)), ``softmin``
    (``temperature``) or a callable ``f(scores, axis=1, **kwargs)``; the other keys are its kwargs.
    """
    kw = dict(DEFAULT_AGGREGATOR if kwargs is None else kwargs)
    method = kw.pop("method", "exponential_moving_average")
    if isinstance(method, str):
        method = {"exponential_moving_average": exponential_moving_average, "softmin": softmin}[method]

    def aggregate(scores: np.ndarray) -> np.ndarray:
        return np.asarray(method(scores, **{**kw, "axis": 1}), dtype=np.float64)

    return aggregate


def default_quality(P: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """cleanlab's default multi-label score (self_confidence per class, EMA with alpha 0.8): the key
    of the row-level low_self_confidence / low_normalized_margin filters."""
    return exponential_moving_average(per_class_scores(P, Y, "self_confidence"), alpha=0.8)
