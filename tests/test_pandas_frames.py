"""Every public function on a DataFrame built from pandas, the most common notebook case.

``spark.createDataFrame(pandas_df)`` keeps the rows inside the query plan (``isLocal()``); before
sparknoise put a shuffle above such rows, Spark's optimizer re-evaluated the whole pipeline over them
on the driver for every query, and ``evaluate_label_noise`` on 20,000 rows ran out of a default 1 GB
driver heap. Every frame a public function returns must therefore be a distributed plan, not a local
one. The shared test session has Spark's default driver memory.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.classification import LogisticRegression
from sklearn.datasets import make_classification

import sparknoise as sn

FEATURES = [f"x{i}" for i in range(10)]


def _frame(n: int) -> pd.DataFrame:
    x, y = make_classification(n, n_features=10, n_informative=6, n_classes=3, n_clusters_per_class=1, class_sep=2.0,
                               random_state=0)
    pdf = pd.DataFrame(x, columns=FEATURES)
    pdf["label"], pdf["id"] = y, np.arange(n)
    return pdf


def test_every_public_function_on_a_frame_from_pandas(spark, tmp_path):
    small = spark.createDataFrame(_frame(600))
    assert small.isLocal()
    lr = LogisticRegression(maxIter=20)
    ev = sn.evaluate_label_noise(small, label_col="label", estimator=lr, features=FEATURES, noise_rates=[0.2],
                                 n_folds=2, scratch=str(tmp_path / "scratch"))
    at = ev.detection[(ev.detection["noise_rate"] == 0.2) & (ev.detection["detector"] == "prune_by_noise_rate")]
    assert at["precision"].iloc[0] > 0.5 and at["recall"].iloc[0] > 0.5 and ev.n_train + ev.n_test == 600

    noisy = sn.inject_label_noise(small, "label", noise_rate=0.2, seed=1)
    assert noisy.filter("is_noisy").count() == 120 and not noisy.isLocal()
    oof = sn.cross_val_predict_proba(noisy.drop("true_label", "is_noisy"), lr, features=FEATURES, n_folds=2)
    assert not oof.isLocal()
    local_probs = spark.createDataFrame(oof.select("id", "label", "pred_probs").toPandas())
    assert local_probs.isLocal()
    res = sn.find_label_issues(local_probs)
    assert not res.rows.isLocal() and res.num_flagged == res.issues().count() > 0
    scores = sn.label_quality_scores(local_probs)
    assert scores.count() == 600 and not scores.isLocal()
    assert sn.health_summary(res).overall_label_health_score == res.health_summary().overall_label_health_score
    with pytest.raises(sn.InputError, match=r"report passthrough column\(s\) \['text'\]"):
        res.report(str(tmp_path / "r.html"), passthrough=["text"])
    flagged = [int(r["id"]) for r in res.issues().limit(2).collect()]
    verdicts = spark.createDataFrame(pd.DataFrame({"id": flagged, "decision": ["keep", "remove"], "new_label": None}),
                                     "id long, decision string, new_label long")
    cleaning = sn.apply_cleaning(res.rows, verdicts)
    assert cleaning.summary()["reviewed"] == 2 and not cleaning.cleaned.isLocal()
    # CleanLearning is cross_val_predict_proba + find_label_issues + a final fit: both are covered above
