"""CleanLearning for multi-label tags: ``sn.CleanLearning(..., task="multilabel")``.

``fit`` (driver orchestration, every row-level step on Spark):

1. out-of-fold per-class probabilities, ``cross_val_predict_proba(task="multilabel")`` (one binary
   copy of the estimator per class per fold, hash folds), computed once; or the user's ``probsCol``;
2. ``find_multilabel_issues`` on them (``filterBy``, ``minExamplesPerClass``; ``weights="cleanlab"``
   prunes, as the detect job does: cleanlab's class weights need a K x K noise matrix);
3. the final model, one-vs-rest on the kept rows (``sample_weight > 0``, weighted by it when the
   classifier has a ``weightCol``): class c's binary classifier learns "tag c present". A class on
   every kept row, or on none, cannot be fitted: it predicts the constant 1.0 (or 0.0), as
   ``ml/multilabel_folds.py`` does for a fold. One aggregation (K tag counts) reaches the driver.

The model's ``transform`` adds ``probabilityCol`` (``array<double>``, K independent per-class
probabilities, entry c for ``classes[c]``) and ``predictionCol`` (the predicted tag set: the classes
whose probability exceeds 0.5, in class order, typed like the training tags). ``save``/``load``
persist the K binary models (``FinalModelWriter``) with the classes and the training data's
per-class estimates (never a DataFrame).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyspark.ml import Estimator, Model
from pyspark.ml.param.shared import HasProbabilityCol
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.ml.clean_learning import FinalModelWriter, _CleanLearningParams, detection_params, read_final_models
from sparknoise.ml.cross_validation import (
    LABEL_INDEX_COL,
    MAX_CLASSES,
    PROBABILITY_COL,
    activate,
    configured,
    cross_val_predict_proba,
    features_vector,
)
from sparknoise.ml.multilabel_folds import fit_one_vs_rest, one_vs_rest_probabilities, tag_classes
from sparknoise.multilabel.issues import find_multilabel_issues
from sparknoise.multilabel.result import MultilabelIssuesResult
from sparknoise.storage import materialised

_OOF = "__sn_oof_probs"
_P = "__sn_ml_probs"


def _detect(est: _CleanLearningParams, df: DataFrame) -> tuple[tuple, MultilabelIssuesResult]:
    """(classes, the detection): out-of-fold probabilities (unless probsCol), then find_multilabel_issues."""
    label, ident = est.getLabelCol(), est.getIdCol()
    classes = tag_classes(df, label, None, MAX_CLASSES)
    if est.isDefined(est.probsCol):
        oof, probs = df, est.getOrDefault(est.probsCol)
    else:
        oof = cross_val_predict_proba(df, est.getEstimator(), label_col=label, features_col=est.getFeaturesCol(),
                                      id_col=ident, n_folds=est.getNumFolds(), seed=est.getSeed(), probs_col=_OOF,
                                      classes=classes, task="multilabel")
        oof = materialised(oof, None, "out_of_fold_probabilities")  # detection's passes and the refit read it once
        probs = _OOF
    integral = isinstance(df.schema[label].dataType.elementType, T.IntegralType)
    weights = est.getWeights()
    result = find_multilabel_issues(oof, label_col=label, probs_col=probs, id_col=ident,
                                    classes=None if integral else classes, filter_by=est.getFilterBy(),
                                    min_examples_per_class=est.getMinExamplesPerClass(),
                                    weights="prune" if weights == "cleanlab" else weights)
    return classes, result


def fit_multilabel(est: Any, dataset: DataFrame) -> MultilabelCleanLearningModel:
    """``CleanLearning(task="multilabel").fit(dataset)``: steps 1-3 of the module docstring."""
    label = est.getLabelCol()
    classes, result = _detect(est, dataset)
    train = result.rows.filter(F.col("sample_weight") > 0)
    if est.isDefined(est.weightCol) and est.getWeightCol():
        train = train.withColumn("sample_weight", F.col("sample_weight") * F.col(est.getWeightCol()))
    train = features_vector(train, est.getFeaturesCol(), None)
    final = est.getOrDefault(est.finalEstimator) if est.isDefined(est.finalEstimator) else est.getEstimator()
    binary = configured(final)
    if binary.hasParam("weightCol"):
        binary = binary.copy({binary.getParam("weightCol"): "sample_weight"})
    models, constants = fit_one_vs_rest(train, binary, label_col=label, classes=classes,
                                        label_index_col=LABEL_INDEX_COL, activate=activate)
    model = MultilabelCleanLearningModel(
        class_models=models, constants=constants, classes=list(classes),
        label_type=dataset.schema[label].dataType.elementType.simpleString(),
        confident_joint=result.confident_joint, thresholds=result.thresholds,
        num_label_issues=result.num_label_issues, num_label_issues_per_class=result.num_label_issues_per_class,
        num_flagged=result.num_flagged)
    model._result = result  # transient: not persisted
    est._copyValues(model)
    return model


class MultilabelCleanLearningModel(Model, _CleanLearningParams, HasProbabilityCol, MLWritable, MLReadable):
    """One binary classifier per class fitted on the cleaned tags (see the module docstring), plus the
    training data's per-class estimates: ``confidentJoint`` (K x 2 x 2), ``thresholds`` (K x 2),
    ``numLabelIssues``, ``numLabelIssuesPerClass``, ``numFlagged``."""

    def __init__(self, class_models: list | None = None, constants: list | None = None, classes: list | None = None,
                 label_type: str = "int", confident_joint: np.ndarray | None = None,
                 thresholds: np.ndarray | None = None, num_label_issues: int = 0,
                 num_label_issues_per_class: Any = None, num_flagged: int = 0) -> None:
        super().__init__()
        self._setDefault(probabilityCol="probability")
        self.classModels = list(class_models or [])
        self.constants = list(constants or [])
        self.classes = list(classes or [])
        self.labelType = label_type
        self.confidentJoint = np.asarray(confident_joint) if confident_joint is not None else None
        self.thresholds = np.asarray(thresholds) if thresholds is not None else None
        self.numLabelIssues = int(num_label_issues)
        self.numLabelIssuesPerClass = (np.asarray(num_label_issues_per_class)
                                       if num_label_issues_per_class is not None else None)
        self.numFlagged = int(num_flagged)
        self._result: MultilabelIssuesResult | None = None

    def _transform(self, dataset: DataFrame) -> DataFrame:
        """Per row (executors): the K binary models' P(tag present) and the tags above 0.5."""
        columns = dataset.columns
        frame = one_vs_rest_probabilities(features_vector(dataset, self.getFeaturesCol(), None), self.classModels,
                                          self.constants, prob_col=PROBABILITY_COL, out_col=_P)
        probs = F.col(_P)
        lookup = F.array(*[F.lit(v) for v in self.classes]).cast(f"array<{self.labelType}>")  # typed like the tags
        tags = F.filter(F.transform(lookup, lambda v, i: F.struct(v.alias("v"), F.get(probs, i).alias("p"))),
                        lambda s: s["p"] > F.lit(0.5))
        return frame.select(*columns, probs.alias(self.getProbabilityCol()),
                            F.transform(tags, lambda s: s["v"]).alias(self.getPredictionCol()))

    def labelIssues(self, train_df: DataFrame, estimator: Estimator | None = None) -> DataFrame:
        """The flagged training rows, most suspicious first (right after ``fit``: the fit's detection;
        after ``load``: recomputed from ``train_df``, which needs ``estimator`` unless ``probsCol`` was used)."""
        if self._result is None:
            self._result = _detect(detection_params(self, estimator), train_df)[1]
        return self._result.issues()

    def write(self) -> MLWriter:
        return FinalModelWriter(self, _metadata, _models)

    @classmethod
    def read(cls) -> MLReader:
        return _Reader()


