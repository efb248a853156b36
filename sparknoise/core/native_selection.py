"""The selection's three row-level steps as native Spark expressions (no Python on the hot path).

Used when every selection problem has native candidates (selection.NativePair). A problem with
one candidate per class (prune_by_noise_rate's K pairs) is written as one term per class up to
``row_expressions.NATIVE_MAX_CLASSES`` (whole-stage code generation), and above it as array
functions over its K slots (selection.NativeSlots: ``transform``, ``exists``), whose expressions
have a constant size whatever K. Each runs on the executors, per row:

* ``histogram_entries``: the flat histogram index (cell x buckets + bucket) of every candidate of
  a row, as an array (an ``explode`` of it counts the histogram natively; pass 2 no longer does, it
  bins the keys with numpy in per-task arrays, confident_joint.py);
* ``boundary_prefilter``: a constant-size test that drops the rows which cannot hold a key in
  their cell's boundary bucket, before the Arrow boundary scan;
* ``selected``: whether a row is selected in any of its cells, ``key > key*`` or
  ``key == key* and id <= id*``. Per-cell state is read from small literal arrays indexed by the
  row's label (K entries per candidate), never from one K x K array per term: a plan with K copies
  of a K²-element literal exhausted a 2 GB driver at K = 100. Above NATIVE_MAX_CLASSES the state of
  a K-slot problem is not in the plan at all: ``slot_state`` builds a K-row table (per label, the
  live cells' slot, key* and id*: at most one entry per cell with a quota, K² at worst, sent as data)
  that the row map joins by broadcast, and ``exists`` tests the row's slots against its label's entry.

Bucketing is the batch functions' formula in the same float64 operations, so the native and the
Arrow paths put every key in the same bucket.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core import row_expressions
from sparknoise.core.selection import KEY_HIGH, KEY_LOW, Cutoffs, HistogramPlan, NativePair, SelectionProblem


def supported(problems) -> bool:
    """Whether every problem has native candidates."""
    return all(p.native is not None for p in problems)


def uses_slots(problem: SelectionProblem) -> bool:
    """Whether the problem's per-class candidates are written as array functions (K above the unrolled limit)."""
    return problem.native_slots is not None and problem.native_slots.n_slots > row_expressions.NATIVE_MAX_CLASSES


def _cells_by_index(problem: SelectionProblem, probs: Column, label: Column) -> tuple[Column, np.ndarray]:
    """The row's state index and the (n_index, n_candidates) matrix of the cells its candidates fall in."""
    if uses_slots(problem):
        return problem.native_slots.index(label), problem.native_slots.cells
    pairs = problem.native(probs, label)  # the pairs share their index (the label)
    return pairs[0].index, np.stack([p.cells for p in pairs], axis=1)


def bucket(key: Column, n_buckets: int) -> Column:
    """selection._buckets as an expression: equal-width buckets over [KEY_LOW, KEY_HIGH], clamped."""
    scaled = (key - F.lit(KEY_LOW)) * F.lit(n_buckets / (KEY_HIGH - KEY_LOW))
    return F.least(F.greatest(F.floor(scaled), F.lit(0)), F.lit(n_buckets - 1))


def histogram_entries(plan: HistogramPlan, probs: Column, label: Column) -> Column:
    """array<long>: each candidate's flat index (cell + problem offset) x buckets + bucket; null if none."""
    entries, arrays = [], []
    B = plan.n_buckets
    for offset, problem in zip(plan.offsets, plan.problems):
        if uses_slots(problem):  # one array function over the K slots (the row's entries as the index)
            arrays.append(F.transform(probs, _slot_entry(problem, int(offset), B, probs, label)))
            continue
        for pair in problem.native(probs, label):
            flat = (pair.cell + F.lit(int(offset))) * F.lit(B) + bucket(pair.key, B)
            entries.append(_when_valid(pair, flat.cast("long")))
    if entries:
        arrays.insert(0, F.array(*entries))
    return arrays[0] if len(arrays) == 1 else F.concat(*arrays)


def _slot_entry(problem: SelectionProblem, offset: int, n_buckets: int, probs: Column, label: Column):
    """``transform``'s lambda (entry, slot j) -> slot j's flat histogram index, null if not a candidate."""
    sl = problem.native_slots

    def entry(_: Column, j: Column) -> Column:
        flat = (sl.cell(label, j) + F.lit(offset)) * F.lit(n_buckets) + bucket(sl.key(probs, label, j), n_buckets)
        return F.when(sl.valid(label, j), flat.cast("long"))

    return entry


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
    index, by_index = _cells_by_index(problem, probs, label)
    edges = np.full(problem.n_cells, np.inf)
    edges[cells] = KEY_LOW + (boundary[cells] - 1) * ((KEY_HIGH - KEY_LOW) / n_buckets)
    floor = F.get(row_expressions.literal_array(edges[by_index].min(axis=1)), index)
    return F.coalesce(problem.native_max_key(probs, label) >= floor, F.lit(False))


def slot_state(problem: SelectionProblem, cutoffs: Cutoffs, spark: SparkSession, id_type: T.DataType,
               index_col: str, state_col: str) -> DataFrame:
    """The cutoffs of a K-slot problem as a table: per state index, the live cells' (slot, key*, id*).

    At most one row per index (K) and one entry per cell that selects something (a quota > 0), so
    the driver holds and ships data of the size of the quotas it already holds, not a plan literal.
    A cell selecting every candidate has key* = -inf and no id*.
    """
    key_star = np.asarray(cutoffs.key_star, dtype=np.float64)
    by_index = problem.native_slots.cells
    live = np.isfinite(key_star) | (key_star == -np.inf)
    rows = []
    for i in range(by_index.shape[0]):
        js = np.flatnonzero(live[by_index[i]])
        if js.size:
            cells = by_index[i, js]
            rows.append((i, [(int(j), float(key_star[c]), cutoffs.id_star[c]) for j, c in zip(js, cells)]))
    entry = T.StructType([T.StructField("j", T.IntegerType()), T.StructField("star", T.DoubleType()),
                          T.StructField("tie", id_type)])
    schema = T.StructType([T.StructField(index_col, T.IntegerType()), T.StructField(state_col, T.ArrayType(entry))])
    return spark.createDataFrame(rows, schema)  # <= K rows, <= one entry per cell with a quota


def selected(problem: SelectionProblem, cutoffs: Cutoffs, probs: Column, label: Column, ident: Column,
             id_type: T.DataType, state: Column | None = None) -> Column:
    """Whether the row is selected in one of its cells (never null).

    ``state``: for a K-slot problem (``uses_slots``), the row's entry of :func:`slot_state` (joined).
    """
    if uses_slots(problem):
        sl = problem.native_slots

        def hit(e: Column) -> Column:
            key = sl.key(probs, label, e["j"])
            return sl.valid(label, e["j"]) & ((key > e["star"]) | ((key == e["star"]) & (ident <= e["tie"])))

        return F.coalesce(F.exists(state, hit), F.lit(False))
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
    index, by_index = _cells_by_index(problem, probs, label)
    floor = F.get(row_expressions.literal_array(key_star[by_index].min(axis=1)), index)
    return F.coalesce(problem.native_max_key(probs, label) >= floor, F.lit(False))
