"""find_label_issues and label_quality_scores: Confident Learning on a DataFrame.

validate + pass 1 (class counts, thresholds) -> pass 2 (confident joint) -> driver KxK maths
-> selection (per-cell cutoffs) -> lazy row map (flags, quality, predicted label, weight, rank).

With at least ``validation.NATIVE_MIN_ROWS`` (500,000) rows read from files and K at most
``validation.NATIVE_ROUTE_MAX_CLASSES`` (64; the array forms below serve any K but measured slower
than the Arrow passes at K = 1000) the passes are JVM-native except where numpy does what native
functions cannot: pass 1 one aggregation; pass 2 one aggregation, or, when the filter selects
through a histogram whose cells fit, one ``mapInArrow`` over the label and probabilities only that
counts the confident joint and the selection histogram as per-task dense bincounts (no row per
candidate; confident_joint.py); the flags one expression per class; the selection's scans (the
boundary scan over the rows a native bound lets through, or the per-task top-q above ~32,768
cells) are Arrow. Up to ``row_expressions.NATIVE_MAX_CLASSES`` (64) the per-class expressions are unrolled for
whole-stage code generation; above, they are array functions over K-entry arrays and the cutoffs a
K-row table joined by broadcast (native_selection.py), so no expression grows with K.
Otherwise passes 1 and 2 and the flags are Arrow batch functions (pass 1 also counts the
histogram), which cost less on small inputs than generating and compiling the per-class code.
At 10M x 10 on 2 cores the native route measured 27-36 s to the flag counts (three runs) against 41 s.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparknoise.core import native_selection, row_expressions, selection
from sparknoise.core.confident_joint import (
    ConfidentJointCounts,
    calibrate_confident_joint,
    clip_diagonal,
    count_confident_joint,
)
from sparknoise.core.estimates import confident_thresholds, estimate_joint, estimate_latent, prune_count_matrix
from sparknoise.core.flags import LOW_SCORE_FILTERS, PRUNE_FILTERS, FlagRule, check_filter_options, quality_udf
from sparknoise.core.inputs import (
    LABEL_INDEX,
    PROBS,
    REPAIRED,
    classes_from_metadata,
    drop_working_columns,
    prepare_input,
    validated,
)
from sparknoise.core.kernels import QUALITY_METHODS
from sparknoise.core.ranking import RANK_BUCKETS, bucket_offsets, rank_bucket, with_issue_rank, with_issue_rank_split
from sparknoise.core.result import LabelIssuesResult
from sparknoise.core.row_map import annotate
from sparknoise.core.validation import InputProfile, native_route, num_classes_of, profile_input
from sparknoise.core.weights import POLICIES
from sparknoise.errors import ConfigError, InputError

log = logging.getLogger("sparknoise")


def _one_task(df: DataFrame, local: bool) -> DataFrame:
    """A local input's rows (one partition, see inputs.local_rows) kept in one task above a Python UDF,
    whose output Spark does not know to be one partition: the aggregation or window above then needs
    no shuffle (one Spark job instead of two). Other inputs are returned as they are."""
    return df.coalesce(1) if local else df


def _check_options(
    filter_by: str,
    rank_by: str,
    frac_noise: float,
    num_to_remove_per_class: Any,
    min_examples_per_class: int,
    weights: str,
) -> None:
    check_filter_options(filter_by, frac_noise, num_to_remove_per_class, min_examples_per_class)
    if rank_by not in QUALITY_METHODS:
        raise ConfigError(f"rank_by={rank_by!r} is unknown; use one of {list(QUALITY_METHODS)}.")
    if weights not in POLICIES:
        raise ConfigError(f"weights={weights!r} is unknown; use one of {list(POLICIES)}.")


def _given_joint(confident_joint: Any, K: int, filter_by: str) -> np.ndarray | None:
    """A user's confident joint, checked (K x K, finite, non-negative); None when the filter ignores it."""
    if confident_joint is None:
        return None
    try:
        cj = np.array(confident_joint, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"confident_joint must be a K x K matrix of counts (K = {K} classes); got "
                         f"{type(confident_joint).__name__}.") from None
    if cj.shape != (K, K):
        raise InputError(f"confident_joint has shape {cj.shape}; it must be K x K = ({K}, {K}), one row and column "
                         "per class (given label on rows), as cleanlab's.")
    if not np.isfinite(cj).all() or (cj < 0).any():
        raise InputError("confident_joint must hold finite, non-negative counts; it has negative, NaN or infinite "
                         "entries.")
    if filter_by not in PRUNE_FILTERS:
        log.warning("confident_joint is ignored by filter_by=%r, as in cleanlab (only the prune methods %s use it)",
                    filter_by, list(PRUNE_FILTERS))
        return None
    return cj


