"""Ordinary least squares from Gram sums: the linear route of RegressionCleanLearning.

When the estimator is Spark ML ``LinearRegression`` fitting ordinary least squares (``regParam`` 0,
``loss`` squaredError, no ``weightCol``; ``fitIntercept`` either way; any solver: "normal" and
"auto" solve the normal equations, "l-bfgs" converges to the same minimiser), every model
RegressionCleanLearning fits is determined by the augmented Gram matrix ``S = Σ w wᵀ`` of its
training rows, ``w = (1, x_1..x_p, y)``: S holds the count, the feature and label sums, XᵀX, Xᵀy
and yᵀy. Gram matrices add over disjoint row sets, so one grouped aggregation per step
(:func:`gram_sums`, executors, native ``sum`` columns: ``(p + 2)(p + 3) / 2`` of them per group)
gives every fold's, level's or half's S, and the driver assembles each training set's S by adding
groups. Everything else here runs on the driver on (p + 2)-square matrices:

* :func:`solve` (driver): the OLS coefficients ``(b0, β)`` of one S. With an intercept, as sklearn
  does: the centred normal equations ``C β = c`` (C = Σ (x - x̄)(x - x̄)ᵀ, c = Σ (x - x̄)(y - ȳ),
  both from S) and ``b0 = ȳ - x̄·β``; without, ``XᵀX β = Xᵀy``. The system is solved with each
  feature scaled to unit diagonal (the solution does not depend on the scaling when it is unique)
  by ``numpy.linalg.lstsq`` (SVD; singular values below ``eps · dim`` times the largest are
  treated as zero), so it always returns a solution:

  - a feature constant on the training rows (centred diagonal below 1e-12 of its second moment, or
    0) gets coefficient 0, as in sklearn (its centred column is 0) and Spark ML;
  - otherwise a singular or numerically singular system (collinear features: condition number of
    the scaled XᵀX above ~1/(eps · dim), ~2e14 for 20 features) gets the minimum-norm solution
    in the scaled coordinates; sklearn returns the minimum-norm one in the unscaled coordinates,
    Spark ML's normal solver falls back to L-BFGS (a solution near its starting point). All of
    them fit the training rows equally well, but may predict other rows differently.
  - below that, ill-conditioning costs accuracy as in Spark ML's normal solver (which also forms
    the normal equations): about cond(XᵀX) · eps relative in the coefficients. The caller centres
    the features and label by their overall means first, so an offset in a feature costs nothing.

* :func:`sum_of_squares` (driver): Σ (y - b0 - x·β)² over a group's rows, the quadratic form
  ``aᵀ S a`` with ``a = (-b0, -β, 1)``; :func:`residual_gram` the S of (1, x, prediction - y).
* :func:`linear_prediction` (executors, per row, native): ``b0 + Σ x_i β_i`` with the coefficient
  row picked per row from a literal table by an index column (a fold, a half, or "held out").

Why p is bounded (:data:`MAX_FEATURES` = 64): the aggregation has ``(p + 2)(p + 3) / 2`` sum
columns per group (253 at p = 20, 2,211 at p = 64), every row pays ~p²/2 multiply-adds in Spark
expressions that are not whole-stage code-generated at this width (measured: 231 sums over 200,000
rows took 18.6 s on a loaded 2-core machine), and the driver receives groups x (p + 2)² / 2
doubles; the fits route's cost grows like p, so the quadratic route stops paying somewhere past a
few dozen features. 64 is a conservative bound, only p = 20 has been benchmarked. Above it the
general route (Spark ML fits) runs.
"""

from __future__ import annotations

import numpy as np
from pyspark.ml.regression import LinearRegression
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

MAX_FEATURES = 64
MAX_GROUPS = 1024  # groups of one Gram aggregation (each (p + 2)(p + 3) / 2 doubles to the driver)
_CONSTANT = 1e-12  # a centred diagonal below this fraction of the second moment: a constant feature


def ineligible(estimator) -> str | None:
    """Why ``estimator`` does not fit OLS models (so the Gram route cannot stand in), or None."""
    if not isinstance(estimator, LinearRegression):
        return f"the estimator is {type(estimator).__name__}, not LinearRegression"
    if estimator.getOrDefault("regParam") != 0:
        return f"regParam={estimator.getOrDefault('regParam')} (regularised, not ordinary least squares)"
    if estimator.getOrDefault("loss") != "squaredError":
        return f"loss={estimator.getOrDefault('loss')!r} (not squared error)"
    if estimator.isDefined("weightCol") and estimator.getOrDefault("weightCol"):
        return f"weightCol={estimator.getOrDefault('weightCol')!r} (weighted)"
    return None


