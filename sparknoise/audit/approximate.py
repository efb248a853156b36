"""Approximate k nearest neighbours for large inputs: an inverted-file (IVF) partitioned search, on the
executors; and the feature clusters that stand in for segments in ``underperforming_group``.

Why this design. Spark ML's LSH (``BucketedRandomProjectionLSH``) answers similarity *joins* with a
distance threshold, not top-k lists, and its bucket collisions need many hash tables for a good
recall in 32 dimensions; a self-join of 200,000 rows there shuffles pairs, not candidates. An IVF
search keeps the same exact distance kernel as the exact path and bounds the work by the cell sizes:

1. **Cells** (:func:`fit_centroids`): k-means on a deterministic sample: the rows whose
   ``xxhash64(id)`` falls below ``SAMPLE_PER_CELL x n_cells / N`` of the hash range (at most
   ``MAX_SAMPLE``), fitted in one executor task (a single-group ``applyInArrow``) with numpy over the
   sample sorted by id: a k-means++ start drawn from ``numpy.random.default_rng(SEED)`` and at most
   ``KMEANS_ITER`` Lloyd rounds (an emptied cell keeps its centre). So the centroids depend neither
   on the row order nor on the partitioning. (Spark ML's ``KMeans`` does the same maths but runs one
   Spark job per round: 25 s for a 640-row sample on the shared development machine against 5 s for
   the whole fit here.) The vectors are the ones the metric compares: unit-normalised for cosine
   (``x / |x|``, a zero vector stays zero, as the exact path), raw for euclidean. Only the
   ``n_cells x d`` centroids reach the driver.
2. **Assignment** (``mapInArrow``, per row): each row's *home* cell is its nearest centroid (squared
   euclidean distance in the compared space; ties to the lower cell number). One aggregation counts
   the rows per home cell (``n_cells`` counts to the driver). Each row, as a query, *probes* its
   ``n_probe`` nearest cells, and more in order of distance until the probed cells hold at least
   ``k + 1`` rows, so every query has k candidates besides itself.
3. **Search** (one ``groupBy(cell).applyInArrow``): a cell's group holds its home rows (the
   references) and every query probing it; numpy computes the exact distances between them in chunks
   of ``CHUNK`` queries, with the exact path's formulas (cosine ``1 - <x/|x|, y/|y|>`` clipped to
   [0, 2], euclidean ``sqrt(sum (x_j - y_j)^2)``) and its corrections (the query itself excluded;
   vectors with the same ``xxhash64`` and equal compared vectors at distance 0; for cosine two scaled
   copies of one vector compare equal after normalising, and are at cosine distance ~1e-16 anyway).
   Each (query, cell) keeps its k best candidates, ties to the smaller id.
4. **Merge** (native): per query, the candidates of all probed cells (a reference has one home cell,
   so no candidate repeats) sorted by (distance, id) with ``array_sort`` and cut to k.
5. **Self-tuning** (:func:`tune_probes`, ``n_probe=None``, the default), after the cells are fitted
   and counted and before the search: the exact k nearest neighbours of a deterministic sample of
   about ``TUNE_QUERIES`` (1,000) rows, those whose ``xxhash64(id, SEED + 1)`` falls in the lowest ``1,000 / N`` of the hash
   range, against all N rows: the rows in ``ceil(N / TUNE_BLOCK_ROWS)`` blocks by ``xxhash64(id)``
   (one ``applyInArrow`` group each, ``TUNE_BLOCK_ROWS`` = 50,000 references), the sampled rows copied
   into every block, the same distance kernel and tie rule as step 3, the per-block lists merged as in
   step 4. For each (sampled query, true neighbour) pair the block function also records the *rank* of
   the neighbour's home cell in the query's probe order (the number of cells before it by squared
   distance to the query's vector, then cell number: step 2's order). A neighbour is found at
   ``n_probe = p`` exactly when that rank is below p (the extra cells step 2 adds for small cells only
   add to it), so the sample's recall@k at every p follows from a histogram of the ranks, the only
   thing that reaches the driver (<= n_cells rows: pair counts, and sums of ``2j - 1`` over each query's
   sorted ranks, which give each query's squared hit count, so the variance over queries too).
   :func:`choose_probes` picks the smallest p whose one-sided 95% lower bound (mean - 1.645 standard
   errors over the sampled queries) reaches ``recall_target`` (default ``RECALL_TARGET`` = 0.95), capped
   at ``max(DEFAULT_N_PROBE, ceil(MAX_PROBE_FRACTION x n_cells))`` (a quarter of the cells). When the cap
   binds, a WARNING says how many probes the target needs, what recall the cap gives, and that the
   search is then close to exact (``neighbors="exact"`` or an explicit ``n_probe=``). The estimate is
   unbiased for the recall over all rows (a uniform sample of queries); with 1,000 queries its
   standard error is below 0.005 near 0.95. ``n_probe=`` given: no estimate, the probes as given.
   ``result.search`` holds ``n_probe``, ``n_probe_from``, ``recall_target``, ``estimated_recall``,
   ``recall_sample``, ``probe_cap`` (and ``probes_needed`` when the cap bound); the INFO log the same.

Output: the exact path's columns, ``(id, nn_ids, nn_dists)`` with k entries nearest first, so the
outlier and near-duplicate rules downstream are unchanged. Where the true neighbour lies in a cell that
was not probed the list holds a farther row instead: distances are exact, lists may miss neighbours.
Deterministic: same input, same answer, at any partitioning (the samples are hash-picked, every
numpy step sorts its input by id or cell, and the tuned p is a function of the histogram).

Cost (``neighbors="auto"`` beyond ``max_exact_rows``; ``n_cells = clamp(round(sqrt(N)), 16,
MAX_CELLS)``): the centroid fit (one task, <= 100,000 sampled rows); two passes that assign every row
to its cell (counts; the tuning's references); the tuning: the N rows shuffled once into
``N / 50,000`` blocks plus ``1,000 x N / 50,000`` query copies, ``1,000 x N x d`` multiply-adds and
``1,000 x k x n_cells x N / 50,000`` comparisons for the ranks; the search: ``N x n_probe`` shuffled
query copies (each ~ d doubles + id + hash) and ``N x n_probe x N / n_cells x d`` multiply-adds, i.e.
``n_probe / n_cells`` of the exact search's work, plus the merge of ``N x n_probe`` lists of k. At 10M
x 32 (3,162 cells of ~3,162 rows): the tuning shuffles the 10M rows once into 200 blocks with 200,000
query copies and does 3.2e11 multiply-adds (about 1/n_probe of the search's shuffle); the search
shuffles ``n_probe x 10M`` query copies (40M at 4 probes, 120M at 12: the dominant cost, ~ 300 bytes
each) and does ``n_probe x 1.0e12`` multiply-adds. So the search's cost is linear in the probes the
data needs: a few on well-clustered features, a sixth of the cells on weakly clustered ones (measured
below), where the cap (a quarter of the cells, 790 at 10M) is in practice an exact search's work and the
warning says so.

Measured by ``bench/bench_audit_neighbors.py`` (bench/RESULTS.md, "Audit: approximate nearest
neighbours") at 200,000 x 32 (cosine, k = 10, 447 cells), against exact brute force over 2,000 query
rows. Fixed 12 probes (before the tuning): recall@10 1.0000 on clustered data (200 clusters, spread
0.5; 423 s on 2 cores at load average 20, the exact search estimated at ~5,900 s there; every planted
near duplicate flagged), but 0.676 on weakly clustered data (2,000 overlapping clusters, spread 1.0),
0.880 at 40 probes. Self-tuned (the default now): on the test's small case (2,000 x 8, 200
overlapping clusters, 64 cells) 4 fixed probes gave recall@10 0.834 against numpy brute force, the
tuned 8 probes 0.956 (estimated 0.957 on 988 sampled rows); at 3,000 x 16 with 150 cells, 12 probes
0.850, the tuned 25 probes 0.956 (estimated 0.958). At 200,000 x 32 (447 cells, bench/RESULTS.md):
weakly clustered, tuned 74 probes, estimated 0.955, measured recall@10 0.951, 582 s (load 17 -> 4);
clustered, tuned 3 probes, estimated 0.990, measured 0.990, 41 s (load 3.9).

Clusters for ``underperforming_group`` without ``group_cols`` (:func:`feature_clusters`): Spark ML
``KMeans`` (``seed=SEED``, ``k-means||`` start, ``KMEANS_ITER`` rounds) fitted on the deterministic
sample (at most 1,000 rows per cluster) sorted by id in one partition, with ``n_clusters = clamp(round(sqrt(N / 50)), 2,
MAX_FEATURE_CLUSTERS)`` unless given, on the compared vectors (unit-normalised above 3 features, as
Datalab's metric rule), every row assigned to its nearest centre natively (``model.transform``).
Datalab clusters with DBSCAN on its kNN graph instead, so these groups, and the flags, differ from
Datalab's: no parity is claimed for that path.
"""

