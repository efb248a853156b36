"""Exact distributed top-q selection: one cutoff per group ("cell") instead of a sort per group.

cleanlab flags, per group, the first ``q`` rows under an order (for prune_by_noise_rate: rows of
given class k by margin p_j - p_k descending, for each true class j). Here every such group is a
*cell*; each candidate row has a float *key* in a cell, larger = selected first, ties broken by
the row id ascending. Instead of sorting, sparknoise finds each cell's cutoff ``(key*, id*)``, the
q-th element, so that the final row map flags a row iff ``key > key*`` or ``key == key*`` and
``id <= id*``. Only K(K-1)-sized state reaches the driver.

How the cutoffs are found, with no N-sized shuffle and nothing N-sized on the driver:

1. histogram: per cell, counts of candidate keys in ``B`` equal-width buckets over the key range
   (dense per task, emitted sparse, merged by a small aggregation; at most a few times
   HISTOGRAM_BUDGET entries reach the driver). An earlier pass computes it while it reads the
   table anyway (``HistogramPlan``, ``buckets_for`` buckets per cell): on the native route pass 2 (per-task
   bincounts in its ``mapInArrow``), else the Arrow pass 1 when the cells are few; otherwise
   one ``mapInArrow`` scan over the active cells does. The driver finds, per cell, the bucket holding
   the q-th key and how many keys lie above it;
2. boundary scan (Arrow, after an optional native prefilter that drops rows which cannot reach
   any boundary bucket): only candidates that fall in their cell's boundary bucket are emitted; a
   ``row_number`` window over those few rows, per cell, by (key desc, id asc), picks the exact
   q-th element.

With more active cells than a histogram can hold (K in the hundreds, where quotas are small),
step 1-2 are replaced by one scan in which every task keeps its q best candidates per cell
(bounded by the sum of the quotas), and the same window picks the q-th of their union.

Cells whose quota covers every candidate select everything without a scan.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core import kernels, row_expressions

log = logging.getLogger("sparknoise")

KEY_LOW = -1.0001  # every key is a difference of probabilities or a negated score: within [-1, 1]
KEY_HIGH = 1.0001
HISTOGRAM_BUDGET = 1 << 19  # cells x buckets held per task (and collected) by a histogram
FUSED_MIN_BUCKETS = 256  # fuse the histogram into pass 1 only at this resolution or better
MAX_BUCKETS = 1 << 14
MIN_BUCKETS = 64
# Above TOP_Q_FACTOR * HISTOGRAM_BUDGET / MIN_BUCKETS active cells (32,768), per-task top-q replaces the
# histogram. Below, the histogram at MIN_BUCKETS may exceed the budget up to that factor: at K = 100
# (9,900 cells) it measured 4x faster than top-q.
TOP_Q_FACTOR = 4
# Up to this many active cells the selection's per-cell quotas go to the executors as one map literal;
# above (K in the hundreds), as a broadcast table.
NEED_LITERAL_MAX_CELLS = 4096

# Up to this K, prune_by_noise_rate's candidates of a batch are computed on the whole (rows, K) matrix at
# once (n x K float64 per batch); above, class by class over the rows of that class.
DENSE_CANDIDATES_MAX_CLASSES = 64

# A candidate function maps a batch (label indices, P) to three aligned arrays:
# row positions in the batch, cell ids, keys.
CandidateFn = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class Cutoffs:
    """Per-cell selection rule: a row is selected iff key > key_star or (== and id <= id_star)."""

    key_star: np.ndarray  # (n_cells,) float64; -inf selects every candidate, +inf none
    id_star: list  # (n_cells,) the tie-breaking id at the cutoff, None when not needed

    def selected(self, cells: np.ndarray, keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Which candidates (cell, key, id) are selected."""
        star = self.key_star[cells]
        chosen = keys > star
        ties = np.flatnonzero(keys == star)
        for t in ties:  # exact ties at a cutoff are rare; compare ids one by one
            ident = self.id_star[cells[t]]
            chosen[t] = ident is not None and ids[t] <= ident
        return chosen


