"""The prune count matrix: how many rows to flag per (true, given) cell (reference note section 2.2).

``pcm[j][k]`` is the number of rows with given label k to flag as belonging to true class j. It
starts as the transposed calibrated confident joint, keeps at least ``min_examples_per_class`` per
class, scales the off-diagonal by ``frac_noise`` (truncating), and is optionally replaced by
``num_to_remove_per_class`` quotas, all in cleanlab 2.9.0's operation order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sparknoise.rounding import round_preserving_row_totals


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
