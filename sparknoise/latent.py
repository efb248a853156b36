"""Latent estimates from the calibrated confident joint (reference note sections 1.4 and 1.5).

Noise matrix P(given | true), inverse noise matrix P(true | given), the prior of the true labels
and the normalised joint; driver-side numpy on KxK arrays, in cleanlab 2.9.0's operation order
(``estimate_latent`` with ``py_method='cnt'`` and ``converge_latent_estimates=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparknoise.constants import CLIPPING_LOWER_BOUND, NOISE_RATE_UPPER_CLIP, TINY_VALUE


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
