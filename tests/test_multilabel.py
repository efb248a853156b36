"""Multi-label tags (issue 28): cleanlab 2.9.0's multilabel_classification as the oracle.

One small frame (300 rows x 4 classes, flipped tags, some rows without tags) is shared; every
filter, per-class score method and aggregator is compared with cleanlab on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cleanlab.multilabel_classification import dataset as md
from cleanlab.multilabel_classification import filter as mf
from cleanlab.multilabel_classification import rank as mr
from multilabel_data import make_multilabel, to_frame

import sparknoise as sn
from sparknoise.errors import ConfigError, InputError

FILTERS = ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_normalized_margin", "low_self_confidence"]
CLASSES = ["sports", "politics", "tech", "arts"]


@pytest.fixture(scope="module")
def data():
    labels, probs, _ = make_multilabel(300, 4, seed=0)
    assert any(not row for row in labels)  # rows without tags are part of the data
    return labels, probs


@pytest.fixture(scope="module")
def frame(spark, data):
    return to_frame(spark, *data)


_RESULTS: dict = {}


def _run(frame, **kwargs):
    """(result, rows sorted by id) for these options, computed once per module."""
    key = tuple(sorted((k, repr(v)) for k, v in kwargs.items()))
    if key not in _RESULTS:
        res = sn.find_multilabel_issues(frame, **kwargs)
        _RESULTS[key] = (res, sorted(res.rows.collect(), key=lambda r: r["id"]))
    return _RESULTS[key]


def _column(rows, name):
    return np.array([r[name] for r in rows])


def _ranked_ids(rows):
    return [r["id"] for r in sorted((r for r in rows if r["is_label_issue"]), key=lambda r: r["issue_rank"])]


@pytest.mark.parametrize("filter_by", FILTERS)
def test_every_filter_matches_cleanlab(frame, data, filter_by):
    labels, probs = data
    res, rows = _run(frame, filter_by=filter_by)
    mask = _column(rows, "is_label_issue")
    np.testing.assert_array_equal(mask, mf.find_label_issues(labels, probs, filter_by=filter_by))
    per_class = np.array([r["is_label_issue_per_class"] for r in rows])
    np.testing.assert_array_equal(per_class, mf.find_multilabel_issues_per_class(labels, probs, filter_by=filter_by))
    assert res.num_flagged == mask.sum() > 0
    np.testing.assert_allclose(_column(rows, "label_quality"), mr.get_label_quality_scores(labels, probs),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.array([r["label_quality_per_class"] for r in rows]),
                               mr.get_label_quality_scores_per_class(labels, probs), rtol=0, atol=1e-9)
    ranked = list(mf.find_label_issues(labels, probs, filter_by=filter_by, return_indices_ranked_by="self_confidence"))
    mine = _ranked_ids(rows)
    assert [r["issue_rank"] for r in rows if r["is_label_issue"]] != [] and sorted(
        r["issue_rank"] for r in rows if r["is_label_issue"]) == list(range(1, len(mine) + 1))
    if filter_by.startswith("low_"):
        # cleanlab 2.9.0 reorders these by positions of a differently ordered array
        # (cl_error_indices[np.argsort(scores in index order)]): same rows, order not by score
        assert sorted(ranked) == sorted(mine)
        quality = _column(rows, "label_quality")
        assert mine == sorted(mine, key=lambda i: (quality[i], i))
    else:
        assert mine == ranked
    given = np.zeros((len(labels), 4), dtype=bool)
    for i, row in enumerate(labels):
        given[i, row] = True
    suggested = [sorted(np.flatnonzero(g ^ f).tolist()) for g, f in zip(given, per_class)]
    assert [list(r["suggested_labels"]) for r in rows] == suggested
    np.testing.assert_array_equal(_column(rows, "sample_weight"), np.where(mask, 0.0, 1.0))
    assert all((r["issue_rank"] is None) == (not r["is_label_issue"]) for r in rows)


@pytest.mark.parametrize("options", [
    {"filter_by": "prune_by_noise_rate", "frac_noise": 0.5},
    {"filter_by": "prune_by_class", "min_examples_per_class": 100},
    {"filter_by": "both", "num_to_remove_per_class": [3, 0, 5, 2]},
], ids=["frac_noise", "min_examples", "num_to_remove"])
def test_prune_options_match_cleanlab(frame, data, options):
    labels, probs = data
    _, rows = _run(frame, **options)
    np.testing.assert_array_equal(_column(rows, "is_label_issue"), mf.find_label_issues(labels, probs, **options))
    np.testing.assert_array_equal(np.array([r["is_label_issue_per_class"] for r in rows]),
                                  mf.find_multilabel_issues_per_class(labels, probs, **options))


@pytest.mark.parametrize("rank_by", ["normalized_margin", "confidence_weighted_entropy"])
def test_rank_by_orders_as_cleanlab(frame, data, rank_by):
    labels, probs = data
    _, rows = _run(frame, rank_by=rank_by)
    np.testing.assert_allclose(_column(rows, "label_quality"),
                               mr.get_label_quality_scores(labels, probs, method=rank_by), rtol=0, atol=1e-9)
    assert _ranked_ids(rows) == list(mf.find_label_issues(labels, probs, return_indices_ranked_by=rank_by))


AGGREGATORS = [None, {"method": "exponential_moving_average", "alpha": 0.5},
               {"method": "exponential_moving_average", "alpha": None}, {"method": "softmin"},
               {"method": "softmin", "temperature": 0.5}, {"method": np.min}]


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin", "confidence_weighted_entropy"])
def test_score_methods_match_cleanlab(frame, data, method):
    labels, probs = data
    out = sorted(sn.multilabel_label_quality_scores(frame, method=method).collect(), key=lambda r: r["id"])
    np.testing.assert_allclose(_column(out, "label_quality"), mr.get_label_quality_scores(labels, probs, method=method),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.array([r["label_quality_per_class"] for r in out]),
                               mr.get_label_quality_scores_per_class(labels, probs, method=method), rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin"])
def test_adjusted_scores_match_cleanlab(frame, data, method):
    labels, probs = data
    out = sorted(sn.multilabel_label_quality_scores(frame, method=method, adjust_pred_probs=True).collect(),
                 key=lambda r: r["id"])
    np.testing.assert_allclose(
        _column(out, "label_quality"),
        mr.get_label_quality_scores(labels, probs, method=method, adjust_pred_probs=True), rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        np.array([r["label_quality_per_class"] for r in out]),
        mr.get_label_quality_scores_per_class(labels, probs, method=method, adjust_pred_probs=True), rtol=0, atol=1e-9)


@pytest.mark.parametrize("aggregator", AGGREGATORS[1:], ids=["ema_0.5", "ema_default_alpha", "softmin",
                                                             "softmin_0.5", "callable_min"])
def test_aggregators_match_cleanlab(frame, data, aggregator):
    labels, probs = data
    out = sorted(sn.multilabel_label_quality_scores(frame, method="normalized_margin", aggregator_kwargs=aggregator)
                 .collect(), key=lambda r: r["id"])
    want = mr.get_label_quality_scores(labels, probs, method="normalized_margin", aggregator_kwargs=aggregator)
    np.testing.assert_allclose(_column(out, "label_quality"), want, rtol=0, atol=1e-9)


def test_dataset_tables_match_cleanlab(frame, data):
    labels, probs = data
    res, _ = _run(frame, filter_by="prune_by_noise_rate")
    pd.testing.assert_frame_equal(res.common_issues(), md.common_multilabel_issues(labels, probs))
    pd.testing.assert_frame_equal(res.class_ranking(), md.rank_classes_by_multilabel_quality(labels, probs))
    assert res.health_score() == pytest.approx(md.overall_multilabel_health_score(labels, probs), abs=1e-12)
    summary = res.summary()
    assert summary["num_flagged"] == res.num_flagged and len(summary["per_class"]) == 4
    assert res.issues().first()["issue_rank"] == 1


def test_string_tags_with_classes_and_vector_probs(spark, frame, data):
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    labels, probs = data
    named = to_frame(spark, labels, probs, classes=CLASSES).withColumn("pred_probs", array_to_vector("pred_probs"))
    res = sn.find_multilabel_issues(named, classes=CLASSES)
    rows = sorted(res.rows.collect(), key=lambda r: r["id"])
    _, base = _run(frame, filter_by="prune_by_noise_rate")
    np.testing.assert_array_equal(_column(rows, "is_label_issue"), _column(base, "is_label_issue"))
    assert [r["issue_rank"] for r in rows] == [r["issue_rank"] for r in base]
    assert [list(r["suggested_labels"]) for r in rows] == [[CLASSES[c] for c in r["suggested_labels"]] for r in base]
    pd.testing.assert_frame_equal(res.class_ranking(),
                                  md.rank_classes_by_multilabel_quality(labels, probs, class_names=CLASSES))
    assert res.rows.schema["suggested_labels"].dataType.simpleString() == "array<string>"
    assert F is not None


def test_many_partitions_give_identical_rows(spark, frame, data):
    _, one = _run(frame, filter_by="prune_by_noise_rate")
    res = sn.find_multilabel_issues(frame.repartition(7), filter_by="prune_by_noise_rate")
    many = sorted(res.rows.collect(), key=lambda r: r["id"])
    assert [r.asDict() for r in many] == [r.asDict() for r in one]


def test_a_class_no_row_carries_is_checked_as_in_cleanlab(spark):
    labels, probs, _ = make_multilabel(200, 4, seed=3)
    labels = [[c for c in row if c != 2] for row in labels]  # nobody carries class 2
    res = sn.find_multilabel_issues(to_frame(spark, labels, probs))
    rows = sorted(res.rows.collect(), key=lambda r: r["id"])
    np.testing.assert_array_equal(_column(rows, "is_label_issue"), mf.find_label_issues(labels, probs))
    assert res.tag_counts[2] == 0




@pytest.mark.parametrize("case, column, words", [
    ("label_outside", "labels", "outside 0..3"),
    ("string_not_in_classes", "labels", "not in classes"),
    ("prob_above_one", "pred_probs", "outside [0, 1]"),
    ("prob_negative", "pred_probs", "outside [0, 1]"),
    ("wrong_length", "pred_probs", "length is not 4"),
    ("duplicate_ids", "id", "duplicate values"),
    ("class_in_every_row", "labels", "in every row"),
    ("null_labels", "labels", "empty array"),
    ("null_probs", "pred_probs", "null in 1 row"),
    ("not_an_array", "labels", "must be an array column"),
    ("float_tags", "labels", "integers 0..K-1"),
    ("missing_column", "tags", "not in the input"),
])
def test_bad_input_names_the_column_and_the_fix(spark, data, case, column, words):
    labels, probs = [list(x) for x in data[0][:40]], [[float(x) for x in p] for p in data[1][:40]]
    ids = list(range(40))
    schema = "id long, labels array<int>, pred_probs array<double>"
    kwargs = {}
    if case == "label_outside":
        labels[3] = [0, 4]
    elif case == "prob_above_one":
        probs[5][1] = 1.5
    elif case == "prob_negative":
        probs[5][2] = -0.1
    elif case == "wrong_length":
        probs[7] = probs[7][:3]
    elif case == "duplicate_ids":
        ids[9] = 8
    elif case == "class_in_every_row":
        labels = [sorted(set(row) | {1}) for row in labels]
    elif case == "null_labels":
        labels[2] = None
    elif case == "null_probs":
        probs[2] = None
    rows = list(zip(ids, labels, probs))
    if case == "string_not_in_classes":
        rows = [(i, [CLASSES[c] for c in lab] + (["cooking"] if i == 4 else []), p) for i, lab, p in rows]
        schema = "id long, labels array<string>, pred_probs array<double>"
        kwargs["classes"] = CLASSES
    elif case == "not_an_array":
        rows = [(i, ",".join(map(str, lab)), p) for i, lab, p in rows]
        schema = "id long, labels string, pred_probs array<double>"
    elif case == "float_tags":
        rows = [(i, [float(c) for c in lab], p) for i, lab, p in rows]
        schema = "id long, labels array<double>, pred_probs array<double>"
    elif case == "missing_column":
        kwargs["label_col"] = "tags"
    df = spark.createDataFrame(rows, schema)
    with pytest.raises(InputError) as err:
        sn.find_multilabel_issues(df, **kwargs)
    assert err.value.column == column
    assert words in str(err.value)


def test_bad_options_are_config_errors(frame):
    with pytest.raises(ConfigError, match="filter_by"):
        sn.find_multilabel_issues(frame, filter_by="nope")
    with pytest.raises(ConfigError, match="rank_by"):
        sn.find_multilabel_issues(frame, rank_by="nope")
    with pytest.raises(ConfigError, match="aggregator"):
        sn.multilabel_label_quality_scores(frame, aggregator_kwargs={"method": "mean"})
    with pytest.raises(ConfigError, match="adjust_pred_probs"):
        sn.multilabel_label_quality_scores(frame, method="confidence_weighted_entropy", adjust_pred_probs=True)
    with pytest.raises(ConfigError, match="num_to_remove_per_class"):
        sn.find_multilabel_issues(frame, filter_by="confident_learning", num_to_remove_per_class=[1, 1, 1, 1])


def test_out_of_fold_probabilities_for_tags(spark):
    """cross_val_predict_proba(task="multilabel"): one binary model per class per fold, on the hash folds."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import functions as F

    rng = np.random.default_rng(11)
    n = 240
    x = rng.normal(size=(n, 3))
    tags = [[c for c in range(3) if x[i, c] > 0.3 * c] + [3] for i in range(n)]  # class 3 on every row
    rows = [(i, [int(t) for t in tags[i]], Vectors.dense(x[i])) for i in range(n)]
    df = spark.createDataFrame(rows, ["id", "labels", "features"])
    oof = sn.cross_val_predict_proba(df, LogisticRegression(), label_col="labels", n_folds=2, task="multilabel")
    got = oof.select("id", "fold", "pred_probs").toPandas().sort_values("id")
    probs = np.array(got["pred_probs"].tolist())
    assert probs.shape == (n, 4) and np.all(probs[:, 3] == 1.0)  # a class on every training row: constant 1
    assert oof.schema["pred_probs"].metadata["sparknoise"]["classes"] == [0, 1, 2, 3]
    # the oracle for one (fold, class): a binary model fitted by hand on the other folds' rows
    fold = got["fold"].to_numpy()
    train = oof.filter("fold != 1").withColumn("y", F.array_contains("labels", 2).cast("double"))
    model = LogisticRegression(labelCol="y").fit(train)
    hand = (model.transform(oof.filter("fold = 1")).select("id", vector_to_array("probability")[1].alias("p"))
            .toPandas().sort_values("id"))
    assert np.allclose(probs[fold == 1, 2], hand["p"].to_numpy(), atol=1e-9)
    for c in range(3):  # each class's probability ranks its tag well above chance
        has = np.array([c in t for t in tags])
        assert probs[has, c].mean() > probs[~has, c].mean() + 0.4
    with pytest.raises(sn.InputError, match="array of tags"):
        sn.cross_val_predict_proba(df.withColumn("labels", F.lit(1)), LogisticRegression(), label_col="labels",
                                   task="multilabel")