def gram_sums(df: DataFrame, keys: list[Column], xs: list[str], y: str) -> dict[tuple, np.ndarray]:
    """One grouped aggregation (executors): per distinct ``keys`` value, S = Σ w wᵀ with w = (1, xs, y).

    Returns {key tuple: symmetric (p + 2) x (p + 2) float64 array} (driver, one row per group).
    """
    w = [None, *[F.col(c) for c in xs], F.col(y)]
    d = len(w)
    sums, cells = [], []
    for i in range(d):
        for j in range(i, d):
            if i == 0:
                expr = F.count(F.lit(1)).cast("double") if j == 0 else F.sum(w[j])
            else:
                expr = F.sum(w[i] * w[j])
            sums.append(expr.alias(f"__rg_s{len(sums)}"))
            cells.append((i, j))
    names = [f"__rg_k{i}" for i in range(len(keys))]
    rows = df.groupBy(*[k.alias(n) for k, n in zip(keys, names)]).agg(*sums).collect()  # <= MAX_GROUPS rows
    out = {}
    for r in rows:
        s = np.zeros((d, d))
        for (i, j), v in zip(cells, r[len(names):]):
            s[i, j] = s[j, i] = 0.0 if v is None else float(v)
        out[tuple(r[n] for n in names)] = s
    return out


def total(grams) -> np.ndarray:
    """The sum of Gram matrices (the Gram of the union of their disjoint row sets)."""
    grams = list(grams)
    out = np.zeros_like(grams[0])
    for g in grams:
        out = out + g
    return out


def solve(s: np.ndarray, fit_intercept: bool) -> np.ndarray:
    """OLS coefficients (b0, β_1..β_p) of the rows summarised by ``s`` (see the module docstring)."""
    p = s.shape[0] - 2
    n = s[0, 0]
    if n <= 0:
        raise ValueError("no training rows")
    if fit_intercept:
        xbar, ybar = s[0, 1:p + 1] / n, s[0, p + 1] / n
        c_mat = s[1:p + 1, 1:p + 1] - n * np.outer(xbar, xbar)
        c_vec = s[1:p + 1, p + 1] - n * xbar * ybar
    else:
        c_mat, c_vec = s[1:p + 1, 1:p + 1], s[1:p + 1, p + 1]
    diag = np.diag(c_mat)
    live = diag > _CONSTANT * np.diag(s)[1:p + 1]
    beta = np.zeros(p)
    if live.any():
        scale = np.sqrt(diag[live])
        a = c_mat[np.ix_(live, live)] / np.outer(scale, scale)
        beta[live] = np.linalg.lstsq(a, c_vec[live] / scale, rcond=None)[0] / scale
    b0 = float(ybar - xbar @ beta) if fit_intercept else 0.0
    return np.concatenate([[b0], beta])


def _a(coef: np.ndarray) -> np.ndarray:
    return np.concatenate([-coef, [1.0]])


def sum_of_squares(s: np.ndarray, coef: np.ndarray) -> float:
    """Σ (y - b0 - x·β)² over the rows of ``s`` (a quadratic form; clipped at 0 against rounding)."""
    a = _a(coef)
    return max(float(a @ s @ a), 0.0)


def residual_gram(s: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """The Gram of (1, x, r) with r = b0 + x·β - y (prediction - label) over the rows of ``s``."""
    p = s.shape[0] - 2
    a = _a(coef)
    out = s.copy()
    xr = -(s[:p + 1, :] @ a)  # Σ (1, x) r
    out[:p + 1, p + 1] = out[p + 1, :p + 1] = xr
    out[p + 1, p + 1] = max(float(a @ s @ a), 0.0)
    return out


def prediction_moments(s: np.ndarray, coef: np.ndarray) -> tuple[float, float]:
    """(Σ pred, Σ pred²) over the rows of ``s`` for pred = b0 + x·β."""
    p = s.shape[0] - 2
    xx = s[:p + 1, :p + 1]
    return float(xx[0] @ coef), float(coef @ xx @ coef)


def linear_prediction(table: np.ndarray, index: Column | None, xs: list[str]) -> Column:
    """Per row (executors, native): ``b0 + Σ x_i β_i`` with (b0, β) = ``table[index]``.

    ``table`` has one coefficient row per model; ``index`` (an int column, 0-based) picks the row;
    None with a one-row table. The sum runs left to right from b0.
    """
    def pick(values: np.ndarray) -> Column:
        if index is None:
            return F.lit(float(values[0]))
        return F.element_at(F.array(*[F.lit(float(v)) for v in values]), index + F.lit(1))

    out = pick(table[:, 0])
    for i, x in enumerate(xs):
        out = out + F.col(x) * pick(table[:, i + 1])
    return out
