"""numpy kernels of the OUTRE regression score (no Spark here).

Points are cleanlab's 2-D OUTRE features: ``u`` = the standardised label, ``v`` = ``residual_scale``
times the standardised residual (prediction - label). Every row's raw OUTRE statistic is the mean of
its ``k`` smallest Euclidean distances to all N points, the row's own point included (cleanlab
queries its fitted ``NearestNeighbors`` with the same features, so each row finds itself at
distance 0).

* :func:`knn_distance_sums` (executors, inside ``mapInArrow``): the exact sum of the k smallest
  distances from each query point to a reference multiset, by ``numpy.partition`` over blocks of
  queries: O(queries x N) time, O(64 x N) memory. The sum of the k smallest values does not depend
  on how ties are ordered.
* :func:`grid_node_values` (driver, grid-sized): the same statistic evaluated at the nodes of a
  lattice against the per-cell counts of a fine grid, each cell's points taken at the cell's
  centre (the approximate route of ``scores.py``).
* :func:`grid_lines` / :func:`weighted_median`: the grid geometry and a median of grid cells.
"""

from __future__ import annotations

import numpy as np

QUERY_BLOCK = 64  # queries per numpy block: 64 x N distances at a time


def knn_distance_sums(qu: np.ndarray, qv: np.ndarray, ru: np.ndarray, rv: np.ndarray, k: int) -> np.ndarray:
    """Sum of the ``k`` smallest distances from each query (qu, qv) to the reference points (ru, rv).

    Squared distances ``du² + dv²`` are partitioned (same order as the distances), then the k
    smallest are square-rooted and summed. Each query's result depends only on its own point and
    the reference array (pass the reference in a fixed order for bit-for-bit determinism).
    """
    out = np.empty(len(qu), dtype=np.float64)
    kth = k - 1
    for i in range(0, len(qu), QUERY_BLOCK):
        du = np.subtract.outer(qu[i:i + QUERY_BLOCK], ru)
        du *= du
        dv = np.subtract.outer(qv[i:i + QUERY_BLOCK], rv)
        dv *= dv
        du += dv
        du.partition(kth, axis=1)
        near = du[:, :k]
        np.sqrt(near, out=near)
        out[i:i + QUERY_BLOCK] = near.sum(axis=1)
    return out


def grid_lines(n_rows: int, cells: int) -> tuple[float, float]:
    """The fine grid in asinh space: cell edges ``-T + i·h`` for i = 0..cells, returned as (T, h).

    Standardised values satisfy |z| <= sqrt(N), so asinh(z) lies in [-T, T] with T = asinh(sqrt(N)):
    the grid covers every point whatever the data, fine near the bulk (|z| ~ 1: cell width ~ h)
    and coarse in the tails (width ~ |z|·h), where few points lie.
    """
    T = float(np.arcsinh(np.sqrt(max(n_rows, 1))))
    return T, 2.0 * T / cells


def grid_node_values(cell_u: np.ndarray, cell_v: np.ndarray, counts: np.ndarray, node_u: np.ndarray,
                     node_v: np.ndarray, k: int) -> np.ndarray:
    """Mean distance to the k nearest points from every lattice node (len(node_u) x len(node_v)).

    Each occupied cell stands for ``counts`` points at its centre (cell_u, cell_v); per node the
    cells are sorted by distance and counts accumulated until k points: full cells contribute
    count x distance, the cell reaching k its remainder. Driver-side, O(nodes x cells log cells).
    """
    n_u, n_v, m = len(node_u), len(node_v), len(counts)
    out = np.empty((n_u, n_v), dtype=np.float64)
    rows = np.arange(n_v)
    idx = np.arange(m)[None, :]
    for a in range(n_u):
        d = np.sqrt((node_u[a] - cell_u)[None, :] ** 2 + (node_v[:, None] - cell_v[None, :]) ** 2)
        order = np.argsort(d, axis=1, kind="stable")
        ds = np.take_along_axis(d, order, 1)
        cs = counts[order]
        cum = np.cumsum(cs, axis=1)
        j = np.argmax(cum >= k, axis=1)
        full = np.where(idx < j[:, None], ds * cs, 0.0).sum(axis=1)
        before = np.where(j > 0, cum[rows, np.maximum(j - 1, 0)], 0)
        out[a] = (full + (k - before) * ds[rows, j]) / k
    return out


def bilinear(values: np.ndarray, node_u: np.ndarray, node_v: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of lattice ``values`` at points (u, v) (driver, for grid-sized inputs)."""
    ju = np.clip(np.searchsorted(node_u, u, side="right") - 1, 0, len(node_u) - 2)
    jv = np.clip(np.searchsorted(node_v, v, side="right") - 1, 0, len(node_v) - 2)
    wu = (u - node_u[ju]) / (node_u[ju + 1] - node_u[ju])
    wv = (v - node_v[jv]) / (node_v[jv + 1] - node_v[jv])
    return (values[ju, jv] * (1 - wu) * (1 - wv) + values[ju + 1, jv] * wu * (1 - wv)
            + values[ju, jv + 1] * (1 - wu) * wv + values[ju + 1, jv + 1] * wu * wv)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """numpy's median of ``values`` each repeated ``weights`` times (mean of the two middle ones)."""
    order = np.argsort(values, kind="stable")
    vals, cum = values[order], np.cumsum(weights[order])
    n = int(cum[-1])
    lo = vals[np.searchsorted(cum, (n - 1) // 2 + 1)]
    hi = vals[np.searchsorted(cum, n // 2 + 1)]
    return float((lo + hi) / 2.0)
