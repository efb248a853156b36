"""Is label noise hurting my model? Detection quality and the impact curve: ``sn.evaluate_label_noise``.

Starting from a table with a *trusted* label, split into train and test (the test split is never
touched), and for each noise rate:

1. inject known noise into the training labels (``inject_label_noise``);
2. out-of-fold probabilities by k-fold cross-validation, then Confident Learning;
3. score detectors against the known flips (precision, recall, F1): Confident Learning (every
   ``filter_by`` at the detection rate, the configured one at every rate), the simple detectors
   practitioners start with (the top-p% rows by out-of-fold log loss; self-confidence below a
   threshold) and the consensus of Confident Learning with the loss detector;
4. fit the estimator on the noisy labels, on the cleaned labels (flagged rows pruned, or
   down-weighted) and on the clean labels, and measure accuracy on the test split's trusted labels.

``task="regression"`` (a numeric label, a Spark ML regressor) keeps the split and the loop over rates
and changes each step (``regression_evaluation.py``): step 1 injects ``shift`` / ``swap`` / ``unit`` /
``default`` noise (or a mix), step 2 is ``RegressionCleanLearning``'s detection, step 3 scores that
one detector overall and per injected mode, step 4 fits the regressor on the noisy, the cleaned
(flagged rows pruned) and the clean train rows and measures R², RMSE and MAE on the test split.

``task="multilabel"`` (an array of tags per row) keeps the split and the loop over rates too
(``multilabel_evaluation.py``): step 1 flips tag presence per class, step 2 is
``find_multilabel_issues`` on one-vs-rest out-of-fold probabilities, step 3 scores the detectors
over (row, class) flips, step 4 fits one binary model per class and reports micro and macro F1
(and the exact-match accuracy) on the test split's trusted tags.

Results are small pandas frames (one row per rate x detector / variant). Everything row-level
stays in Spark; the model fits are Spark ML.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd
from pyspark.ml import Estimator
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.flags import FILTERS
from sparknoise.core.inputs import unfolded
from sparknoise.core.invalid_rows import screen_invalid
from sparknoise.core.label_issues import find_label_issues
from sparknoise.errors import ConfigError, InputError
from sparknoise.ml.cross_validation import (
    FEATURES_COL,
    LABEL_INDEX_COL,
    MAX_CLASSES,
    PREDICTION_COL,
    activate,
    configured,
    cross_val_predict_proba,
    features_vector,
    indexed_label,
    label_classes,
)
from sparknoise.ml.multilabel_folds import tag_classes
from sparknoise.noise.injection import IS_NOISY, TRUE_LABEL, inject_label_noise
from sparknoise.noise.multilabel_evaluation import (
    MULTILABEL_IMPACT_COLUMNS,
    evaluate_multilabel_rate,
    fit_and_score_tags,
)
from sparknoise.noise.regression_evaluation import (
    REGRESSION_DETECTION_COLUMNS,
    REGRESSION_IMPACT_COLUMNS,
    evaluate_regression_rate,
    fit_and_score,
    mode_rates,
)
from sparknoise.noise.scores import VARIANTS, fit_variants, variant_impact_rows  # noqa: F401 (VARIANTS: re-exported)
from sparknoise.noise.scores import detection_scores as _metrics
from sparknoise.noise.segments import SEGMENT, assign_segments, linear_bucket, uniform_hash
from sparknoise.storage import materialised

log = logging.getLogger("sparknoise")

LABEL = "ev_label"
FEATURES = "ev_features"
_VECTOR = "ev_features_vector"
DETECTION_COLUMNS = ["noise_rate", "detector", "flagged", "true_positives", "noisy", "precision", "recall", "f1"]
IMPACT_COLUMNS = ["noise_rate", "variant", "train_rows", "flagged", "test_rows", "test_accuracy"]


@dataclass
class EvaluationResult:
    """Detection quality and the impact curve (small pandas frames), with stage timings."""

    detection: pd.DataFrame
    impact: pd.DataFrame
    classes: tuple
    n_train: int
    n_test: int
    timings: dict[str, float] = field(default_factory=dict)
    task: str = "multiclass"

    def _repr_html_(self) -> str:
        title = {"regression": "Test R² and RMSE", "multilabel": "Test micro / macro F1"}.get(self.task, "Test accuracy")
        return ("<h4>Detection quality</h4>" + self.detection.to_html(index=False)
                + f"<h4>{title}</h4>" + self.impact.to_html(index=False))


def split_train_test(df: DataFrame, id_col: str, *, test_where: str | None = None, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[DataFrame, DataFrame]:
    """(train, test): rows matching ``test_where``, or a hash of (id, seed) below ``test_fraction``."""
    is_test = F.expr(test_where) if test_where else uniform_hash(id_col, seed, 7) < F.lit(float(test_fraction))
    flagged = df.withColumn("__ev_test", F.coalesce(is_test, F.lit(False)))
    return (flagged.filter(~F.col("__ev_test")).drop("__ev_test"), flagged.filter(F.col("__ev_test")).drop("__ev_test"))


def _flag_metrics(rows: DataFrame, flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Precision/recall/F1 of several boolean flag expressions against is_noisy, in one aggregation."""
    noisy = F.col(IS_NOISY)
    aggs = [F.sum(noisy.cast("long")).alias("noisy")]
    for i, flag in enumerate(flags.values()):
        aggs += [F.sum(flag.cast("long")).alias(f"f{i}"), F.sum((flag & noisy).cast("long")).alias(f"t{i}")]
    row = rows.agg(*aggs).first()
    return {name: _metrics(int(row[f"f{i}"] or 0), int(row[f"t{i}"] or 0), int(row["noisy"] or 0))
            for i, name in enumerate(flags)}