@dataclass(frozen=True)
class NativePair:
    """One candidate of a row as Spark expressions (native_selection.py reads these).

    ``cell`` is the candidate's cell and ``valid`` whether the row is a candidate here at all
    (None: always; a separate condition, because a ``when`` around the cell that is then tested
    for null measured 6x slower), ``key`` its key (the same float64 operations as the batch
    function, -0.0 normalised), and the cell's
    per-cell state is ``state[cells][index]``: ``index`` picks among the few cells this pair can
    fall in (for prune_by_noise_rate's pair j, the row's label picks cell label*K + j).
    """

    cell: Column
    key: Column
    index: Column
    cells: np.ndarray
    valid: Column | None = None


# A native candidate function maps (probs, label index) columns to the row's candidate pairs.
NativeFn = Callable[[Column, Column], "list[NativePair]"]


@dataclass(frozen=True)
class NativeSlots:
    """A problem's K candidates per row as array functions over slots j = 0..n_slots-1 (native_selection.py).

    The same candidates as the problem's ``native`` pairs (pair j is slot j), written once as lambdas
    of the slot number for ``transform``/``exists``, so that the expression does not grow with K:
    ``key(probs, label, j)`` the key of slot j (the pair's float64 operations), ``valid(label, j)``
    whether the row is a candidate there, ``cell(label, j)`` its cell, and ``cells[i, j]`` the cell of
    slot j for a row of state index ``index(label) = i`` (numpy, for the per-cell state).
    """

    n_slots: int
    index: Callable[[Column], Column]
    key: Callable[[Column, Column, Column], Column]
    valid: Callable[[Column, Column], Column]
    cell: Callable[[Column, Column], Column]
    cells: np.ndarray  # (n_index, n_slots) int64


@dataclass(frozen=True)
class SelectionProblem:
    """Cells, their quotas and candidate counts, and how to enumerate candidates in a batch."""

    n_cells: int
    quotas: np.ndarray  # (n_cells,) int64: how many to select in each cell
    candidates_per_cell: np.ndarray  # (n_cells,) int64: how many candidates each cell has
    candidates: CandidateFn
    native: NativeFn | None = None  # the same candidates as Spark expressions, when expressible
    # an upper bound of the row's keys as one constant-size expression (prefilters the per-cell test)
    native_max_key: Callable[[Column, Column], Column] | None = None
    # the pairs as array functions over K slots, for problems with one pair per class (large K)
    native_slots: NativeSlots | None = None


def candidates_of(problem: SelectionProblem, labels: np.ndarray, P: np.ndarray):
    """The problem's candidates in a batch, with -0.0 keys normalised to 0.0 (Spark sorts them apart)."""
    rows, cells, keys = problem.candidates(labels, P)
    return rows, cells, keys + 0.0


def _buckets(keys: np.ndarray, n_buckets: int) -> np.ndarray:
    scaled = (keys - KEY_LOW) * (n_buckets / (KEY_HIGH - KEY_LOW))
    return np.clip(np.floor(scaled), 0, n_buckets - 1).astype(np.int64)


def _batches_as_arrays(batch: pa.RecordBatch, num_classes: int):
    labels = kernels.int_column(batch.column(0))
    P = kernels.probs_matrix(batch.column(1), num_classes)
    return labels, P


