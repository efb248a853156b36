"""The core on a Spark Connect session: the same answers as cleanlab, hence as classic Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from parity_cases import assert_parity, dataset, to_frame

import sparknoise as sn
from sparknoise.errors import InputError


@pytest.fixture(scope="module")
def k10(spark):
    d = dataset("k10")
    return d, to_frame(spark, d)


# both prune methods (filter "both") and a per-row filter here, the default prune_by_noise_rate in the health
# test below: each code path once on Connect (classic runs every filter)
@pytest.mark.parametrize("filter_by", ["both", "low_self_confidence"])
def test_filters_match_cleanlab_on_connect(k10, filter_by):
    d, df = k10
    assert_parity(sn.find_label_issues(df, filter_by=filter_by), d, filter_by)


def test_string_labels_and_vectors_on_connect(spark):
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    d = dataset("k3")
    names = ["a", "b", "c"]
    df = (
        to_frame(spark, d)
        .withColumn("label", F.element_at(F.array(*[F.lit(n) for n in names]), F.col("label").cast("int") + 1))
        .withColumn("probability", array_to_vector("pred_probs"))
    )
    res = sn.find_label_issues(df, probs_col="probability", classes=names, min_examples_per_class=10)
    import cleanlab.filter as cf

    got = res.rows.select("id", "is_label_issue").toPandas().sort_values("id")
    mask = cf.find_label_issues(d.labels, d.pred_probs, min_examples_per_class=10)
    np.testing.assert_array_equal(got["is_label_issue"].to_numpy(), mask)


def test_bad_input_on_connect(spark):
    df = spark.createDataFrame([(0, 0, [0.9, 0.1]), (0, 1, [0.2, 0.8])], "id long, label long, pred_probs array<double>")
    with pytest.raises(InputError, match="'id'"):
        sn.find_label_issues(df)


@pytest.mark.parametrize("mode", ["uniform", "class_conditional", "regression"])
def test_injected_noise_is_the_same_as_on_classic(spark, mode):
    from noise_golden import GOLDEN, fingerprint

    assert fingerprint(spark, mode) == GOLDEN[mode]


def test_default_filter_health_summary_and_report_on_connect(k10, tmp_path):
    import json
    import re

    import cleanlab.dataset as cd

    d, df = k10
    res = sn.find_label_issues(df)
    assert_parity(res, d, "prune_by_noise_rate")
    ref = cd.health_summary(d.labels, d.pred_probs, verbose=False)
    health = sn.health_summary(res, class_names=False)
    assert health.overall_label_health_score == pytest.approx(ref["overall_label_health_score"], abs=1e-15)
    pd.testing.assert_frame_equal(health.classes_by_label_quality, ref["classes_by_label_quality"])
    text = open(res.report(str(tmp_path / "report.html"), top=5), encoding="utf-8").read()
    data = json.loads(re.search(r'id="sparknoise-report-data">(.*?)</script>', text, re.S).group(1))
    assert data["num_flagged"] == res.num_flagged and len(data["top_ids"]) == 5
    assert sum(data["quality_histogram"]["flagged"]) == res.num_flagged


def test_issue_agreement_and_apply_cleaning_on_connect(spark):
    import cleanlab.filter as cf
    from pyspark.sql import functions as F

    d = dataset("k3")
    names = ["a", "b", "c"]
    df = to_frame(spark, d).withColumn(
        "label", F.element_at(F.array(*[F.lit(n) for n in names]), F.col("label").cast("int") + 1))
    res = sn.find_label_issues(df, classes=names)
    issues = res.issues()
    got = issues.select("id", "loss_rank", "confidence").toPandas().set_index("id")
    flagged = np.flatnonzero(cf.find_label_issues(d.labels, d.pred_probs))
    assert sorted(got.index) == list(flagged)
    n = len(d.labels)
    p_given = d.pred_probs[np.arange(n), d.labels]
    rank = np.empty(n, dtype=int)
    rank[np.lexsort((np.arange(n), p_given))] = np.arange(1, n + 1)
    assert list(got.loc[flagged, "loss_rank"]) == list(rank[flagged])
    high = {i for i in flagged if rank[i] <= len(flagged)}
    assert set(got.index[got["confidence"] == "high"]) == high
    a, b = int(flagged[0]), int(flagged[1])
    reviews = spark.createDataFrame([(a, "keep", None), (b, "relabel", "c")], "id long, decision string, new_label string")
    out = sn.apply_cleaning(res.rows, reviews, unreviewed="relabel", relabel_only_high=True, issues=issues)
    cleaned = out.cleaned.select("id", "action", "clean_label").toPandas().set_index("id")
    expected_removed = set(flagged) - high - {a, b}
    assert set(cleaned.index) == set(range(n)) - expected_removed
    assert cleaned.loc[a, "action"] == "kept" and cleaned.loc[b, "clean_label"] == "c"
    argmax = d.pred_probs.argmax(axis=1)
    for i in high - {a, b}:
        assert cleaned.loc[i, "clean_label"] == names[argmax[i]]
    summary = out.summary()
    assert summary["removed"] == len(expected_removed) and summary["reviewed"] == 2


def test_multiannotator_quality_matches_cleanlab_on_connect(spark):
    from cleanlab.multiannotator import get_label_quality_multiannotator
    from multiannotator_data import make_annotations, wide

    long, p = make_annotations(n=120, seed=3)
    probs = pd.DataFrame({"id": np.arange(len(p)), "pred_probs": list(p)})
    res = sn.multiannotator_quality(spark.createDataFrame(long), spark.createDataFrame(probs))
    ref = get_label_quality_multiannotator(wide(long), p, verbose=False)
    items = res.items.toPandas().sort_values("id")
    assert list(items.consensus_label) == list(ref["label_quality"].consensus_label)
    np.testing.assert_allclose(items.consensus_quality_score, ref["label_quality"].consensus_quality_score,
                               rtol=0, atol=1e-9)
    stats = res.annotators.toPandas()
    assert list(stats.annotator) == list(ref["annotator_stats"].index)
    np.testing.assert_allclose(stats.annotator_quality, ref["annotator_stats"].annotator_quality, rtol=0, atol=1e-9)