def _parallel_map(fn, items: list, parallelism: int) -> list:
    """``[fn(x) for x in items]``, on up to ``parallelism`` threads (Spark runs their jobs concurrently)."""
    if parallelism <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(int(parallelism), len(items))) as pool:
        return list(pool.map(fn, items))


def _evaluate_rate(rate: float, *, train: DataFrame, test: DataFrame, estimator: Estimator, id_col: str,
                   classes: tuple, label_type, n_train: int, n_test: int, noise_mode: str, seed: int, n_folds: int,
                   frac_zero_noise_rates: float, scratch: str | None, methods: list[str], filter_by: str,
                   downweight: float, loss_top_fraction: float | None, self_confidence_threshold: float,
                   clean_acc: float, parallelism: int) -> tuple[list, list, dict]:
    """Detection rows, impact rows and timings of one noise rate."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if rate > 0:
        noisy = inject_label_noise(train, LABEL, noise_rate=rate, mode=noise_mode, seed=seed, id_col=id_col,
                                   classes=classes, features_col=FEATURES, frac_zero_noise_rates=frac_zero_noise_rates)
    else:
        noisy = train.withColumn(TRUE_LABEL, F.col(LABEL)).withColumn(IS_NOISY, F.lit(False))
    oof = cross_val_predict_proba(noisy.withColumn(_VECTOR, array_to_vector(F.col(FEATURES))), estimator,
                                  label_col=LABEL, features_col=_VECTOR, id_col=id_col, n_folds=n_folds,
                                  seed=seed, probs_col="pred_probs", classes=classes, check_invalid=False)
    oof = materialised(oof.drop(_VECTOR), scratch, f"oof_{rate:g}")
    noisy = oof.drop("fold", "pred_probs")
    session = train.sparkSession

    def detect(method: str):
        activate(session)
        res = find_label_issues(oof, label_col=LABEL, probs_col="pred_probs", id_col=id_col, classes=classes,
                                filter_by=method, weights="downweight", downweight=downweight,
                                check_unique_ids=False)
        return res, _flag_metrics(res.rows, {method: F.col("is_label_issue")})[method]

    results = dict(zip(methods, _parallel_map(detect, methods, parallelism)))
    detection_rows = [{"noise_rate": rate, "detector": m, **scores} for m, (_, scores) in results.items()]
    main = results[filter_by][0]
    main_rows = materialised(main.rows, scratch, f"scored_{rate:g}")
    fraction = loss_top_fraction if loss_top_fraction is not None else main.num_label_issues / n_train
    n_loss = int(round(fraction * n_train))
    ranked = assign_segments(main_rows, group=F.lit(0), score=F.col("label_quality"),
                             bucket=linear_bucket(F.col("label_quality"), 4096), id_col=id_col,
                             bounds=[[n_loss]], n_buckets=4096)
    loss_flag = F.col(SEGMENT) == 0
    simple = _flag_metrics(ranked, {
        "log_loss_top_fraction": loss_flag,
        f"self_confidence_below_{self_confidence_threshold:g}":
            F.col("label_quality") < F.lit(float(self_confidence_threshold)),
        f"consensus_{filter_by}_and_log_loss": loss_flag & F.col("is_label_issue"),
    })
    detection_rows += [{"noise_rate": rate, "detector": name, **scores} for name, scores in simple.items()]
    timings[f"detect_{rate:g}"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    flagged = main.num_flagged
    fits = {
        "noisy": lambda: _accuracy(estimator, noisy, test, classes, label_type),
        "pruned": lambda: _accuracy(estimator, main_rows.filter(~F.col("is_label_issue")), test, classes, label_type),
    }
    if estimator.hasParam("weightCol"):
        fits["downweighted"] = lambda: _accuracy(estimator, main_rows, test, classes, label_type,
                                                 weight_col="sample_weight")
    accs = {**fit_variants(fits, session=session, parallelism=parallelism, parallel_map=_parallel_map),
            "clean": clean_acc}
    rows = variant_impact_rows(rate, accs, n_train=n_train, n_test=n_test, flagged=flagged,
                       columns=lambda acc: {"test_accuracy": acc})
    timings[f"fits_{rate:g}"] = round(time.perf_counter() - t, 3)
    log.info("evaluate: rate %.2f: flagged %d, accuracy noisy %.4f pruned %.4f clean %.4f", rate, flagged,
             accs["noisy"], accs["pruned"], clean_acc)
    return detection_rows, rows, timings


def _accuracy(estimator: Estimator, train: DataFrame, test: DataFrame, classes: tuple, label_type,
              weight_col: str | None = None) -> float:
    def prepared(df: DataFrame, label: str) -> DataFrame:
        return df.withColumn(FEATURES_COL, array_to_vector(F.col(FEATURES))).withColumn(
            LABEL_INDEX_COL, indexed_label(label, classes, label_type))

    est = configured(estimator)
    if weight_col is not None:
        est = est.copy({est.getParam("weightCol"): weight_col})
    model = est.fit(prepared(train, LABEL))
    scored = model.transform(prepared(test, TRUE_LABEL))
    return float(scored.agg(F.avg((F.col(PREDICTION_COL) == F.col(LABEL_INDEX_COL)).cast("double"))).first()[0])


def evaluate_label_noise(
    df: DataFrame,
    *,
    label_col: str,
    estimator: Estimator,
    id_col: str = "id",
    features: Sequence[str] | None = None,
    features_col: str | None = None,
    noise_rates: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.3),
    noise_mode: str | Mapping[str, float] | None = None,
    detection_noise_rate: float = 0.2,
    test_where: str | None = None,
    test_fraction: float = 0.2,
    n_folds: int = 5,
    seed: int = 0,
    filter_by: str = "prune_by_noise_rate",
    downweight: float = 0.1,
    loss_top_fraction: float | None = None,
    self_confidence_threshold: float = 0.1,
    classes: Sequence[Any] | None = None,
    scratch: str | None = None,
    frac_zero_noise_rates: float = 0.0,
    parallelism: int = 1,
    task: str = "multiclass",
    n_boot: int = 5,
    frac_issues: float | None = None,
    include_aleatoric_uncertainty: bool = True,
) -> EvaluationResult:
    """Detection quality and test accuracy under injected label noise (see the module docstring).

    Args:
        df: rows with a unique id, the trusted label ``label_col`` and features
            (``features`` numeric columns or a ``features_col`` vector).
        estimator: the Spark ML classifier for cross-validation and for the final fits.
        noise_rates: the impact curve's rates; ``detection_noise_rate`` is added when missing.
        noise_mode: how noise is injected (``inject_label_noise`` modes; default ``uniform``). For
            ``task="regression"``: ``shift`` (the default) | ``swap`` | ``unit`` | ``default``, or a
            mapping mode -> share: each rate is split between the modes in proportion to the shares.
        test_where / test_fraction: the test split (a SQL condition, or a hash split by id).
        filter_by: the Confident Learning method used for cleaning at every rate.
        downweight: weight of flagged rows in the down-weighted fit.
        loss_top_fraction: the loss detector flags this top fraction by log loss; default: the
            fraction Confident Learning estimates (cleanlab's ``num_label_issues`` / N).
        self_confidence_threshold: the threshold detector flags p(given label) below it.
        scratch: a Delta location (path or table-name prefix) where the input, each rate's
            out-of-fold probabilities and scored rows are materialised (written once, read by every
            later step). Without it they are ``localCheckpoint``-ed (computed once, kept in the
            executors); where the engine refuses checkpoints, a warning says every step recomputes them.
        frac_zero_noise_rates: for ``class_conditional`` noise, the fraction of zero off-diagonal rates.
        parallelism: how many rates, detectors and fits run concurrently (Spark schedules their
            jobs side by side; the results do not depend on it).
        task: ``"multiclass"`` (class labels, the steps of the module docstring) or ``"regression"``
            (a numeric label and a Spark ML regressor as ``estimator``): noise from
            ``inject_label_noise(task="regression")``, detection by ``RegressionCleanLearning`` (one
            detector, ``regression_clean_learning``, scored overall and per injected mode: the
            ``detection`` frame has a ``mode`` column), the regressor fitted on the noisy, the
            cleaned (flagged rows pruned) and the clean train rows and scored on the test split by
            R², RMSE and MAE (``impact`` columns ``r2``, ``rmse``, ``mae`` instead of
            ``test_accuracy``; no down-weighted variant). ``filter_by``, ``downweight``,
            ``loss_top_fraction``, ``self_confidence_threshold``, ``classes`` and
            ``frac_zero_noise_rates`` are for class labels.
            ``"multilabel"``: ``label_col`` is an array of tags per row (integers 0..K-1, or values of
            ``classes``); noise flips tag presence per class (``noise_mode`` None or ``uniform``),
            detection is ``find_multilabel_issues`` (every ``filter_by`` at the detection rate) and a
            per-(row, class) self-confidence threshold, scored over (row, class) flips; the
            estimator is fitted one-vs-rest and ``impact`` gains ``micro_f1`` and ``macro_f1``
            (``test_accuracy``: exact tag-set matches). See ``multilabel_evaluation.py``.
        n_boot / frac_issues / include_aleatoric_uncertainty: regression only, passed to
            ``RegressionCleanLearning``; ``frac_issues`` fixes k (``coarse_search_range=[k]``,
            ``fine_search_size=0``) instead of cleanlab's search, which refits many models.
    """
    if task not in ("multiclass", "regression", "multilabel"):
        raise ConfigError(f"task {task!r} is unknown; use 'multiclass' (class labels), 'multilabel' (an array of "
                          "tags) or 'regression' (a number)")
    regression, multilabel = task == "regression", task == "multilabel"
    if multilabel:
        if frac_zero_noise_rates:
            raise ConfigError("frac_zero_noise_rates is for multiclass class_conditional noise; drop it for "
                              "task='multilabel'")
        if noise_mode not in (None, "uniform"):
            raise ConfigError(f"noise_mode {noise_mode!r}: task='multilabel' flips tags at one rate per class "
                              "('uniform', the default)")
    if regression:
        if classes is not None or frac_zero_noise_rates:
            raise ConfigError("classes and frac_zero_noise_rates are for class labels; drop them for task='regression'")
        for r in [*noise_rates, detection_noise_rate]:
            mode_rates(noise_mode, float(r))  # checks the modes before any Spark job
        if frac_issues is not None and (isinstance(frac_issues, bool) or not 0 <= frac_issues <= 1):
            raise ConfigError(f"frac_issues={frac_issues!r} must be a fraction in [0, 1] (or None to search k)")
    elif filter_by not in FILTERS:
        raise ConfigError(f"filter_by {filter_by!r} is unknown; use one of {list(FILTERS)}")
    for name in (label_col, id_col):
        if name not in df.columns:
            raise InputError(f"column '{name}' is not in the input; available: {df.columns}", column=name)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    df = unfolded(df)
    label_type = df.schema[label_col].dataType
    if regression and not isinstance(label_type, T.NumericType):
        raise InputError(f"label column '{label_col}' has type {label_type.simpleString()}; task='regression' needs a "
                         "numeric label (cast it, or use task='multiclass' for classes)", column=label_col)
    screen_invalid(df, "error", key="the on_invalid policy of the evaluate job", id_col=id_col, label_col=label_col,
                   features=features, features_col=None if features else features_col)
    if regression:
        classes = ()
    elif multilabel:
        classes = tag_classes(df, label_col, classes, MAX_CLASSES)
    else:
        classes = tuple(classes) if classes is not None else label_classes(df, label_col)
    # Features are kept as array<double>: Delta (the scratch tables) cannot store ML vectors.
    work = features_vector(df, features_col, features).select(
        F.col(id_col), (F.col(label_col).cast("double") if regression else F.col(label_col)).alias(LABEL),
        vector_to_array(F.col(FEATURES_COL), "float64").alias(FEATURES))
    work = materialised(work, scratch, "input")  # every rate reads the split: compute it once
    train, test = split_train_test(work, id_col, test_where=test_where, test_fraction=test_fraction, seed=seed)
    test = test.withColumnRenamed(LABEL, TRUE_LABEL)
    n_train, n_test = train.count(), test.count()
    if n_train == 0 or n_test == 0:
        raise InputError(f"the split left {n_train} training and {n_test} test rows; both must be non-empty",
                         column=label_col)
    log.info("evaluate: %d training rows, %d test rows, %d classes", n_train, n_test, len(classes))
    rates = sorted({float(r) for r in noise_rates} | {float(detection_noise_rate)})
    t = time.perf_counter()
    if regression:
        clean = fit_and_score(estimator, train, test, label_col=LABEL, features=FEATURES, true_label_col=TRUE_LABEL)
    elif multilabel:
        clean = fit_and_score_tags(estimator, train, test, label=LABEL, features=FEATURES, true_label=TRUE_LABEL,
                                   classes=classes)
    else:
        clean_acc = _accuracy(estimator, train, test, classes, label_type)
    timings["clean_fit"] = round(time.perf_counter() - t, 3)
    session = df.sparkSession

    def one_rate(rate: float) -> tuple[list, list, dict]:
        activate(session)
        if regression:
            return evaluate_regression_rate(
                rate, train=train, test=test, estimator=estimator, id_col=id_col, label=LABEL, features=FEATURES,
                true_label=TRUE_LABEL, n_train=n_train, n_test=n_test, noise_mode=noise_mode, seed=seed,
                n_folds=n_folds, n_boot=n_boot, frac_issues=frac_issues,
                include_aleatoric_uncertainty=include_aleatoric_uncertainty, scratch=scratch, clean=clean,
                parallelism=parallelism, parallel_map=_parallel_map)
        if multilabel:
            return evaluate_multilabel_rate(
                rate, train=train, test=test, estimator=estimator, id_col=id_col, label=LABEL, features=FEATURES,
                classes=classes, integral=isinstance(label_type.elementType, T.IntegralType), n_train=n_train,
                n_test=n_test, noise_mode=noise_mode, seed=seed, n_folds=n_folds, scratch=scratch,
                methods=list(FILTERS) if rate == float(detection_noise_rate) else [filter_by], filter_by=filter_by,
                downweight=downweight, self_confidence_threshold=self_confidence_threshold, clean=clean,
                parallelism=parallelism, parallel_map=_parallel_map)
        return _evaluate_rate(
            rate, train=train, test=test, estimator=estimator, id_col=id_col, classes=classes,
            label_type=label_type, n_train=n_train, n_test=n_test, noise_mode=noise_mode, seed=seed,
            n_folds=n_folds, frac_zero_noise_rates=frac_zero_noise_rates, scratch=scratch,
            methods=list(FILTERS) if rate == float(detection_noise_rate) else [filter_by], filter_by=filter_by,
            downweight=downweight, loss_top_fraction=loss_top_fraction,
            self_confidence_threshold=self_confidence_threshold, clean_acc=clean_acc, parallelism=parallelism,
        )

    detection_rows: list[dict[str, Any]] = []
    impact_rows: list[dict[str, Any]] = []
    for det_rows, imp_rows, rate_timings in _parallel_map(one_rate, rates, parallelism):
        detection_rows += det_rows
        impact_rows += imp_rows
        timings.update(rate_timings)
    timings["total"] = round(time.perf_counter() - t0, 3)
    return EvaluationResult(
        detection=pd.DataFrame(detection_rows, columns=REGRESSION_DETECTION_COLUMNS if regression else DETECTION_COLUMNS),
        impact=pd.DataFrame(impact_rows, columns=REGRESSION_IMPACT_COLUMNS if regression
                            else MULTILABEL_IMPACT_COLUMNS if multilabel else IMPACT_COLUMNS),
        classes=classes, n_train=n_train, n_test=n_test, timings=timings, task=task,
    )
