"""Out-of-fold probabilities on Spark ML: folds, leakage, determinism, every classifier."""

from __future__ import annotations

import numpy as np
import pytest
from ml_data import classification, to_spark
from pyspark.ml.classification import (
    DecisionTreeClassifier,
    FMClassifier,
    GBTClassifier,
    LogisticRegression,
    MultilayerPerceptronClassifier,
    NaiveBayes,
    RandomForestClassifier,
)
from pyspark.sql import functions as F

import sparknoise as sn
from sparknoise.errors import InputError


@pytest.fixture(scope="module")
def k3(spark):
    return to_spark(spark, classification(1500, 3)[0])


def _collect(oof, probs="pred_probs"):
    return oof.select("id", "label", "fold", probs).toPandas().sort_values("id").reset_index(drop=True)


def test_every_row_once_with_k_probabilities_and_stratified_folds(k3):
    got = _collect(sn.cross_val_predict_proba(k3, LogisticRegression(maxIter=50), n_folds=5, seed=3))
    assert len(got) == 1500 and got["id"].is_unique
    P = np.stack(got["pred_probs"].to_numpy())
    assert P.shape == (1500, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-9)
    counts = got.groupby(["label", "fold"]).size().unstack()
    assert counts.shape == (3, 5)
    assert ((counts.max(axis=1) - counts.min(axis=1)) <= 1).all()


def test_out_of_fold_predictions_never_saw_their_row(spark):
    # random labels: a deep tree memorises them in-sample, but out-of-fold accuracy stays at chance
    frame, _ = classification(1200, 2, seed=5)
    frame["label"] = np.random.default_rng(1).integers(0, 2, len(frame))
    df = to_spark(spark, frame)
    tree = DecisionTreeClassifier(maxDepth=25, minInstancesPerNode=1)
    got = _collect(sn.cross_val_predict_proba(df, tree, n_folds=5))
    oof_acc = (np.stack(got["pred_probs"]).argmax(1) == got["label"]).mean()
    insample = tree.fit(df).transform(df).select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0]
    assert insample > 0.95
    assert abs(oof_acc - 0.5) < 0.07


def test_same_folds_and_probabilities_for_any_partitioning_and_rerun(spark):
    frame, _ = classification(900, 3, seed=2)
    runs = [
        _collect(sn.cross_val_predict_proba(to_spark(spark, frame, partitions=p), LogisticRegression(maxIter=30),
                                            parallelism=par))
        for p, par in ((1, 1), (7, 1), (7, 2))  # the last: a second run, folds fitted two at a time
    ]
    for other in runs[1:]:
        assert (runs[0]["fold"] == other["fold"]).all()
        np.testing.assert_allclose(np.stack(runs[0]["pred_probs"]), np.stack(other["pred_probs"]), atol=1e-9)


def test_user_fold_column_is_used_and_checked(k3):
    df = k3.withColumn("my_fold", (F.col("id") % 4).cast("int"))
    got = _collect(sn.cross_val_predict_proba(df, LogisticRegression(maxIter=20), n_folds=4, fold_col="my_fold"))
    assert (got["fold"] == got["id"] % 4).all()
    with pytest.raises(InputError, match="'my_fold'"):
        sn.cross_val_predict_proba(df, LogisticRegression(), n_folds=5, fold_col="my_fold")


def test_class_smaller_than_folds_is_an_error(spark):
    frame, _ = classification(300, 3, seed=4)
    frame.loc[frame.index[:3], "label"] = 7  # a class of 3 rows
    with pytest.raises(InputError, match="fewer rows than the 5 folds"):
        sn.cross_val_predict_proba(to_spark(spark, frame), LogisticRegression(), n_folds=5)


# logistic regression and a decision tree run in the tests above
MULTICLASS = {
    "random_forest": lambda: RandomForestClassifier(numTrees=10, seed=1),
    "mlp": lambda: MultilayerPerceptronClassifier(layers=[8, 6, 3], maxIter=30, seed=1),
}


@pytest.mark.parametrize("name", list(MULTICLASS))
def test_multiclass_classifiers(k3, name):
    got = _collect(sn.cross_val_predict_proba(k3, MULTICLASS[name](), n_folds=3))
    P = np.stack(got["pred_probs"])
    assert P.shape == (1500, 3) and (P.argmax(1) == got["label"]).mean() > 0.6


def test_naive_bayes_and_feature_columns(spark):
    frame, _ = classification(900, 3, seed=6)
    for c in [c for c in frame.columns if c.startswith("f")]:
        frame[c] = frame[c] - frame[c].min()  # NaiveBayes needs non-negative features
    df = spark.createDataFrame(frame)
    feats = [c for c in frame.columns if c.startswith("f")]
    got = _collect(sn.cross_val_predict_proba(df, NaiveBayes(), features=feats, n_folds=3))
    assert np.stack(got["pred_probs"]).shape == (900, 3)


BINARY = {"gbt": lambda: GBTClassifier(maxIter=10, seed=1), "fm": lambda: FMClassifier(maxIter=20, seed=1)}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_only_classifiers(spark, name):
    df = to_spark(spark, classification(800, 2, seed=8)[0])
    got = _collect(sn.cross_val_predict_proba(df, BINARY[name](), n_folds=3))
    P = np.stack(got["pred_probs"])
    assert P.shape == (800, 2) and (P.argmax(1) == got["label"]).mean() > 0.7


def test_string_labels_flow_into_find_label_issues(spark):
    frame, _ = classification(900, 3, seed=9, noise_rate=0.2)
    frame["label"] = np.array(["ant", "bee", "cat"])[frame["label"]]
    df = to_spark(spark, frame)
    oof = sn.cross_val_predict_proba(df, LogisticRegression(maxIter=30), n_folds=3)
    res = sn.find_label_issues(oof)
    assert res.classes == ("ant", "bee", "cat")
    assert res.num_flagged > 0
    assert set(r[0] for r in res.issues().select("predicted_label").distinct().collect()) <= {"ant", "bee", "cat"}


def test_probabilities_have_k_entries_when_a_training_fold_lacks_a_class(spark):
    # all rows of class 2 sit in fold 0, so the model for fold 0 never sees class 2
    frame, _ = classification(600, 3, seed=10)
    frame["my_fold"] = np.where(frame["label"] == 2, 0, frame["id"] % 3)
    df = to_spark(spark, frame)
    got = _collect(sn.cross_val_predict_proba(df, LogisticRegression(maxIter=20), n_folds=3, fold_col="my_fold"))
    P = np.stack(got["pred_probs"])
    assert P.shape == (600, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-9)