from __future__ import annotations

import logging
import math
from typing import Iterator

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise.audit.inputs import ID, X
from sparknoise.audit.neighbors import HASH, distance_block, feature_hash
from sparknoise.errors import ConfigError

log = logging.getLogger("sparknoise")

SEED = 20261203
KMEANS_ITER = 10
SAMPLE_PER_CELL = 40  # sample rows per centroid for the KMeans fit
MAX_SAMPLE = 100_000
MIN_CELLS = 16
MAX_CELLS = 8_192
DEFAULT_N_PROBE = 12
MAX_FEATURE_CLUSTERS = 20
CHUNK = 512
ROWS = 2048  # rows per numpy block when comparing with the centroids
EXTRA = 6  # candidates kept beyond k before the (distance, id) sort, for ties at the k-th distance
V = "__au_v"  # the compared vector (unit-normalised for cosine)
CELL = "__au_cell"
ROLE = "__au_role"  # 0: a reference (home row), 1: a query probing the cell
HOME = "__au_home"  # a reference's home cell, carried through the recall estimate
BLOCK = "__au_block"
RECALL_TARGET = 0.95  # the default recall@k the probes are tuned to
TUNE_QUERIES = 1_000  # sampled query rows for the recall estimate
TUNE_BLOCK_ROWS = 50_000  # reference rows per block (one task) of the recall estimate
TUNE_CHUNK = 64  # queries per numpy block there (64 x 50,000 doubles of scratch)
MAX_PROBE_FRACTION = 0.25  # the tuned n_probe is capped at this share of the cells (at least DEFAULT_N_PROBE)


