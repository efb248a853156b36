"""Native per-item expressions of CROWDLAB (cleanlab 2.9.0 ``multiannotator``), evaluated on executors.

Every function here builds a Spark Column over one item's *bundle*: ``cells``, its annotations as
an ``array<struct<a:int, y:int>>`` sorted by annotator position ``a`` (the rank of the annotator id
in ascending order, i.e. cleanlab's column order of the wide matrix) with the label index ``y``,
and ``p``, the item's probabilities as ``array<double>`` of length K. Nothing is collected: the
only inputs from the driver are K- or M-sized literal vectors (class totals, annotator weights).

The float operations are cleanlab's, in cleanlab's order: sums over an item's annotators run in
annotator order (as cleanlab's loop over the matrix columns does), and sums over the K classes
run left to right (numpy's order for K < 8; for K >= 8 numpy sums pairwise and results may
differ in the last bit, far below the 1e-9 parity tolerance).
"""

from __future__ import annotations

import math
from typing import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

CLIPPING_LOWER_BOUND = 1e-6  # lower clip of error rates, weights and the entropy score's confidence
SMALL_CONST = 1e-30  # lower clip of probabilities in temperature scaling and the soft cross-entropy
TEMPERATURE_FLOOR = 1e-6  # softmax divides by max(T, 1e-6)
# Deterministic, partition-independent float sums: every term is rounded to 18 decimals (an error
# below 1e-18 per term) and the decimals are added exactly, so the sum never depends on row order.
EXACT = "decimal(38,18)"


def vector(values: Sequence[float], kind: str = "double") -> Column:
    """A literal array (folded into one constant by Spark's optimizer)."""
    return F.array(*[F.lit(v).cast(kind) for v in values]) if len(values) else F.array().cast(f"array<{kind}>")


def classes_range(K: int) -> Column:
    return F.sequence(F.lit(0), F.lit(K - 1))


def exact_sum(value: Column) -> Column:
    """An order-independent sum of a double column, as a decimal aggregate (see EXACT)."""
    return F.sum(value.cast(EXACT))


def add(values: Column) -> Column:
    """Left-to-right sum of an array<double>."""
    return F.aggregate(values, F.lit(0.0), lambda acc, x: acc + x)


def label_counts(cells: Column, K: int) -> Column:
    """cnt[k]: how many of the item's annotators gave class k (array<int> of length K)."""
    return F.transform(classes_range(K), lambda k: F.size(F.filter(cells, lambda c: c["y"] == k)))


def packed_distribution(cnt: Column, m: Column, K: int) -> Column:
    """cleanlab's empirical label distribution, with its packing: the counts of the r distinct
    labels, in ascending label order, divided by m and written to slots 0..r-1 (which are the class
    slots only when r == K or the labels are 0..r-1). It is the posterior of the 'agreement' method
    and the target of the temperature search."""
    present = F.filter(classes_range(K), lambda k: F.get(cnt, k) > 0)
    return F.transform(classes_range(K), lambda i: F.when(
        i < F.size(present), F.get(cnt, F.get(present, i)).cast("double") / m.cast("double")).otherwise(F.lit(0.0)))


def first_argmax(values: Column) -> Column:
    """Index of the first maximum of an array<double> (numpy's argmax)."""
    return F.array_position(values, F.array_max(values)).cast("int") - 1


def let(value: Column, body) -> Column:
    """``body(v)`` with ``v`` bound to ``value`` evaluated once: Spark re-evaluates an expression at
    every reference inside a lambda, so values used per element (a row total) are bound first."""
    return F.get(F.transform(F.array(value), body), 0)


def temp_scale(p: Column, temperature: float) -> Column:
    """cleanlab's ``temp_scale_pred_probs``: clip at 1e-30, normalise, softmax of ln(q)/T, normalise
    twice (T = 1 is not the identity)."""
    t = F.lit(max(float(temperature), TEMPERATURE_FLOOR))
    clipped = F.transform(p, lambda x: F.greatest(x, F.lit(SMALL_CONST)))
    return let(clipped, lambda q: let(add(q), lambda q_total: let(
        F.transform(q, lambda x: F.exp(F.log(x / q_total) / t)), lambda e: let(add(e), lambda e_total: let(
            F.transform(e, lambda x: x / e_total), lambda s: let(add(s), lambda s_total: F.transform(
                s, lambda x: x / s_total)))))))