_PARAMS = ("labelCol", "featuresCol", "predictionCol", "probabilityCol", "numFolds", "idCol", "seed", "filterBy",
           "minExamplesPerClass", "weights", "probsCol", "weightCol", "task")


def _models(m: MultilabelCleanLearningModel) -> dict[str, Model]:
    return {f"classModel_{c}": model for c, model in enumerate(m.classModels) if model is not None}


def _metadata(m: MultilabelCleanLearningModel) -> dict[str, Any]:
    return {
        "class": "sparknoise.MultilabelCleanLearningModel",
        "params": {p: m.getOrDefault(p) for p in _PARAMS if m.isDefined(p)},
        "classes": m.classes,
        "label_type": m.labelType,
        "constants": m.constants,
        "confident_joint": m.confidentJoint.tolist(),
        "thresholds": m.thresholds.tolist(),
        "num_label_issues": m.numLabelIssues,
        "num_label_issues_per_class": m.numLabelIssuesPerClass.tolist(),
        "num_flagged": m.numFlagged,
    }


class _Reader(MLReader):
    def load(self, path: str) -> MultilabelCleanLearningModel:
        meta, models = read_final_models(path)
        model = MultilabelCleanLearningModel(
            class_models=[models.get(f"classModel_{c}") for c in range(len(meta["classes"]))],
            constants=meta["constants"], classes=meta["classes"], label_type=meta["label_type"],
            confident_joint=np.array(meta["confident_joint"]), thresholds=np.array(meta["thresholds"]),
            num_label_issues=meta["num_label_issues"],
            num_label_issues_per_class=np.array(meta["num_label_issues_per_class"]),
            num_flagged=meta["num_flagged"])
        model._set(**meta["params"])
        return model