def default_cells(n_rows: int) -> int:
    """``clamp(round(sqrt(N)), MIN_CELLS, MAX_CELLS)``, never more than N / 2."""
    return max(1, min(max(MIN_CELLS, round(math.sqrt(n_rows))), MAX_CELLS, n_rows // 2))


def _normalise_function(metric: str, keep: tuple):
    """mapInArrow: the columns ``keep`` plus ``V``, the vector the metric compares (numpy, per row):
    ``x / |x|`` for cosine (a zero vector stays zero, as the exact path), else ``x``."""

    def run(batches: Iterator) -> Iterator:
        import numpy as np
        import pyarrow as pa

        for batch in batches:
            n = batch.num_rows
            x = batch.column(X)
            M = x.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False).reshape(n, -1) \
                if n else np.zeros((0, 0))
            if metric == "cosine" and n:
                norms = np.sqrt(np.einsum("ij,ij->i", M, M))
                norms[norms == 0.0] = 1.0
                M = M / norms[:, None]
            width = M.shape[1] if n else 0
            v = pa.FixedSizeListArray.from_arrays(pa.array(M.ravel(), type=pa.float64()), width) if n else \
                pa.array([], type=pa.list_(pa.float64()))
            yield pa.RecordBatch.from_arrays([*(batch.column(c) for c in keep), v.cast(pa.list_(pa.float64()))],
                                             names=[*keep, V])

    return run


def compared(df: DataFrame, metric: str, keep: tuple) -> DataFrame:
    """``df``'s columns ``keep`` and ``V`` (see :func:`_normalise_function`); lazy."""
    fields = ", ".join(f"{c} {df.schema[c].dataType.simpleString()}" for c in keep)
    return df.select(*keep, X).mapInArrow(_normalise_function(metric, keep), f"{fields}, {V} array<double>")


def _sample(df: DataFrame, n_rows: int, rows: int, seed: int = SEED) -> DataFrame:
    """The rows whose id hash (``xxhash64(id, seed)``) falls in the lowest ``rows / N`` of the hash range:
    the same rows whatever the input's order and partitioning (the fits sort them by id)."""
    frac = min(1.0, rows / max(n_rows, 1))
    u = (F.pmod(F.xxhash64(F.col(ID), F.lit(seed)), F.lit(1 << 30)).cast("double") / float(1 << 30))
    picked = df if frac >= 1.0 else df.filter(u < F.lit(frac))
    return picked


def _kmeans(sample: DataFrame, k: int, vec: str, distance: str = "euclidean"):
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.functions import array_to_vector

    data = sample.select(array_to_vector(F.col(vec)).alias("__au_features"))
    km = KMeans(k=k, seed=SEED, maxIter=KMEANS_ITER, featuresCol="__au_features", predictionCol="__au_pred",
                distanceMeasure=distance)
    return km.fit(data)


def _lloyd_function(n_cells: int, seed: int, iterations: int):
    """applyInArrow over the whole sample (one group): k-means++ start (numpy generator seeded with
    ``seed``, over the sample sorted by id) and ``iterations`` Lloyd rounds; an emptied cell keeps its
    centre. Returns the centres as (cell, centre) rows."""

    def run(table):
        import numpy as np
        import pyarrow as pa

        n = table.num_rows
        ids = table.column(ID).to_numpy()
        order = np.argsort(ids, kind="stable")
        M = table.column(V).combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(
            np.float64, copy=False).reshape(n, -1)[order]
        m2 = np.einsum("ij,ij->i", M, M)
        rng = np.random.default_rng(seed)
        c = min(n_cells, n)
        centres = np.empty((c, M.shape[1]))
        centres[0] = M[rng.integers(n)]
        best = np.maximum(m2 - 2 * M @ centres[0] + centres[0] @ centres[0], 0)
        for j in range(1, c):
            total = best.sum()
            pick = int(rng.choice(n, p=best / total)) if total > 0 else int(rng.integers(n))
            centres[j] = M[pick]
            best = np.minimum(best, np.maximum(m2 - 2 * M @ centres[j] + centres[j] @ centres[j], 0))
        for _ in range(iterations):
            cell = np.concatenate([np.argmin((centres * centres).sum(1)[None, :] - 2 * (M[a:a + ROWS] @ centres.T),
                                             axis=1) for a in range(0, n, ROWS)])
            sums = np.zeros_like(centres)
            np.add.at(sums, cell, M)
            sizes = np.bincount(cell, minlength=c)
            moved = sizes > 0
            new = centres.copy()
            new[moved] = sums[moved] / sizes[moved][:, None]
            if np.array_equal(new, centres):
                break
            centres = new
        return pa.table([pa.array(np.arange(c, dtype=np.int32)), pa.array(list(centres),
                                                                           type=pa.list_(pa.float64()))],
                        names=[CELL, "__au_centre"])

    return run


def fit_centroids(work: DataFrame, n_rows: int, n_cells: int):
    """``n_cells`` centroids of the column ``V`` as a numpy array (n_cells x d, to the driver): k-means
    in one executor task over the deterministic sample (module docstring)."""
    import numpy as np

    sample = _sample(work, n_rows, min(MAX_SAMPLE, SAMPLE_PER_CELL * n_cells)).select(F.col(ID), F.col(V))
    centres = (sample.groupBy(F.lit(0).alias("__au_one"))
               .applyInArrow(_lloyd_function(n_cells, SEED, KMEANS_ITER), f"{CELL} int, __au_centre array<double>")
               .collect())  # n_cells rows: the centroids
    centres = sorted(centres, key=lambda r: r[CELL])
    return np.array([np.asarray(r["__au_centre"], dtype=np.float64) for r in centres])


def _assign_function(centroids, counts, n_probe: int, k: int):
    """mapInArrow: (id, V, hash) -> + home cell (and, with ``counts``, the probed cells)."""

    def run(batches: Iterator) -> Iterator:
        import numpy as np
        import pyarrow as pa

        C = np.asarray(centroids, dtype=np.float64)
        c2 = np.einsum("ij,ij->i", C, C)
        cnt = np.asarray(counts if counts is not None else [0] * len(C), dtype=np.int64)
        for batch in batches:
            n = batch.num_rows
            v = batch.column(V)
            M = (v.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False).reshape(n, -1)
                 if n else np.zeros((0, C.shape[1])))
            homes, probes = np.zeros(n, dtype=np.int32), []
            for a in range(0, n, ROWS):
                D = c2[None, :] - 2.0 * (M[a:a + ROWS] @ C.T)  # |c|^2 - 2<x, c>: the order of |x - c|^2
                homes[a:a + len(D)] = np.argmin(D, axis=1)  # ties: the lower cell
                if counts is None:
                    continue
                w = min(len(C), max(2 * n_probe, 32))
                near = np.argpartition(D, w - 1, axis=1)[:, :w] if w < len(C) else np.tile(np.arange(len(C)),
                                                                                          (len(D), 1))
                rows = np.arange(len(D))[:, None]
                near = np.take_along_axis(near, np.lexsort((near, D[rows, near]), axis=1), axis=1)
                cum = np.cumsum(cnt[near], axis=1)
                for t in range(len(D)):
                    order, reach = near[t], cum[t]
                    if reach[-1] < k + 1:  # the nearest w cells hold too few rows: all cells in order
                        order = np.lexsort((np.arange(len(C)), D[t]))
                        reach = np.cumsum(cnt[order])
                    need = int(np.argmax(reach >= k + 1)) + 1
                    probes.append(order[:max(need, min(n_probe, len(C)))].astype(np.int32))
            arrays = [batch.column(ID), v, batch.column(HASH), pa.array(homes)]
            names = [ID, V, HASH, CELL]
            if counts is not None:
                arrays.append(pa.array(probes, type=pa.list_(pa.int32())))
                names.append("__au_probes")
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    return run


