"""The selection's three row-level steps as native Spark expressions (no Python on the hot path).

Used when every selection problem has native candidates (selection.NativePair) and the classes
are few enough for expressions with one term per class (``row_expressions.NATIVE_MAX_CLASSES``).
Each runs on the executors, per row, with whole-stage code generation:

* ``histogram_entries``: the flat histogram index (cell x buckets + bucket) of every candidate of
  a row, as an array that pass 2 explodes and counts together with the confident joint, so the
  histogram costs no scan of its own;
* ``boundary_prefilter``: a constant-size test that drops the rows which cannot hold a key in
  their cell's boundary bucket, before the Arrow boundary scan;
* ``selected``: whether a row is selected in any of its cells, ``key > key*`` or
  ``key == key* and id <= id*``. Per-cell state is read from small literal arrays indexed by the
  row's label (K entries per candidate), never from one K x K array per term: a plan with K copies
  of a K²-element literal exhausted a 2 GB driver at K = 100.

Bucketing is the batch functions' formula in the same float64 operations, so the native and the
Arrow paths put every key in the same bucket.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core import row_expressions
from sparknoise.core.selection import KEY_HIGH, KEY_LOW, Cutoffs, HistogramPlan, NativePair, SelectionProblem


def supported(problems) -> bool:
    """Whether every problem has native candidates."""
    return all(p.native is not None for p in problems)


def bucket(key: Column, n_buckets: int) -> Column:
    """selection._buckets as an expression: equal-width buckets over [KEY_LOW, KEY_HIGH], clamped."""
    scaled = (key - F.lit(KEY_LOW)) * F.lit(n_buckets / (KEY_HIGH - KEY_LOW))
    return F.least(F.greatest(F.floor(scaled), F.lit(0)), F.lit(n_buckets - 1))


def histogram_entries(plan: HistogramPlan, probs: Column, label: Column) -> Column:
    """array<long>: each candidate's flat index (cell + problem offset) x buckets + bucket; null if none."""
    entries = []
    for offset, problem in zip(plan.offsets, plan.problems):
        for pair in problem.native(probs, label):
            flat = (pair.cell + F.lit(int(offset))) * F.lit(plan.n_buckets) + bucket(pair.key, plan.n_buckets)
            entries.append(_when_valid(pair, flat))
    return F.array(*entries)


def _when_valid(pair: NativePair, value: Column) -> Column:
    """``value`` where the row is a candidate of this pair, else null."""
    return value if pair.valid is None else F.when(pair.valid, value)


def _state(values: np.ndarray, pair: NativePair, dtype: T.DataType) -> Column:
    """The per-cell state of the cells this pair can fall in, read at the row's index."""
    picked = [None if v is None else v.item() if isinstance(v, np.generic) else v for v in values[pair.cells]]
    literal = F.array(*[F.lit(v).cast(dtype) for v in picked])
    return F.get(literal, pair.index)


def boundary_prefilter(problem: SelectionProblem, *, probs: Column, label: Column, n_buckets: int,
                       boundary: np.ndarray) -> Column:
    """A constant-size necessary condition for a row to hold a key in its cell's boundary bucket.

    The row's largest key must reach the lowest boundary bucket among its label's cells (one bucket
    lower, against rounding at the edge). The boundary scan itself stays an Arrow batch function over
    the rows that pass: written as per-class expressions (a Filter, or an explode of every candidate)
    it measured 20-365 s at 10M x 10 against a few seconds, because the generated method grew too
    large for the JIT. True when the problem offers no bound.
    """
    if problem.native_max_key is None:
        return F.lit(True)
    cells = np.flatnonzero(boundary >= 0)
    pairs = problem.native(probs, label)  # the pairs share their index (the label)
    edges = np.full(problem.n_cells, np.inf)
    edges[cells] = KEY_LOW + (boundary[cells] - 1) * ((KEY_HIGH - KEY_LOW) / n_buckets)
    lowest = np.min([edges[p.cells] for p in pairs], axis=0)
    floor = F.get(F.array(*[F.lit(float(v)) for v in lowest]), pairs[0].index)
    return F.coalesce(problem.native_max_key(probs, label) >= floor, F.lit(False))


def selected(problem: SelectionProblem, cutoffs: Cutoffs, probs: Column, label: Column, ident: Column,
             id_type: T.DataType) -> Column:
    """Whether the row is selected in one of its cells (never null)."""
    key_star = np.asarray(cutoffs.key_star, dtype=np.float64)
    id_star = np.array(cutoffs.id_star, dtype=object)
    terms = []
    for pair in problem.native(probs, label):
        live = [c for c in pair.cells if np.isfinite(key_star[c]) or key_star[c] == -np.inf]
        if not live:
            continue  # every cell of this pair selects nothing
        star = _state(key_star.astype(object), pair, T.DoubleType())
        tie_id = _state(id_star, pair, id_type)
        hit = (pair.key > star) | ((pair.key == star) & (ident <= tie_id))
        hit = F.coalesce(hit, F.lit(False))
        terms.append(hit if pair.valid is None else pair.valid & hit)
    if not terms:
        return F.lit(False)
    return row_expressions.balanced(lambda a, b: a | b, terms)


def could_select(problem: SelectionProblem, cutoffs: Cutoffs, probs: Column, label: Column) -> Column:
    """A constant-size necessary condition of :func:`selected` (True when the problem has none).

    A row whose largest key is below every cutoff of its label is selected nowhere.
    """
    if problem.native_max_key is None:
        return F.lit(True)
    key_star = np.asarray(cutoffs.key_star, dtype=np.float64)
    pairs = problem.native(probs, label)  # the pairs share their index (the label)
    lowest = np.min([key_star[p.cells] for p in pairs], axis=0)
    floor = F.get(F.array(*[F.lit(float(v)) for v in lowest]), pairs[0].index)
    return F.coalesce(problem.native_max_key(probs, label) >= floor, F.lit(False))