def _histogram_plan(filter_by: str, K: int, native: bool, local: bool = False) -> selection.HistogramPlan | None:
    """Histogram every cell the filter could select from during an earlier pass, when it fits.

    Native: pass 2 (one ``mapInArrow`` over the label and probabilities) counts the keys into per-task
    dense bincounts (up to TOP_Q_FACTOR x HISTOGRAM_BUDGET entries); Arrow: pass 1 does, when the
    cells are few enough for a useful resolution per task. Both at ``selection.buckets_for`` buckets
    per cell (5,242 for K = 10's 100 cells), except for a frame built from local data (driver-sized:
    a pandas frame), whose histogram has ``selection.FUSED_MIN_BUCKETS`` (256) buckets per cell: its
    few thousand rows per cell leave a handful of keys in a boundary bucket at that resolution, and
    the finest one sent ~20,000 non-empty buckets to the driver for a 5,000-row call (0.1-0.15 s).
    """
    if K < 2 or filter_by not in (*PRUNE_FILTERS, *LOW_SCORE_FILTERS):
        return None
    universe = _universe(filter_by, K)
    n_cells = sum(p.n_cells for p in universe)
    if native:
        if n_cells * selection.MIN_BUCKETS > selection.TOP_Q_FACTOR * selection.HISTOGRAM_BUDGET:
            return None
    elif not selection.fusable(universe):
        return None
    n_buckets = selection.buckets_for(n_cells)
    if local:
        n_buckets = min(n_buckets, selection.FUSED_MIN_BUCKETS)
    return selection.HistogramPlan(problems=tuple(universe), n_buckets=n_buckets)


def _universe(filter_by: str, K: int) -> list[selection.SelectionProblem]:
    """The filter's selection problems with every cell active (cell layout only; quotas unknown)."""
    ones = np.ones(K, dtype=np.int64)
    if filter_by in LOW_SCORE_FILTERS:
        return [selection.global_score_problem(1, 2, filter_by[len("low_") :], K)]
    problems = []
    if filter_by in ("prune_by_class", "both"):
        problems.append(selection.class_problem(ones, ones * 2))
    if filter_by in ("prune_by_noise_rate", "both"):
        problems.append(selection.noise_rate_problem(np.ones((K, K)), ones * 2, ones.astype(bool)))
    return problems


def _selections(
    filter_by: str,
    profile: InputProfile,
    calibrated: np.ndarray,
    num_label_issues: int,
    *,
    min_examples_per_class: int,
    frac_noise: float,
    num_to_remove_per_class: Any,
) -> list[selection.SelectionProblem]:
    counts = profile.label_counts
    if filter_by in LOW_SCORE_FILTERS:
        method = filter_by[len("low_") :]
        return [selection.global_score_problem(num_label_issues, profile.n_rows, method, profile.num_classes)]
    if filter_by not in PRUNE_FILTERS:
        return []
    pcm = prune_count_matrix(
        calibrated,
        counts,
        min_examples_per_class=min_examples_per_class,
        frac_noise=frac_noise,
        num_to_remove_per_class=num_to_remove_per_class,
    )
    # cleanlab skips a class with c_k <= min_examples_per_class, and never writes back the mask of
    # a one-row class.
    eligible = (counts > min_examples_per_class) & (counts > 1)
    skipped = np.flatnonzero((counts > 0) & ~eligible)
    if skipped.size:
        log.warning(
            "classes %s have too few rows (<= min_examples_per_class=%d) and are never flagged by %s",
            [profile.classes[k] for k in skipped[:20]],
            min_examples_per_class,
            filter_by,
        )
    problems = []
    if filter_by in ("prune_by_class", "both"):
        quotas = np.where(eligible, np.maximum(counts - np.diagonal(pcm), 0), 0)
        problems.append(selection.class_problem(quotas, counts))
    if filter_by in ("prune_by_noise_rate", "both"):
        problems.append(selection.noise_rate_problem(pcm, counts, eligible))
    return problems


