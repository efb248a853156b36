"""CleanLearning: training robust to label noise, and model persistence."""

from __future__ import annotations

import numpy as np
import pytest
from ml_data import classification, to_spark
from pyspark.ml.classification import LogisticRegression, RandomForestClassifier
from pyspark.sql import functions as F

import sparknoise as sn
from sparknoise.ml.clean_learning import CleanLearningModel


def _accuracy(model, test_df) -> float:
    out = model.transform(test_df)
    return out.select(F.avg((F.col("prediction") == F.col("true_label")).cast("double"))).first()[0]


# One of the four (estimator, noise) pairs measured (see the README's CleanLearning figures) keeps the
# suite short; CleanLearning with logistic regression is fitted (and round-tripped) in the next test.
@pytest.mark.parametrize(
    "make_estimator, noise",
    [(lambda: RandomForestClassifier(numTrees=30, maxDepth=8, seed=3), 0.3)],
    ids=["random_forest-0.3"],
)  # factories: estimators need a running session
def test_clean_learning_beats_training_on_noisy_labels(spark, noise, make_estimator):
    train, test = classification(3000, 3, n_features=10, seed=11, noise_rate=noise, test=2000)
    train_df, test_df = to_spark(spark, train), to_spark(spark, test)
    noisy = make_estimator().fit(train_df)
    model = sn.CleanLearning(estimator=make_estimator(), numFolds=5, seed=0).fit(train_df)
    acc_noisy, acc_clean = _accuracy(noisy, test_df), _accuracy(model, test_df)
    print(f"noise={noise} {type(make_estimator()).__name__}: noisy {acc_noisy:.4f} -> cleanlearning {acc_clean:.4f}")
    assert acc_clean > acc_noisy
    assert model.numFlagged > 0 and model.noiseMatrix.shape == (3, 3)
    assert model.labelIssues(train_df).count() == model.numFlagged


def test_model_exposes_estimates_and_round_trips(spark, tmp_path):
    train, test = classification(1200, 3, seed=12, noise_rate=0.2, test=300)
    train_df, test_df = to_spark(spark, train), to_spark(spark, test)
    model = sn.CleanLearning(estimator=LogisticRegression(maxIter=30), numFolds=2).fit(train_df)
    assert model.classes == [0, 1, 2]
    assert model.confidentJoint.sum() == 1200
    np.testing.assert_allclose(model.noiseMatrix.sum(axis=0), 1.0)
    path = str(tmp_path / "model")
    model.write().overwrite().save(path)
    model.write().overwrite().save(path)  # overwrite works
    with pytest.raises(OSError, match="already exists"):
        model.write().save(path)
    loaded = CleanLearningModel.load(path)
    np.testing.assert_array_equal(loaded.confidentJoint, model.confidentJoint)
    np.testing.assert_array_equal(loaded.noiseMatrix, model.noiseMatrix)
    assert loaded.classes == model.classes and loaded.numLabelIssues == model.numLabelIssues
    assert loaded.getNumFolds() == 2 and loaded.getMinExamplesPerClass() == 10
    a = model.transform(test_df).select("id", "prediction").orderBy("id").collect()
    b = loaded.transform(test_df).select("id", "prediction").orderBy("id").collect()
    assert a == b
    # label issues after load: recomputed deterministically from the training frame
    again = loaded.labelIssues(train_df, estimator=LogisticRegression(maxIter=30))
    assert [r["id"] for r in again.collect()] == [r["id"] for r in model.labelIssues(train_df).collect()]


def test_bring_your_own_probabilities(spark):
    train, _ = classification(900, 3, seed=13, noise_rate=0.2)
    df = to_spark(spark, train)
    oof = sn.cross_val_predict_proba(df, LogisticRegression(maxIter=30), n_folds=3, probs_col="my_probs")
    model = sn.CleanLearning(estimator=LogisticRegression(maxIter=30), probsCol="my_probs").fit(oof)
    direct = sn.find_label_issues(oof, probs_col="my_probs", min_examples_per_class=10)
    assert model.numFlagged == direct.num_flagged