def soft_cross_entropy(p: Column, emp: Column, temperature: float, K: int) -> Column:
    """One item's soft cross-entropy at temperature T, as cleanlab's temperature search scores it:
    ln p (-inf where p <= 0), softmax(ln p / T) without a max shift, then
    -(sum_k emp_k ln max(s_k, 1e-30)) / ln K."""
    t = F.lit(max(float(temperature), TEMPERATURE_FLOOR))
    e = F.transform(p, lambda x: F.when(x > 0, F.exp(F.log(x) / t)).otherwise(F.lit(0.0)))
    return let(e, lambda ev: let(add(ev), lambda total: -add(F.zip_with(
        emp, ev, lambda a, x: a * F.log(F.greatest(x / total, F.lit(SMALL_CONST))))) / F.lit(math.log(K))))


def posterior(cells: Column, p: Column, *, aw: Column, cl: float, ncl: float, mw: float, K: int) -> Column:
    """CROWDLAB's posterior: for each class k, (p_k * mw + sum over annotators in order of
    aw_j * (cl if the annotator chose k else ncl)) / (sum of the annotators' aw_j + mw)."""
    weights = F.aggregate(cells, F.lit(0.0), lambda acc, c: acc + F.get(aw, c["a"])) + F.lit(mw)

    def one(k: Column, tw: Column) -> Column:
        start = F.get(p, k) * F.lit(mw)
        total = F.aggregate(cells, start, lambda acc, c: acc + F.when(
            c["y"] == k, F.get(aw, c["a"]) * F.lit(cl)).otherwise(F.get(aw, c["a"]) * F.lit(ncl)))
        return total / tw

    return let(weights, lambda tw: F.transform(classes_range(K), lambda k: one(k, tw)))


def quality_score(label: Column, post: Column, method: str, K: int) -> Column:
    """cleanlab ``rank.get_label_quality_scores`` for one row: self_confidence (post[label]),
    normalized_margin (((post[label] - max of the others) + 1) / 2) or confidence_weighted_entropy
    (ln(x + 1) / max(x, 1e-6) with x = normalised entropy / max(post[label], 1e-6))."""
    given = F.get(post, label)
    if method == "self_confidence":
        return given
    if method == "normalized_margin":
        other = F.array_max(F.filter(post, lambda x, i: i != label))
        return ((given - other) + F.lit(1.0)) / F.lit(2.0)
    if method == "confidence_weighted_entropy":
        sc = F.greatest(given, F.lit(CLIPPING_LOWER_BOUND))
        xlogx = F.transform(post, lambda r: F.when(r == 0, F.lit(0.0)).otherwise(r * F.log(r)))
        entropy = -add(xlogx) / F.lit(math.log(K))
        x = entropy / sc
        return F.log(x + F.lit(1.0)) / F.greatest(x, F.lit(CLIPPING_LOWER_BOUND))
    raise ValueError(method)


def majority_candidates(cnt: Column, p: Column | None, freq: Column, K: int, *, cells: Column | None = None,
                        g: Column | None = None) -> Column:
    """The classes still tied for an item's majority vote after cleanlab's rules (one class: no tie).

    The classes with the most votes; if several: keep those with the highest p (with
    probabilities), then those with the fewest annotations in the whole table (``freq``: cleanlab
    picks the rarer class), then those whose annotators have the highest mean ``g`` (each
    annotator's agreement with the untied majority votes, summed in annotator order). cleanlab
    breaks a tie that survives all three at random; the callers take the lowest class index and
    report how many items needed it. Each stage binds its candidates once (:func:`let`).
    """
    top = F.array_max(cnt)
    cand = F.filter(classes_range(K), lambda k: F.get(cnt, k) == top)

    def by_probability(c: Column) -> Column:
        best = F.array_max(F.transform(c, lambda k: F.get(p, k)))
        return F.when(F.size(c) > 1, F.filter(c, lambda k: F.get(p, k) == best)).otherwise(c)

    def by_rarity(c: Column) -> Column:
        rarest = F.array_min(F.transform(c, lambda k: F.get(freq, k)))
        return F.when(F.size(c) > 1, F.filter(c, lambda k: F.get(freq, k) == rarest)).otherwise(c)

    def by_annotators(c: Column) -> Column:
        def score(k: Column) -> Column:
            mine = F.filter(cells, lambda x: x["y"] == k)
            return F.aggregate(mine, F.lit(0.0), lambda acc, x: acc + F.get(g, x["a"])) / F.size(mine)

        def keep(scores: Column) -> Column:
            high = F.array_max(scores)
            return F.transform(F.filter(F.arrays_zip(c.alias("k"), scores.alias("s")), lambda z: z["s"] == high),
                               lambda z: z["k"])

        return F.when(F.size(c) > 1, let(F.transform(c, score), keep)).otherwise(c)

    if p is not None:
        cand = let(cand, by_probability)
    cand = let(cand, by_rarity)
    if g is not None and cells is not None:
        cand = let(cand, by_annotators)
    return cand