def find_label_issues(
    df: DataFrame,
    label_col: str = "label",
    probs_col: str = "pred_probs",
    id_col: str = "id",
    classes: Sequence[Any] | None = None,
    filter_by: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
    frac_noise: float = 1.0,
    num_to_remove_per_class: int | Sequence[int] | None = None,
    min_examples_per_class: int = 1,
    weights: str = "cleanlab",
    *,
    downweight: float = 0.1,
    check_unique_ids: bool = True,
    probs_repair: str = "none",
    confident_joint: np.ndarray | Sequence[Sequence[float]] | None = None,
) -> LabelIssuesResult:
    """Find the rows whose given label is most likely wrong, exactly as cleanlab 2.9.0 does.

    Args:
        df: one row per example, with a label, out-of-fold predicted probabilities and a unique id.
        label_col: the given (possibly noisy) label.
        probs_col: out-of-fold probabilities: ``array<double>``, ``array<float>`` or an ML vector.
        id_col: unique integer or string id; breaks exact ties (cleanlab's are arbitrary).
        classes: the label value of each probability index; None: the classes recorded by
            :func:`cross_val_predict_proba` on ``probs_col``, else labels are ints 0..K-1.
        filter_by: prune_by_noise_rate | prune_by_class | both | confident_learning |
            predicted_neq_given | low_normalized_margin | low_self_confidence.
        rank_by: the ``label_quality`` score and issue order: self_confidence |
            normalized_margin | confidence_weighted_entropy.
        frac_noise, num_to_remove_per_class, min_examples_per_class: as in cleanlab (prune methods).
        weights: sample_weight policy: prune | downweight | quality | cleanlab.
        downweight: the weight of a flagged row under ``weights="downweight"``.
        check_unique_ids: verify ids are unique (one extra aggregation over the ids).
        probs_repair: ``none`` (probabilities outside [0, 1] are an error) or ``clip``: a row
            whose entries are at most 1e-4 outside [0, 1] and whose clipped sum is within 1e-3
            of 1 is clipped and divided by its sum (float32 rounding such as 1.00001); rows further
            off are still refused. The repaired rows are counted (one more scan) in
            ``result.n_repaired``; ``rows`` keeps the column as given.
        confident_joint: a K x K confident joint (given label on rows; non-negative, finite), as
            cleanlab's ``confident_joint=``. The prune methods (prune_by_noise_rate, prune_by_class,
            both) use it exactly as given (not calibrated) for their quotas, and the confident-joint
            pass is skipped; ``result.confident_joint`` is it, the noise matrices and prior are
            cleanlab's ``estimate_latent`` of it, and ``result.num_label_issues`` is cleanlab's
            ``num_label_issues(..., confident_joint=..., estimation_method="off_diagonal_custom")``.
            The other methods ignore it, as cleanlab does (a warning is logged).

    Input rules: labels of at least 2 classes, probability rows within [0, 1] (1e-6 tolerance)
    that sum to 1 within 1e-3. These are stricter than :func:`label_quality_scores`' (which, like
    cleanlab's ``get_label_quality_scores``, accepts one class and rows that do not sum to 1),
    because the confident joint and its calibration assume them.

    Returns:
        a :class:`LabelIssuesResult`; the KxK estimates are computed now (a few scans of ``df``),
        ``rows`` is a lazy DataFrame with every input row plus ``label_quality``,
        ``predicted_label``, ``is_label_issue``, ``issue_rank`` and ``sample_weight``.

    Raises:
        InputError: bad input (missing column, null, out-of-range probability, unknown label,
            duplicate id; the message names the column); ConfigError: bad options.
    """
    _check_options(filter_by, rank_by, frac_noise, num_to_remove_per_class, min_examples_per_class, weights)
    if classes is None and probs_col in df.columns:
        classes = classes_from_metadata(df, probs_col)  # recorded by cross_val_predict_proba
    started = time.perf_counter()
    timings: dict[str, float] = {}
    clock = [started]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = round(now - clock[0], 3)
        clock[0] = now
    prepared = prepare_input(df, label_col=label_col, probs_col=probs_col, id_col=id_col, classes=classes,
                             probs_repair=probs_repair)
    K = num_classes_of(prepared)
    given_joint = _given_joint(confident_joint, K, filter_by)
    # native: pass 1 one aggregation, pass 2 also counts the histogram, the flags JVM expressions;
    # else pass 1 is an Arrow scan that also counts the histogram
    native = native_selection.supported(_universe(filter_by, K)) and native_route(prepared, K)
    histogram = _histogram_plan(filter_by, K, native=native, local=prepared.local)
    profile = profile_input(prepared, check_unique_ids=check_unique_ids, histogram=None if native else histogram,
                            num_classes=K, native=native)
    lap("validate_and_class_stats")
    prepared = validated(prepared)
    n_repaired = 0
    if probs_repair == "clip":
        n_repaired = prepared.df.filter(F.col(REPAIRED)).count()
        lap("count_repaired")
        if n_repaired:
            log.warning("probs_repair=clip: %d row(s) of '%s' had entries a hair outside [0, 1]; clipped and "
                        "renormalised", n_repaired, probs_col)
    thresholds = confident_thresholds(profile.label_counts, profile.self_confidence_sums)

    if given_joint is None:
        counts = count_confident_joint(prepared, thresholds, K, histogram=histogram if native else None,
                                      arrow=prepared.local)
        lap("confident_joint")
        calibrated = calibrate_confident_joint(clip_diagonal(counts.confident_joint), profile.label_counts)
    else:  # cleanlab uses a given joint as it is; pass 2 is not needed
        calibrated = given_joint
        joint = estimate_joint(calibrate_confident_joint(given_joint, profile.label_counts))
        counts = ConfidentJointCounts(confident_joint=given_joint,
                                      num_label_issues=int(np.rint((1.0 - np.trace(joint)) * profile.n_rows)))
        if native:
            histogram = None  # pass 2 would have counted it; the selection scans for itself
    latent = estimate_latent(calibrated, profile.label_counts)

    source = prepared.df.select(LABEL_INDEX, PROBS, id_col)
    problems = _selections(
        filter_by,
        profile,
        calibrated,
        counts.num_label_issues,
        min_examples_per_class=int(min_examples_per_class),
        frac_noise=float(frac_noise),
        num_to_remove_per_class=num_to_remove_per_class,
    )
    entries = counts.histogram_entries if native else profile.histogram_entries
    histograms = histogram.split(entries) if histogram is not None else [None] * len(problems)

    def prefilter(problem: selection.SelectionProblem):
        if not native:
            return None
        return lambda boundary, n_buckets: native_selection.boundary_prefilter(
            problem, probs=F.col(PROBS), label=F.col(LABEL_INDEX), n_buckets=n_buckets, boundary=boundary
        )

    chosen = [
        (p, selection.find_cutoffs(source, p, num_classes=K, id_type=prepared.id_type, histogram=h,
                                   boundary_prefilter=prefilter(p), one_task=prepared.local))
        for p, h in zip(problems, histograms)
    ]
    lap("selection")
    rule = FlagRule(filter_by=filter_by, num_classes=K, thresholds=thresholds, selections=chosen, native=native)
    annotated = annotate(
        prepared, rule, rank_by, profile.classes,
        weights=weights, noise_matrix=latent.noise_matrix, downweight=downweight,
    )

    if annotated.native:  # a projection and a hash count, no Filter on the flag (see row_map.Annotated)
        counting = (annotated.candidates if annotated.candidates is not None else annotated.rows).groupBy(
            rank_bucket(F.col("label_quality")).alias("b"), F.col(LABEL_INDEX).alias("y")
        ).agg(F.count(F.when(F.col("is_label_issue"), F.lit(1))).alias("count"))
    else:
        counting = _one_task(annotated.flagged, prepared.local).groupBy(
            rank_bucket(F.col("label_quality")).alias("b"), F.col(LABEL_INDEX).alias("y")
        ).count()
    bucket_counts = counting.collect()  # <= RANK_BUCKETS x K summary rows
    per_bucket: dict[int, int] = {}
    per_class = np.zeros(K, dtype=np.int64)
    for r in bucket_counts:
        per_bucket[r["b"]] = per_bucket.get(r["b"], 0) + r["count"]
        per_class[r["y"]] += r["count"]
    lap("flag_counts")
    if annotated.cleared is not None:  # split by the constant-size tests (row_map.Annotated)
        rank, parts = with_issue_rank_split, (annotated.cleared, annotated.candidates)
    else:
        rank, parts = with_issue_rank, (annotated.rows, _one_task(annotated.flagged, prepared.local))
    rows = rank(*parts, flag_col="is_label_issue", score_col="label_quality", id_col=id_col,
                offsets=bucket_offsets(per_bucket, RANK_BUCKETS))
    rows = _one_task(rows, prepared.local)
    result = LabelIssuesResult(
        rows=drop_working_columns(rows),
        classes=profile.classes,
        label_counts=profile.label_counts,
        thresholds=thresholds,
        confident_joint=calibrated,
        joint=latent.joint,
        noise_matrix=latent.noise_matrix,
        inverse_noise_matrix=latent.inverse_noise_matrix,
        prior=latent.prior,
        num_label_issues=counts.num_label_issues,
        num_flagged=int(per_class.sum()),
        flagged_per_class=per_class,
        n_rows=profile.n_rows,
        filter_by=filter_by,
        rank_by=rank_by,
        options={
            "label_col": label_col,
            "probs_col": probs_col,
            "id_col": id_col,
            "frac_noise": frac_noise,
            "num_to_remove_per_class": num_to_remove_per_class,
            "min_examples_per_class": min_examples_per_class,
            "weights": weights,
            "probs_repair": probs_repair,
        },
        timings=timings,
        n_repaired=n_repaired,
    )
    log.info(
        "find_label_issues(%s): %d of %d rows flagged, %d classes, in %.1fs",
        filter_by,
        result.num_flagged,
        profile.n_rows,
        K,
        time.perf_counter() - started,
    )
    return result