def _cell_function(k: int, metric: str, id_type, centroids=None, chunk: int = CHUNK):
    """applyInArrow over one group (a cell of the search, or a block of the recall estimate): the
    references' (``ROLE`` 0) and the queries' (``ROLE`` 1) exact distances, each query's top k. With
    ``centroids`` (the recall estimate), each neighbour's rank too, ``nn_carry``: the position of its home
    cell (column ``HOME``) in the query's probe order, i.e. the number of cells before it by (squared
    distance to the query, cell number), as :func:`_assign_function` orders them."""

    def run(table):
        import numpy as np
        import pyarrow as pa

        n = table.num_rows
        role = table.column(ROLE).to_numpy()
        ids = table.column(ID).to_numpy()
        hashes = table.column(HASH).to_numpy()
        M = table.column(V).combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(
            np.float64, copy=False).reshape(n, -1)
        ref = role == 0
        r_ids, R, r_hash = ids[ref], M[ref], hashes[ref]
        order = np.argsort(r_ids, kind="stable")  # references in id order: ties go to the smaller id
        r_ids, R, r_hash = r_ids[order], R[order], r_hash[order]
        carry = centroids is not None
        if carry:
            r_home = table.column(HOME).to_numpy()[ref][order]
            C = np.asarray(centroids, dtype=np.float64)
            c2 = np.einsum("ij,ij->i", C, C)
            cell_no = np.arange(len(C))
        q_ids, Q, q_hash = ids[~ref], M[~ref], hashes[~ref]
        out_ids, out_nn, out_d, out_c, lengths = [], [], [], [], []
        if len(r_ids) and len(q_ids):
            self_pos = np.searchsorted(r_ids, q_ids)
            self_pos[self_pos >= len(r_ids)] = 0
            is_self = r_ids[self_pos] == q_ids
            kk = min(k, len(r_ids))
            for s in range(0, len(q_ids), chunk):
                e = min(s + chunk, len(q_ids))
                D = distance_block(Q[s:e], R, metric, q_hash[s:e], r_hash)
                rows = np.arange(e - s)
                D[rows[is_self[s:e]], self_pos[s:e][is_self[s:e]]] = np.inf
                # the kk + EXTRA smallest per query, sorted by (distance, id) in one vectorised lexsort;
                # a query whose tie at the kk-th distance reaches past them is sorted in full
                w = min(kk + EXTRA, len(r_ids))
                part = np.argpartition(D, w - 1, axis=1)[:, :w] if w < len(r_ids) else np.tile(
                    np.arange(len(r_ids)), (e - s, 1))
                dp = D[rows[:, None], part]
                srt = np.lexsort((part, dp), axis=1)
                part = np.take_along_axis(part, srt, axis=1)
                dp = np.take_along_axis(dp, srt, axis=1)
                spill = (dp[:, kk - 1] == dp[:, w - 1]) & (w < len(r_ids))
                for t in np.nonzero(spill)[0]:
                    full = np.lexsort((np.arange(len(r_ids)), D[t]))[:w]
                    part[t], dp[t] = full, D[t, full]
                top, dtop = part[:, :kk], dp[:, :kk]
                finite = np.isfinite(dtop)  # the query itself, where fewer than kk others are in the cell
                out_ids.append(q_ids[s:e])
                out_nn.append(r_ids[top][finite])
                out_d.append(dtop[finite])
                if carry:
                    Dc = c2[None, :] - 2.0 * (Q[s:e] @ C.T)  # the order of |q - c|^2, as the probes
                    H = r_home[top]
                    dH = Dc[rows[:, None], H]
                    before = (Dc[:, None, :] < dH[:, :, None]) | (
                        (Dc[:, None, :] == dH[:, :, None]) & (cell_no[None, None, :] < H[:, :, None]))
                    out_c.append(before.sum(axis=2).astype(np.int32)[finite])
                lengths.append(finite.sum(axis=1))
        if out_ids:
            offsets = np.concatenate([[0], np.cumsum(np.concatenate(lengths))]).astype(np.int32)
            q, nn, dd = np.concatenate(out_ids), np.concatenate(out_nn), np.concatenate(out_d)
            cc = np.concatenate(out_c) if carry else None
        else:
            offsets, q, nn, dd = np.zeros(1, dtype=np.int32), ids[:0], ids[:0], np.zeros(0)
            cc = np.zeros(0, dtype=np.int32)
        arrays = [pa.array(q, type=id_type),
                  pa.ListArray.from_arrays(pa.array(offsets), pa.array(nn, type=id_type)),
                  pa.ListArray.from_arrays(pa.array(offsets), pa.array(dd, type=pa.float64()))]
        names = [ID, "nn_ids", "nn_dists"]
        if carry:
            arrays.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(cc, type=pa.int32())))
            names.append("nn_carry")
        return pa.table(arrays, names=names)

    return run


