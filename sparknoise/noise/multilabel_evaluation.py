"""One noise rate of ``evaluate_label_noise(..., task="multilabel")``, and its two scores.

The label is an array of tags per row (classes ``classes``; the probabilities and predictions are
indexed by class). Per rate (driver orchestration, every row-level step on Spark):

1. noise: ``inject_label_noise(task="multilabel")`` flips tag presence per class (rate 0: none);
   ``flipped_classes`` lists each row's flipped class indices;
2. out-of-fold per-class probabilities (``cross_val_predict_proba(task="multilabel")``, written
   once) and ``find_multilabel_issues`` with each filter (every filter at the detection rate, the
   configured one at every rate), plus the simple detector practitioners start with: a (row, class)
   whose given bit has self-confidence (p_c if the tag is given, else 1 - p_c) below a threshold;
3. detection is scored over **(row, class) pairs** by :func:`tag_flag_metrics`: a pair is noisy
   when its class was flipped, flagged when the detector flags that class on that row
   (``is_label_issue_per_class``); precision = flagged noisy pairs / flagged pairs, recall =
   flagged noisy pairs / noisy pairs;
4. impact: one-vs-rest (one binary copy of the estimator per class, ``ml/multilabel_folds.py``)
   fitted on the noisy tags, on the rows not flagged (``pruned``), with flagged rows down-weighted
   (``downweighted``, when the classifier has a ``weightCol``) and on the trusted tags (``clean``),
   predicting the tags whose probability exceeds 0.5 on the untouched test split, scored by
   :func:`tag_fit_metrics` against the trusted test tags: micro F1, macro F1 and the exact-match
   (subset) accuracy in ``test_accuracy``.

Each score is one aggregation on the executors (2 + 2 x detectors sums; 3K + 2 sums); one row
reaches the driver.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

from pyspark.ml import Estimator
from pyspark.ml.functions import array_to_vector
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.ml.cross_validation import (
    FEATURES_COL,
    LABEL_INDEX_COL,
    PROBABILITY_COL,
    activate,
    configured,
    cross_val_predict_proba,
)
from sparknoise.ml.multilabel_folds import fit_one_vs_rest, one_vs_rest_probabilities
from sparknoise.multilabel.issues import find_multilabel_issues
from sparknoise.noise.injection import IS_NOISY, TRUE_LABEL, inject_label_noise
from sparknoise.noise.multilabel_noise import FLIPPED_CLASSES
from sparknoise.noise.scores import detection_scores, fit_variants, variant_impact_rows
from sparknoise.storage import materialised

log = logging.getLogger("sparknoise")

MULTILABEL_IMPACT_COLUMNS = ["noise_rate", "variant", "train_rows", "flagged", "test_rows", "test_accuracy",
                             "micro_f1", "macro_f1"]
_VECTOR = "__ev_ml_vector"
_PROBS = "__ev_ml_probs"


def tag_indices(label_col: str, classes: Sequence[Any]) -> Column:
    """Per row: the class indices of the tag array ``label_col`` (-1 for a value not in ``classes``)."""
    lookup = F.array(*[F.lit(c) for c in classes])
    return F.transform(F.col(label_col), lambda t: (F.array_position(lookup, t) - 1).cast("int"))


def tag_flag_metrics(rows: DataFrame, flags: dict[str, Column], *, noisy: Column) -> dict[str, dict[str, Any]]:
    """Precision/recall/F1 over (row, class) pairs of several detectors, in one aggregation.

    ``flags``: detector -> per row ``array<boolean>`` (entry c: class c flagged on this row);
    ``noisy``: per row ``array<int>`` of the class indices that really flipped.
    """
    aggs = [F.sum(F.size(noisy)).alias("noisy")]
    for i, flag in enumerate(flags.values()):
        hits = F.filter(flag, lambda x, c: x & F.array_contains(noisy, c))
        aggs += [F.sum(F.size(F.filter(flag, lambda x: x))).alias(f"f{i}"), F.sum(F.size(hits)).alias(f"t{i}")]
    row = rows.agg(*aggs).first()  # one row of 1 + 2 x detectors sums
    return {name: detection_scores(int(row[f"f{i}"] or 0), int(row[f"t{i}"] or 0), int(row["noisy"] or 0))
            for i, name in enumerate(flags)}


def tag_fit_metrics(scored: DataFrame, *, probs_col: str, true_tags: Column, K: int) -> dict[str, float]:
    """Micro F1, macro F1 and exact-match accuracy of the tags with probability > 0.5 against
    ``true_tags`` (class indices), as scikit-learn's ``f1_score(average="micro" | "macro")`` and
    ``accuracy_score`` on the K indicator columns (a class with no true and no predicted tag scores
    F1 0.0 in the macro mean, sklearn's ``zero_division`` default). One aggregation of 3K + 2 sums."""
    predicted = [F.get(F.col(probs_col), c) > F.lit(0.5) for c in range(K)]
    given = [F.array_contains(true_tags, c) for c in range(K)]
    aggs = [F.count(F.lit(1)).alias("n")]
    same = F.lit(True)
    for c in range(K):
        aggs += [F.sum((predicted[c] & given[c]).cast("long")).alias(f"tp{c}"),
                 F.sum((predicted[c] & ~given[c]).cast("long")).alias(f"fp{c}"),
                 F.sum((~predicted[c] & given[c]).cast("long")).alias(f"fn{c}")]
        same = same & (predicted[c] == given[c])
    aggs.append(F.sum(same.cast("long")).alias("exact"))
    row = scored.agg(*aggs).first()  # one row of 3K + 2 sums
    tp, fp, fn = ([int(row[f"{k}{c}"] or 0) for c in range(K)] for k in ("tp", "fp", "fn"))
    per_class = [2 * t / (2 * t + p + n) if (2 * t + p + n) else 0.0 for t, p, n in zip(tp, fp, fn)]
    total = 2 * sum(tp) + sum(fp) + sum(fn)
    return {"micro_f1": 2 * sum(tp) / total if total else 0.0, "macro_f1": sum(per_class) / K,
            "test_accuracy": int(row["exact"] or 0) / int(row["n"]) if row["n"] else None}


def fit_and_score_tags(estimator: Estimator, train: DataFrame, test: DataFrame, *, label: str, features: str,
                       true_label: str, classes: Sequence[Any], weight_col: str | None = None) -> dict[str, float]:
    """One-vs-rest ``estimator`` fitted on ``train`` (tags ``label``, ``features`` array), scored on
    ``test``'s ``true_label`` by :func:`tag_fit_metrics`."""
    est = configured(estimator)
    if weight_col is not None:
        est = est.copy({est.getParam("weightCol"): weight_col})
    models, constants = fit_one_vs_rest(train.withColumn(FEATURES_COL, array_to_vector(F.col(features))), est,
                                        label_col=label, classes=classes, label_index_col=LABEL_INDEX_COL,
                                        activate=activate)
    scored = one_vs_rest_probabilities(test.withColumn(FEATURES_COL, array_to_vector(F.col(features))), models,
                                       constants, prob_col=PROBABILITY_COL, out_col=_PROBS)
    return tag_fit_metrics(scored, probs_col=_PROBS, true_tags=tag_indices(true_label, classes), K=len(classes))


def evaluate_multilabel_rate(rate: float, *, train: DataFrame, test: DataFrame, estimator: Estimator, id_col: str,
                             label: str, features: str, classes: tuple, integral: bool, n_train: int, n_test: int,
                             noise_mode: str | None, seed: int, n_folds: int, scratch: str | None,
                             methods: list[str], filter_by: str, downweight: float,
                             self_confidence_threshold: float, clean: dict[str, float], parallelism: int,
                             parallel_map: Callable[[Callable, list, int], list]) -> tuple[list, list, dict]:
    """Detection rows, impact rows and timings of one noise rate (steps 1-4 of the module docstring)."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if rate > 0:
        noisy = inject_label_noise(train, label, noise_rate=rate, mode=noise_mode, seed=seed, id_col=id_col,
                                   classes=classes, task="multilabel")
    else:
        noisy = (train.withColumn(TRUE_LABEL, F.col(label)).withColumn(IS_NOISY, F.lit(False))
                 .withColumn(FLIPPED_CLASSES, F.array().cast(T.ArrayType(T.IntegerType()))))
    oof = cross_val_predict_proba(noisy.withColumn(_VECTOR, array_to_vector(F.col(features))), estimator,
                                  label_col=label, features_col=_VECTOR, id_col=id_col, n_folds=n_folds, seed=seed,
                                  probs_col="pred_probs", classes=classes, check_invalid=False, task="multilabel")
    oof = materialised(oof.drop(_VECTOR), scratch, f"multilabel_oof_{rate:g}")
    noisy = oof.drop("fold", "pred_probs")
    session = train.sparkSession

    def detect(method: str):
        activate(session)
        return find_multilabel_issues(oof, label_col=label, probs_col="pred_probs", id_col=id_col,
                                      classes=None if integral else classes, filter_by=method, weights="downweight",
                                      downweight=downweight, check_unique_ids=False)

    results = dict(zip(methods, parallel_map(detect, methods, parallelism)))
    main = results[filter_by]
    main_rows = materialised(main.rows, scratch, f"multilabel_scored_{rate:g}")
    given = tag_indices(label, classes)
    confidence = F.transform(F.col("pred_probs"), lambda p, c: F.when(F.array_contains(given, c), p)
                             .otherwise(F.lit(1.0) - p) < F.lit(float(self_confidence_threshold)))
    flags = {m: F.col("is_label_issue_per_class") for m in methods if m != filter_by}
    scored = {**{m: tag_flag_metrics(results[m].rows, {m: flag}, noisy=F.col(FLIPPED_CLASSES))[m]
                 for m, flag in flags.items()},
              **tag_flag_metrics(main_rows, {filter_by: F.col("is_label_issue_per_class"),
                                             f"self_confidence_below_{self_confidence_threshold:g}": confidence},
                                 noisy=F.col(FLIPPED_CLASSES))}
    detection_rows = [{"noise_rate": rate, "detector": name, **s} for name, s in scored.items()]
    timings[f"detect_{rate:g}"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    flagged = int(main.num_flagged)
    kw = dict(label=label, features=features, true_label=TRUE_LABEL, classes=classes)
    fits = {"noisy": lambda: fit_and_score_tags(estimator, noisy, test, **kw),
            "pruned": lambda: fit_and_score_tags(estimator, main_rows.filter(~F.col("is_label_issue")), test, **kw)}
    if estimator.hasParam("weightCol"):
        fits["downweighted"] = lambda: fit_and_score_tags(estimator, main_rows, test, weight_col="sample_weight",
                                                          **kw)
    scores = {**fit_variants(fits, session=session, parallelism=parallelism, parallel_map=parallel_map),
              "clean": clean}
    rows = variant_impact_rows(rate, scores, n_train=n_train, n_test=n_test, flagged=flagged,
                       columns=lambda s: s or {"test_accuracy": None, "micro_f1": None, "macro_f1": None})
    timings[f"fits_{rate:g}"] = round(time.perf_counter() - t, 3)
    log.info("evaluate (multilabel): rate %.2f: flagged %d, micro F1 noisy %.4f pruned %.4f clean %.4f", rate,
             flagged, scores["noisy"]["micro_f1"], scores["pruned"]["micro_f1"], clean["micro_f1"])
    return detection_rows, rows, timings