def label_quality_scores(
    df: DataFrame,
    label_col: str = "label",
    probs_col: str = "pred_probs",
    method: str = "self_confidence",
    classes: Sequence[Any] | None = None,
    id_col: str | None = None,
    *,
    adjust_pred_probs: bool = False,
) -> DataFrame:
    """Add ``label_quality`` (cleanlab's ``get_label_quality_scores``; lower = more suspicious).

    Runs one validation pass (labels, probabilities; with ``adjust_pred_probs`` it also gives the
    per-class thresholds) and returns a lazy DataFrame with every input column plus ``label_quality``.

    The input rules are cleanlab's for this function, looser than :func:`find_label_issues`'s (which
    needs a confident joint): the labels may all be of one class, and probability rows need not sum
    to 1 (each entry must still be within [0, 1], 1e-6 tolerance, and there must be at least 2
    columns). A label without a probability column (``label >= K``) is refused: the probabilities
    must have at least ``label + 1`` columns.

    Args:
        method: self_confidence | normalized_margin | confidence_weighted_entropy.
        classes: the label value of each probability index; None: labels are ints 0..K-1.
        id_col: not needed for scoring; accepted for symmetry with find_label_issues.
        adjust_pred_probs: cleanlab's option: subtract each class's confident threshold (the mean
            self-confidence of the rows labelled with it; 2.0 for a class with no rows, at least
            2e-6) from its column, add the largest threshold and renormalise each row, then score.
            Not with ``confidence_weighted_entropy`` (as in cleanlab).
    """
    if method not in QUALITY_METHODS:
        raise ConfigError(f"method={method!r} is unknown; use one of {list(QUALITY_METHODS)}.")
    if adjust_pred_probs and method == "confidence_weighted_entropy":
        raise ConfigError(f"adjust_pred_probs is not supported for method={method!r} (as in cleanlab); use "
                          "self_confidence or normalized_margin.")
    tmp_id = None
    if id_col is None:
        tmp_id = "__sn_tmp_id"
        df = df.withColumn(tmp_id, F.lit(0).cast("long"))
    prepared = prepare_input(
        df, label_col=label_col, probs_col=probs_col, id_col=id_col or tmp_id, classes=classes
    )
    profile = profile_input(prepared, check_unique_ids=False, row_sum_tolerance=math.inf, allow_one_class=True)
    K = profile.num_classes
    frame, probs = prepared.df, F.col(PROBS)
    if adjust_pred_probs:  # a K-sized summary of the validation pass, then a row map
        thresholds = confident_thresholds(profile.label_counts, profile.self_confidence_sums)
        frame = frame.withColumn(PROBS, adjusted_probs(probs, thresholds))
    if K <= row_expressions.ROW_MAP_NATIVE_MAX_CLASSES and method in row_expressions.NATIVE_QUALITY_METHODS:
        score = row_expressions.quality_score(probs, F.col(LABEL_INDEX), method, K)
    else:
        score = quality_udf(K, method)(F.col(LABEL_INDEX), probs)
    return drop_working_columns(frame.withColumn("label_quality", score))


def adjusted_probs(probs: Column, thresholds: np.ndarray) -> Column:
    """cleanlab's ``_subtract_confident_thresholds``, per row, natively: ``p - t + max(t)``, over its row sum."""
    t = F.array(*[F.lit(float(v)) for v in thresholds])
    top = F.lit(float(np.max(thresholds)))
    shifted = F.zip_with(probs, t, lambda p, t_k: (p - t_k) + top)
    total = F.aggregate(shifted, F.lit(0.0), lambda acc, x: acc + x)
    return F.transform(shifted, lambda x: x / total)
