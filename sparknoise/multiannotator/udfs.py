"""The Arrow UDFs of CROWDLAB: per-item maths (:mod:`sparknoise.multiannotator.kernels`) on executors.

Each UDF sees one Arrow batch of items (their ``cells`` and probabilities) and broadcast
driver-side vectors of size K or M (class totals, annotator weights). They return structs and are
declared nondeterministic (they are deterministic) so that Spark evaluates each once per row
instead of once per field read.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pyspark.sql.functions import arrow_udf

from sparknoise.core.kernels import probs_matrix, quality_scores
from sparknoise.multiannotator import kernels as Kn


def counts_udf(K: int):
    """cells -> struct(cnt array<long>, mode int): label counts and the untied vote (-1 if tied)."""

    @arrow_udf("cnt array<long>, mode int")
    def counts(cells: pa.Array) -> pa.Array:
        c = Kn.Cells(cells)
        cnt = c.counts(K)
        _, mode = Kn.untied_vote(cnt)
        return pa.StructArray.from_arrays([pa.array(list(cnt), pa.list_(pa.int64())), pa.array(mode, pa.int32())],
                                          names=["cnt", "mode"])

    return counts.asNondeterministic()


def prepare_udf(K: int, freq: np.ndarray, g: np.ndarray | None, *, use_probs: bool, temperature: float | None):
    """(cells, p) -> struct(P, cnt, mv, tied, argmax): the probabilities CROWDLAB uses (temperature
    scaled when ``temperature`` is set), label counts, the majority vote and the model's argmax."""

    @arrow_udf("P array<double>, cnt array<long>, mv int, tied boolean, argmax int")
    def prepare(cells: pa.Array, probs: pa.Array) -> pa.Array:
        c = Kn.Cells(cells)
        cnt = c.counts(K)
        P = probs_matrix(probs, K) if use_probs else None
        if P is not None and temperature is not None:
            P = Kn.temp_scale(P, temperature)
        mv, tied, _ = Kn.majority_vote(c, cnt, P, freq, g)
        out_P = P if P is not None else np.zeros((c.n, K))
        return pa.StructArray.from_arrays([
            pa.array(list(out_P), pa.list_(pa.float64())), pa.array(list(cnt), pa.list_(pa.int64())),
            pa.array(mv, pa.int32()), pa.array(tied), pa.array(out_P.argmax(axis=1) if c.n else [], pa.int32())],
            names=["P", "cnt", "mv", "tied", "argmax"])

    return prepare.asNondeterministic()


def round_udf(K: int, *, quality_method: str, label_quality_method: str, aw: np.ndarray | None = None,
              cl: float = 0.0, ncl: float = 0.0, mw: float = 0.0):
    """(cells, P, cnt, m, cons) -> struct(post, cqs, q, best, aw_sum) for one consensus round.

    post: the CROWDLAB posterior (or, for ``agreement``, the packed label distribution); cqs: the
    consensus label's quality under it (``agreement``: the share of annotators agreeing); q: each
    annotation's quality (list aligned with cells); best: the unique argmax of post or -1; aw_sum:
    the item's annotator weights summed in annotator order (active learning)."""

    @arrow_udf("post array<double>, cqs double, q array<double>, best int, aw_sum double")
    def one_round(cells: pa.Array, probs: pa.Array, counts: pa.Array, m: pa.Array, cons: pa.Array) -> pa.Array:
        c = Kn.Cells(cells)
        labels = np.asarray(cons.to_numpy(zero_copy_only=False), dtype=np.int64)
        if quality_method == "agreement":
            cnt = probs_matrix(counts, K)
            mm = np.asarray(m.to_numpy(zero_copy_only=False), dtype=np.float64)
            post = Kn.packed_distribution(cnt, mm)
            cqs = cnt[np.arange(c.n), labels] / mm
            aw_sum = np.zeros(c.n)
        else:
            post = Kn.posterior(c, probs_matrix(probs, K), aw, cl, ncl, mw)
            cqs = quality_scores(post, labels, label_quality_method)
            aw_sum = c.ordered_sum(c.weighted(aw))
        q = Kn.cell_scores(c, post, label_quality_method)
        offsets = np.concatenate([[0], np.cumsum(c.m)]).astype(np.int32)
        return pa.StructArray.from_arrays([
            pa.array(list(post), pa.list_(pa.float64())), pa.array(cqs, pa.float64()),
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(q, pa.float64())),
            pa.array(Kn.best_quality(post) if c.n else [], pa.int32()), pa.array(aw_sum, pa.float64())],
            names=["post", "cqs", "q", "best", "aw_sum"])

    return one_round.asNondeterministic()


def cross_entropy_udf(K: int, temperatures: list[float]):
    """(cells, m, p) -> array<double>: each item's soft cross-entropy at every candidate temperature
    (null where not finite)."""

    @arrow_udf("array<double>")
    def cross_entropy(cells: pa.Array, m: pa.Array, probs: pa.Array) -> pa.Array:
        c = Kn.Cells(cells)
        mm = np.asarray(m.to_numpy(zero_copy_only=False), dtype=np.float64)
        emp = Kn.packed_distribution(c.counts(K), mm)
        P = probs_matrix(probs, K)
        ce = np.stack([Kn.soft_cross_entropy(P, emp, t) for t in temperatures], axis=1) if c.n else \
            np.zeros((0, len(temperatures)))
        flat = pa.array(ce.ravel(), pa.float64(), mask=~np.isfinite(ce.ravel()))
        offsets = pa.array(np.arange(c.n + 1, dtype=np.int32) * len(temperatures))
        return pa.ListArray.from_arrays(offsets, flat)

    return cross_entropy.asNondeterministic()


def scaled_max_udf(K: int, temperature: float):
    """p -> the largest temperature-scaled probability of the row (active learning's unlabelled pool)."""

    @arrow_udf("double")
    def scaled_max(probs: pa.Array) -> pa.Array:
        P = probs_matrix(probs, K)
        return pa.array(Kn.temp_scale(P, temperature).max(axis=1) if len(P) else [], pa.float64())

    return scaled_max.asNondeterministic()
