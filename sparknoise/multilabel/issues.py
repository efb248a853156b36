"""find_multilabel_issues: cleanlab 2.9.0's multi-label Confident Learning on a DataFrame.

cleanlab (``multilabel_classification.filter.find_label_issues``) runs binary Confident Learning
once per class ``c``: given label ``y_ic`` (is the tag in the row's set), probabilities
``[1 - p_ic, p_ic]``; a row is an issue when any class is (``find_multilabel_issues_per_class``),
except for ``low_self_confidence`` / ``low_normalized_margin``, which flag the
``num_label_issues`` rows of lowest default multi-label quality (self-confidence per class, EMA
across classes), ``num_label_issues`` being the rows the ``confident_learning`` rule flags. Here:

1. validate + pass 1 (inputs.py; executors, one ``mapInArrow`` aggregation): per class the rows
   carrying the tag and the exact sums that give the K x 2 confident thresholds;
2. pass 2 (executors, one ``mapInArrow`` aggregation over arrays of per-class counts): all K
   binary 2x2 confident joints, the K per-class ``num_label_issues`` and the row-level count of
   rows any class flags by ``confident_learning``;
3. driver (K x 2 x 2 numpy, the multiclass core's functions at K = 2): calibration, prune count
   matrices, per-class quotas;
4. selection (core/selection.py): all K binary problems of a filter form one selection problem
   whose cells are the classes' cells side by side (class c's cells at offset c x cells per class),
   so one histogram scan and one boundary scan find every class's exact top-q cutoff; a row's
   candidates come from a batch function over its [probabilities | tags] array;
5. row map (executors, one Arrow UDF, no shuffle): per class flags (core FlagRule at K = 2, the
   same safeguard), per-class and aggregated label quality, the row flag, the suggested tag set;
6. one aggregation counts the flags per (rank bucket) and per (class, tag given), <= 513 x (2K + 1)
   numbers, for ``issue_rank`` (core/ranking.py: by label_quality ascending, ties by id) and the
   driver-side tables of the result.

Nothing row-level reaches the driver.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from sparknoise.core import kernels, selection
from sparknoise.core.confident_joint import calibrate_confident_joint, clip_diagonal
from sparknoise.core.constants import CONFIDENT_SLACK
from sparknoise.core.estimates import confident_thresholds, prune_count_matrix
from sparknoise.core.flags import LOW_SCORE_FILTERS, PRUNE_FILTERS, FlagRule, check_filter_options
from sparknoise.core.ranking import RANK_BUCKETS, bucket_offsets, rank_bucket, with_issue_rank
from sparknoise.errors import ConfigError, InputError
from sparknoise.multilabel import inputs
from sparknoise.multilabel import kernels as mk
from sparknoise.multilabel.result import MultilabelIssuesResult

log = logging.getLogger("sparknoise")

WEIGHTS = ("prune", "downweight", "quality")
# cells x buckets of the histogram pass 2 counts (and collects): a coarser resolution than the core's
# HISTOGRAM_BUDGET, because every row has a candidate in each of the K classes, so nearly every
# bucket is non-empty at scale; the boundary scan then windows a few more rows per cell
HISTOGRAM_ENTRIES = 1 << 16
_OUT = "__ml_out"


def check_score_options(method: str, aggregator_kwargs: dict | None) -> None:
    """ConfigError for an unknown per-class score method or aggregator (as cleanlab's ValueError)."""
    if method not in mk.SCORE_METHODS:
        raise ConfigError(f"method/rank_by={method!r} is unknown; use one of {list(mk.SCORE_METHODS)}.")
    if aggregator_kwargs is not None:
        agg = aggregator_kwargs.get("method", "exponential_moving_average")
        if isinstance(agg, str) and agg not in mk.AGGREGATORS:
            raise ConfigError(f"aggregator_kwargs method={agg!r} is unknown; use one of {list(mk.AGGREGATORS)} "
                              "or a callable f(scores, axis=1).")
        alpha = aggregator_kwargs.get("alpha")
        if agg == "exponential_moving_average" and alpha is not None and not 0 <= alpha <= 1:
            raise ConfigError(f"aggregator_kwargs alpha={alpha!r} must be within [0, 1].")


def _check_options(filter_by, rank_by, frac_noise, num_to_remove_per_class, min_examples_per_class, weights,
                   aggregator_kwargs, K=None) -> None:
    check_filter_options(filter_by, frac_noise, num_to_remove_per_class, min_examples_per_class)
    check_score_options(rank_by, aggregator_kwargs)
    if weights not in WEIGHTS:
        raise ConfigError(f"weights={weights!r} is unknown; use one of {list(WEIGHTS)}.")


# --- pass 2 -----------------------------------------------------------------------------------


def _pass2_fn(K: int, thresholds: np.ndarray, plan: selection.HistogramPlan | None):
    """mapInArrow: per task, the K binary 2x2 confident joints (given*2 + guess), per-class
    num_label_issues (off-diagonal and not kept by the safeguard), the rows any class has as such,
    and (``plan``) the selection histogram of every cell the filter could select from."""
    shifted = np.asarray(thresholds, dtype=np.float64) - CONFIDENT_SLACK
    size = plan.n_cells * plan.n_buckets if plan is not None else 0

    def counts(batches):
        cj = np.zeros((K, 4), dtype=np.int64)
        issues = np.zeros(K, dtype=np.int64)
        hist = np.zeros(size, dtype=np.int64)
        any_issue = 0
        for batch in batches:
            P2 = kernels.probs_matrix(batch.column(0), 2 * K)
            P, Y = mk.split(P2, K)
            if plan is not None:
                hist += np.bincount(plan.indices(np.zeros(len(P2), dtype=np.int64), P2), minlength=size)
            row_issue = np.zeros(len(P), dtype=bool)
            for c in range(K):
                Pc, y = mk.binary_probs(P[:, c]), Y[:, c]
                guess = kernels.guessed_true_labels(Pc, shifted[c])
                conf = guess >= 0
                cj[c] += np.bincount(y[conf] * 2 + guess[conf], minlength=4)
                off = conf & (guess != y) & ~kernels.keep_out(Pc, y)
                issues[c] += int(off.sum())
                row_issue |= off
            any_issue += int(row_issue.sum())
        rows = [(0, c, j, int(cj[c, j])) for c in range(K) for j in range(4)]
        rows += [(1, c, 0, int(issues[c])) for c in range(K)] + [(2, 0, 0, any_issue)]
        rows += [(3, int(i), 0, int(hist[i])) for i in np.flatnonzero(hist)]
        kind, a, b, v = zip(*rows)
        yield pa.RecordBatch.from_arrays(
            [pa.array(kind, pa.int32()), pa.array(a, pa.int64()), pa.array(b, pa.int64()), pa.array(v, pa.int64())],
            names=["kind", "a", "b", "v"])

    return counts


def _confident_joints(work: DataFrame, K: int, thresholds: np.ndarray, plan: selection.HistogramPlan | None):
    merged = (
        work.select(inputs.WORK)
        .mapInArrow(_pass2_fn(K, thresholds, plan), "kind int, a long, b long, v long")
        .groupBy("kind", "a", "b")
        .agg(F.sum("v").alias("v"))
        .collect()
    )  # 4K joint cells + K issue counts + 1 + the histogram's <= HISTOGRAM_BUDGET entries
    entries = []
    cj = np.zeros((K, 2, 2), dtype=np.int64)
    issues = np.zeros(K, dtype=np.int64)
    any_issue = 0
    for r in merged:
        if r["kind"] == 0:
            cj[r["a"], r["b"] // 2, r["b"] % 2] = r["v"]
        elif r["kind"] == 1:
            issues[r["a"]] = r["v"]
        elif r["kind"] == 2:
            any_issue = int(r["v"])
        else:
            entries.append((int(r["a"]) // plan.n_buckets, int(r["a"]) % plan.n_buckets, int(r["v"])))
    return cj, issues, any_issue, entries


def _histogram_plan(filter_by: str, K: int) -> selection.HistogramPlan | None:
    """Every cell the filter could select from, with all cells active (the keys do not depend on the
    quotas), so that pass 2 counts the selection histogram while it reads the rows anyway."""
    if filter_by in LOW_SCORE_FILTERS:
        method = filter_by[len("low_"):]
        per_class = [selection.global_score_problem(1, 2, method) for _ in range(K)]
        problems = [_side_by_side(per_class, K)[0], _row_score_problem(1, 2, K)]
    elif filter_by in PRUNE_FILTERS:
        ones = np.ones(2, dtype=np.int64)
        problems = []
        if filter_by in ("prune_by_class", "both"):
            problems.append(_side_by_side([selection.class_problem(ones, ones * 2) for _ in range(K)], K)[0])
        if filter_by in ("prune_by_noise_rate", "both"):
            problems.append(_side_by_side(
                [selection.noise_rate_problem(np.ones((2, 2)), ones * 2, ones.astype(bool)) for _ in range(K)], K)[0])
    else:
        return None
    n_cells = sum(p.n_cells for p in problems)
    buckets = int(np.clip(HISTOGRAM_ENTRIES // n_cells, selection.MIN_BUCKETS, selection.MAX_BUCKETS))
    return selection.HistogramPlan(problems=tuple(problems), n_buckets=buckets)


# --- selection --------------------------------------------------------------------------------


def _side_by_side(per_class: list[selection.SelectionProblem], K: int) -> tuple[selection.SelectionProblem, list[int]]:
    """One selection problem holding K binary problems: class c's cells at offsets[c].

    Its candidates read a (n, 2K) [probabilities | tags] batch and ask each class's binary problem
    for its candidates on ([1 - p_c, p_c], y_c), exactly as the multiclass core would at K = 2.
    """
    sizes = [p.n_cells for p in per_class]
    offsets = [int(o) for o in np.cumsum([0] + sizes)[:-1]]

    def candidates(_labels: np.ndarray, P2: np.ndarray):
        P, Y = mk.split(P2, K)
        rows, cells, keys = [], [], []
        for c, problem in enumerate(per_class):
            if not problem.quotas.any():
                continue
            r, cl, k = problem.candidates(Y[:, c], mk.binary_probs(P[:, c]))
            rows.append(r)
            cells.append(cl + offsets[c])
            keys.append(k)
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(rows), np.concatenate(cells), np.concatenate(keys)

    return selection.SelectionProblem(
        n_cells=int(sum(sizes)),
        quotas=np.concatenate([p.quotas for p in per_class]).astype(np.int64),
        candidates_per_cell=np.concatenate([p.candidates_per_cell for p in per_class]).astype(np.int64),
        candidates=candidates,
    ), offsets


def _row_score_problem(quota: int, n_rows: int, K: int) -> selection.SelectionProblem:
    """Row-level low_* filters: one cell of every row keyed by -(default multi-label quality)."""

    def candidates(_labels: np.ndarray, P2: np.ndarray):
        P, Y = mk.split(P2, K)
        return np.arange(len(P)), np.zeros(len(P), dtype=np.int64), -mk.default_quality(P, Y)

    return selection.SelectionProblem(n_cells=1, quotas=np.array([quota], dtype=np.int64),
                                      candidates_per_cell=np.array([n_rows], dtype=np.int64), candidates=candidates)


def _class_problems(filter_by, counts, calibrated, issues, n_rows, *, min_examples_per_class, frac_noise,
                    num_to_remove_per_class) -> list[list[selection.SelectionProblem]]:
    """Per class, the binary problems of ``filter_by`` (the multiclass core's rules at K = 2)."""
    K = len(counts)
    kinds: list[list[selection.SelectionProblem]] = []
    if filter_by in LOW_SCORE_FILTERS:
        method = filter_by[len("low_"):]
        return [[selection.global_score_problem(int(issues[c]), n_rows, method) for c in range(K)]]
    if filter_by not in PRUNE_FILTERS:
        return []
    by_class, by_noise = [], []
    for c in range(K):
        remove = None if num_to_remove_per_class is None else [int(num_to_remove_per_class[c]), 0]
        pcm = prune_count_matrix(calibrated[c], counts[c], min_examples_per_class=min_examples_per_class,
                                 frac_noise=frac_noise, num_to_remove_per_class=remove)
        eligible = (counts[c] > min_examples_per_class) & (counts[c] > 1)
        by_class.append(selection.class_problem(np.where(eligible, np.maximum(counts[c] - np.diagonal(pcm), 0), 0),
                                                counts[c]))
        by_noise.append(selection.noise_rate_problem(pcm, counts[c], eligible))
    if filter_by in ("prune_by_class", "both"):
        kinds.append(by_class)
    if filter_by in ("prune_by_noise_rate", "both"):
        kinds.append(by_noise)
    return kinds


# --- row map ----------------------------------------------------------------------------------

_STRUCT = ("label_quality double, label_quality_per_class array<double>, is_label_issue_per_class array<boolean>, "
           "is_label_issue boolean, suggested array<int>")


def _lists(values: np.ndarray, offsets: np.ndarray, kind) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, kind))


def annotate_udf(K: int, rules: list[FlagRule], row_cutoffs: selection.Cutoffs | None, method: str,
                 aggregator_kwargs: dict | None, with_flags: bool = True, adjust_thresholds: np.ndarray | None = None):
    """Arrow UDF ([probabilities | tags], id) -> the row's scores, flags and suggested tag indices."""
    aggregate = mk.aggregator(aggregator_kwargs)

    @arrow_udf(_STRUCT)
    def annotate(work: pa.Array, ids: pa.Array) -> pa.Array:
        P, Y = mk.split(kernels.probs_matrix(work, 2 * K), K)
        n = len(P)
        scores = mk.per_class_scores(P, Y, method, adjust_thresholds)
        quality = aggregate(scores)
        flags = np.zeros((n, K), dtype=bool)
        row_flag = np.zeros(n, dtype=bool)
        if with_flags:
            ident = kernels.id_column(ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids)
            for c, rule in enumerate(rules):
                flags[:, c] = rule.flags(Y[:, c], mk.binary_probs(P[:, c]), ident)
            if row_cutoffs is not None:
                keys = -mk.default_quality(P, Y) + 0.0
                row_flag = row_cutoffs.selected(np.zeros(n, dtype=np.int64), keys, ident)
            else:
                row_flag = flags.any(axis=1)
        grid = np.arange(0, n * K + 1, K)
        toggled = (Y == 1) ^ flags
        r, c = np.nonzero(toggled)
        suggested_offsets = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))])
        return pa.StructArray.from_arrays(
            [pa.array(quality, pa.float64()), _lists(scores.ravel(), grid, pa.float64()),
             _lists(flags.ravel(), grid, pa.bool_()), pa.array(row_flag),
             _lists(c.astype(np.int32), suggested_offsets, pa.int32())],
            names=["label_quality", "label_quality_per_class", "is_label_issue_per_class", "is_label_issue",
                   "suggested"])

    return annotate.asNondeterministic()  # evaluated once per row (see core/flags.py _single_evaluation)


