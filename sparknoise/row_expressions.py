"""Row-level Confident Learning math as native Spark expressions (no Python UDF), for few classes.

The same operations as :mod:`sparknoise.kernels`, in the same float64 order, written with one
term per class (``probs[j]`` for literal ``j``) so that Spark's code generation evaluates them in
the JVM: a row map over these columns costs a fraction of an Arrow UDF's JVM -> Python round trip.
Used when ``num_classes <= NATIVE_MAX_CLASSES``; above it (and for the entropy score, whose
``log`` must be numpy's to the last bit) the Arrow UDFs of :mod:`sparknoise.flags` run instead.

Spark compares doubles as numpy does here: -0.0 equals 0.0, and validation has ruled out NaN.
"""

from __future__ import annotations

from functools import reduce
from typing import Sequence

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.constants import FLOATING_POINT_COMPARISON

NATIVE_MAX_CLASSES = 64
NATIVE_QUALITY_METHODS = ("self_confidence", "normalized_margin")


def _any(terms: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a | b, terms)


def _all(terms: Sequence[Column]) -> Column:
    return reduce(lambda a, b: a & b, terms)


def double_array(values: np.ndarray) -> Column:
    """A literal array<double> (infinities allowed); Spark folds it to one constant."""
    return F.array(*[F.lit(float(v)) for v in np.asarray(values, dtype=np.float64).ravel()])


def literal_array(values: Sequence, dtype: T.DataType) -> Column:
    """A literal array of ``dtype`` (None entries stay null)."""
    return F.array(*[F.lit(v).cast(dtype) for v in values])


def self_confidence(probs: Column, label: Column) -> Column:
    """p_{i, s_i}."""
    return probs[label]


def argmax_first(probs: Column) -> Column:
    """Index of the row maximum, lowest index on ties (numpy's argmax), as int."""
    return (F.array_position(probs, F.array_max(probs)) - F.lit(1)).cast("int")


def normalized_margin(probs: Column, label: Column, num_classes: int) -> Column:
    """(p_{i,s_i} - max_{k != s_i} p_ik + 1) / 2, in cleanlab's operation order."""
    others = [F.when(label != F.lit(j), probs[j]) for j in range(num_classes)]
    return (self_confidence(probs, label) - F.greatest(*others) + F.lit(1.0)) / F.lit(2.0)


def quality_score(probs: Column, label: Column, method: str, num_classes: int) -> Column:
    """Label quality score (self_confidence or normalized_margin)."""
    if method == "self_confidence":
        return self_confidence(probs, label)
    if method == "normalized_margin":
        return normalized_margin(probs, label, num_classes)
    raise ValueError(f"no native expression for label quality method {method!r}")


def keep_out(probs: Column, label: Column, num_classes: int) -> Column:
    """True where the given label, nudged up by 1e-6, is the row's first argmax (the safeguard).

    With ``b = p_y + 1e-6``: every class before y has ``p_j < b`` and every class after ``p_j <= b``.
    """
    biased = self_confidence(probs, label) + F.lit(FLOATING_POINT_COMPARISON)
    terms = [
        F.when(label > F.lit(j), probs[j] < biased).when(label < F.lit(j), probs[j] <= biased).otherwise(F.lit(True))
        for j in range(num_classes)
    ]
    return _all(terms)


def guessed_true_label(probs: Column, thresholds_minus_slack: np.ndarray) -> Column:
    """cleanlab's confident-joint guess (int), or -1 for a row confident in no class."""
    K = len(thresholds_minus_slack)
    confident = [probs[j] >= F.lit(float(thresholds_minus_slack[j])) for j in range(K)]
    n_confident = reduce(lambda a, b: a + b, [c.cast("int") for c in confident])
    first = F.when(confident[0], F.lit(0))
    for j in range(1, K):
        first = first.when(confident[j], F.lit(j))
    return (
        F.when(n_confident > F.lit(1), argmax_first(probs))
        .when(n_confident == F.lit(1), first.otherwise(F.lit(-1)))
        .otherwise(F.lit(-1))
        .cast("int")
    )


def selected(key: Column, cell: Column, ident: Column, key_star: Column, id_star: Column) -> Column:
    """The cutoff rule of :class:`sparknoise.selection.Cutoffs`: key > key* or (== and id <= id*).

    ``key_star``/``id_star`` are literal arrays indexed by the 0-based ``cell``. A cell with
    ``id*`` null has an infinite ``key*``, so the tie branch is false (never null) there.
    """
    ks, ids = key_star[cell], id_star[cell]
    return (key > ks) | ((key == ks) & (ident <= ids))


def noise_rate_selected(probs: Column, label: Column, ident: Column, num_classes: int, key_star: np.ndarray,
                        id_star: Sequence, id_type: T.DataType) -> Column:
    """prune_by_noise_rate: selected in some cell (y, j), j != y, keyed by p_j - p_y."""
    K = num_classes
    ks, ids = double_array(key_star), literal_array(id_star, id_type)
    base = label * F.lit(K)
    terms = [
        (label != F.lit(j)) & selected(probs[j] - probs[label], base + F.lit(j), ident, ks, ids)
        for j in range(K)
        if (key_star[j::K] != np.inf).any()  # else no row is selected in any cell (., j)
    ]
    return _any(terms) if terms else F.lit(False)


def single_key_selected(key: Column, cell: Column, ident: Column, key_star: np.ndarray, id_star: Sequence,
                        id_type: T.DataType) -> Column:
    """prune_by_class (cell = y, key = -p_y) and the low-score filters (one cell, key = -score)."""
    return selected(key, cell, ident, double_array(key_star), literal_array(id_star, id_type))


def key_bucket(key: Column, n_buckets: int, key_low: float, key_high: float) -> Column:
    """The histogram bucket of a selection key, as :func:`sparknoise.selection._buckets` computes it."""
    scaled = (key - F.lit(key_low)) * F.lit(n_buckets / (key_high - key_low))
    return F.least(F.greatest(F.floor(scaled), F.lit(0)), F.lit(n_buckets - 1)).cast("int")


def boundary_candidates(kind: str, probs: Column, label: Column, num_classes: int, boundary: np.ndarray,
                        n_buckets: int, key_range: tuple[float, float], score_method: str | None = None) -> Column:
    """array<struct<cell int, key double>>: a row's selection candidates that fall in their cell's
    boundary bucket (``boundary[cell]``, -1 for a cell without one), for the three problem kinds."""
    K = num_classes
    where = F.array(*[F.lit(int(b)) for b in boundary])

    def hit(cell: Column, key: Column) -> Column:
        key = key + F.lit(0.0)  # -0.0 -> 0.0: the window sorts them apart, numpy ties them
        return F.when(where[cell] == key_bucket(key, n_buckets, *key_range),
                      F.struct(cell.cast("int").alias("cell"), key.alias("key")))

    if kind == "noise_rate":
        base = label * F.lit(K)
        cols = boundary.reshape(K, K)
        found = [F.when(label != F.lit(j), hit(base + F.lit(j), probs[j] - probs[label]))
                 for j in range(K) if (cols[:, j] >= 0).any()]
    elif kind == "class":
        found = [hit(label, -self_confidence(probs, label))]
    else:
        found = [hit(F.lit(0), -quality_score(probs, label, score_method, K))]
    return F.array_compact(F.array(*found)) if found else F.array()
