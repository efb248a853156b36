"""find_data_issues: Datalab's issue types on a Spark DataFrame (driver orchestration).

Runs on the executors: the validating aggregation, the exact-duplicate grouping, the exact kNN
(``mapInArrow``, materialised once), the per-type row maps (joined by id and materialised once)
and one final aggregation for the summary (counts and mean scores). Reaches the driver: one-row aggregates, a few quantiles, the
label counts (K rows) and the group statistics (one row per group).

The ``label`` type is the Confident Learning engine (:func:`sparknoise.find_label_issues`) as Datalab runs
it: ``CleanLearning.find_label_issues`` on the given probabilities, i.e. prune_by_noise_rate with
``min_examples_per_class=10`` (each class keeps at least 10 rows unflagged; the filter's own default is 1),
scores the self-confidence ``p[label]``, the dataset score the overall label health score.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from fractions import Fraction
from functools import reduce
from typing import Sequence

import pandas as pd
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.audit import approximate, duplicates, issues
from sparknoise.audit import neighbors as exact_nn
from sparknoise.audit.inputs import ID, prepare, profile, require_clean_features
from sparknoise.audit.result import DataIssuesResult
from sparknoise.core.health import health_summary
from sparknoise.core.label_issues import find_label_issues
from sparknoise.core.row_expressions import exact_sum
from sparknoise.errors import ConfigError, InputError
from sparknoise.storage import materialised

log = logging.getLogger("sparknoise")

NEIGHBORS = ("auto", "exact", "approximate")
ISSUE_TYPES = ("label", "outlier", "near_duplicate", "class_imbalance", "null", "underperforming_group")
_KNN_TYPES = ("outlier", "near_duplicate")
CLUSTER = "__au_cluster"  # the KMeans cluster standing in for group_cols


def _probs_array(df: DataFrame, probs_col: str) -> Column:
    if probs_col not in df.columns:
        raise InputError(f"probabilities column '{probs_col}' is not in the input; available columns: "
                         f"{sorted(df.columns)}. Pass the right name as probs_col=...", column=probs_col)
    dt = df.schema[probs_col].dataType
    if type(dt).__name__ == "VectorUDT":
        return F.when(F.col(probs_col).isNotNull(), vector_to_array(F.col(probs_col), "float64"))
    if isinstance(dt, T.ArrayType):
        return F.transform(F.col(probs_col), lambda v: v.cast("double"))
    raise InputError(f"probabilities column '{probs_col}' has type {dt.simpleString()}; it must be an array of "
                     "numbers or an ML vector.", column=probs_col)


DATALAB_MIN_EXAMPLES_PER_CLASS = 10  # CleanLearning's default, which Datalab's label type runs with


def _mean(total, count: int) -> float:
    """An exact decimal sum over its count, rounded once to the nearest double (NaN for no rows)."""
    return float(Fraction(total) / count) if count else float("nan")


def _resolve_types(issue_types, *, has_features, has_label, has_probs, has_groups) -> tuple:
    # underperforming_group runs by default only with group_cols; asked for by name, features will do
    # (clusters of the features stand in for the segments)
    if issue_types is None:
        chosen = [t for t in ISSUE_TYPES if (
            (t == "label" and has_label and has_probs)
            or (t == "outlier" and (has_features or (has_label and has_probs)))
            or (t == "near_duplicate" and has_features)
            or (t == "class_imbalance" and has_label)
            or (t == "null" and has_features)
            or (t == "underperforming_group" and has_label and has_probs and has_groups))]
        if not chosen:
            raise ConfigError("no issue type can run: pass features= or features_col= (outlier, near_duplicate, "
                              "null), label_col= (class_imbalance) or label_col= with probs_col= (label).")
        return tuple(chosen)
    if isinstance(issue_types, str):
        issue_types = [issue_types]
    unknown = [t for t in issue_types if t not in ISSUE_TYPES]
    if unknown:
        raise ConfigError(f"unknown issue type(s) {unknown}; the issue types are {list(ISSUE_TYPES)}.")
    needs = {
        "label": (has_label and has_probs, "label_col= and probs_col="),
        "outlier": (has_features or (has_label and has_probs), "features= (or features_col=), or label_col= with "
                    "probs_col="),
        "near_duplicate": (has_features, "features= or features_col="),
        "null": (has_features, "features= or features_col="),
        "class_imbalance": (has_label, "label_col="),
        "underperforming_group": (has_label and has_probs and (has_groups or has_features),
                                  "label_col=, probs_col= and group_cols= (the segments to compare) or features= / "
                                  "features_col= (clustered into groups)"),
    }
    for t in issue_types:
        ok, what = needs[t]
        if not ok:
            raise ConfigError(f"issue type '{t}' needs {what}.")
    return tuple(t for t in ISSUE_TYPES if t in issue_types)


def find_data_issues(
    df: DataFrame,
    *,
    id_col: str = "id",
    features: Sequence[str] | None = None,
    features_col: str | None = None,
    label_col: str | None = None,
    probs_col: str | None = None,
    split_col: str | None = None,
    group_cols: Sequence[str] | None = None,
    issue_types: Sequence[str] | None = None,
    k: int = 10,
    max_exact_rows: int = exact_nn.MAX_EXACT_ROWS,
    scratch: str | None = None,
    neighbors: str = "auto",
    n_cells: int | None = None,
    n_probe: int | None = None,
    n_clusters: int | None = None,
    recall_target: float = approximate.RECALL_TARGET,
) -> DataIssuesResult:
    """Find Datalab's data issues (cleanlab 2.9.0) in ``df``: exact nearest neighbours up to
    ``max_exact_rows``, an approximate partitioned search beyond.

    Args:
        df: one row per example with a unique integer or string id.
        id_col: the unique id.
        features: numeric feature columns; or ``features_col``: one ML vector / numeric array column.
        label_col: the given label (class_imbalance; with probs_col also label, the probability-based
            outlier score and underperforming_group; then labels are ints 0..K-1 as in find_label_issues).
        probs_col: out-of-fold predicted probabilities (array or ML vector).
        split_col: the train/test split column; ``leakage()`` lists duplicates that straddle it.
        group_cols: the segments compared by ``underperforming_group`` (Datalab's ``cluster_ids``).
            Without them, ``issue_types=["underperforming_group"]`` with features compares KMeans clusters
            of the features instead (``sparknoise.audit.approximate.feature_clusters``; Datalab uses
            DBSCAN there, so that path has no parity).
        issue_types: any of ``label``, ``outlier``, ``near_duplicate``, ``class_imbalance``, ``null``,
            ``underperforming_group``; None: every type the given columns allow (underperforming_group
            only with group_cols).
        k: neighbours per row (Datalab's default 10); must be below the number of rows.
        max_exact_rows: the largest input the exact kNN runs on (N^2 d work) under ``neighbors="auto"``.
        scratch: a Delta location for the materialised neighbour lists (else ``localCheckpoint``).
        neighbors: ``"auto"`` (exact up to ``max_exact_rows`` rows, approximate beyond), ``"exact"``
            (a ConfigError above ``max_exact_rows``) or ``"approximate"``.
        n_cells: the approximate search's KMeans cells (None: about sqrt(N), at least 16).
        n_probe: the cells each row searches (None: tuned to ``recall_target``; more cells when those
            hold fewer than k + 1 rows).
        n_clusters: the feature clusters for underperforming_group without group_cols (None:
            ``clamp(round(sqrt(N / 50)), 2, 20)``).
        recall_target: with ``n_probe=None``, the approximate search probes the fewest cells whose
            recall@k, estimated on a deterministic sample of about 1,000 rows against their exact kNN,
            reaches this (default 0.95), up to a quarter of the cells (a warning says when that cap binds).

    The rules are those of Datalab's issue managers (``sparknoise.audit.issues`` states each); the
    metric is Datalab's default (cosine above 3 features, else euclidean).

    Nearest neighbours: exact (every pair's distance, on the executors,
    ``sparknoise.audit.neighbors``) or approximate (an IVF search: KMeans cells, each row compared with
    the rows of its ``n_probe`` nearest cells, same metric and output; ``sparknoise.audit.approximate``
    states the design and bench/RESULTS.md its measured recall). Answers equal Datalab's only where the
    search is exact. The search that ran is logged at INFO on the ``sparknoise`` logger and recorded in
    ``result.search`` and ``result.summary().attrs["search"]`` (``kind`` exact / approximate / none,
    metric, k, rows, features; for approximate also n_cells, n_probe, the centroid fit and the cell
    sizes, and with tuned probes the recall target, the estimated recall and its sample size). The neighbour lists,
    the exact-duplicate groups, the duplicate-set edges and ``rows`` are materialised once each
    (``localCheckpoint``, or Delta tables under ``scratch``), so ``duplicate_sets()`` and ``leakage()`` read them
    rather than hash or search the input again.

    Returns:
        a :class:`DataIssuesResult`: ``rows`` (materialised, one row per input row), ``summary()`` (per type:
        issue_type, num_issues, score), ``duplicate_sets()``, ``leakage()``, ``search``, ``info`` (the
        thresholds each rule used) and ``timings``.

    Raises:
        ConfigError: an unknown issue type, a type without its inputs, ``k`` out of range, too many rows
        for ``neighbors="exact"``, an unknown ``neighbors`` or a bad ``n_cells`` / ``n_probe`` / ``n_clusters`` / ``recall_target``. InputError: a missing or non-numeric column, null/NaN features for a
        nearest-neighbour type, a null or duplicate id, a null label.
    """
    has_groups = bool(group_cols)
    types = _resolve_types(issue_types, has_features=features is not None or features_col is not None,
                           has_label=label_col is not None, has_probs=probs_col is not None, has_groups=has_groups)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k={k!r} must be a positive integer (Datalab's default is 10).")
    if neighbors not in NEIGHBORS:
        raise ConfigError(f"neighbors={neighbors!r} is not a nearest-neighbour search; use one of {list(NEIGHBORS)}.")
    if split_col is not None and split_col not in df.columns:
        raise InputError(f"split column '{split_col}' is not in the input; available columns: {sorted(df.columns)}",
                         column=split_col)
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = round(now - clock[0], 3)
        clock[0] = now

    inp = profile(prepare(df, id_col=id_col, features=features, features_col=features_col, label_col=label_col))
    knn_types = [t for t in types if t in _KNN_TYPES and inp.has_features]
    for t in knn_types:
        require_clean_features(inp, t)
    if knn_types and k >= inp.n_rows:  # before any pass (the label engine's included) runs
        raise ConfigError(f"k={k} must be below the number of rows ({inp.n_rows}): each row needs k other rows "
                          "as neighbours. Lower k.")
    probs = _probs_array(inp.df, probs_col) if probs_col is not None else None
    lap("validate")

    parts: list[issues.IssueColumns] = []
    info: dict[str, dict] = {}
    search: dict = {"kind": "none"}
    edges = exact = comp = knn = None
    label_result = None
    if "label" in types:
        # Datalab's label type is CleanLearning.find_label_issues on the given probabilities, whose default
        # differs from filter.find_label_issues' in one setting: min_examples_per_class=10 (a class keeps at
        # least 10 rows unflagged), where the filter's own default is 1
        label_result = find_label_issues(df, label_col=label_col, probs_col=probs_col, id_col=id_col,
                                         min_examples_per_class=DATALAB_MIN_EXAMPLES_PER_CLASS,
                                         check_unique_ids=False)  # checked above
    if "label" in types:
        ident = F.col(id_col).cast("long") if inp.df.schema[ID].dataType == T.LongType() else F.col(id_col)
        rows = label_result.rows.select(ident.alias(ID), F.col("is_label_issue"),
                                        F.col("label_quality").alias("label_score"))
        parts.append(issues.IssueColumns("label", rows, score=float(
            health_summary(label_result).overall_label_health_score)))
        lap("label")
    if knn_types:
        metric = exact_nn.decide_metric(inp.dim)
        kind = neighbors if neighbors != "auto" else ("exact" if inp.n_rows <= max_exact_rows else "approximate")
        if kind == "exact" and inp.n_rows > max_exact_rows:
            raise ConfigError(f"the input has {inp.n_rows:,} rows, above max_exact_rows={max_exact_rows:,} for the exact "
                              "nearest-neighbour search (N^2 d work); raise max_exact_rows= to run it anyway, or use "
                              "neighbors='approximate' (or 'auto').")
        search = {"kind": kind, "metric": metric, "k": k, "n_rows": inp.n_rows, "dim": inp.dim}
        if kind == "exact":
            log.info("find_data_issues: exact %d-nearest-neighbour search, %s distance, %d rows x %d features%s",
                     k, metric, inp.n_rows, inp.dim,
                     f" (auto: exact up to max_exact_rows={max_exact_rows:,})" if neighbors == "auto" else "")
            knn = materialised(exact_nn.knn(inp.df, k=k, metric=metric, n_rows=inp.n_rows), scratch, "audit.knn")
        else:
            lazy, settings = approximate.knn(inp.df, k=k, metric=metric, n_rows=inp.n_rows, n_cells=n_cells,
                                             n_probe=n_probe, recall_target=recall_target)
            search.update(settings)
            log.info("find_data_issues: approximate %d-nearest-neighbour search (IVF: %d KMeans cells, %d probed per "
                     "row), %s distance, %d rows x %d features%s", k, settings["n_cells"], settings["n_probe"], metric,
                     inp.n_rows, inp.dim,
                     f" (auto: exact up to max_exact_rows={max_exact_rows:,})" if neighbors == "auto" else "")
            knn = materialised(lazy, scratch, "audit.knn")
        lap("knn")
        stats = issues.neighbour_stats(knn, k, inp.n_rows)
        lap("knn_stats")
        if "outlier" in types:
            parts.append(issues.outlier_from_knn(knn, k, metric, stats))
        if "near_duplicate" in types:
            nd = issues.near_duplicate(knn, stats)
            # the rows with an identical twin, computed once: the sets, leakage() and duplicate_sets() read them
            exact = materialised(exact_nn.exact_duplicate_groups(inp.df), scratch, "audit.exact_groups")
            near = issues.near_duplicate_edges(knn, nd.info["radius"])
            set_edges = materialised(duplicates.all_edges(near, duplicates.exact_stars(exact)), scratch,
                                     "audit.duplicate_edges")
            edges = duplicates.all_edges(near, duplicates.exact_pairs(exact))  # lazy: for leakage()
            lap("duplicate_pairs")
            comp = duplicates.components(set_edges, scratch)
            lap("duplicate_sets")
            nd.rows = nd.rows.join(comp, ID, "left")
            parts.append(nd)
    elif "outlier" in types:
        thresholds = (label_result.thresholds if label_result is not None
                      else issues.class_thresholds(inp, probs))
        parts.append(issues.outlier_from_probs(inp.df, probs, thresholds, inp.n_rows))
    if "outlier" in types and not knn_types:
        lap("outlier")
    if "class_imbalance" in types:
        parts.append(issues.class_imbalance(inp))
        lap("class_imbalance")
    if "null" in types:
        parts.append(issues.null(inp))
    if "underperforming_group" in types:
        if label_result is None:
            issues.class_thresholds(inp, probs)  # checks the labels and probabilities
        if group_cols:
            parts.append(issues.underperforming_group(inp, probs, label_col, list(group_cols)))
        else:
            require_clean_features(inp, "underperforming_group")
            clustered, n_groups = approximate.feature_clusters(
                inp.df, metric=exact_nn.decide_metric(inp.dim), n_rows=inp.n_rows, n_clusters=n_clusters,
                column=CLUSTER)
            log.info("find_data_issues: underperforming_group over %d KMeans clusters of the features (no group_cols; "
                     "Datalab's DBSCAN clusters differ)", n_groups)
            part = issues.underperforming_group(dataclasses.replace(inp, df=clustered), probs, label_col, [CLUSTER])
            part.info["groups_from"] = f"Spark ML KMeans, {n_groups} clusters of the features (seed {approximate.SEED})"
            if part.info.get("worst_group") is not None:
                part.info["worst_group"] = {"cluster": part.info["worst_group"][CLUSTER]}
            parts.append(part)
        lap("underperforming_group")

    rows = reduce(lambda a, b: a.join(b.rows, ID, "left"), parts, inp.df.select(F.col(ID)))
    order = [ID] + [c for p in parts for c in p.rows.columns if c != ID]
    # computed once (every type's row map and join), so the summary and every later action read it
    rows = materialised(rows.select(*order), scratch, "audit.rows")
    aggs = []
    for p in parts:
        # the mean score from an exact sum: the same value on every partitioning, where a double average
        # changes in its last bits with the row order
        score = F.col(f"{p.issue_type}_score")
        aggs += [F.sum(F.col(f"is_{p.issue_type}_issue").cast("long")).alias(f"n_{p.issue_type}"),
                 exact_sum(score).alias(f"s_{p.issue_type}"), F.count(score).alias(f"c_{p.issue_type}")]
    totals = rows.agg(*aggs).collect()[0]  # one aggregate row
    lap("summary")
    summary = pd.DataFrame({
        "issue_type": [p.issue_type for p in parts],
        "num_issues": [int(totals[f"n_{p.issue_type}"] or 0) for p in parts],
        "score": [float(p.score) if p.score is not None else _mean(totals[f"s_{p.issue_type}"], totals[f"c_{p.issue_type}"])
                  for p in parts],
    })
    summary.attrs["search"] = dict(search)  # which nearest-neighbour search ran (also result.search)
    for p in parts:
        info[p.issue_type] = p.info
    splits = None
    if split_col is not None:
        splits = inp.df.select(F.col(ID).alias("id"), F.col(split_col).alias("split"))
    exact_ids = exact.select(F.col(ID).alias("id"), "exact_set_id") if exact is not None else None
    sets = comp.select(F.col(ID).alias("id"), "near_duplicate_set_id") if comp is not None else None
    out_rows = rows.withColumnRenamed(ID, id_col)
    return DataIssuesResult(rows=out_rows, issue_types=tuple(p.issue_type for p in parts), summary_table=summary,
                            id_col=id_col, search=search, info=info, split_col=split_col, _edges=edges,
                            _splits=splits, _exact=exact_ids, _sets=sets, _knn=knn,
                            timings=timings)
