"""Probability and label types, user label values, sample-weight policies, label_quality_scores."""

from __future__ import annotations

import numpy as np
import pytest
from parity_cases import dataset, ours
from pyspark.sql import functions as F

import sparknoise as sn


@pytest.fixture(scope="module")
def k3(spark):
    d = dataset("k3")
    return d, spark.createDataFrame(d.to_pandas()).repartition(3)


@pytest.fixture(scope="module")
def reference(k3):
    return ours(sn.find_label_issues(k3[1]))


def test_float_array_probabilities(spark, k3):
    d, _ = k3
    df = spark.createDataFrame(d.to_pandas(probs_dtype="float32"))
    assert df.schema["pred_probs"].dataType.simpleString() == "array<float>"
    import cleanlab.filter as cf

    P = d.pred_probs.astype("float32").astype("float64")  # cleanlab on the same (widened) numbers
    got = ours(sn.find_label_issues(df))
    np.testing.assert_array_equal(np.flatnonzero(got["is_label_issue"]), np.flatnonzero(cf.find_label_issues(d.labels, P)))


def test_ml_vector_probabilities(spark, k3, reference):
    from pyspark.ml.functions import array_to_vector

    df = k3[1].withColumn("probability", array_to_vector("pred_probs")).drop("pred_probs")
    got = ours(sn.find_label_issues(df, probs_col="probability"))
    assert got.equals(reference)


def test_string_labels_through_classes(spark, k3, reference):
    names = ["cat", "dog", "emu"]
    mapping = F.element_at(F.array(*[F.lit(n) for n in names]), F.col("label").cast("int") + 1)
    df = k3[1].withColumn("label", mapping)
    res = sn.find_label_issues(df, classes=names)
    got = res.rows.select("id", "label", "predicted_label", "is_label_issue").toPandas().sort_values("id")
    assert res.classes == tuple(names)
    np.testing.assert_array_equal(got["is_label_issue"].to_numpy(), reference["is_label_issue"].to_numpy())
    expected = np.array(names, dtype=object)[reference["predicted_label"].to_numpy()]
    np.testing.assert_array_equal(got["predicted_label"].to_numpy(), expected)
    assert res.rows.schema["predicted_label"].dataType.simpleString() == "string"


def test_double_labels_like_spark_ml(spark, k3, reference):
    df = k3[1].withColumn("label", F.col("label").cast("double"))
    res = sn.find_label_issues(df)
    got = ours(res)
    np.testing.assert_array_equal(got["is_label_issue"].to_numpy(), reference["is_label_issue"].to_numpy())
    assert res.rows.schema["predicted_label"].dataType.simpleString() == "double"


def test_string_ids(spark, k3, reference):
    df = k3[1].withColumn("id", F.format_string("row-%06d", "id"))
    got = sn.find_label_issues(df).rows.select("id", "is_label_issue", "issue_rank").toPandas().sort_values("id")
    np.testing.assert_array_equal(got["is_label_issue"].to_numpy(), reference["is_label_issue"].to_numpy())


def test_every_input_column_is_kept_and_every_row_appears_once(k3):
    d, df = k3
    rows = sn.find_label_issues(df).rows
    assert rows.columns[:4] == ["id", "label", "true_label", "pred_probs"]
    assert rows.count() == len(d.labels) == rows.select("id").distinct().count()


@pytest.mark.parametrize("policy", ["prune", "downweight", "quality", "cleanlab"])
def test_sample_weight_policies(k3, policy):
    d, df = k3
    res = sn.find_label_issues(df, weights=policy, downweight=0.25)
    got = ours(res)
    flag = got["is_label_issue"].to_numpy()
    w = got["sample_weight"].to_numpy()
    if policy == "prune":
        np.testing.assert_array_equal(w, np.where(flag, 0.0, 1.0))
    elif policy == "downweight":
        np.testing.assert_array_equal(w, np.where(flag, 0.25, 1.0))
    elif policy == "quality":
        np.testing.assert_array_equal(w, got["label_quality"].to_numpy())
    else:
        # cleanlab's CleanLearning: kept rows of class k weigh 1 / max(noise_matrix[k][k], 1e-3)
        import cleanlab.count as cc

        _, nm, _, _ = cc.estimate_py_and_noise_matrices_from_probabilities(
            d.labels, d.pred_probs, converge_latent_estimates=False
        )
        expected = np.where(flag, 0.0, 1.0 / np.maximum(nm.diagonal(), 1e-3)[d.labels])
        np.testing.assert_allclose(w, expected, rtol=1e-15)


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin", "confidence_weighted_entropy"])
def test_label_quality_scores_match_cleanlab(k3, method):
    import cleanlab.rank as cr

    d, df = k3
    got = sn.label_quality_scores(df, method=method).select("id", "label_quality").toPandas().sort_values("id")
    np.testing.assert_array_equal(got["label_quality"].to_numpy(), cr.get_label_quality_scores(d.labels, d.pred_probs, method=method))


def test_summary_is_small_and_consistent(k3):
    res = sn.find_label_issues(k3[1])
    s = res.summary()
    assert s["num_flagged"] == res.num_flagged == int(s["per_class"]["flagged"].sum())
    assert s["n_rows"] == 3000 and s["n_classes"] == 3
    assert "<table" in res._repr_html_()
