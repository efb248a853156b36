"""CleanLearning: a Spark ML Estimator that trains robustly to label noise (cleanlab's CleanLearning).

``fit``: out-of-fold probabilities (k-fold, or the user's ``probsCol``) -> find_label_issues ->
the final classifier fitted on the rows that were not flagged, weighted by ``sample_weight`` when
the classifier has a ``weightCol``. The model predicts like the final classifier and carries the
confident joint, noise matrices, prior and classes; ``save``/``load`` persist them with the final
model (never a DataFrame).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Estimator, Model, Pipeline
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol, HasPredictionCol, HasSeed, HasWeightCol
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparknoise._version import __version__
from sparknoise.core.label_issues import find_label_issues
from sparknoise.core.result import LabelIssuesResult
from sparknoise.errors import ConfigError
from sparknoise.ml.cross_validation import LABEL_INDEX_COL, cross_val_predict_proba, indexed_label, label_classes
from sparknoise.storage import materialised

_OOF = "__sn_oof_probs"


class _CleanLearningParams(HasLabelCol, HasFeaturesCol, HasWeightCol, HasSeed, HasPredictionCol):
    estimator = Param(Params._dummy(), "estimator", "Spark ML probabilistic classifier (or Pipeline ending in one)")
    finalEstimator = Param(Params._dummy(), "finalEstimator", "classifier for the final fit (default: estimator)")
    numFolds = Param(Params._dummy(), "numFolds", "folds for out-of-fold probabilities", TypeConverters.toInt)
    idCol = Param(Params._dummy(), "idCol", "unique row id column", TypeConverters.toString)
    filterBy = Param(Params._dummy(), "filterBy", "find_label_issues filter_by", TypeConverters.toString)
    minExamplesPerClass = Param(Params._dummy(), "minExamplesPerClass", "as cleanlab (10)", TypeConverters.toInt)
    weights = Param(Params._dummy(), "weights", "sample_weight policy: cleanlab|prune|downweight|quality",
                    TypeConverters.toString)
    probsCol = Param(Params._dummy(), "probsCol", "user's out-of-fold probabilities (skips cross-validation)",
                     TypeConverters.toString)
    task = Param(Params._dummy(), "task", "multiclass (one class per row) | multilabel (an array of tags per row)",
                 TypeConverters.toString)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(labelCol="label", featuresCol="features", numFolds=5, idCol="id", seed=0,
                         filterBy="prune_by_noise_rate", minExamplesPerClass=10, weights="cleanlab",
                         predictionCol="prediction", task="multiclass")

    def getEstimator(self) -> Estimator:
        return self.getOrDefault(self.estimator)

    def getNumFolds(self) -> int:
        return self.getOrDefault(self.numFolds)

    def getIdCol(self) -> str:
        return self.getOrDefault(self.idCol)

    def getFilterBy(self) -> str:
        return self.getOrDefault(self.filterBy)

    def getMinExamplesPerClass(self) -> int:
        return self.getOrDefault(self.minExamplesPerClass)

    def getWeights(self) -> str:
        return self.getOrDefault(self.weights)

    def getTask(self) -> str:
        return self.getOrDefault(self.task)


class CleanLearning(Estimator, _CleanLearningParams):
    """Find label issues by cross-validation, drop or down-weight them, refit on what remains.

    >>> cl = CleanLearning(estimator=LogisticRegression(), labelCol="label", featuresCol="features",
    ...                    idCol="id", numFolds=5, seed=0)
    >>> model = cl.fit(train_df)
    >>> model.transform(test_df).select("prediction", "probability")

    ``task="multilabel"``: ``labelCol`` is an array of tags per row; detection is
    ``find_multilabel_issues`` on one-vs-rest out-of-fold probabilities and the model is one binary
    classifier per class (:mod:`sparknoise.multilabel.learn`, reached by a lazy import: ``ml`` sits
    below ``multilabel`` in the import layers).
    """

    @keyword_only
    def __init__(self, *, estimator: Estimator | None = None, finalEstimator: Estimator | None = None,
                 labelCol: str = "label", featuresCol: str = "features", idCol: str = "id", numFolds: int = 5,
                 seed: int = 0, filterBy: str = "prune_by_noise_rate", minExamplesPerClass: int = 10,
                 weights: str = "cleanlab", probsCol: str | None = None, weightCol: str | None = None,
                 task: str = "multiclass") -> None:
        super().__init__()
        self.setParams(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> CleanLearning:
        """Set any of the constructor's params."""
        return self._set(**{k: v for k, v in kwargs.items() if v is not None})

    def _fit(self, dataset: DataFrame) -> CleanLearningModel:
        if not self.isDefined(self.estimator):
            raise ConfigError("CleanLearning needs estimator=<a Spark ML probabilistic classifier>.")
        if self.getTask() not in ("multiclass", "multilabel"):
            raise ConfigError(f"CleanLearning task={self.getTask()!r} is unknown; use 'multiclass' or 'multilabel' "
                              "(regression: sn.RegressionCleanLearning).")
        if self.getTask() == "multilabel":
            from sparknoise.multilabel.learn import fit_multilabel  # upward, lazily: see ALLOWED_UPWARD

            return fit_multilabel(self, dataset)
        label = self.getLabelCol()
        classes, result = _detect(self, dataset)
        train = result.rows.filter(F.col("sample_weight") > 0).withColumn(
            LABEL_INDEX_COL, indexed_label(label, classes, dataset.schema[label].dataType)
        )
        if self.isDefined(self.weightCol) and self.getWeightCol():
            train = train.withColumn("sample_weight", F.col("sample_weight") * F.col(self.getWeightCol()))
        final = self.getOrDefault(self.finalEstimator) if self.isDefined(self.finalEstimator) else self.getEstimator()
        final_model = _final_estimator(final, self.getFeaturesCol(), self.getPredictionCol()).fit(train)
        model = CleanLearningModel(
            final_model=final_model,
            classes=list(classes),
            confident_joint=result.confident_joint,
            noise_matrix=result.noise_matrix,
            inverse_noise_matrix=result.inverse_noise_matrix,
            prior=result.prior,
            num_label_issues=result.num_label_issues,
            num_flagged=result.num_flagged,
        )
        model._result = result  # transient: not persisted
        return self._copyValues(model)


