"""Regression label quality scores (issue 29 item 1): cleanlab 2.9.0's regression.rank as the oracle."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from cleanlab.regression.rank import _get_outre_score_for_each_label, get_label_quality_scores
from scipy.stats import spearmanr

import sparknoise as sn
from sparknoise.errors import ConfigError, InputError
from sparknoise.regression import kernels
from sparknoise.regression.scores import score_regression_labels


def make_regression(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with ties (rounded), 5% corrupted, and out-of-fold-like predictions (some tied)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    truth = 3 * x[:, 0] + 2 * np.sin(2 * x[:, 1])
    labels = np.round(truth + rng.normal(size=n) * 0.3, 1)
    bad = rng.random(n) < 0.05
    labels[bad] += np.round(rng.normal(size=bad.sum()) * 6, 1)
    predictions = truth + rng.normal(size=n) * 0.5
    predictions[: n // 10] = np.round(predictions[: n // 10])
    return labels, predictions


def frame(spark, labels, predictions, ids=None, partitions=3):
    ids = np.arange(len(labels)) if ids is None else ids
    pdf = pd.DataFrame({"id": ids, "label": labels, "prediction": predictions})
    return spark.createDataFrame(pdf).repartition(partitions)


def scores_by_id(df, id_col="id"):
    rows = df.select(id_col, "label_quality").collect()
    return dict((r[id_col], r["label_quality"]) for r in rows)


@pytest.fixture(scope="module")
def data():
    return make_regression(300, seed=1)


@pytest.mark.parametrize("method", ["outre", "residual"])
def test_scores_match_cleanlab(spark, data, method):
    labels, predictions = data
    ids = np.array([f"row-{i:04d}" for i in range(len(labels))])  # string ids
    out = sn.regression_label_quality_scores(frame(spark, labels, predictions, ids, partitions=1), method=method)
    assert out.columns == ["id", "label", "prediction", "label_quality"]  # no working column leaks
    got = scores_by_id(out)
    expected = get_label_quality_scores(labels, predictions, method=method)
    np.testing.assert_allclose([got[i] for i in ids], expected, rtol=0, atol=1e-9)
    if method == "outre":  # the exact route on 7 partitions: the same bits
        many = sn.regression_label_quality_scores(frame(spark, labels, predictions, ids, partitions=7))
        assert scores_by_id(many) == got


def test_outre_options_and_small_n_match_cleanlab(spark):
    labels, predictions = make_regression(60, seed=2)  # N <= 100: cleanlab's scipy euclidean
    res = score_regression_labels(frame(spark, labels, predictions), residual_scale=2.0, frac_neighbors=0.2)
    got = scores_by_id(res.rows)
    expected = _get_outre_score_for_each_label(labels, predictions, residual_scale=2.0, frac_neighbors=0.2)
    np.testing.assert_allclose([got[i] for i in range(60)], expected, rtol=0, atol=1e-9)
    assert (res.search, res.k, res.n_rows) == ("exact", 12, 60)


def test_constant_predictions_match_cleanlab(spark):
    labels = np.round(np.random.default_rng(3).normal(size=150), 1)
    predictions = np.full(150, 0.25)
    got = scores_by_id(sn.regression_label_quality_scores(frame(spark, labels, predictions)))
    np.testing.assert_allclose([got[i] for i in range(150)], get_label_quality_scores(labels, predictions),
                               rtol=0, atol=1e-9)


def test_approximate_agrees_with_exact(spark, caplog):
    labels, predictions = make_regression(2000, seed=4)
    exact = get_label_quality_scores(labels, predictions)
    with caplog.at_level(logging.INFO, logger="sparknoise"):
        res = score_regression_labels(frame(spark, labels, predictions, partitions=1), neighbors="approximate")
    assert "approximate search" in caplog.text
    got = scores_by_id(res.rows)
    many = score_regression_labels(frame(spark, labels, predictions, partitions=6), neighbors="approximate")
    assert scores_by_id(many.rows) == got  # the same bits on 1 and 6 partitions
    approx = np.array([got[i] for i in range(2000)])
    assert res.search == "approximate"
    assert spearmanr(exact, approx).statistic >= 0.999
    low_e, low_a = set(np.argsort(exact)[:20]), set(np.argsort(approx)[:20])
    assert len(low_e & low_a) >= 19
    np.testing.assert_allclose(approx, exact, atol=0.02)


def test_weighted_median_is_numpys():
    rng = np.random.default_rng(0)
    values, weights = rng.normal(size=50), rng.integers(1, 4, size=50)
    for w in (weights, weights[:49]):
        v = values[: len(w)]
        assert kernels.weighted_median(v, w) == np.median(np.repeat(v, w))


@pytest.mark.parametrize("change, kwargs, match", [
    ("label_text", {}, "label column 'label'"),
    ("null_label", {}, "label column 'label'"),
    ("null_prediction", {}, "prediction column 'prediction'"),
    ("drop_prediction", {}, "prediction column 'prediction' is not in the input"),
    (None, {"method": "huber"}, "method='huber'"),
    (None, {"neighbors": "kd"}, "neighbors='kd'"),
    (None, {"k": 3}, r"unknown option\(s\) \['k'\] for method='outre'"),
    (None, {"method": "residual", "frac_neighbors": 0.5}, "method='residual'; it takes no options"),
    (None, {"frac_neighbors": 1.0}, "frac_neighbors=1.0"),
    (None, {"neighbor_metric": "cosine"}, "neighbor_metric='cosine'"),
])
def test_bad_input_names_the_problem(spark, change, kwargs, match):
    pdf = pd.DataFrame({"id": [1, 2, 3, 4], "label": [1.0, 2.0, 3.0, 4.0], "prediction": [1.5, 2.0, 2.5, 4.5]})
    df = spark.createDataFrame(pdf)
    if change == "label_text":
        df = df.withColumn("label", df["label"].cast("string"))
    elif change == "null_label":
        df = df.selectExpr("id", "if(id = 2, null, label) as label", "prediction")
    elif change == "null_prediction":
        df = df.selectExpr("id", "label", "if(id = 3, null, prediction) as prediction")
    elif change == "drop_prediction":
        df = df.drop("prediction")
    error = ConfigError if change is None else InputError
    with pytest.raises(error, match=match):
        sn.regression_label_quality_scores(df, **kwargs)