def choose_probes(hist: dict[int, tuple[int, int]], n_cells: int, k: int, target: float, cap: int) -> dict:
    """The smallest ``n_probe`` whose estimated recall@k reaches ``target`` (driver, n_cells-sized).

    ``hist[r] = (pairs, weight)``: over the sampled queries, the (query, true neighbour) pairs whose
    neighbour's home cell is the query's r-th nearest cell, and the sum of ``2j - 1`` over them where j
    is the pair's position in its query's sorted ranks. A query's recall at p is ``c_q(p) / k`` with
    ``c_q(p)`` its pairs of rank < p, and ``c_q(p)^2`` is the weight of those pairs, so the mean and the
    variance over queries follow from cumulative sums. The chosen p is the smallest whose one-sided
    95% lower bound ``mean - 1.645 se`` reaches ``target``, at most ``cap``."""
    pairs = [0] * n_cells
    weight = [0] * n_cells
    for r, (a, b) in hist.items():
        pairs[r], weight[r] = a, b
    queries = sum(pairs) / k
    need, a, b, at = n_cells, 0, 0, {}
    for p in range(1, n_cells + 1):
        a, b = a + pairs[p - 1], b + weight[p - 1]
        mean = a / (queries * k) if queries else 1.0
        var = max(b / (queries * k * k) - mean * mean, 0.0) if queries else 0.0
        at[p] = mean
        if mean - 1.645 * math.sqrt(var / max(queries, 1)) >= target:
            need = p
            break
    chosen = min(need, cap)
    return {"n_probe": chosen, "needed": need, "estimated_recall": round(at[chosen], 4),
            "recall_sample": int(round(queries))}


