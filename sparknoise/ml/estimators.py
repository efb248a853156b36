"""The estimator registry of the jobs: ``model.estimator`` name -> Spark ML classifier (``ESTIMATORS``) or,
for ``detection.task: regression``, regressor (``REGRESSORS``: linear_regression, random_forest_regressor,
gbt_regressor, xgboost_regressor).

``xgboost`` is XGBoost's own Spark estimator (``xgboost.spark.SparkXGBClassifier``, from the
optional extra ``pip install 'sparknoise[xgboost]'``); ``model.params`` are its keyword arguments
(``{max_depth: 6, n_estimators: 200}``). It trains with RDD barrier execution, so it needs a classic
Spark session (not Spark Connect or serverless compute).
"""

from __future__ import annotations

import logging
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
    "xgboost": "SparkXGBClassifier",
}


REGRESSORS = {
    "linear_regression": "LinearRegression",
    "random_forest_regressor": "RandomForestRegressor",
    "gbt_regressor": "GBTRegressor",
    "decision_tree_regressor": "DecisionTreeRegressor",
    "xgboost_regressor": "SparkXGBRegressor",
}


def make_estimator(name: str, params: dict[str, Any] | None = None, *, task: str = "multiclass") -> Estimator:
    """Instantiate a registered classifier (or, ``task="regression"``, regressor) with its Spark ML params."""
    import pyspark.ml.classification as classification
    import pyspark.ml.regression as regression

    registry = REGRESSORS if task == "regression" else ESTIMATORS
    cls_name = registry.get(name)
    if cls_name is None:
        kind = "regressor" if task == "regression" else "classifier"
        raise ConfigError(f"'model.estimator' {name!r} is not a {kind}; use one of {sorted(registry)}")
    if name in ("xgboost", "xgboost_regressor"):
        return _xgboost(params or {}, regressor=task == "regression")
    estimator = getattr(regression if task == "regression" else classification, cls_name)()
    for key, value in (params or {}).items():
        if not estimator.hasParam(key):
            raise ConfigError(f"'model.params.{key}' is not a parameter of {cls_name}")
        estimator._set(**{key: value})
    return estimator


XGBOOST_LOGGER = "XGBoost-PySpark"  # xgboost.spark's logger: INFO blocks on every fit unless set higher


def quiet_xgboost_logs(verbose: bool) -> None:
    """xgboost.spark logs each fit's parameters and end at INFO (its logger defaults to INFO, and the
    workers inherit the driver's level): WARNING unless ``verbose``. The one log level of a library
    logger, not a session setting."""
    logging.getLogger(XGBOOST_LOGGER).setLevel(logging.INFO if verbose else logging.WARNING)


def _xgboost(params: dict[str, Any], *, regressor: bool = False) -> Estimator:
    try:
        from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor
    except ImportError:
        raise ConfigError("'model.estimator' xgboost needs the xgboost package: pip install 'sparknoise[xgboost]'") \
            from None
    aliases = {"features_col", "label_col", "weight_col", "prediction_col", "probability_col", "raw_prediction_col",
               "validation_indicator_col"}
    cls = SparkXGBRegressor if regressor else SparkXGBClassifier
    known = {p.name for p in cls().params} | aliases
    for key in params:
        if key not in known:
            raise ConfigError(f"'model.params.{key}' is not a parameter of {cls.__name__} (XGBoost's keyword "
                              "arguments, e.g. max_depth, n_estimators, learning_rate)")
    if "objective" in params and not regressor:
        raise ConfigError("'model.params.objective' cannot be set: SparkXGBClassifier chooses binary:logistic or "
                          "multi:softprob from the number of classes")
    # no per-iteration "training-mlogloss" line for every tree of every fold unless asked for, and no
    # "Running xgboost ... booster params" / "Finished xgboost training!" INFO block per fold either
    params = {"verbose": False, **params}
    quiet_xgboost_logs(bool(params["verbose"]))
    try:
        return cls(**params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"'model.params' {params!r} are not valid {cls.__name__} parameters: {e}") from None
