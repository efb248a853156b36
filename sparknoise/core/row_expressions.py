"""Row-level Confident Learning math as native Spark expressions (no Python UDF).

The same operations as :mod:`sparknoise.kernels`, in the same float64 order, evaluated in the JVM
by Spark's code generation. Two shapes:

* constant size, any K (``argmax_first``, ``self_confidence``, ``normalized_margin``,
  ``keep_out``): ``array_max``/``array_position`` over the row or over the slices before and after
  the label. The row map (row_map.py) uses these at every K.
* one term per class (``guessed_true_label``): up to ``NATIVE_MAX_CLASSES`` one unrolled term per
  class (whole-stage code generation compiles it); above, the same rule as array functions over the
  K-entry row and one K-entry literal (``zip_with``/``filter``/``array_position``), whose expression
  tree has a constant depth and size whatever K (Spark interprets higher-order functions instead of
  generating code for them). Pass 2 (the confident joint) uses it on the native route and whenever
  ``num_classes <= NATIVE_MAX_CLASSES``; the entropy score (whose ``log`` must be numpy's to the last
  bit) is always an Arrow UDF.

One-term-per-class expressions are kept out of Filters and large plans: the per-cell cutoff test
of the prune methods written that way grew into one generated method too large for the JIT and
measured 2-3x slower than the Arrow UDF at 10M rows x 10 classes, and the per-class safeguard in a
Filter took 38 s instead of 2.5 s (issue 6's closing notes).

Elements are read with ``get`` (null when out of range), never ``probs[i]``: the optimizer may
evaluate these expressions, inside a Filter, on rows that ``input.on_invalid=skip`` drops (a label
outside 0..K-1, a short probability row), and such rows must not fail the query.

Spark compares doubles as numpy does here: -0.0 equals 0.0, and validation has ruled out NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

from sparknoise.core.constants import FLOATING_POINT_COMPARISON

# up to this K, per-class rules are unrolled into one term per class (generated code); above it they are
# array functions over K-entry arrays (constant expression depth and size; see guessed_true_label)
NATIVE_MAX_CLASSES = 64
# the row map's expressions are of constant size (array_max over slices), so any K; a limit only
# so that tests can force the Arrow row map
ROW_MAP_NATIVE_MAX_CLASSES = 1 << 20
NATIVE_QUALITY_METHODS = ("self_confidence", "normalized_margin")


def self_confidence(probs: Column, label: Column) -> Column:
    """p_{i, s_i}."""
    return F.get(probs, label)


def argmax_first(probs: Column) -> Column:
    """Index of the row maximum, lowest index on ties (numpy's argmax), as int."""
    return (F.array_position(probs, F.array_max(probs)) - F.lit(1)).cast("int")


def normalized_margin(probs: Column, label: Column, num_classes: int) -> Column:
    """(p_{i,s_i} - max_{k != s_i} p_ik + 1) / 2, in cleanlab's operation order."""
    before, after = around_label(probs, label, num_classes)
    best_other = F.greatest(F.array_max(before), F.array_max(after))  # greatest skips a null (empty) side
    return (self_confidence(probs, label) - best_other + F.lit(1.0)) / F.lit(2.0)


def around_label(probs: Column, label: Column, num_classes: int) -> tuple[Column, Column]:
    """The entries before and after the label's, as two slices (empty at the ends).

    Lengths are clamped so that a row the run skips (label outside 0..K-1) cannot raise here: the
    optimizer may evaluate these, in a Filter, before the filter that drops such rows.
    """
    before = F.slice(probs, F.lit(1), F.greatest(label, F.lit(0)))
    after = F.slice(
        probs, F.greatest(label, F.lit(-1)) + F.lit(2), F.greatest(F.lit(num_classes) - label - F.lit(1), F.lit(0))
    )
    return before, after


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
    Written as two ``array_max`` over slices (an empty slice passes), not one term per class: the
    per-class form, used in a ``Filter``, generates a method too large for the JIT and measured
    38 s instead of 2.5 s over 10M rows x 10 classes.
    """
    biased = self_confidence(probs, label) + F.lit(FLOATING_POINT_COMPARISON)
    before, after = around_label(probs, label, num_classes)
    return F.coalesce(F.array_max(before) < biased, F.lit(True)) & F.coalesce(
        F.array_max(after) <= biased, F.lit(True)
    )


def balanced(op: Callable[[Column, Column], Column], terms: list[Column]) -> Column:
    """``terms`` combined pairwise into a tree of depth log2(n), not a left-deep chain of depth n.

    Spark converts, analyses and generates code for an expression recursively: a chain of one
    ``+`` or ``|`` per class overflows the JVM stack at K in the hundreds (StackOverflowError at
    K = 1000); the same terms as a balanced tree are at most ~10 levels deep. Sums of integers and
    ORs are exact in any grouping, so the result is the same.
    """
    if not terms:
        raise ValueError("balanced() needs at least one term")
    while len(terms) > 1:
        terms = [op(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def literal_array(values) -> Column:
    """A K-entry array literal of doubles (one copy of K values; index it per row with ``get``)."""
    return F.array(*[F.lit(float(v)) for v in values])


def guessed_true_label(probs: Column, thresholds_minus_slack: np.ndarray) -> Column:
    """cleanlab's confident-joint guess (int), or -1 for a row confident in no class.

    Up to NATIVE_MAX_CLASSES one term per class; above, array functions: ``zip_with`` compares the
    row with the thresholds entry by entry (the same ``>=`` on the same doubles), ``filter`` counts
    the confident classes and ``array_position`` finds the first, so the tree is ~10 levels deep and
    holds the K thresholds once, at any K.
    """
    K = len(thresholds_minus_slack)
    if K > NATIVE_MAX_CLASSES:
        confident_arr = F.zip_with(probs, literal_array(thresholds_minus_slack), lambda p, t: p >= t)
        n_confident = F.size(F.filter(confident_arr, lambda c: c))
        first = F.array_position(confident_arr, F.lit(True)) - F.lit(1)  # 0 (not found) -> -1
        return (
            F.when(n_confident > F.lit(1), argmax_first(probs))
            .when(n_confident == F.lit(1), first)
            .otherwise(F.lit(-1))
            .cast("int")
        )
    confident = [F.get(probs, F.lit(j)) >= F.lit(float(thresholds_minus_slack[j])) for j in range(K)]
    n_confident = balanced(lambda a, b: a + b, [c.cast("int") for c in confident])
    first = F.when(confident[0], F.lit(0))
    for j in range(1, K):
        first = first.when(confident[j], F.lit(j))
    return (
        F.when(n_confident > F.lit(1), argmax_first(probs))
        .when(n_confident == F.lit(1), first.otherwise(F.lit(-1)))
        .otherwise(F.lit(-1))
        .cast("int")
    )


# Deterministic, partition-independent float sums: every term is rounded to 18 decimals (an error
# below 1e-18 per term) and the decimals are added exactly, so the sum never depends on row order.
# For terms of moderate size (probabilities, scores in [0, 1]): decimal(38, 18) holds sums below 1e20.
EXACT = "decimal(38,18)"


def exact_sum(value: Column) -> Column:
    """An order-independent sum of a double column, as a decimal aggregate (see EXACT)."""
    return F.sum(value.cast(EXACT))
