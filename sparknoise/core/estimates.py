"""The driver-side K- and KxK-sized estimates of Confident Learning (numpy, no Spark job).

Everything here runs on the driver, on arrays of K or K x K numbers that the Spark passes
summarised, in cleanlab 2.9.0's operation order so that results match it bit for bit:

* per-class confident thresholds ``t_k`` (pass 1's class statistics);
* the latent estimates from the calibrated confident joint: noise matrix P(given | true), inverse
  noise matrix P(true | given), prior of the true labels and normalised joint (cleanlab's
  ``estimate_latent`` with ``py_method='cnt'`` and ``converge_latent_estimates=False``);
* the prune count matrix: how many rows to flag per (true, given) cell;
* sum-preserving rounding (cleanlab's ``round_preserving_sum``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sparknoise.core.constants import (
    CLIPPING_LOWER_BOUND,
    CONFIDENT_THRESHOLDS_LOWER_BOUND,
    FLOATING_POINT_COMPARISON,
    MISSING_CLASS_THRESHOLD,
    NOISE_RATE_UPPER_CLIP,
    TINY_VALUE,
)

# --- confident thresholds ---------------------------------------------------------------------


def confident_thresholds(label_counts: np.ndarray, self_confidence_sums: np.ndarray) -> np.ndarray:
    """t_k = mean self-confidence of the rows labelled k (2.0 for a class with no rows), >= 2e-6."""
    counts = np.asarray(label_counts, dtype=np.int64)
    sums = np.asarray(self_confidence_sums, dtype=np.float64)
    t = np.full(len(counts), MISSING_CLASS_THRESHOLD, dtype=np.float64)
    present = counts > 0
    t[present] = sums[present] / counts[present]
    return np.maximum(t, CONFIDENT_THRESHOLDS_LOWER_BOUND)


# --- sum-preserving rounding ------------------------------------------------------------------


def round_preserving_sum(values: np.ndarray) -> np.ndarray:
    """Round to integers so that the rounded total equals the rounded original total.

    Round half to even, then fix the total with +-1 steps on the entries with the largest (or
    smallest) residuals, ordered by numpy's default argsort exactly as cleanlab orders them.
    """
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


# --- latent estimates -------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentEstimates:
    """Prior ``py`` (K,), ``noise_matrix`` and ``inverse_noise_matrix`` (K, K), ``joint`` (K, K)."""

    prior: np.ndarray
    noise_matrix: np.ndarray
    inverse_noise_matrix: np.ndarray
    joint: np.ndarray


def clip_noise_rates(noise_matrix: np.ndarray) -> np.ndarray:
    """Clip off-diagonal rates to [0, 0.9999], keep the diagonal, renormalise the columns."""
    diagonal = np.diagonal(noise_matrix)
    clipped = np.clip(noise_matrix, 0, NOISE_RATE_UPPER_CLIP)
    np.fill_diagonal(clipped, diagonal)
    return clipped / np.clip(clipped.sum(axis=0), a_min=TINY_VALUE, a_max=None)


def clip_values(x: np.ndarray, low: float, high: float, new_sum: float) -> np.ndarray:
    """Clip to [low, high], then rescale once so the values sum to ``new_sum``."""
    clipped = np.clip(x, low, high)
    return clipped * new_sum / np.clip(np.sum(clipped), a_min=TINY_VALUE, a_max=None)


def estimate_joint(calibrated_cj: np.ndarray) -> np.ndarray:
    """The calibrated confident joint normalised to sum to 1."""
    return calibrated_cj / np.clip(float(np.sum(calibrated_cj)), a_min=TINY_VALUE, a_max=None)


def estimate_latent(calibrated_cj: np.ndarray, label_counts: np.ndarray) -> LatentEstimates:
    """cleanlab's ``estimate_latent(cj, labels)`` with its defaults (py_method='cnt', no converge)."""
    cj = np.asarray(calibrated_cj)
    counts = np.asarray(label_counts, dtype=np.int64)
    ps = counts / float(counts.sum())
    given_counts = cj.sum(axis=1).astype(float)
    true_counts = cj.sum(axis=0).astype(float)
    noise_matrix = cj / np.clip(true_counts, a_min=TINY_VALUE, a_max=None)
    inverse = cj.T / np.clip(given_counts, a_min=TINY_VALUE, a_max=None)
    py = inverse.diagonal() / np.clip(noise_matrix.diagonal(), a_min=TINY_VALUE, a_max=None) * ps
    py = clip_values(py, low=CLIPPING_LOWER_BOUND, high=1.0, new_sum=1.0)
    return LatentEstimates(
        prior=py,
        noise_matrix=clip_noise_rates(noise_matrix),
        inverse_noise_matrix=clip_noise_rates(inverse),
        joint=estimate_joint(cj),
    )


# --- prune count matrix -----------------------------------------------------------------------
# ``pcm[j][k]`` is the number of rows with given label k to flag as belonging to true class j. It
# starts as the transposed calibrated confident joint, keeps at least ``min_examples_per_class``
# per class, scales the off-diagonal by ``frac_noise`` (truncating), and is optionally replaced by
# ``num_to_remove_per_class`` quotas.


def keep_at_least_n_per_class(pcm: np.ndarray, n: int) -> np.ndarray:
    """Raise each diagonal to >= n, taking the increase evenly off the nonzero cells of its column."""
    diagonal = np.diagonal(pcm)
    new_diagonal = np.maximum(diagonal, n)
    increase = new_diagonal - diagonal
    nonzero_per_col = np.maximum(np.count_nonzero(pcm, axis=0) - 1.0, 1.0)
    new = pcm - increase / nonzero_per_col
    new[new < 0] = 0
    np.fill_diagonal(new, new_diagonal)
    return new


def reduce_prune_counts(pcm: np.ndarray, frac_noise: float = 1.0) -> np.ndarray:
    """Scale off-diagonal cells by ``frac_noise``, move the remainder to the diagonal, truncate."""
    new = pcm * frac_noise
    np.fill_diagonal(new, pcm.diagonal())
    np.fill_diagonal(new, pcm.diagonal() + np.sum(pcm - new, axis=0))
    return new.astype(int)


def prune_count_matrix(
    calibrated_cj: np.ndarray,
    label_counts: np.ndarray,
    *,
    min_examples_per_class: int = 1,
    frac_noise: float = 1.0,
    num_to_remove_per_class: int | Sequence[int] | None = None,
) -> np.ndarray:
    """The (K, K) integer quota matrix used by prune_by_noise_rate, prune_by_class and both."""
    pcm = keep_at_least_n_per_class(np.asarray(calibrated_cj).T, min_examples_per_class)
    pcm = reduce_prune_counts(pcm, frac_noise)
    if num_to_remove_per_class is not None:
        counts = np.asarray(label_counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            psy = pcm / np.sum(pcm, axis=1)
            noise_per_s = psy.sum(axis=1) - psy.diagonal()
            tmp = (psy.T * num_to_remove_per_class / noise_per_s).T
        np.fill_diagonal(tmp, counts - num_to_remove_per_class)
        pcm = round_preserving_row_totals(tmp)
    return pcm
