"""Datalab's issue types as Spark columns: each rule as cleanlab 2.9.0's issue managers apply it.

Every function returns an :class:`IssueColumns`: a lazy DataFrame keyed by the row id with the
type's ``is_<type>_issue`` and ``<type>_score`` columns (row maps on the executors), and the
driver-side numbers the rule needed (a few quantiles or K- / group-sized counts).

* ``outlier`` from features (``OutlierIssueManager`` on the kNN graph): a row's average distance to
  its k nearest neighbours ``a``; it is an outlier when ``a > Q3 + (1/0.37037 - 1) * IQR`` (quartiles
  of ``a`` over all rows, linear interpolation as numpy's ``percentile``); score
  ``exp(-a / max(s, 1e-6))`` with ``s = max(median(a), 100 * machine epsilon)``, set to 1 where
  ``a`` is below the metric's precision tolerance (cosine ``100 * epsneg``, euclidean
  ``sqrt(100 * eps)``). Summary score: the mean score.
* ``outlier`` from probabilities only (``OutOfDistribution`` on pred_probs, with labels): the
  probabilities minus the per-class confident thresholds plus their maximum, renormalised; score
  ``1 - entropy / log K`` (``xlogy``: 0 log 0 = 0); an outlier when the score is below
  ``0.13 * median(score)``. Summary score: the mean score.
* ``near_duplicate`` (``NearDuplicateIssueManager``): ``m = max(median(nn), 1e-6)`` over the
  distance ``nn`` to each row's nearest neighbour; a row is flagged when a neighbour lies strictly
  within ``0.13 * m`` (its nearest one does); score ``1 - exp(-nn / m)``, 0 where ``|nn| <= 1e-8``.
  Summary score: the mean score.
* ``class_imbalance`` (``ClassImbalanceIssueManager``): class frequencies ``p`` over the sorted
  distinct labels, the rarest class the lowest-sorted on ties; its rows score ``p_rarest``, others
  1; they are flagged when ``p_rarest < 0.1 / K``. Summary score: ``p_rarest``.
* ``null`` (``NullIssueManager``): score = the fraction of the feature values that are neither
  null nor NaN; flagged when all are. Summary score: the mean score.
* ``underperforming_group`` (``UnderperformingGroupIssueManager`` with ``cluster_ids``): the
  groups are the distinct values of ``group_cols`` (dense ids in sorted order); groups with fewer
  than 5 rows are left out. Performance = mean self-confidence ``p[label]``; a group below the
  mean of the kept rows scores ``its mean / that mean`` (others 1); the lowest ratio (first group
  on ties) is flagged when below 0.1. Summary score: that lowest ratio (1.0 when none is below).
* ``label``: sparknoise's ``find_label_issues`` with cleanlab's defaults (prune_by_noise_rate,
  self_confidence), as Datalab's ``LabelIssueManager`` calls ``CleanLearning.find_label_issues``;
  score ``label_quality``. Summary score: ``overall_label_health_score`` of the health summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.audit.inputs import ID, LABEL, AuditInput, X
from sparknoise.audit.quantiles import numpy_quantiles
from sparknoise.core.estimates import confident_thresholds
from sparknoise.core.label_issues import adjusted_probs
from sparknoise.core.row_expressions import exact_sum
from sparknoise.errors import ConfigError, InputError

EPSILON = 1e-6  # cleanlab.internal.constants.EPSILON
OUTLIER_THRESHOLD = 0.37037
OUTLIER_PROBS_THRESHOLD = 0.13
NEAR_DUPLICATE_THRESHOLD = 0.13
IMBALANCE_THRESHOLD = 0.1
UNDERPERFORMING_THRESHOLD = 0.1
MIN_GROUP_ROWS = 5  # min_cluster_samples
MAX_CLASSES = 10_000
MAX_GROUPS = 10_000
NO_GROUP = -2  # Datalab's NO_UNDERPERFORMING_CLUSTER_ID


@dataclass
class IssueColumns:
    """One issue type's per-row columns (lazy, keyed by ``__au_id``) and its driver-side numbers."""

    issue_type: str
    rows: DataFrame
    score: float | None = None  # the dataset score when it is not the mean of the row scores
    info: dict[str, Any] = field(default_factory=dict)