def _final_estimator(estimator: Estimator, features_col: str, prediction_col: str) -> Estimator:
    if isinstance(estimator, Pipeline):
        stages = list(estimator.getStages())
        return Pipeline(stages=stages[:-1] + [_final_estimator(stages[-1], features_col, prediction_col)])
    params = {estimator.getParam("labelCol"): LABEL_INDEX_COL, estimator.getParam("featuresCol"): features_col,
              estimator.getParam("predictionCol"): prediction_col}
    if estimator.hasParam("weightCol"):
        params[estimator.getParam("weightCol")] = "sample_weight"
    return estimator.copy(params)


class CleanLearningModel(Model, _CleanLearningParams, MLWritable, MLReadable):
    """The final classifier fitted on the cleaned data, plus the noise estimates of the training data."""

    def __init__(self, final_model: Model | None = None, classes: list | None = None,
                 confident_joint: np.ndarray | None = None, noise_matrix: np.ndarray | None = None,
                 inverse_noise_matrix: np.ndarray | None = None, prior: np.ndarray | None = None,
                 num_label_issues: int = 0, num_flagged: int = 0) -> None:
        super().__init__()
        self.finalModel = final_model
        self.classes = list(classes or [])
        self.confidentJoint = np.asarray(confident_joint) if confident_joint is not None else None
        self.noiseMatrix = np.asarray(noise_matrix) if noise_matrix is not None else None
        self.inverseNoiseMatrix = np.asarray(inverse_noise_matrix) if inverse_noise_matrix is not None else None
        self.prior = np.asarray(prior) if prior is not None else None
        self.numLabelIssues = int(num_label_issues)
        self.numFlagged = int(num_flagged)
        self._result: LabelIssuesResult | None = None

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return self.finalModel.transform(dataset)

    def labelIssues(self, train_df: DataFrame, estimator: Estimator | None = None) -> DataFrame:
        """The flagged training rows, most suspicious first.

        Right after ``fit`` this reuses the fit's detection; after ``load`` it recomputes it from
        ``train_df`` (deterministic: same folds, same flags), which needs ``estimator`` unless the
        model was fitted on the user's probabilities (``probsCol``).
        """
        if self._result is None:
            self._result = _detect(detection_params(self, estimator), train_df)[1]
        return self._result.issues()

    def write(self) -> MLWriter:
        return FinalModelWriter(self, _clean_learning_metadata)

    @classmethod
    def read(cls) -> MLReader:
        return _CleanLearningModelReader()


def detection_params(model: Params, estimator: Estimator | None) -> CleanLearning:
    """A CleanLearning with a fitted (or loaded) model's params and ``estimator``: what recomputing the
    model's detection needs (``labelIssues`` after ``load``). ConfigError without a classifier unless
    the model was fitted on the user's probabilities (``probsCol``)."""
    est = CleanLearning()
    model._copyValues(est)
    if estimator is not None:
        est._set(estimator=estimator)
    if not est.isDefined(est.estimator) and not est.isDefined(est.probsCol):
        raise ConfigError("labelIssues after load needs estimator=<the classifier used in fit>.")
    return est


