"""Regression label quality scores on Spark Connect: the same answers as cleanlab 2.9.0 (issue 29)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from cleanlab.regression.rank import get_label_quality_scores

import sparknoise as sn


def test_regression_scores_match_cleanlab_on_connect(spark):
    rng = np.random.default_rng(5)
    truth = rng.normal(size=250) * 3
    labels = np.round(truth + rng.normal(size=250) * 0.3, 1)
    labels[:10] += 8.0
    predictions = truth + rng.normal(size=250) * 0.5
    pdf = pd.DataFrame({"id": np.arange(250), "label": labels, "prediction": predictions})
    frame = spark.createDataFrame(pdf).repartition(3)
    for method in ("outre", "residual"):
        rows = sn.regression_label_quality_scores(frame, method=method).select("id", "label_quality").collect()
        got = dict((r["id"], r["label_quality"]) for r in rows)
        np.testing.assert_allclose([got[i] for i in range(250)],
                                   get_label_quality_scores(labels, predictions, method=method), rtol=0, atol=1e-9)
    approx = sn.score_regression_labels(frame, neighbors="approximate")
    assert approx.search == "approximate" and approx.rows.count() == 250