def suggested_column(inp: inputs.MultilabelInput, profile_classes: tuple) -> Any:
    """The suggested tag indices as the label column's values (classes, or the integers' own type)."""
    from pyspark.sql import types as T

    idx = F.col(f"{_OUT}.suggested")
    if inp.classes is not None:
        lookup = F.array(*[F.lit(c) for c in profile_classes])
        return F.transform(idx, lambda i: F.element_at(lookup, i + F.lit(1)))
    return idx.cast(T.ArrayType(inp.label_type))


# --- the API ----------------------------------------------------------------------------------


def find_multilabel_issues(
    df: DataFrame,
    *,
    label_col: str = "labels",
    probs_col: str = "pred_probs",
    id_col: str = "id",
    classes: Sequence[Any] | None = None,
    filter_by: str = "prune_by_noise_rate",
    frac_noise: float = 1.0,
    num_to_remove_per_class: Sequence[int] | None = None,
    min_examples_per_class: int = 1,
    rank_by: str = "self_confidence",
    aggregator_kwargs: dict | None = None,
    weights: str = "prune",
    downweight: float = 0.1,
    check_unique_ids: bool = True,
) -> MultilabelIssuesResult:
    """Find the rows whose tag set is most likely wrong, and which tags, exactly as cleanlab 2.9.0's
    ``multilabel_classification`` does.

    Args:
        df: one row per example with a tag array, K per-class probabilities and a unique id.
        label_col: array of tags per row: integers 0..K-1, or values of ``classes``; [] = no tags.
        probs_col: K independent per-class probabilities in [0, 1] (``array<double|float>`` or an ML
            vector); entry k is the probability that tag k applies. They need not sum to 1.
        id_col: unique id; breaks exact ties (cleanlab's are arbitrary).
        classes: the class of each probability entry (then tags may be strings or any values).
        filter_by: as cleanlab's multi-label ``find_label_issues``: prune_by_noise_rate |
            prune_by_class | both | confident_learning | predicted_neq_given |
            low_normalized_margin | low_self_confidence.
        frac_noise, num_to_remove_per_class (one count per class), min_examples_per_class: as in
            cleanlab (prune methods), applied to each class's binary problem.
        rank_by: the per-class score behind ``label_quality`` and ``issue_rank`` (cleanlab's
            ``return_indices_ranked_by``): self_confidence | normalized_margin | confidence_weighted_entropy.
            ``issue_rank`` orders the flagged rows by ``label_quality`` ascending, ties by id: cleanlab's
            order for every filter but the two ``low_*`` ones, where cleanlab 2.9.0 indexes its
            score-ordered issues with an argsort taken in row order (``cl_error_indices[np.argsort(
            scores of the flagged rows in index order)]``), so its order is not by score; the flagged
            rows are the same.
        aggregator_kwargs: how per-class scores become ``label_quality``, as cleanlab's
            ``get_label_quality_scores``: default ``{"method": "exponential_moving_average", "alpha": 0.8}``;
            ``{"method": "softmin", "temperature": 0.1}``; or a callable method.
        weights: ``sample_weight``: prune (flagged 0, else 1) | downweight (flagged ``downweight``) |
            quality (``label_quality``).
        check_unique_ids: verify ids are unique (one extra aggregation over the ids).

    Returns:
        a :class:`MultilabelIssuesResult`; the K x 2 x 2 estimates are computed now, ``rows`` is lazy:
        every input row plus ``label_quality``, ``label_quality_per_class``, ``is_label_issue``,
        ``is_label_issue_per_class``, ``suggested_labels``, ``issue_rank`` and ``sample_weight``.

    Raises:
        InputError: bad input (the message names the column and the fix); ConfigError: bad options.
    """
    _check_options(filter_by, rank_by, frac_noise, num_to_remove_per_class, min_examples_per_class, weights,
                   aggregator_kwargs)
    started = time.perf_counter()
    inp = inputs.prepare(df, label_col=label_col, probs_col=probs_col, id_col=id_col, classes=classes)
    K = inputs.num_classes_of(inp)
    if num_to_remove_per_class is not None and len(num_to_remove_per_class) != K:
        raise ConfigError(f"num_to_remove_per_class has {len(num_to_remove_per_class)} entries; give one per class "
                          f"({K}).")
    prof = inputs.profile(inp, K, check_unique_ids=check_unique_ids)
    everywhere = np.flatnonzero(prof.tag_counts == prof.n_rows)
    if everywhere.size:
        raise InputError(
            f"label column '{label_col}': class(es) {[prof.classes[c] for c in everywhere[:10]]} are in every row's "
            "tag set, so their binary problem has a single label; cleanlab refuses it ('Labels must contain at least "
            "2 classes'). Drop that class (and its probability entry) or add rows without it.", column=label_col)
    absent = np.flatnonzero(prof.tag_counts == 0)
    if absent.size:
        log.warning("classes %s are in no row's tag set; as in cleanlab they are still checked (a row may miss them)",
                    [prof.classes[c] for c in absent[:20]])
    counts = prof.binary_counts  # (K, 2)
    thresholds = np.array([confident_thresholds(counts[c], prof.sums[c]) for c in range(K)])
    work = inputs.with_work_column(inp, K)
    plan = _histogram_plan(filter_by, K)
    cj, issues, any_issue, entries = _confident_joints(work, K, thresholds, plan)
    histograms = plan.split(entries) if plan is not None else []
    calibrated = np.array([calibrate_confident_joint(clip_diagonal(cj[c]), counts[c]) for c in range(K)])

    source = work.select(F.lit(0).alias("__ml_l"), F.col(inputs.WORK), F.col(id_col))
    kinds = _class_problems(filter_by, counts, calibrated, issues, prof.n_rows,
                            min_examples_per_class=int(min_examples_per_class), frac_noise=float(frac_noise),
                            num_to_remove_per_class=num_to_remove_per_class)
    per_class_selections: list[list] = [[] for _ in range(K)]
    for per_class, histogram in zip(kinds, histograms):
        problem, offsets = _side_by_side(per_class, K)
        cut = selection.find_cutoffs(source, problem, num_classes=2 * K, id_type=inp.id_type, histogram=histogram)
        for c, p in enumerate(per_class):
            o = offsets[c]
            per_class_selections[c].append(
                (p, selection.Cutoffs(key_star=cut.key_star[o:o + p.n_cells], id_star=cut.id_star[o:o + p.n_cells])))
    row_cutoffs = None
    if filter_by in LOW_SCORE_FILTERS:
        row_cutoffs = selection.find_cutoffs(source, _row_score_problem(any_issue, prof.n_rows, K),
                                             num_classes=2 * K, id_type=inp.id_type, histogram=histograms[-1])
    rules = [FlagRule(filter_by=filter_by, num_classes=2, thresholds=thresholds[c], selections=per_class_selections[c])
             for c in range(K)]
    udf = annotate_udf(K, rules, row_cutoffs, rank_by, aggregator_kwargs)
    annotated = work.withColumn(_OUT, udf(F.col(inputs.WORK), F.col(id_col)))
    flag = F.col(f"{_OUT}.is_label_issue")
    quality = F.col(f"{_OUT}.label_quality")
    weight = {"prune": F.when(flag, F.lit(0.0)).otherwise(F.lit(1.0)),
              "downweight": F.when(flag, F.lit(float(downweight))).otherwise(F.lit(1.0)),
              "quality": quality}[weights]
    annotated = annotated.select(
        *[F.col(c) for c in work.columns],
        quality.alias("label_quality"),
        F.col(f"{_OUT}.label_quality_per_class").alias("label_quality_per_class"),
        flag.alias("is_label_issue"),
        F.col(f"{_OUT}.is_label_issue_per_class").alias("is_label_issue_per_class"),
        suggested_column(inp, prof.classes).alias("suggested_labels"),
        weight.alias("sample_weight"),
    )

    per_class_flag = F.col("is_label_issue_per_class")
    tag = [F.array_contains(F.col(inputs.LABELS), F.lit(c).cast("long")) for c in range(K)]
    sums = []
    for c in range(K):
        fc = F.get(per_class_flag, F.lit(c))
        sums.append(F.sum((fc & tag[c]).cast("long")).alias(f"t{c}"))
        sums.append(F.sum((fc & ~tag[c]).cast("long")).alias(f"f{c}"))
    bucket = F.when(F.col("is_label_issue"), rank_bucket(F.col("label_quality"))).otherwise(F.lit(-1))
    summary = annotated.groupBy(bucket.alias("b")).agg(F.count(F.lit(1)).alias("n"), *sums).collect()
    # <= RANK_BUCKETS + 1 rows of 2K + 1 counts
    per_bucket: dict[int, int] = {}
    flagged_per_class = np.zeros((K, 2), dtype=np.int64)  # [tag given, tag not given] flagged for class c
    for r in summary:
        if r["b"] >= 0:
            per_bucket[r["b"]] = int(r["n"])
        for c in range(K):
            flagged_per_class[c, 0] += int(r[f"t{c}"] or 0)
            flagged_per_class[c, 1] += int(r[f"f{c}"] or 0)
    rows = with_issue_rank(annotated, annotated.filter(F.col("is_label_issue")), flag_col="is_label_issue",
                           score_col="label_quality", id_col=id_col, offsets=bucket_offsets(per_bucket, RANK_BUCKETS))
    rows = rows.drop(*inputs.WORKING)
    log.info("multi-label issues: %d rows x %d classes, %d flagged, in %.1fs", prof.n_rows, K,
             sum(per_bucket.values()), time.perf_counter() - started)
    return MultilabelIssuesResult(
        rows=rows,
        classes=prof.classes,
        class_names_given=inp.classes is not None,
        n_rows=prof.n_rows,
        tag_counts=prof.tag_counts,
        thresholds=thresholds,
        confident_joint=calibrated,
        num_label_issues=int(any_issue),
        num_label_issues_per_class=issues,
        num_flagged=int(sum(per_bucket.values())),
        flagged_per_class=flagged_per_class,
        filter_by=filter_by,
        rank_by=rank_by,
        options={"label_col": label_col, "probs_col": probs_col, "id_col": id_col, "frac_noise": frac_noise,
                 "num_to_remove_per_class": num_to_remove_per_class,
                 "min_examples_per_class": min_examples_per_class, "aggregator_kwargs": aggregator_kwargs,
                 "weights": weights},
    )
