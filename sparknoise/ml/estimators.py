"""The estimator registry of the jobs: ``model.estimator`` name -> Spark ML classifier."""

from __future__ import annotations

from typing import Any

from pyspark.ml import Estimator

from sparknoise.errors import ConfigError

ESTIMATORS = {
    "logistic_regression": "LogisticRegression",
    "random_forest": "RandomForestClassifier",
    "decision_tree": "DecisionTreeClassifier",
    "gbt": "GBTClassifier",
    "naive_bayes": "NaiveBayes",
    "mlp": "MultilayerPerceptronClassifier",
    "fm": "FMClassifier",
}


def make_estimator(name: str, params: dict[str, Any] | None = None) -> Estimator:
    """Instantiate a registered classifier with its Spark ML params."""
    import pyspark.ml.classification as classification

    cls_name = ESTIMATORS.get(name)
    if cls_name is None:
        raise ConfigError(f"'model.estimator' {name!r} is unknown; use one of {sorted(ESTIMATORS)}")
    estimator = getattr(classification, cls_name)()
    for key, value in (params or {}).items():
        if not estimator.hasParam(key):
            raise ConfigError(f"'model.params.{key}' is not a parameter of {cls_name}")
        estimator._set(**{key: value})
    return estimator
