"""Out-of-fold predicted probabilities with any Spark ML classifier: sn.cross_val_predict_proba.

Every row is predicted by a model fitted on the other folds only. Folds are stratified and come
from a hash of (id, seed) (folds.py). Labels of any type are indexed to 0..K-1 in sorted order of
their values; the class values are recorded in the probability column's metadata, where
:func:`sparknoise.find_label_issues` picks them up.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from pyspark.ml import Estimator, Pipeline
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.inputs import METADATA_KEY, check_label_type, unfolded
from sparknoise.core.invalid_rows import check_feature_types, screen_invalid
from sparknoise.errors import ConfigError, InputError
from sparknoise.ml.folds import assign_folds

log = logging.getLogger("sparknoise")

LABEL_INDEX_COL = "__sn_label_index"
FEATURES_COL = "__sn_features"
PROBABILITY_COL = "__sn_probability"  # the configured classifier's probabilityCol
_PROB = PROBABILITY_COL
_RAW = "__sn_raw_prediction"
PREDICTION_COL = "__sn_prediction"

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


MAX_CLASSES = 1000  # default bound on the distinct labels read to the driver (the detect job's detection.max_classes)


def label_classes(df: DataFrame, label_col: str, max_classes: int = MAX_CLASSES) -> tuple:
    """Sorted distinct label values (a K-sized collect); ints 0..K-1 when labels are such ints.

    At most ``max_classes`` values are read; more is an :class:`InputError` (a continuous target, or
    an id column given as the label), never an unbounded collect.
    """
    check_label_type(df.schema[label_col])
    values = [r[0] for r in df.select(label_col).distinct().limit(max_classes + 1).collect()]  # <= K + 1 values
    if len(values) > max_classes:
        raise InputError(f"label column '{label_col}' has more than {max_classes} distinct values (max_classes); a "
                         "continuous target? Regression targets are not supported by sparknoise yet. For that many "
                         "classes pass classes=[...] or a larger max_classes.", column=label_col)
    if any(v is None for v in values):
        raise InputError(f"label column '{label_col}' has null values; drop or fix those rows.", column=label_col)
    values = sorted(values)
    dtype = df.schema[label_col].dataType
    if isinstance(dtype, (*_INTEGRAL, T.FloatType, T.DoubleType)) and values == list(range(len(values))):
        return tuple(int(v) if isinstance(dtype, _INTEGRAL) else float(v) for v in values)
    return tuple(values)


def indexed_label(label_col: str, classes: Sequence[Any], dtype: T.DataType) -> Any:
    """0..K-1 double label (Spark ML's label type) with nominal metadata giving K to classifiers."""
    values = F.array(*[F.lit(c).cast(dtype) for c in classes])
    index = (F.array_position(values, F.col(label_col)) - 1).cast("double")
    meta = {"ml_attr": {"type": "nominal", "num_vals": len(classes), "name": LABEL_INDEX_COL}}
    return index.alias(LABEL_INDEX_COL, metadata=meta)


def features_vector(df: DataFrame, features_col: str | None, features: Sequence[str] | None) -> DataFrame:
    """Add FEATURES_COL from a vector column, or assembled from numeric columns."""
    if features:
        return VectorAssembler(inputCols=list(features), outputCol=FEATURES_COL, handleInvalid="error").transform(df)
    return df.withColumn(FEATURES_COL, F.col(features_col))


def configured(estimator: Estimator) -> Estimator:
    """A copy of the classifier (or of a Pipeline's last stage) reading/writing sparknoise's columns."""
    if isinstance(estimator, Pipeline):
        stages = list(estimator.getStages())
        return Pipeline(stages=stages[:-1] + [configured(stages[-1])])
    params = {}
    for name, value in (("featuresCol", FEATURES_COL), ("labelCol", LABEL_INDEX_COL), ("probabilityCol", _PROB),
                        ("rawPredictionCol", _RAW), ("predictionCol", PREDICTION_COL)):
        if estimator.hasParam(name):
            params[estimator.getParam(name)] = value
    if not estimator.hasParam("probabilityCol"):
        raise InputError(f"{type(estimator).__name__} has no probabilityCol: use a probabilistic classifier.")
    return estimator.copy(params)


def check_engine(estimator: Estimator, session) -> None:
    """XGBoost's Spark estimators train through RDD barrier stages, which Spark Connect does not offer."""
    stages = estimator.getStages() if isinstance(estimator, Pipeline) else [estimator]
    remote = "connect" in type(session).__module__
    for stage in stages:
        if remote and type(stage).__module__.startswith("xgboost"):
            raise InputError(
                f"{type(stage).__name__} (XGBoost) needs a classic Spark session: it trains with RDD barrier "
                "execution, which Spark Connect (and Databricks serverless) does not offer. Run on classic "
                "compute, or fit the model elsewhere and pass its out-of-fold probabilities (probs_col / "
                "input.probs_col).")


def activate(session) -> None:
    """Make ``session`` active in this thread (Spark Connect keeps the active session per thread)."""
    setter = getattr(type(session), "_set_default_and_active_session", None)
    if setter is not None and type(session).getActiveSession() is None:
        setter(session)


def _validated_folds(df: DataFrame, fold_col: str, n_folds: int) -> None:
    sizes = {r[0]: r[1] for r in df.groupBy(fold_col).count().collect()}  # n_folds rows
    bad = [f for f in sizes if f is None or not 0 <= f < n_folds]
    if bad or len(sizes) != n_folds:
        raise InputError(
            f"fold column '{fold_col}' must hold every value 0..{n_folds - 1} and nothing else; found {sorted(sizes, key=str)}.",
            column=fold_col,
        )


def cross_val_predict_proba(
    df: DataFrame,
    estimator: Estimator,
    label_col: str = "label",
    features_col: str = "features",
    id_col: str = "id",
    n_folds: int = 5,
    seed: int = 0,
    fold_col: str | None = None,
    probs_col: str = "pred_probs",
    parallelism: int = 1,
    *,
    features: Sequence[str] | None = None,
    classes: Sequence[Any] | None = None,
    check_invalid: bool = True,
    max_classes: int = MAX_CLASSES,
    task: str = "multiclass",
) -> DataFrame:
    """Out-of-fold predicted probabilities: every row predicted by a model that never saw it.

    Args:
        df: labelled rows with a unique id and features (a vector column, or ``features=[...]``).
        estimator: a Spark ML probabilistic classifier, or a Pipeline ending in one.
        n_folds, seed: stratified folds from a hash of (id, seed); ``fold_col`` uses yours instead.
        probs_col: output ``array<double>`` of length K; its metadata records the class values.
        parallelism: how many fold models to fit concurrently.
        classes: label value of each probability index; default: the sorted distinct labels.
        max_classes: without ``classes``, more distinct labels than this is an :class:`InputError`.
        task: ``multiclass`` (one class per row) or ``multilabel``: ``label_col`` is an array of tags
            per row and ``probs_col`` gets K independent per-class probabilities, each from one binary
            copy of ``estimator`` per class per fold (hash folds, not stratified; see
            :mod:`sparknoise.ml.multilabel_folds`).
        check_invalid: first count null ids, null or NaN labels and null, NaN or infinite
            features (one scan) and raise :class:`InputError` naming the column; the detect job
            passes False because it has screened its input already (``input.on_invalid``).

    Returns:
        every input row once, plus ``fold`` (int) and ``probs_col``; lazy, and it keeps the fold
        models it needs alive (``oof.fold_models``) until it is garbage-collected.
    """
    started = time.perf_counter()
    check_engine(estimator, df.sparkSession)
    df = unfolded(df)
    for name, role in ((label_col, "label"), (id_col, "id")):
        if name not in df.columns:
            raise InputError(f"{role} column '{name}' is not in the input; available: {df.columns}.", column=name)
    if probs_col in df.columns or ("fold" in df.columns and fold_col != "fold"):
        clash = probs_col if probs_col in df.columns else "fold"
        raise InputError(f"the input already has a column '{clash}'; drop or rename it (in a job, set "
                         f"input.drop: [{clash}]).", column=clash)
    if features:
        missing = [c for c in features if c not in df.columns]
        if missing:
            raise InputError(f"feature columns {missing} are not in the input.", column=missing[0])
    elif features_col not in df.columns:
        raise InputError(
            f"features column '{features_col}' is not in the input; pass features_col= (a vector column) or "
            "features=[...] (numeric columns to assemble).",
            column=features_col,
        )
    if task not in ("multiclass", "multilabel"):
        raise ConfigError(f"task={task!r} is unknown; use 'multiclass' or 'multilabel' (regression: "
                          "RegressionCleanLearning)")
    if task == "multilabel":
        from sparknoise.ml.multilabel_folds import multilabel_oof, tag_classes

        if fold_col is not None:
            _validated_folds(df, fold_col, n_folds)
        if check_invalid:
            screen_invalid(df, "error", key="the on_invalid policy of the detect job", id_col=id_col,
                           label_col=label_col, features=features, features_col=None if features else features_col)
        check_feature_types(df, features, None if features else features_col)
        classes = tag_classes(df, label_col, classes, max_classes)
        out = multilabel_oof(features_vector(df, features_col, features), configured(estimator),
                             keep=[c for c in df.columns if c != "fold"], label_col=label_col, id_col=id_col,
                             classes=classes, n_folds=n_folds, seed=seed, fold_col=fold_col, probs_col=probs_col,
                             parallelism=parallelism, prob_col=_PROB, label_index_col=LABEL_INDEX_COL,
                             activate=activate)
        log.info("cross_val_predict_proba: %d folds x %d classes in %.1fs", n_folds, len(classes),
                 time.perf_counter() - started)
        return out
    if check_invalid:
        screen_invalid(df, "error", key="the on_invalid policy of the detect job", id_col=id_col,
                       label_col=label_col, features=features, features_col=None if features else features_col)
    else:
        check_feature_types(df, features, None if features else features_col)
    dtype = df.schema[label_col].dataType
    check_label_type(df.schema[label_col])
    classes = tuple(classes) if classes is not None else label_classes(df, label_col, max_classes)
    if len(classes) < 2:
        raise InputError(f"label column '{label_col}' has fewer than 2 classes: {list(classes)}.", column=label_col)
    data = features_vector(df, features_col, features).withColumn(
        LABEL_INDEX_COL, indexed_label(label_col, classes, dtype)
    )
    unknown = data.filter(F.col(LABEL_INDEX_COL) < 0).limit(1).collect()
    if unknown:
        raise InputError(
            f"label column '{label_col}' has value {unknown[0][label_col]!r} not in classes {list(classes)}.",
            column=label_col,
        )
    if fold_col is None:
        data = assign_folds(data, label_col=LABEL_INDEX_COL, id_col=id_col, n_folds=n_folds, seed=seed)
    else:
        _validated_folds(data, fold_col, n_folds)
        data = data.withColumn("fold", F.col(fold_col).cast("int"))
    est = configured(estimator)
    session = df.sparkSession

    def fit(fold: int):
        activate(session)  # Spark Connect's active session is per thread
        t = time.perf_counter()
        model = est.fit(data.filter(F.col("fold") != fold))
        log.info("fold %d/%d fitted in %.1fs", fold + 1, n_folds, time.perf_counter() - t)
        return model

    if parallelism <= 1:
        models = [fit(fold) for fold in range(n_folds)]
    else:
        with ThreadPoolExecutor(max_workers=int(parallelism)) as pool:
            models = list(pool.map(fit, range(n_folds)))
    meta = {METADATA_KEY: {"classes": list(classes), "n_folds": n_folds, "seed": seed}}
    parts = [
        model.transform(data.filter(F.col("fold") == fold)).withColumn(
            probs_col, vector_to_array(F.col(_PROB), "float64").alias(probs_col, metadata=meta)
        )
        for fold, model in enumerate(models)
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    keep = [c for c in df.columns if c != "fold"] + ["fold", probs_col]
    out = out.select(*keep).withColumn(probs_col, F.col(probs_col).alias(probs_col, metadata=meta))
    out.fold_models = models  # keeps server-side (Connect) models alive while the frame is in use
    log.info("cross_val_predict_proba: %d folds fitted in %.1fs", n_folds, time.perf_counter() - started)
    return out