def _histogram_fn(problem: SelectionProblem, num_classes: int, n_buckets: int, cells: np.ndarray):
    """mapInArrow function: per task, the histogram of the active ``cells`` only (row i of the result is
    cells[i]), so that its size is len(cells) x n_buckets (within HISTOGRAM_BUDGET), not n_cells x n_buckets:
    at K = 1000 the latter is 10 GB per task for the few hundred active cells of a small input."""
    position = np.full(problem.n_cells, -1, dtype=np.int32)
    position[cells] = np.arange(cells.size, dtype=np.int32)

    def histogram(batches):
        counts = np.zeros(cells.size * n_buckets, dtype=np.int64)
        for batch in batches:
            labels, P = _batches_as_arrays(batch, num_classes)
            _, cand_cells, keys = candidates_of(problem, labels, P)
            at = position[cand_cells]
            keep = at >= 0
            flat = at[keep].astype(np.int64) * n_buckets + _buckets(keys[keep], n_buckets)
            counts += np.bincount(flat, minlength=counts.size)
        nz = np.flatnonzero(counts)
        if nz.size:
            yield pa.RecordBatch.from_arrays(
                [pa.array(nz // n_buckets, pa.int32()), pa.array(nz % n_buckets, pa.int32()), pa.array(counts[nz])],
                names=["cell", "bucket", "n"],
            )

    return histogram


def _boundary_fn(problem: SelectionProblem, num_classes: int, n_buckets: int, boundary: np.ndarray):
    def boundary_rows(batches):
        for batch in batches:
            labels, P = _batches_as_arrays(batch, num_classes)
            rows, cells, keys = candidates_of(problem, labels, P)
            hit = boundary[cells] == _buckets(keys, n_buckets)
            if not hit.any():
                continue
            ids = batch.column(2).take(pa.array(rows[hit]))
            yield pa.RecordBatch.from_arrays(
                [pa.array(cells[hit], pa.int32()), pa.array(keys[hit], pa.float64()), ids],
                names=["cell", "key", "id"],
            )

    return boundary_rows


def _best_per_cell(cells: np.ndarray, keys: np.ndarray, ids: np.ndarray, quotas: np.ndarray) -> np.ndarray:
    """Positions of the first quotas[cell] candidates of each cell by (key desc, id asc)."""
    order = np.argsort(ids, kind="stable")  # object arrays (string ids) sort too
    order = order[np.argsort(-keys[order], kind="stable")]
    order = order[np.argsort(cells[order], kind="stable")]
    sorted_cells = cells[order]
    starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order[rank < quotas[sorted_cells]]


def _top_q_fn(problem: SelectionProblem, num_classes: int, quotas: np.ndarray):
    """mapInArrow function: per task, the quotas[cell] best candidates of every active cell.

    Keeps at most sum(quotas) candidates in memory, merging batch by batch.
    """

    def top_q(batches):
        cells = np.zeros(0, dtype=np.int64)
        keys = np.zeros(0)
        ids = None
        for batch in batches:
            labels, P = _batches_as_arrays(batch, num_classes)
            rows, c, k = candidates_of(problem, labels, P)
            keep = quotas[c] > 0
            batch_ids = kernels.id_column(batch.column(2))[rows[keep]]
            cells = np.concatenate([cells, c[keep]])
            keys = np.concatenate([keys, k[keep]])
            ids = batch_ids if ids is None else np.concatenate([ids, batch_ids])
            best = _best_per_cell(cells, keys, ids, quotas)
            cells, keys, ids = cells[best], keys[best], ids[best]
        if ids is not None and len(ids):
            id_arr = pa.array(ids.tolist()) if ids.dtype == object else pa.array(ids)
            yield pa.RecordBatch.from_arrays(
                [pa.array(cells, pa.int32()), pa.array(keys, pa.float64()), id_arr], names=["cell", "key", "id"]
            )

    return top_q


def buckets_for(n_cells: int) -> int:
    """Histogram resolution for ``n_cells`` cells within the per-task budget."""
    return int(np.clip(HISTOGRAM_BUDGET // max(n_cells, 1), MIN_BUCKETS, MAX_BUCKETS))


# A native histogram (native_selection.histogram_entries, exploded into a hash count) costs one row per
# (row, candidate) and grows with the number of distinct groups (10M x 10: 1.1 s per 1M rows at 22k
# groups, 3.4 s at 470k), so it would use these coarser buckets. The library no longer counts it that way:
# pass 2 bins the keys with numpy at buckets_for's resolution (confident_joint.py).
NATIVE_HISTOGRAM_GROUPS = 1 << 15


def native_buckets_for(n_cells: int) -> int:
    """Histogram resolution of the native (hash-count) histogram for ``n_cells`` cells."""
    return int(np.clip(NATIVE_HISTOGRAM_GROUPS // max(n_cells, 1), MIN_BUCKETS, FUSED_MIN_BUCKETS))


@dataclass(frozen=True)
class HistogramPlan:
    """Histograms of several problems' keys in one flat array (cells of problem i start at offsets[i]).

    Built before the quotas are known, over every cell a problem could use, so that pass 1 can
    histogram the keys while it reads the table for the thresholds anyway.
    """

    problems: tuple[SelectionProblem, ...]
    n_buckets: int

    @property
    def offsets(self) -> list[int]:
        return list(np.cumsum([0] + [p.n_cells for p in self.problems])[:-1])

    @property
    def n_cells(self) -> int:
        return int(sum(p.n_cells for p in self.problems))

    def indices(self, labels: np.ndarray, P: np.ndarray) -> np.ndarray:
        """Flat histogram index (cell * n_buckets + bucket) of every candidate in a batch."""
        parts = []
        for offset, problem in zip(self.offsets, self.problems):
            _, cells, keys = candidates_of(problem, labels, P)
            parts.append((cells + offset) * self.n_buckets + _buckets(keys, self.n_buckets))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def split(self, entries) -> list[np.ndarray]:
        """Dense (n_cells, n_buckets) histograms per problem from (flat cell, bucket, count) rows (a list of
        triples or an (m, 3) integer array)."""
        dense = np.zeros((self.n_cells, self.n_buckets), dtype=np.int64)
        rows = np.asarray(entries, dtype=np.int64).reshape(-1, 3)
        np.add.at(dense, (rows[:, 0], rows[:, 1]), rows[:, 2])
        return [dense[o : o + p.n_cells] for o, p in zip(self.offsets, self.problems)]


def fusable(problems: list[SelectionProblem]) -> bool:
    """Whether the problems' histograms fit the per-task budget at a useful resolution."""
    return sum(p.n_cells for p in problems) * FUSED_MIN_BUCKETS <= HISTOGRAM_BUDGET


def _histogram_scan(source: DataFrame, problem: SelectionProblem, num_classes: int, n_buckets: int,
                    cells: np.ndarray) -> np.ndarray:
    """(len(cells), n_buckets): row i is the histogram of cells[i]."""
    rows = (
        source.mapInArrow(_histogram_fn(problem, num_classes, n_buckets, cells), "cell int, bucket int, n long")
        .groupBy("cell", "bucket")
        .agg(F.sum("n").alias("n"))
        .collect()
    )  # <= TOP_Q_FACTOR x HISTOGRAM_BUDGET rows, whatever N
    dense = np.zeros((cells.size, n_buckets), dtype=np.int64)
    for r in rows:
        dense[r["cell"], r["bucket"]] = r["n"]
    return dense


def _locate(histogram: np.ndarray, quotas: np.ndarray, cells: np.ndarray,
            n_cells: int) -> tuple[np.ndarray, dict[int, int]]:
    """Per cell, the bucket holding the q-th largest key and its rank within that bucket.

    ``histogram`` row i is the histogram of cells[i]."""
    boundary = np.full(n_cells, -1, dtype=np.int64)
    need: dict[int, int] = {}
    n_buckets = histogram.shape[1]
    for i, c in enumerate(cells):
        from_top = np.cumsum(histogram[i][::-1])
        at = int(np.searchsorted(from_top, quotas[c]))  # first position with cumulative >= q
        if at >= n_buckets:
            raise RuntimeError(f"selection cell {c} has {from_top[-1]} candidates for a quota of {quotas[c]}")
        bucket = n_buckets - 1 - at
        above = int(from_top[at] - histogram[i][bucket])
        boundary[c] = bucket
        need[int(c)] = int(quotas[c] - above)
    return boundary, need


def find_cutoffs(
    source: DataFrame,
    problem: SelectionProblem,
    *,
    num_classes: int,
    id_type: T.DataType,
    histogram: np.ndarray | None = None,
    boundary_prefilter: Callable[[np.ndarray, int], Column] | None = None,
    one_task: bool = False,
) -> Cutoffs:
    """Exact cutoffs for every cell of ``problem``; ``source`` has columns (label index, probs, id).

    ``histogram`` (n_cells, n_buckets), when an earlier pass already counted the keys, saves one
    scan. ``boundary_prefilter(boundary, n_buckets)``, when given, is a native condition that every
    row with a key in its cell's boundary bucket meets: the boundary scan reads only those rows.
    ``one_task``: ``source`` is one partition (a frame built from local data): the candidates stay in
    that task, so the window needs no shuffle (one Spark job instead of two).
    """
    started = time.perf_counter()
    quotas = np.asarray(problem.quotas, dtype=np.int64)
    available = np.asarray(problem.candidates_per_cell, dtype=np.int64)
    key_star = np.full(problem.n_cells, np.inf)
    id_star: list = [None] * problem.n_cells
    everything = (quotas > 0) & (quotas >= available)
    key_star[everything] = -np.inf
    active = (quotas > 0) & (quotas < available)
    cells = np.flatnonzero(active)
    if cells.size == 0:
        return Cutoffs(key_star=key_star, id_star=id_star)

    spark: SparkSession = source.sparkSession
    schema = T.StructType(
        [T.StructField("cell", T.IntegerType()), T.StructField("key", T.DoubleType()), T.StructField("id", id_type)]
    )
    order = Window.partitionBy("cell").orderBy(F.desc("key"), F.asc("id"))
    if histogram is None and cells.size * MIN_BUCKETS > TOP_Q_FACTOR * HISTOGRAM_BUDGET:
        # Too many cells for a histogram (K in the hundreds): their quotas are small, so each task
        # keeps its own q best candidates per cell and the window picks the q-th of their union.
        need = {int(c): int(quotas[c]) for c in cells}
        rows = source.mapInArrow(_top_q_fn(problem, num_classes, np.where(active, quotas, 0)), schema)
        method = "per-task top-q"
    else:
        if histogram is None:  # the active cells' rows only
            histogram = _histogram_scan(source, problem, num_classes, buckets_for(cells.size), cells)
        else:
            histogram = histogram[cells]
        n_buckets = histogram.shape[1]
        boundary, need = _locate(histogram, quotas, cells, problem.n_cells)
        method_rows = int(histogram[np.arange(cells.size), boundary[cells]].sum())
        scanned = source if boundary_prefilter is None else source.filter(boundary_prefilter(boundary, n_buckets))
        rows = scanned.mapInArrow(_boundary_fn(problem, num_classes, n_buckets, boundary), schema)
        method = f"{n_buckets} buckets each, {method_rows:,} boundary keys"
    if one_task:
        rows = rows.coalesce(1)
    ranked = rows.withColumn("rn", F.row_number().over(order))
    if len(need) <= NEED_LITERAL_MAX_CELLS:
        # the quotas as one map literal (parsed by the JVM in one call): a table of them built on the
        # driver is an RDD scan in classic Spark, whose broadcast costs a Spark job of its own
        need_map = F.expr("map(" + ", ".join(f"{int(c)}, {int(n)}L" for c, n in need.items()) + ")")
        ranked = ranked.filter(F.col("rn") == F.element_at(need_map, F.col("cell")))
    else:
        need_df = spark.createDataFrame([(c, n) for c, n in need.items()], "cell int, need long")  # K(K-1)-sized
        ranked = ranked.join(F.broadcast(need_df), "cell").filter(F.col("rn") == F.col("need"))
    picked = ranked.select("cell", "key", "id").collect()  # one row per active cell
    for r in picked:
        key_star[r["cell"]] = r["key"]
        id_star[r["cell"]] = r["id"]
    missing = set(int(c) for c in cells) - {r["cell"] for r in picked}
    if missing:  # cannot happen unless the input changed between scans
        raise RuntimeError(f"selection found no cutoff for cells {sorted(missing)[:10]}; did the input change?")
    log.info("selection: %d cells, %s, cutoffs in %.1fs", cells.size, method, time.perf_counter() - started)
    return Cutoffs(key_star=key_star, id_star=id_star)


# ---------------------------------------------------------------------------------------------
# The three kinds of selection problem cleanlab uses.


def noise_rate_problem(pcm: np.ndarray, label_counts: np.ndarray, eligible: np.ndarray) -> SelectionProblem:
    """prune_by_noise_rate: cell k*K + j holds the rows of given class k keyed by p_j - p_k."""
    K = len(label_counts)
    quotas = np.zeros(K * K, dtype=np.int64)
    for k in range(K):
        if not eligible[k]:
            continue
        for j in range(K):
            if j != k and pcm[j][k] > 0:
                quotas[k * K + j] = int(pcm[j][k])
    available = np.repeat(np.asarray(label_counts, dtype=np.int64), K)
    pairs = [(k, np.flatnonzero(quotas[k * K : (k + 1) * K])) for k in range(K)]
    pairs = [(k, js) for k, js in pairs if js.size]
    allowed = quotas.reshape(K, K) > 0  # allowed[k, j]: rows of class k are candidates of cell k*K + j

    def candidates(labels: np.ndarray, P: np.ndarray):
        if K <= DENSE_CANDIDATES_MAX_CLASSES:  # one pass over the (rows, K) matrix, no loop over classes
            sc = P[np.arange(len(labels)), labels]
            mask = allowed[labels]
            rows, js = np.nonzero(mask)
            return rows, labels[rows].astype(np.int64) * K + js, (P - sc[:, None])[mask]
        rows, cells, keys = [], [], []
        for k, js in pairs:
            r = np.flatnonzero(labels == k)
            if r.size == 0:
                continue
            sub = P[r]
            margins = sub[:, js] - sub[:, [k]]  # (rows, len(js)), p_j - p_k exactly
            rows.append(np.repeat(r, js.size))
            cells.append(np.tile(k * K + js, r.size))
            keys.append(margins.ravel())
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        return np.concatenate(rows), np.concatenate(cells), np.concatenate(keys)

    def native(probs: Column, label: Column) -> list[NativePair]:
        sc = F.get(probs, label)
        return [
            NativePair(
                cell=label * F.lit(K) + F.lit(j),
                valid=label != F.lit(j),
                key=(F.get(probs, F.lit(j)) - sc) + F.lit(0.0),
                index=label,
                cells=np.arange(K) * K + j,
            )
            for j in range(K)
        ]

    def max_key(probs: Column, label: Column) -> Column:
        # max_j (p_j - p_k) = (max_j p_j) - p_k exactly: rounding a subtraction is monotone
        before, after = row_expressions.around_label(probs, label, K)
        return F.greatest(F.array_max(before), F.array_max(after)) - F.get(probs, label)

    slots = NativeSlots(
        n_slots=K,
        index=lambda label: label,
        key=lambda probs, label, j: (F.get(probs, j) - F.get(probs, label)) + F.lit(0.0),
        valid=lambda label, j: label != j,
        cell=lambda label, j: label * F.lit(K) + j,
        cells=np.arange(K * K, dtype=np.int64).reshape(K, K),
    )
    return SelectionProblem(n_cells=K * K, quotas=quotas, candidates_per_cell=available, candidates=candidates,
                            native=native, native_max_key=max_key, native_slots=slots)


def class_problem(quotas_per_class: np.ndarray, label_counts: np.ndarray) -> SelectionProblem:
    """prune_by_class: cell k holds the rows of given class k keyed by -p_k (lowest first)."""
    K = len(label_counts)

    def candidates(labels: np.ndarray, P: np.ndarray):
        rows = np.arange(len(labels))
        return rows, labels.astype(np.int64), -P[rows, labels]

    def native(probs: Column, label: Column) -> list[NativePair]:
        return [NativePair(cell=label, key=(-F.get(probs, label)) + F.lit(0.0), index=label, cells=np.arange(K))]

    return SelectionProblem(
        n_cells=K,
        quotas=np.asarray(quotas_per_class, dtype=np.int64),
        candidates_per_cell=np.asarray(label_counts, dtype=np.int64),
        candidates=candidates,
        native=native,
    )


def global_score_problem(quota: int, n_rows: int, method: str, num_classes: int = 0) -> SelectionProblem:
    """low_self_confidence / low_normalized_margin: one cell of every row keyed by -score.

    ``num_classes`` (needed by the native normalized margin) enables the native candidates.
    """

    def candidates(labels: np.ndarray, P: np.ndarray):
        rows = np.arange(len(labels))
        return rows, np.zeros(len(labels), dtype=np.int64), -kernels.quality_scores(P, labels, method)

    def native(probs: Column, label: Column) -> list[NativePair]:
        score = row_expressions.quality_score(probs, label, method, num_classes)
        return [NativePair(cell=F.lit(0), key=(-score) + F.lit(0.0), index=F.lit(0), cells=np.zeros(1, dtype=np.int64))]

    native_ok = num_classes > 0 and method in row_expressions.NATIVE_QUALITY_METHODS
    return SelectionProblem(
        n_cells=1,
        quotas=np.array([quota], dtype=np.int64),
        candidates_per_cell=np.array([n_rows], dtype=np.int64),
        candidates=candidates,
        native=native if native_ok else None,
    )
