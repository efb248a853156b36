"""Per-item CROWDLAB maths on numpy batches (inside Arrow UDFs, on executors; never a whole table).

A batch holds n items' bundles: ``cells`` (each item's annotations as (annotator position a,
label index y), sorted by a) and the probabilities. The cells are laid out as padded (n, max m)
matrices ``A`` and ``Y`` (-1 where an item has fewer annotations), so that every sum over an
item's annotators runs column by column, i.e. in annotator order, exactly as cleanlab's loop over
the wide matrix's columns (adding 0.0 for a padded slot leaves a float sum unchanged). Sums over
classes use numpy on C-contiguous (n, K) rows, as cleanlab does, so results are bit-identical to
cleanlab on the same CPU class.

Spark 4.2 evaluates higher-order functions (``transform``, ``filter``, ``aggregate``) element by
element through an interpreted path that rebuilds a SQL configuration reader per array access;
measured on 100,000 items x 5 labels, one such pass took minutes. These kernels replace them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sparknoise.core.kernels import quality_scores

SMALL_CONST = 1e-30
TEMPERATURE_FLOOR = 1e-6


class Cells:
    """The batch's annotations: flat arrays (item row, a, y) and the padded (n, max m) matrices."""

    def __init__(self, cells: pa.Array) -> None:
        if isinstance(cells, pa.ChunkedArray):
            cells = cells.combine_chunks()
        offsets = cells.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = offsets - offsets[0]
        flat = cells.flatten()
        self.n = len(cells)
        self.m = np.diff(offsets)
        total = int(self.m.sum())
        self.a = flat.field("a").to_numpy(zero_copy_only=False).astype(np.int64)[:total]
        self.y = flat.field("y").to_numpy(zero_copy_only=False).astype(np.int64)[:total]
        self.row = np.repeat(np.arange(self.n), self.m)
        self.col = np.arange(total) - np.repeat(offsets[:-1], self.m)
        width = int(self.m.max()) if self.n else 0
        self.A = np.full((self.n, width), -1, dtype=np.int64)
        self.Y = np.full((self.n, width), -1, dtype=np.int64)
        self.A[self.row, self.col] = self.a
        self.Y[self.row, self.col] = self.y

    def counts(self, K: int) -> np.ndarray:
        """cnt[n, k]: how many of item n's annotators gave class k."""
        return np.bincount(self.row * K + self.y, minlength=self.n * K).reshape(self.n, K)

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """(n, max m) matrix of each cell's annotator weight, 0.0 in padded slots."""
        return np.where(self.A >= 0, weights[np.maximum(self.A, 0)], 0.0)

    def ordered_sum(self, values: np.ndarray) -> np.ndarray:
        """Per item, the (n, max m) values summed left to right (annotator order), from 0.0."""
        total = np.zeros(self.n)
        for c in range(values.shape[1]):
            total = total + values[:, c]
        return total