def test_clean_learning_for_tags(spark, tmp_path):
    """CleanLearning(task="multilabel"): flags = find_multilabel_issues on the same out-of-fold
    probabilities; one binary model per class on the kept rows (a class no row carries: constant 0);
    the model predicts K probabilities and the tag set above 0.5, and survives save/load."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import functions as F

    rng = np.random.default_rng(5)
    n = 200
    x = rng.normal(size=(n, 2))
    true = [[c for c, on in ((0, x[i, 0] > 0), (1, x[i, 1] > 0.2), (3, x[i, 0] + x[i, 1] > 0.5)) if on]
            for i in range(n)]
    given = [sorted(set(t) ^ {0}) if i % 9 == 0 else t for i, t in enumerate(true)]  # class 2 on no row
    df = spark.createDataFrame([(i, given[i], Vectors.dense(x[i])) for i in range(n)], ["id", "labels", "features"])
    cl = sn.CleanLearning(estimator=LogisticRegression(), labelCol="labels", numFolds=2, task="multilabel")
    model = cl.fit(df)
    # the fit's out-of-fold probabilities (kept on its rows), through find_multilabel_issues directly
    oof = model._result.rows.select("id", "labels", F.col("__sn_oof_probs").alias("pred_probs"))
    res = sn.find_multilabel_issues(oof, min_examples_per_class=10, weights="prune")
    expected = {r["id"] for r in res.issues().select("id").collect()}
    flagged = [r["id"] for r in model.labelIssues(df).select("id").collect()]
    assert set(flagged) == expected and len(flagged) == model.numFlagged > 0
    assert model.classes == [0, 1, 2, 3] and model.classModels[2] is None and model.constants[2] == 0.0
    # class 0's model: a binary LogisticRegression fitted by hand on the rows that were not flagged
    kept = df.filter(~F.col("id").isin(list(expected))).withColumn("y", F.array_contains("labels", 0).cast("double"))
    hand = (LogisticRegression(labelCol="y").fit(kept).transform(df)
            .select("id", vector_to_array("probability")[1].alias("p")).toPandas().sort_values("id"))
    out = model.transform(df).select("id", "probability", "prediction").toPandas().sort_values("id")
    probs = np.array(out["probability"].tolist())
    assert probs.shape == (n, 4) and np.all(probs[:, 2] == 0.0)
    assert np.allclose(probs[:, 0], hand["p"].to_numpy(), atol=1e-9)
    assert [list(p) for p in out["prediction"]] == [[c for c in range(4) if row[c] > 0.5] for row in probs]
    assert np.mean([set(p) == set(t) for p, t in zip(out["prediction"], true)]) > 0.85
    model.write().overwrite().save(str(tmp_path / "ml_cl"))
    loaded = type(model).load(str(tmp_path / "ml_cl"))
    again = loaded.transform(df).select("id", "probability", "prediction").toPandas().sort_values("id")
    assert np.allclose(np.array(again["probability"].tolist()), probs, atol=1e-12)
    assert [list(p) for p in again["prediction"]] == [list(p) for p in out["prediction"]]
    assert loaded.numFlagged == model.numFlagged and loaded.getTask() == "multilabel"
    with pytest.raises(ConfigError, match="task"):
        sn.CleanLearning(estimator=LogisticRegression(), task="tags").fit(df)


def test_tag_scores_of_the_multilabel_evaluation(spark):
    """tag_fit_metrics = scikit-learn's micro/macro F1 and exact-match accuracy on the indicator
    columns; tag_flag_metrics counts (row, class) pairs."""
    from pyspark.sql import functions as F
    from sklearn.metrics import accuracy_score, f1_score

    from sparknoise.noise.multilabel_evaluation import tag_fit_metrics, tag_flag_metrics

    probs = [[0.9, 0.2, 0.1], [0.6, 0.7, 0.0], [0.1, 0.4, 0.2], [0.8, 0.51, 0.3], [0.2, 0.9, 0.4], [0.5, 0.1, 0.2]]
    true = [[0], [0], [1], [0, 1], [1], [0]]  # class 2: never true, never predicted (F1 0 in the macro mean)
    flags = [[True, False, False], [False, True, False], [False, False, False], [True, True, True],
             [False, False, False], [False, False, True]]
    flipped = [[0], [1], [2], [1], [], [0]]
    df = spark.createDataFrame(list(zip(probs, true, flags, flipped)),
                               "p array<double>, t array<int>, f array<boolean>, n array<int>")
    got = tag_fit_metrics(df, probs_col="p", true_tags=F.col("t"), K=3)
    y = np.array([[int(c in t) for c in range(3)] for t in true])
    yhat = (np.array(probs) > 0.5).astype(int)
    assert got["micro_f1"] == pytest.approx(f1_score(y, yhat, average="micro", zero_division=0), abs=1e-12)
    assert got["macro_f1"] == pytest.approx(f1_score(y, yhat, average="macro", zero_division=0), abs=1e-12)
    assert got["test_accuracy"] == pytest.approx(accuracy_score(y, yhat), abs=1e-12)
    scores = tag_flag_metrics(df, {"d": F.col("f")}, noisy=F.col("n"))["d"]
    assert (scores["flagged"], scores["true_positives"], scores["noisy"]) == (6, 3, 5)