def _mean(values: Column, k: int) -> Column:
    return F.aggregate(values, F.lit(0.0), lambda acc, v: acc + v) / F.lit(float(k))


def neighbour_stats(knn: DataFrame, k: int, n_rows: int) -> dict[str, float]:
    """Quartiles and median of the average kNN distance (``np.percentile`` 25 / 75, ``np.median``) and the
    median nearest distance, exactly as numpy gives them (``sparknoise.audit.quantiles``: bounded memory)."""
    q1, q3, median_avg = numpy_quantiles(knn, _mean(F.col("nn_dists"), k), [0.25, 0.75, "median"], n_rows)
    (median_nn,) = numpy_quantiles(knn, F.col("nn_dists")[0], ["median"], n_rows)
    return {"q1": q1, "median_avg": median_avg, "q3": q3, "median_nn": median_nn}


def outlier_from_knn(knn: DataFrame, k: int, metric: str, stats: dict[str, float]) -> IssueColumns:
    scale = 1.0 / OUTLIER_THRESHOLD - 1.0
    issue_threshold = stats["q3"] + scale * (stats["q3"] - stats["q1"])
    scaling = max(stats["median_avg"], 100 * float(np.finfo(np.float64).eps))
    tol = (100 * float(np.finfo(np.float64).epsneg) if metric == "cosine"
           else math.sqrt(100 * float(np.finfo(np.float64).eps)))
    avg = _mean(F.col("nn_dists"), k)
    score = F.when(avg < F.lit(tol), F.lit(1.0)).otherwise(F.exp(-avg / F.lit(max(scaling, EPSILON))))
    rows = knn.select(F.col(ID), (avg > F.lit(issue_threshold)).alias("is_outlier_issue"),
                      score.alias("outlier_score"))
    return IssueColumns("outlier", rows, info={"issue_threshold": issue_threshold, "scaling_factor": scaling,
                                                "source": "features"})


def ood_scores(probs: Column, thresholds: np.ndarray) -> Column:
    """``1 - normalized entropy`` of the confident-threshold-adjusted probabilities (native, per row)."""
    adj = adjusted_probs(probs, thresholds)
    log_k = math.log(len(thresholds))
    ent = F.aggregate(adj, F.lit(0.0), lambda acc, p: acc - F.when(p == 0, F.lit(0.0)).otherwise(p * F.log(p)))
    return F.lit(1.0) - ent / F.lit(log_k)


def class_thresholds(inp: AuditInput, probs: Column) -> np.ndarray:
    """cleanlab's confident thresholds (per-class mean self-confidence, 2.0 for an absent class, at least
    2e-6) from one aggregation grouped by label (<= K + 1 rows to the driver). Checks on the way that
    the labels are integers 0..K-1, K the (equal) length of the probability rows."""
    stats = (inp.df.groupBy(F.col(LABEL)).agg(
        F.count(F.lit(1)).alias("n"), F.sum(self_confidence(probs, F.col(LABEL))).alias("s"),
        F.min(F.size(probs)).alias("kmin"), F.max(F.size(probs)).alias("kmax"),
        F.sum((probs.isNull() | F.exists(probs, lambda v: v.isNull() | F.isnan(v) | (v < 0) | (v > 1)))
              .cast("long")).alias("bad"))
        .limit(MAX_CLASSES + 1).collect())  # <= MAX_CLASSES + 1 rows, one per label value
    kmin = min(int(r["kmin"]) for r in stats)
    kmax = max(int(r["kmax"]) for r in stats)
    if kmin != kmax or kmin < 2:
        raise InputError(f"probability rows have lengths {kmin} to {kmax}; every row needs the same K >= 2 "
                         "probabilities.", column=None)
    if sum(int(r["bad"] or 0) for r in stats):
        raise InputError("the probabilities have null, NaN or out-of-[0, 1] entries; every row needs K probabilities "
                         "within [0, 1].", column=None)
    counts, sums = np.zeros(kmax, dtype=np.int64), np.zeros(kmax)
    for r in stats:
        v = r[LABEL]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer, float)) or float(v) != int(v) \
                or not 0 <= int(v) < kmax:
            raise InputError(f"label column '{inp.label_col}' has the value {v!r}; with probabilities the labels "
                             f"must be the class indices 0..{kmax - 1}.", column=inp.label_col)
        counts[int(v)] += int(r["n"])
        sums[int(v)] += float(r["s"])
    return confident_thresholds(counts, sums)