def untied_vote(cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the classes with the most votes as a boolean (n, K) mask, the single such class or -1)."""
    cand = cnt == cnt.max(axis=1, initial=0)[:, None]
    return cand, np.where(cand.sum(axis=1) == 1, cand.argmax(axis=1), -1)


def majority_vote(cells: Cells, cnt: np.ndarray, P: np.ndarray | None, freq: np.ndarray,
                  g: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vote, still tied, the vote of items untied before any tie-break or -1) per item.

    Most votes; among tied classes the highest p (with probabilities); then the class annotated
    least often in the whole table (``freq``: cleanlab keeps the rarer class); then the highest
    mean agreement ``g`` of the annotators who chose it (sums in annotator order). A tie left after
    that (cleanlab draws at random) goes to the lowest class.
    """
    cand, untied = untied_vote(cnt)
    if P is not None:
        tied = cand.sum(axis=1) > 1
        best = np.where(cand, P, -np.inf).max(axis=1)
        cand = np.where(tied[:, None], cand & (P == best[:, None]), cand)
    tied = cand.sum(axis=1) > 1
    rarest = np.where(cand, freq[None, :], np.iinfo(np.int64).max).min(axis=1)
    cand = np.where(tied[:, None], cand & (freq[None, :] == rarest[:, None]), cand)
    tied = cand.sum(axis=1) > 1
    if g is not None and tied.any():
        G = cells.weighted(g)
        K = cnt.shape[1]
        sums = np.zeros(cnt.shape)
        for c in range(cells.Y.shape[1]):
            hit = cells.Y[:, c][:, None] == np.arange(K)[None, :]
            sums = sums + np.where(hit, G[:, c][:, None], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = sums / cnt
        high = np.where(cand, scores, -np.inf).max(axis=1)
        cand = np.where(tied[:, None], cand & (scores == high[:, None]), cand)
    return cand.argmax(axis=1), cand.sum(axis=1) > 1, untied


def packed_distribution(cnt: np.ndarray, m: np.ndarray) -> np.ndarray:
    """cleanlab's empirical label distribution with its packing: the counts of the r distinct
    labels, in ascending label order, divided by m, in slots 0..r-1 (the class slots only when
    r == K or the labels are 0..r-1). The 'agreement' posterior and the calibration target."""
    n, K = cnt.shape
    order = np.argsort(cnt == 0, axis=1, kind="stable")
    packed = np.take_along_axis(cnt, order, axis=1) / m[:, None]
    return np.where(np.arange(K)[None, :] < (cnt > 0).sum(axis=1)[:, None], packed, 0.0)


def posterior(cells: Cells, P: np.ndarray, aw: np.ndarray, cl: float, ncl: float, mw: float) -> np.ndarray:
    """CROWDLAB's posterior: (p_k mw + sum over annotators in order of aw_j (cl if j chose k else
    ncl)) / (sum of the annotators' aw_j + mw)."""
    K = P.shape[1]
    W = cells.weighted(aw)
    tw = cells.ordered_sum(W) + mw
    post = P * mw
    classes = np.arange(K)[None, :]
    for c in range(cells.Y.shape[1]):
        present = (cells.A[:, c] >= 0)[:, None]
        w = W[:, c][:, None]
        post = post + np.where(present, np.where(cells.Y[:, c][:, None] == classes, w * cl, w * ncl), 0.0)
    return post / tw[:, None]


def best_quality(post: np.ndarray) -> np.ndarray:
    """The class with the highest posterior when it is unique, else -1 (the majority vote decides)."""
    top = post.max(axis=1)
    unique = (post == top[:, None]).sum(axis=1) == 1
    return np.where(unique, post.argmax(axis=1), -1)


def cell_scores(cells: Cells, post: np.ndarray, method: str) -> np.ndarray:
    """Each annotation's label quality under its item's posterior (flat, in cell order)."""
    return quality_scores(np.ascontiguousarray(post[cells.row]), cells.y, method)


def temp_scale(P: np.ndarray, temperature: float) -> np.ndarray:
    """cleanlab's ``temp_scale_pred_probs``: clip at 1e-30, normalise, softmax of ln(q)/T without a
    shift, normalise again (T = 1 is not the identity)."""
    q = np.clip(P, SMALL_CONST, None)
    q = q / np.sum(q, axis=1)[:, np.newaxis]
    e = np.exp(np.log(q) / max(temperature, TEMPERATURE_FLOOR))
    s = e / np.sum(e, axis=1)[:, np.newaxis]
    return s / np.sum(s, axis=1)[:, np.newaxis]


def soft_cross_entropy(P: np.ndarray, emp: np.ndarray, temperature: float) -> np.ndarray:
    """Per item, cleanlab's temperature-search score: softmax(ln p / T) (ln 0 = -inf, no shift),
    then -(sum_k emp_k ln max(s_k, 1e-30)) / ln K."""
    logp = np.log(P, where=P > 0, out=np.full(P.shape, -np.inf))
    e = np.exp(logp / max(temperature, TEMPERATURE_FLOOR))
    s = e / np.sum(e, axis=1, keepdims=True)
    return -np.sum(emp * np.log(np.clip(s, SMALL_CONST, None)), axis=1) / np.log(P.shape[1])
