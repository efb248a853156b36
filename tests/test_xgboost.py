"""XGBoost's Spark estimator (the ``xgboost`` extra) as the out-of-fold model: the API and the detect job.

Oracle for the probabilities: XGBoost itself (``xgboost.XGBClassifier``, in memory) fitted on the same
fold's training rows with the same parameters (one worker, the hist tree method): the Spark estimator
builds the same trees, so the probabilities agree to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest
from ml_data import classification, to_spark
from pyspark.sql import functions as F

import sparknoise as sn

xgb = pytest.importorskip("xgboost")
from xgboost.spark import SparkXGBClassifier  # noqa: E402

PARAMS = {"n_estimators": 15, "max_depth": 3, "learning_rate": 0.3, "tree_method": "hist", "random_state": 0}


def test_out_of_fold_probabilities_match_xgboost_in_memory(spark):
    frame, _ = classification(900, 3, n_features=6, seed=4, noise_rate=0.15)
    frame["label"] = frame["label"].map({0: "cat", 1: "dog", 2: "emu"})  # string labels
    df = to_spark(spark, frame)
    oof = sn.cross_val_predict_proba(df, SparkXGBClassifier(**PARAMS), n_folds=3, seed=0)
    got = oof.select("id", "fold", "label", "pred_probs").toPandas().sort_values("id").reset_index(drop=True)
    assert got["pred_probs"].map(len).eq(3).all()
    # the same fold, the same rows, XGBoost in memory (labels as class indices, like sparknoise passes them)
    feats = frame[[f"f{i}" for i in range(6)]].to_numpy()
    index = frame["label"].map({"cat": 0, "dog": 1, "emu": 2}).to_numpy()
    probs = np.stack(got["pred_probs"].to_numpy())
    for fold in range(3):
        train, held = got["fold"].to_numpy() != fold, got["fold"].to_numpy() == fold
        model = xgb.XGBClassifier(**PARAMS).fit(feats[train], index[train])
        np.testing.assert_allclose(probs[held], model.predict_proba(feats[held]), rtol=0, atol=1e-6)
    res = sn.find_label_issues(oof)  # the classes travel in the metadata
    assert set(res.classes) == {"cat", "dog", "emu"}
    flagged = {r["id"] for r in res.issues().select("id").collect()}
    noisy = set(frame.loc[frame["label"].map({"cat": 0, "dog": 1, "emu": 2}) != frame["true_label"], "id"])
    assert len(flagged & noisy) / len(flagged) > 0.7 and len(flagged & noisy) / len(noisy) > 0.5


def test_clean_learning_with_xgboost_binary_and_weights(spark):
    frame, test = classification(600, 2, n_features=6, seed=9, noise_rate=0.2, test=300)
    train_df, test_df = to_spark(spark, frame), to_spark(spark, test)
    model = sn.CleanLearning(estimator=SparkXGBClassifier(**PARAMS), numFolds=2, weights="downweight").fit(train_df)
    assert model.numFlagged > 0 and model.noiseMatrix.shape == (2, 2)
    out = model.transform(test_df)
    accuracy = out.select(F.avg((F.col("prediction") == F.col("true_label")).cast("double"))).first()[0]
    assert accuracy > 0.8
    # the final XGBoost model was fitted with the down-weighted rows' sample_weight
    assert model.finalModel.getOrDefault("weightCol") == "sample_weight"


def test_model_estimator_xgboost_in_the_jobs():
    # the jobs build the estimator from model.estimator / model.params; the detect and evaluate runs then
    # go through cross_val_predict_proba exactly as the two tests above do
    from sparknoise.errors import ConfigError
    from sparknoise.jobs.config import load_config
    from sparknoise.ml.estimators import make_estimator

    cfg = load_config(None, ["input.path=/t", "input.features=[f0]", "model.estimator=xgboost",
                             "model.params={max_depth: 4, n_estimators: 50}"])
    est = make_estimator(cfg["model"]["estimator"], cfg["model"]["params"])
    assert isinstance(est, SparkXGBClassifier)
    assert est.getOrDefault("max_depth") == 4 and est.getOrDefault("n_estimators") == 50
    assert est.getOrDefault("verbose") is False  # no per-tree training log unless asked for
    with pytest.raises(ConfigError, match=r"'model.params.colour' is not a parameter of SparkXGBClassifier"):
        make_estimator("xgboost", {"colour": "red"})
    with pytest.raises(ConfigError, match="model.params"):
        make_estimator("xgboost", {"objective": "multi:softmax"})  # XGBoost's Spark estimator sets it itself


def test_xgboost_fit_logs_are_quiet_unless_verbose():
    # xgboost.spark logs an INFO block ("Running xgboost-... booster params ...", "Finished xgboost training!")
    # on every fit, so on every fold; the workers inherit the driver's level of that logger
    import logging

    from xgboost.spark.core import _LOG_TAG
    from xgboost.spark.utils import get_logger

    from sparknoise.ml.estimators import make_estimator

    make_estimator("xgboost", {"max_depth": 3})
    assert not get_logger(_LOG_TAG).isEnabledFor(logging.INFO)
    assert get_logger(_LOG_TAG).isEnabledFor(logging.WARNING)
    make_estimator("xgboost", {"max_depth": 3, "verbose": True})
    assert get_logger(_LOG_TAG).isEnabledFor(logging.INFO)
    make_estimator("xgboost", {"max_depth": 3})