def _detect(est: _CleanLearningParams, df: DataFrame) -> tuple[tuple, LabelIssuesResult]:
    """Out-of-fold probabilities (unless probsCol is set), then find_label_issues."""
    label, ident = est.getLabelCol(), est.getIdCol()
    classes = label_classes(df, label)
    if est.isDefined(est.probsCol):
        oof, probs = df, est.getOrDefault(est.probsCol)
    else:
        oof = cross_val_predict_proba(df, est.getEstimator(), label_col=label, features_col=est.getFeaturesCol(),
                                      id_col=ident, n_folds=est.getNumFolds(), seed=est.getSeed(), probs_col=_OOF,
                                      classes=classes)
        # computed once (localCheckpoint): detection's passes and the refit read it, never refit the folds
        oof = materialised(oof, None, "out_of_fold_probabilities")
        probs = _OOF
    result = find_label_issues(oof, label_col=label, probs_col=probs, id_col=ident, classes=classes,
                               filter_by=est.getFilterBy(), min_examples_per_class=est.getMinExamplesPerClass(),
                               weights=est.getWeights())
    return classes, result


_SIMPLE_PARAMS = ("labelCol", "featuresCol", "predictionCol", "numFolds", "idCol", "seed", "filterBy",
                  "minExamplesPerClass", "weights", "probsCol", "weightCol", "task")


class FinalModelWriter(MLWriter):
    """Saves a model as one JSON metadata line (``metadata(instance)`` plus the final model's class) and
    its final Spark ML model beside it; works on classic and Spark Connect sessions.

    ``models(instance)`` (optional) names several Spark ML models to save instead of the one
    ``instance.finalModel``: each goes to ``path/<name>`` and its class to the metadata's
    ``final_model_classes``; :func:`read_final_models` loads them back.
    """

    def __init__(self, instance: Any, metadata: Any, models: Any = None) -> None:
        super().__init__()
        self.instance = instance
        self._metadata = metadata
        self._models = models

    def save(self, path: str) -> None:
        """Save to ``path`` (any Hadoop path)."""
        if not self.shouldOverwrite and _exists(f"{path}/metadata"):
            raise OSError(f"path {path} already exists; use write().overwrite().save(path).")
        self.saveImpl(path)

    def saveImpl(self, path: str) -> None:
        meta = {**self._metadata(self.instance), "sparknoise_version": __version__}
        if self._models is None:
            models = {"finalModel": self.instance.finalModel}
            meta["final_model_class"] = _class_name(self.instance.finalModel)
        else:
            models = dict(self._models(self.instance))
            meta["final_model_classes"] = {name: _class_name(m) for name, m in models.items()}
        spark = SparkSession.active()
        spark.createDataFrame([(json.dumps(meta),)], "value string").coalesce(1).write.mode("overwrite").text(
            f"{path}/metadata"
        )
        for name, model in models.items():
            model.write().overwrite().save(f"{path}/{name}")


def _class_name(model: Model) -> str:
    return f"{type(model).__module__}.{type(model).__name__}"


def _load_model(class_name: str, path: str) -> Model:
    import importlib

    module, _, name = class_name.rpartition(".")
    return getattr(importlib.import_module(module), name).load(path)


def _read_metadata(path: str) -> dict:
    """The JSON metadata line a :class:`FinalModelWriter` wrote under ``path``."""
    return json.loads(SparkSession.active().read.text(f"{path}/metadata").first()["value"])  # one metadata line


def read_final_model(path: str) -> tuple[dict, Model]:
    """(the metadata, the final model) of a model saved by :class:`FinalModelWriter`."""
    meta = _read_metadata(path)
    return meta, _load_model(meta["final_model_class"], f"{path}/finalModel")


def read_final_models(path: str) -> tuple[dict, dict[str, Model]]:
    """(the metadata, {name: model}) of a model saved by :class:`FinalModelWriter` with ``models``."""
    meta = _read_metadata(path)
    return meta, {name: _load_model(cls, f"{path}/{name}") for name, cls in meta["final_model_classes"].items()}


def _clean_learning_metadata(m: CleanLearningModel) -> dict:
    return {
        "class": "sparknoise.CleanLearningModel",
        "params": {p: m.getOrDefault(p) for p in _SIMPLE_PARAMS if m.isDefined(p)},
        "classes": m.classes,
        "confident_joint": m.confidentJoint.tolist(),
        "noise_matrix": m.noiseMatrix.tolist(),
        "inverse_noise_matrix": m.inverseNoiseMatrix.tolist(),
        "prior": m.prior.tolist(),
        "num_label_issues": m.numLabelIssues,
        "num_flagged": m.numFlagged,
    }


def _exists(path: str) -> bool:
    try:
        SparkSession.active().read.text(path).limit(1).collect()
        return True
    except Exception:  # noqa: BLE001 - any failure to read means there is nothing usable there
        return False


class _CleanLearningModelReader(MLReader):
    def load(self, path: str) -> CleanLearningModel:
        meta, final_model = read_final_model(path)
        model = CleanLearningModel(
            final_model=final_model,
            classes=meta["classes"],
            confident_joint=np.array(meta["confident_joint"]),
            noise_matrix=np.array(meta["noise_matrix"]),
            inverse_noise_matrix=np.array(meta["inverse_noise_matrix"]),
            prior=np.array(meta["prior"]),
            num_label_issues=meta["num_label_issues"],
            num_flagged=meta["num_flagged"],
        )
        model._set(**meta["params"])
        return model