def outlier_from_probs(df: DataFrame, probs: Column, thresholds: np.ndarray, n_rows: int) -> IssueColumns:
    scored = df.select(F.col(ID), ood_scores(probs, thresholds).alias("outlier_score"))
    (median,) = numpy_quantiles(scored, F.col("outlier_score"), ["median"], n_rows)
    issue_threshold = OUTLIER_PROBS_THRESHOLD * median
    rows = scored.select(F.col(ID), (F.col("outlier_score") < F.lit(issue_threshold)).alias("is_outlier_issue"),
                         "outlier_score")
    return IssueColumns("outlier", rows, info={"issue_threshold": issue_threshold, "source": "pred_probs"})


def near_duplicate(knn: DataFrame, stats: dict[str, float]) -> IssueColumns:
    median = max(stats["median_nn"], EPSILON)
    radius = NEAR_DUPLICATE_THRESHOLD * median
    nn = F.col("nn_dists")[0]
    score = F.when(F.abs(nn) <= F.lit(1e-8), F.lit(0.0)).otherwise(F.lit(1.0) - F.exp(-(F.lit(1.0 / median) * nn)))
    rows = knn.select(F.col(ID), (nn < F.lit(radius)).alias("is_near_duplicate_issue"),
                      score.alias("near_duplicate_score"), nn.alias("distance_to_nearest_neighbor"))
    return IssueColumns("near_duplicate", rows, info={"median_distance_to_nearest_neighbor": median,
                                                       "radius": radius})


def near_duplicate_edges(knn: DataFrame, radius: float) -> DataFrame:
    """(id, other_id, distance), id < other_id: neighbour pairs strictly within the radius (lazy; a pair
    found from both ends appears twice, ``duplicates.all_edges`` keeps one)."""
    pairs = knn.select(F.col(ID), F.explode(F.arrays_zip(F.col("nn_ids").alias("o"), F.col("nn_dists").alias("d")))
                       .alias("p")).filter(F.col("p.d") < F.lit(radius))
    a, b = F.col(ID), F.col("p.o")
    return pairs.select(F.least(a, b).alias("id"), F.greatest(a, b).alias("other_id"), F.col("p.d").alias("distance"))


def class_imbalance(inp: AuditInput) -> IssueColumns:
    counts = (inp.df.groupBy(F.col(LABEL)).count().limit(MAX_CLASSES + 1).collect())  # <= MAX_CLASSES + 1 rows
    if len(counts) > MAX_CLASSES:
        raise InputError(f"label column '{inp.label_col}' has more than {MAX_CLASSES} distinct values; "
                         "class_imbalance needs class labels.", column=inp.label_col)
    counts = sorted(((r[LABEL], int(r["count"])) for r in counts), key=lambda kv: kv[0])
    n = sum(c for _, c in counts)
    K = len(counts)
    probs = np.array([c for _, c in counts], dtype=np.int64) / n
    rarest = int(np.argmin(probs))
    rarest_label, p = counts[rarest][0], float(probs[rarest])
    exists = p < IMBALANCE_THRESHOLD * (1 / K)
    is_rarest = F.col(LABEL) == F.lit(rarest_label)
    rows = inp.df.select(F.col(ID), (is_rarest & F.lit(bool(exists))).alias("is_class_imbalance_issue"),
                         F.when(is_rarest, F.lit(p)).otherwise(F.lit(1.0)).alias("class_imbalance_score"))
    return IssueColumns("class_imbalance", rows, score=p,
                        info={"rarest_class": rarest_label if exists else None, "rarest_class_fraction": p})


