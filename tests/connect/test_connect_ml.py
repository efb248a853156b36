"""Cross-validation and CleanLearning (fit, save, load, overwrite) on Spark Connect."""

from __future__ import annotations

import numpy as np
from ml_data import classification, to_spark
from pyspark.ml.classification import LogisticRegression

import sparknoise as sn
from sparknoise.ml.clean_learning import CleanLearningModel


def test_cross_val_and_clean_learning_on_connect(spark, tmp_path):
    train, test = classification(900, 3, seed=21, noise_rate=0.2, test=300)
    df, test_df = to_spark(spark, train), to_spark(spark, test)
    oof = sn.cross_val_predict_proba(df, LogisticRegression(maxIter=30), n_folds=2)
    got = oof.select("id", "fold", "pred_probs").toPandas()
    assert len(got) == 900 and got["id"].is_unique and np.stack(got["pred_probs"]).shape == (900, 3)

    model = sn.CleanLearning(estimator=LogisticRegression(maxIter=30), numFolds=2).fit(df)
    path = str(tmp_path / "model")
    model.write().overwrite().save(path)
    model.write().overwrite().save(path)
    loaded = CleanLearningModel.load(path)
    np.testing.assert_array_equal(loaded.confidentJoint, model.confidentJoint)
    a = model.transform(test_df).select("id", "prediction").orderBy("id").collect()
    b = loaded.transform(test_df).select("id", "prediction").orderBy("id").collect()
    assert a == b


def test_xgboost_on_connect_is_a_clear_error(spark):
    import pytest

    xgb_spark = pytest.importorskip("xgboost.spark")
    train, _ = classification(60, 2, seed=1)
    with pytest.raises(sn.InputError, match=r"SparkXGBClassifier \(XGBoost\) needs a classic Spark session"):
        sn.cross_val_predict_proba(to_spark(spark, train), xgb_spark.SparkXGBClassifier(), n_folds=2)