def tune_probes(homes: DataFrame, centroids, *, k: int, metric: str, n_rows: int, target: float,
                id_field: str) -> dict:
    """The probes for ``target`` recall@k (module docstring, "Self-tuning"): the exact kNN of a
    deterministic sample of about ``TUNE_QUERIES`` rows against all rows, on the executors, in blocks of
    ``TUNE_BLOCK_ROWS`` references; the rank of each true neighbour's home cell in its query's probe
    order; only a histogram of those ranks (<= n_cells rows) reaches the driver."""
    import pyarrow as pa

    n_cells = len(centroids)
    id_type = pa.int64() if id_field == "bigint" else pa.string()
    blocks = max(1, -(-n_rows // TUNE_BLOCK_ROWS))
    sample = _sample(homes, n_rows, TUNE_QUERIES, seed=SEED + 1)
    refs = homes.select(F.pmod(F.xxhash64(F.col(ID)), F.lit(blocks)).cast("int").alias(BLOCK),
                        F.lit(0).alias(ROLE), F.col(ID), F.col(V), F.col(HASH), F.col(CELL).alias(HOME))
    queries = sample.select(F.explode(F.sequence(F.lit(0), F.lit(blocks - 1))).alias(BLOCK), F.lit(1).alias(ROLE),
                            F.col(ID), F.col(V), F.col(HASH), F.lit(-1).alias(HOME))
    schema = f"{ID} {id_field}, nn_ids array<{id_field}>, nn_dists array<double>, nn_carry array<int>"
    partial = refs.unionByName(queries).groupBy(BLOCK).applyInArrow(
        _cell_function(k, metric, id_type, centroids=centroids, chunk=TUNE_CHUNK), schema)
    best = F.slice(F.array_sort(F.flatten(F.collect_list(F.arrays_zip("nn_dists", "nn_ids", "nn_carry")))), 1, k)
    ranks = partial.groupBy(F.col(ID)).agg(F.array_sort(F.transform(best, lambda s: s["nn_carry"])).alias("__au_ranks"))
    got = (ranks.select(F.posexplode("__au_ranks").alias("j", "r")).groupBy("r")
           .agg(F.count(F.lit(1)).alias("pairs"), F.sum(2 * F.col("j") + 1).alias("weight"))
           .collect())  # <= n_cells rows: a histogram of the true neighbours' cell ranks
    hist = {int(r["r"]): (int(r["pairs"]), int(r["weight"])) for r in got}
    cap = min(n_cells, max(DEFAULT_N_PROBE, math.ceil(MAX_PROBE_FRACTION * n_cells)))
    return {**choose_probes(hist, n_cells, k, target, cap), "probe_cap": cap}


def knn(df: DataFrame, *, k: int, metric: str, n_rows: int, n_cells: int | None = None,
        n_probe: int | None = None, recall_target: float = RECALL_TARGET) -> tuple[DataFrame, dict]:
    """(id, nn_ids, nn_dists): each row's approximate k nearest neighbours (module docstring), lazy but
    for the centroid fit, the cell counts and (``n_probe=None``) the recall estimate that picks the
    probes; and the settings that ran (``n_cells``, ``n_probe``, the estimated recall, ...)."""
    import pyarrow as pa

    cells = default_cells(n_rows) if n_cells is None else n_cells
    for name, value in (("n_cells", cells), ("n_probe", 1 if n_probe is None else n_probe)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name}={value!r} must be a positive integer (None: the default).")
    if isinstance(recall_target, bool) or not isinstance(recall_target, (int, float)) or not 0 < recall_target <= 1:
        raise ConfigError(f"recall_target={recall_target!r} must be a number in (0, 1] (default {RECALL_TARGET}).")
    if cells > n_rows:
        raise ConfigError(f"n_cells={cells} is more than the {n_rows} rows; lower n_cells (None: about sqrt(N)).")
    id_field = df.schema[ID].dataType
    id_type = pa.int64() if id_field.simpleString() == "bigint" else pa.string()
    work = compared(df.select(F.col(ID), F.col(X), feature_hash().alias(HASH)), metric, (ID, HASH))
    centroids = fit_centroids(work, n_rows, cells)
    homes = work.mapInArrow(_assign_function(centroids, None, 1, k),
                            f"{ID} {id_field.simpleString()}, {V} array<double>, {HASH} bigint, {CELL} int")
    got = homes.groupBy(CELL).count().collect()  # <= n_cells rows: rows per cell
    counts = [0] * len(centroids)
    for r in got:
        counts[int(r[CELL])] = int(r["count"])
    tuning: dict = {"n_probe_from": "given"}
    if n_probe is None:
        tuned = tune_probes(homes, centroids, k=k, metric=metric, n_rows=n_rows, target=float(recall_target),
                            id_field=id_field.simpleString())
        probe = tuned["n_probe"]
        tuning = {"n_probe_from": f"tuned to recall@{k} >= {recall_target} on a sample", "recall_target": recall_target,
                  "estimated_recall": tuned["estimated_recall"], "recall_sample": tuned["recall_sample"],
                  "probe_cap": tuned["probe_cap"]}
        log.info("approximate kNN: %d of %d cells probed per row, estimated recall@%d %.4f (target %s; exact kNN of "
                 "%d sampled rows against all %d)", probe, len(centroids), k, tuned["estimated_recall"],
                 recall_target, tuned["recall_sample"], n_rows)
        if tuned["needed"] > probe:
            tuning["probes_needed"] = tuned["needed"]
            log.warning("approximate kNN: on this data recall@%d %s needs %d probes of %d cells, above the cap of %d "
                        "(%.0f%% of the cells): the search runs %d probes, estimated recall %.4f. That is close to an "
                        "exact search: consider neighbors='exact' (with max_exact_rows raised) or an explicit n_probe=.",
                        k, recall_target, tuned["needed"], len(centroids), probe, 100 * MAX_PROBE_FRACTION, probe,
                        tuned["estimated_recall"])
    else:
        probe = n_probe
    schema = (f"{ID} {id_field.simpleString()}, {V} array<double>, {HASH} bigint, {CELL} int, "
              "__au_probes array<int>")
    probed = work.mapInArrow(_assign_function(centroids, counts, probe, k), schema)
    refs = probed.select(F.col(CELL), F.lit(0).alias(ROLE), F.col(ID), F.col(V), F.col(HASH))
    queries = probed.select(F.explode("__au_probes").alias(CELL), F.lit(1).alias(ROLE), F.col(ID), F.col(V),
                            F.col(HASH))
    out_schema = f"{ID} {id_field.simpleString()}, nn_ids array<{id_field.simpleString()}>, nn_dists array<double>"
    partial = refs.unionByName(queries).groupBy(CELL).applyInArrow(_cell_function(k, metric, id_type), out_schema)
    cand = F.zip_with(F.col("nn_dists"), F.col("nn_ids"), lambda d, i: F.struct(d.alias("d"), i.alias("i")))
    best = F.slice(F.array_sort(F.flatten(F.collect_list(cand))), 1, k)
    merged = partial.groupBy(F.col(ID)).agg(best.alias("__au_best"))
    result = merged.select(F.col(ID), F.transform("__au_best", lambda s: s["i"]).alias("nn_ids"),
                           F.transform("__au_best", lambda s: s["d"]).alias("nn_dists"))
    sizes = sorted(counts)
    settings = {"n_cells": len(centroids), "n_probe": probe, **tuning,
                "centroids": f"k-means++ and {KMEANS_ITER} Lloyd rounds "
                f"(seed {SEED}) on ~{min(n_rows, SAMPLE_PER_CELL * cells, MAX_SAMPLE):,} sampled rows",
                "largest_cell": sizes[-1], "median_cell": sizes[len(sizes) // 2]}
    return result, settings


def default_clusters(n_rows: int) -> int:
    """``clamp(round(sqrt(N / 50)), 2, MAX_FEATURE_CLUSTERS)``."""
    return max(2, min(MAX_FEATURE_CLUSTERS, round(math.sqrt(n_rows / 50))))


def feature_clusters(df: DataFrame, *, metric: str, n_rows: int, n_clusters: int | None, column: str) -> tuple:
    """``df`` with ``column``: each row's KMeans cluster of its features (module docstring); and the
    number of clusters asked for. KMeans fits on the deterministic sample, every row is assigned natively."""
    k = default_clusters(n_rows) if n_clusters is None else n_clusters
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= n_rows:
        raise ConfigError(f"n_clusters={k!r} must be an integer from 2 to the number of rows ({n_rows}).")
    from pyspark.ml.functions import array_to_vector

    work = compared(df, metric, (ID,))
    sample = _sample(work, n_rows, min(MAX_SAMPLE, 1000 * k))
    model = _kmeans(sample.orderBy(F.col(ID)).coalesce(1).select(F.col(V)), k, V)
    model.setFeaturesCol("__au_features").setPredictionCol(column)
    clusters = model.transform(work.select(F.col(ID), array_to_vector(F.col(V)).alias("__au_features")))
    return df.join(clusters.select(F.col(ID), F.col(column)), ID), k
