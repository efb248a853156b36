"""Noise matrices P(given | true) for simulation: checks, and generation from a target trace.

A noise matrix has shape (K, K) and entry ``[j, k] = P(given = j | true = k)``: its columns sum to
1. ``noise_matrix_from_trace`` draws one whose diagonal sums to ``trace`` the way cleanlab's
``generate_noise_matrix_from_trace`` does (random diagonal, a fraction of the off-diagonal rates
set to zero, the rest random, retried until the matrix is learnable for the prior ``py``);
``noise_matrix_is_valid`` is that learnability rule: p(true=k) p(given=k) < p(given=k, true=k) for
every class. Driver-side numpy on K x K arrays.
"""

from __future__ import annotations

import numpy as np

from sparknoise.errors import ConfigError

_TOLERANCE = 1e-6


def check_noise_matrix(noise_matrix, num_classes: int) -> np.ndarray:
    """The matrix as float64 (K, K); raises ConfigError when it is not a column-stochastic K x K matrix."""
    try:
        m = np.asarray(noise_matrix, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError("noise_matrix must be a K x K array of numbers (P(given=j | true=k) at [j][k])") from None
    if m.shape != (num_classes, num_classes):
        raise ConfigError(
            f"noise_matrix has shape {m.shape} but there are {num_classes} classes; give a "
            f"{num_classes} x {num_classes} matrix with P(given=j | true=k) at [j][k]"
        )
    if not np.all(np.isfinite(m)) or (m < 0).any() or (m > 1).any():
        raise ConfigError("noise_matrix entries must be probabilities in [0, 1]")
    sums = m.sum(axis=0)
    bad = np.flatnonzero(np.abs(sums - 1.0) > _TOLERANCE)
    if bad.size:
        raise ConfigError(
            f"noise_matrix columns must sum to 1 (column k is P(given | true=k)); column {int(bad[0])} "
            f"sums to {sums[bad[0]]:.6g}"
        )
    return m


def noise_matrix_is_valid(noise_matrix: np.ndarray, py: np.ndarray) -> bool:
    """Whether learning is possible: p(true=k) * p(given=k) < p(given=k, true=k) for every k."""
    m = np.asarray(noise_matrix, dtype=float)
    py = np.asarray(py, dtype=float)
    joint = m * py  # P(given=j, true=k)
    if abs(joint.sum() - 1.0) > _TOLERANCE:
        return False
    p_given = m @ py
    return bool(np.all(p_given * py < np.diagonal(joint)))


def _probabilities_summing_to(rng: np.random.Generator, n: int, total: float, low: float, high: float,
                              tries: int = 1000) -> np.ndarray | None:
    """``n`` random values in [low, high] summing to ``total`` (None when none found)."""
    if n == 0:
        return np.zeros(0) if abs(total) < _TOLERANCE else None
    if not (n * low - _TOLERANCE <= total <= n * high + _TOLERANCE):
        return None
    for _ in range(tries):
        values = rng.dirichlet(np.ones(n)) * total
        if values.min() >= low - _TOLERANCE and values.max() <= high + _TOLERANCE:
            return values
    even = np.full(n, total / n)
    return even if low - _TOLERANCE <= even[0] <= high + _TOLERANCE else None


def noise_matrix_from_trace(num_classes: int, trace: float, *, py=None, frac_zero_noise_rates: float = 0.0,
                            max_trace_prob: float = 1.0, min_trace_prob: float = 1e-5,
                            max_noise_rate: float = 1 - 1e-5, min_noise_rate: float = 0.0,
                            valid_noise_matrix: bool = True, seed: int = 0, max_iter: int = 10000) -> np.ndarray:
    """A random K x K noise matrix with the given trace (sum of P(given=k | true=k)).

    ``trace = K * (1 - noise_rate)`` gives an average noise rate. With ``valid_noise_matrix`` the
    matrix is redrawn until it is learnable for the prior ``py`` (required for K > 2), which needs
    ``trace > 1``. ``frac_zero_noise_rates`` of the K(K-1) off-diagonal rates are zero (or more,
    when the trace forces it). Raises ConfigError on impossible arguments or after ``max_iter`` draws.
    """
    K = int(num_classes)
    if K < 2:
        raise ConfigError(f"noise matrices need at least 2 classes, got {K}")
    if not 0.0 < trace <= K:
        raise ConfigError(f"trace must be in (0, {K}] for {K} classes, got {trace}")
    if valid_noise_matrix and trace <= 1:
        raise ConfigError(f"trace = {trace}: a learnable (valid) noise matrix needs trace > 1")
    if not 0.0 <= frac_zero_noise_rates <= 1.0:
        raise ConfigError(f"frac_zero_noise_rates must be in [0, 1], got {frac_zero_noise_rates}")
    if py is None:
        if valid_noise_matrix and K > 2:
            raise ConfigError("py (the prior of the true classes) is needed to check that the matrix is valid")
        py = np.full(K, 1.0 / K)
    py = np.asarray(py, dtype=float)
    if py.shape != (K,) or (py < 0).any() or abs(py.sum() - 1.0) > 1e-6:
        raise ConfigError(f"py must be {K} non-negative probabilities summing to 1")
    rng = np.random.default_rng(seed)
    for _ in range(max_iter):
        # The diagonal: 1 minus noise rates that sum to K - trace.
        rates = _probabilities_summing_to(rng, K, K - trace, 1 - max_trace_prob, 1 - min_trace_prob)
        if rates is None:
            continue
        diagonal = np.clip(1.0 - rates, 0.0, 1.0)
        m = np.diag(diagonal)
        noisy_cols = np.flatnonzero(diagonal < 1.0)
        zeros = int(K * (K - 1) * frac_zero_noise_rates) - (K - noisy_cols.size) * (K - 1)
        zeros = max(zeros, 0)
        # Spread the zero rates over the noisy columns, each keeping at least one non-zero rate.
        per_col = np.zeros(K, dtype=int)
        for _z in range(min(zeros, noisy_cols.size * (K - 2))):
            open_cols = [c for c in noisy_cols if per_col[c] < K - 2]
            per_col[rng.choice(open_cols)] += 1
        ok = True
        for col in noisy_cols:
            n_rates = K - 1 - per_col[col]
            values = _probabilities_summing_to(rng, n_rates, 1.0 - diagonal[col], min_noise_rate, max_noise_rate)
            if values is None:
                ok = False
                break
            rows = rng.choice([r for r in range(K) if r != col], n_rates, replace=False)
            m[rows, col] = values
        if not ok:
            continue
        if not valid_noise_matrix or noise_matrix_is_valid(m, py):
            return m
    raise ConfigError(
        f"no valid noise matrix with trace {trace} found in {max_iter} draws; raise the trace "
        "(less noise) or lower frac_zero_noise_rates"
    )