def null(inp: AuditInput) -> IssueColumns:
    d = inp.dim if inp.features_col is not None else len(inp.feature_names)
    x = F.col(X)
    missing = F.when(x.isNull(), F.lit(d)).otherwise(
        F.aggregate(x, F.lit(0), lambda acc, v: acc + (v.isNull() | F.isnan(v)).cast("int")))
    non_null = F.lit(d) - missing
    rows = inp.df.select(F.col(ID), (non_null == 0).alias("is_null_issue"),
                         (non_null.cast("double") / F.lit(float(d))).alias("null_score"))
    return IssueColumns("null", rows)


def self_confidence(probs: Column, label: Column) -> Column:
    """``p[label]``; null for a label that is not an index of ``probs`` (native)."""
    index = label.try_cast("int") + 1
    return F.when(index >= 1, F.try_element_at(probs, index))


def underperforming_group(inp: AuditInput, probs: Column, label_col: str, group_cols: Sequence[str]) -> IssueColumns:
    for g in group_cols:
        if g not in inp.df.columns:
            raise InputError(f"group column '{g}' is not in the input; available columns: {sorted(inp.df.columns)}",
                             column=g)
    keys = [F.col(g) for g in group_cols]
    # an exact sum, so a group's mean does not depend on partitioning or row order (a double sum does, in its
    # last bits)
    conf = self_confidence(probs, F.col(label_col))
    stats = (inp.df.groupBy(*keys).agg(F.count(F.lit(1)).alias("n"), exact_sum(conf).alias("s"))
             .limit(MAX_GROUPS + 1).collect())  # <= MAX_GROUPS + 1 groups
    if len(stats) > MAX_GROUPS:
        raise ConfigError(f"group_cols={list(group_cols)} make more than {MAX_GROUPS} groups; pass coarser segments.")

    def sort_key(r):
        return tuple((r[g] is None, r[g]) for g in group_cols)

    stats = sorted(stats, key=sort_key)
    kept = [(i, r) for i, r in enumerate(stats) if r["n"] >= MIN_GROUP_ROWS]
    if not kept:
        raise InputError(f"no group of {list(group_cols)} has {MIN_GROUP_ROWS} or more rows; underperforming_group "
                         "needs groups of at least 5 rows (Datalab's min_cluster_samples).", column=group_cols[0])
    mean_perf = sum(float(r["s"]) for _, r in kept) / sum(int(r["n"]) for _, r in kept)
    worst_ratio, worst = 1.0, min(i for i, _ in kept) - 1
    ratios: dict[int, float] = {}
    for i, r in kept:
        perf = float(r["s"]) / int(r["n"])
        if perf < mean_perf:
            ratios[i] = perf / mean_perf
            if perf < worst_ratio:
                worst_ratio, worst = ratios[i], i
    worst = worst if worst_ratio < UNDERPERFORMING_THRESHOLD else NO_GROUP
    spark = inp.df.sparkSession
    schema = T.StructType([*(inp.df.schema[g] for g in group_cols),
                           T.StructField("__au_gscore", T.DoubleType()), T.StructField("__au_gworst", T.BooleanType()),
                           T.StructField("__au_gid", T.IntegerType())])
    table = spark.createDataFrame(
        [tuple(r[g] for g in group_cols) + (ratios.get(i, 1.0), i == worst, i) for i, r in enumerate(stats)], schema)
    joined = inp.df.join(F.broadcast(table), [inp.df[g].eqNullSafe(table[g]) for g in group_cols], "left")
    rows = joined.select(F.col(ID), F.coalesce(F.col("__au_gworst"), F.lit(False)).alias("is_underperforming_group_issue"),
                         F.coalesce(F.col("__au_gscore"), F.lit(1.0)).alias("underperforming_group_score"),
                         F.col("__au_gid").alias("group_id"))
    return IssueColumns("underperforming_group", rows, score=worst_ratio,
                        info={"groups": len(stats), "worst_group": dict(zip(group_cols, [stats[worst][g] for g in group_cols]))
                              if worst >= 0 else None, "mean_performance": mean_perf})
