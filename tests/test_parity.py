"""Parity with cleanlab 2.9.0 (the oracle) on the same pred_probs, for every filter and score."""

from __future__ import annotations

import numpy as np
import pytest
from parity_cases import DATASETS, FILTERS, RANKS, assert_parity, dataset, ours, to_frame

import sparknoise as sn


@pytest.fixture(scope="module")
def frames(spark):
    return {name: (dataset(name), to_frame(spark, dataset(name))) for name in DATASETS}


# prune_by_noise_rate (whose per-class quotas meet every dataset's quirk: imbalance, a missing class, a
# one-row class) on every dataset; every other filter on two datasets (the native-route test below adds one
# more for prune_by_class, both and low_self_confidence), so that each quirk meets a quota method and a
# per-row filter.
CASES = [("prune_by_noise_rate", n) for n in DATASETS] + [
    ("prune_by_class", "k25"), ("prune_by_class", "k4_missing_class"),
    ("both", "k5_imbalanced"), ("both", "k4_one_row_class"),
    ("confident_learning", "k4_missing_class"), ("confident_learning", "k25"),
    ("predicted_neq_given", "k2"), ("predicted_neq_given", "k4_one_row_class"),
    ("low_normalized_margin", "k4_missing_class"), ("low_normalized_margin", "k2"),
    ("low_self_confidence", "k25"), ("low_self_confidence", "k5_imbalanced"),
]
assert {f for f, _ in CASES} == set(FILTERS)


@pytest.mark.parametrize("filter_by, name", CASES)
def test_every_filter_matches_cleanlab(frames, name, filter_by):
    d, df = frames[name]
    res = sn.find_label_issues(df, filter_by=filter_by)
    assert_parity(res, d, filter_by)


@pytest.fixture(scope="module")
def k1000(spark):
    d = dataset("k1000")
    return d, to_frame(spark, d, partitions=2)


# prune_by_noise_rate and both at K = 1000 take ~70 s here together (K(K-1) selection cells): they matched cleanlab
# at 200,000 x 1000 (bench) and stay out of the suite's time budget
@pytest.mark.parametrize("filter_by", [f for f in FILTERS if f not in ("prune_by_noise_rate", "both")])
def test_every_filter_matches_cleanlab_at_k1000(k1000, filter_by):
    """K = 1000 (two rows per class on average): each filter completes (confident_learning once died with a
    StackOverflowError generating a K-deep expression) and flags exactly cleanlab's rows."""
    d, df = k1000
    assert_parity(sn.find_label_issues(df, filter_by=filter_by), d, filter_by, thresholds_rtol=1e-14)


# every filter runs pass 1's row sum (pass 2 is numpy above 64 classes on both routes); the K-slot cutoff test and the histogram's array
# form are covered at K = 10 below (prune_by_noise_rate at K = 1000 natively measured 167 s at load ~20).
# The seven filters at K = 1000 are above, on the default (Arrow) route.
def test_confident_learning_matches_cleanlab_at_k1000_on_the_native_route(k1000, monkeypatch):
    """The native route forced above 64 classes (not the default there: slower than the Arrow passes at
    K = 1000): pass 1's row sum and the flags' guess and count as array functions over K-entry arrays
    (no K-deep expression: confident_learning's count used to overflow the code generator's stack)."""
    from sparknoise.core import validation

    monkeypatch.setattr(validation, "NATIVE_MIN_ROWS", 0)
    monkeypatch.setattr(validation, "NATIVE_ROUTE_MAX_CLASSES", 10**6)
    d, df = k1000
    assert_parity(sn.find_label_issues(df, filter_by="confident_learning"), d, "confident_learning",
                  thresholds_rtol=1e-14)


@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "both"])
def test_array_form_of_the_native_route_matches_cleanlab_with_a_histogram(frames, monkeypatch, filter_by):
    """The array forms forced at K = 10, where the cells are few enough for pass 2's selection histogram
    (per-task bincounts) and the boundary prefilter (K = 1000 uses top-q)."""
    from sparknoise.core import row_expressions, validation

    monkeypatch.setattr(validation, "NATIVE_MIN_ROWS", 0)
    monkeypatch.setattr(row_expressions, "NATIVE_MAX_CLASSES", 2)
    d, df = frames["k10"]
    assert_parity(sn.find_label_issues(df, filter_by=filter_by), d, filter_by)


@pytest.mark.parametrize("rank_by", RANKS)
@pytest.mark.parametrize("name", ["k10"])
def test_every_rank_by_matches_cleanlab_order(frames, name, rank_by):
    d, df = frames[name]
    res = sn.find_label_issues(df, rank_by=rank_by)
    assert_parity(res, d, "prune_by_noise_rate", rank_by=rank_by)


_OPTIONS = {"min10": {"min_examples_per_class": 10}, "frac0.5": {"frac_noise": 0.5},
            "remove-list": {"num_to_remove_per_class": [5, 10, 20, 3, 8]}, "remove-scalar": {"num_to_remove_per_class": 7},
            "min400-frac0.7": {"min_examples_per_class": 400, "frac_noise": 0.7}}


# every option with prune_by_noise_rate; each of the two that change both quotas with one other prune method
@pytest.mark.parametrize("filter_by, option", [("prune_by_noise_rate", o) for o in _OPTIONS]
                         + [("prune_by_class", "remove-list"), ("both", "min400-frac0.7")])
def test_prune_options_match_cleanlab(frames, filter_by, option):
    options = _OPTIONS[option]
    d, df = frames["k5_imbalanced"]
    res = sn.find_label_issues(df, filter_by=filter_by, **options)
    assert_parity(res, d, filter_by, **options)


def test_tiny_classes_flag_nothing_with_prune_methods(spark):
    # cleanlab's own property: classes of 3 rows are never pruned (skip rules), K = 3
    P = np.array([[0.1, 0.8, 0.1]] * 3 + [[0.8, 0.1, 0.1]] * 3 + [[0.1, 0.1, 0.8]] * 3)
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    df = spark.createDataFrame([(i, int(y[i]), P[i].tolist()) for i in range(9)], "id long, label long, pred_probs array<double>")
    for fb in ["prune_by_noise_rate", "prune_by_class", "both"]:
        res = sn.find_label_issues(df, filter_by=fb, min_examples_per_class=3)
        assert res.num_flagged == 0


def test_exact_ties_are_broken_by_id(spark):
    # Class 0 holds 20 rows that look like class 1 (margin 0.5) and 40 identical rows with margin
    # 0.4; frac_noise=0.5 gives a quota of 30, so the cutoff falls inside the tied block. cleanlab
    # picks among tied rows arbitrarily; sparknoise takes the lowest ids.
    rows = [(i, 0, [0.25, 0.75]) for i in range(500, 520)]
    rows += [(i, 0, [0.3, 0.7]) for i in range(100, 140)]
    rows += [(i, 0, [0.9, 0.1]) for i in range(0, 60)]
    rows += [(i, 1, [0.3, 0.7]) for i in range(200, 300)]
    df = spark.createDataFrame(rows, "id long, label long, pred_probs array<double>")
    res = sn.find_label_issues(df, frac_noise=0.5)
    np.testing.assert_array_equal(res.confident_joint, [[60, 60], [0, 100]])
    got = res.issues().select("id", "issue_rank").collect()
    assert [r["id"] for r in got] == list(range(500, 520)) + list(range(100, 110))
    assert [r["issue_rank"] for r in got] == list(range(1, 31))


# the native route (pass 2 counting the histogram, native flags and rank split), used from NATIVE_MIN_ROWS
# rows, on each prune method, a score filter and the quirky datasets
@pytest.mark.parametrize("filter_by, name", [("prune_by_noise_rate", "k5_imbalanced"), ("prune_by_class",
                         "k4_one_row_class"), ("both", "k10"), ("low_self_confidence", "k4_missing_class")])
def test_native_route_matches_cleanlab(frames, monkeypatch, filter_by, name):
    from sparknoise.core import validation

    monkeypatch.setattr(validation, "NATIVE_MIN_ROWS", 0)
    d, df = frames[name]
    res = sn.find_label_issues(df, filter_by=filter_by)
    assert_parity(res, d, filter_by)


@pytest.fixture
def arrow_row_map(monkeypatch):
    """Force the Arrow-UDF row map and pass 2 (pass 2's is used above NATIVE_MAX_CLASSES) at small K."""
    from sparknoise.core import row_expressions

    monkeypatch.setattr(row_expressions, "NATIVE_MAX_CLASSES", 0)
    monkeypatch.setattr(row_expressions, "ROW_MAP_NATIVE_MAX_CLASSES", 0)


# the Arrow row map on both prune methods ("both") and a score filter (native and Arrow are also compared below)
@pytest.mark.parametrize("filter_by", ["both", "low_normalized_margin"])
def test_arrow_row_map_matches_cleanlab(frames, arrow_row_map, filter_by):
    d, df = frames["k25"]
    res = sn.find_label_issues(df, filter_by=filter_by)
    assert_parity(res, d, filter_by)


def _tie_heavy_frame(spark):
    # probabilities on a 0.05 grid: exact ties everywhere, exact zeros, and some written as -0.0
    rng = np.random.default_rng(5)
    raw = rng.dirichlet(np.full(4, 0.6), size=1500)
    P = np.round(raw * 20) / 20
    P[:, 3] = np.round(1.0 - P[:, :3].sum(axis=1), 10)
    P = np.where(P == 0.0, np.where(rng.random(P.shape) < 0.5, -0.0, 0.0), P)
    y = np.where(rng.random(1500) < 0.25, rng.integers(0, 4, 1500), P.argmax(axis=1))
    rows = [(int(i), int(y[i]), [float(v) for v in P[i]]) for i in range(len(y)) if P[i].min() >= -1e-6]
    return spark.createDataFrame(rows, "id long, label long, pred_probs array<double>")


# both prune methods' per-cell cutoffs (filter "both") with the other native score, and a score filter: each
# code path of the native row map once (the Arrow one is checked against cleanlab for every filter above)
@pytest.mark.parametrize(
    "filter_by, rank_by",
    [("both", "normalized_margin"), ("low_normalized_margin", "self_confidence")],
)
def test_native_and_arrow_row_maps_agree_on_ties_and_negative_zeros(spark, monkeypatch, filter_by, rank_by):
    from sparknoise.core import row_expressions, validation

    monkeypatch.setattr(validation, "NATIVE_MIN_ROWS", 0)  # the native route at any size

    df = _tie_heavy_frame(spark)
    cols = ["id", "label_quality", "predicted_label", "is_label_issue", "issue_rank", "sample_weight"]
    native = sn.find_label_issues(df, filter_by=filter_by, rank_by=rank_by)
    got_native = sorted(tuple(r) for r in native.rows.select(*cols).collect())
    monkeypatch.setattr(row_expressions, "NATIVE_MAX_CLASSES", 0)
    monkeypatch.setattr(row_expressions, "ROW_MAP_NATIVE_MAX_CLASSES", 0)
    arrow = sn.find_label_issues(df, filter_by=filter_by, rank_by=rank_by)
    got_arrow = sorted(tuple(r) for r in arrow.rows.select(*cols).collect())
    assert native.num_label_issues == arrow.num_label_issues
    np.testing.assert_array_equal(native.confident_joint, arrow.confident_joint)
    assert got_native == got_arrow
    assert any(r[3] for r in got_native) or filter_by == "confident_learning"


@pytest.mark.parametrize(
    "filter_by, row_map",
    [("prune_by_noise_rate", "native"), ("both", "arrow"), ("low_self_confidence", "native")],
)
def test_per_task_top_q_selection_matches_cleanlab(frames, monkeypatch, filter_by, row_map):
    # the selection used when the cells are too many for a histogram (large K), forced at K = 25
    from sparknoise.core import row_expressions, selection

    monkeypatch.setattr(selection, "HISTOGRAM_BUDGET", 16)
    if row_map == "arrow":
        monkeypatch.setattr(row_expressions, "NATIVE_MAX_CLASSES", 0)
        monkeypatch.setattr(row_expressions, "ROW_MAP_NATIVE_MAX_CLASSES", 0)
    d, df = frames["k25"]
    res = sn.find_label_issues(df.repartition(3, "id"), filter_by=filter_by)
    assert_parity(res, d, filter_by)


# label_quality_scores on its own (cleanlab's get_label_quality_scores): the adjust_pred_probs option, and the
# inputs cleanlab scores there though find_label_issues refuses them (one class, rows not summing to one)
def _lqs_frame(spark, labels, P):
    rows = [(int(i), int(labels[i]), [float(v) for v in P[i]]) for i in range(len(labels))]
    return spark.createDataFrame(rows, "id long, label long, pred_probs array<double>")


def _lqs(df, **kwargs):
    got = sn.label_quality_scores(df, id_col="id", **kwargs).select("id", "label_quality").toPandas()
    return got.sort_values("id")["label_quality"].to_numpy()


@pytest.mark.parametrize("method, row_map", [("self_confidence", "native"), ("normalized_margin", "native"),
                                              ("normalized_margin", "arrow")])
def test_label_quality_scores_adjust_pred_probs_matches_cleanlab(spark, monkeypatch, method, row_map):
    import cleanlab.rank as cr

    from sparknoise.core import row_expressions

    if row_map == "arrow":
        monkeypatch.setattr(row_expressions, "ROW_MAP_NATIVE_MAX_CLASSES", 0)
    d = dataset("k4_missing_class")  # a class without rows: its threshold is 2.0
    y, P = d.labels[:300], d.pred_probs[:300]
    got = _lqs(_lqs_frame(spark, y, P), method=method, adjust_pred_probs=True)
    want = cr.get_label_quality_scores(y, P, method=method, adjust_pred_probs=True)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert not np.allclose(want, cr.get_label_quality_scores(y, P, method=method))  # the option changes scores


def test_label_quality_scores_adjust_refuses_entropy_as_cleanlab_does(spark):
    df = _lqs_frame(spark, [0, 1], np.array([[0.9, 0.1], [0.2, 0.8]]))
    with pytest.raises(sn.ConfigError, match="adjust_pred_probs is not supported"):
        sn.label_quality_scores(df, method="confidence_weighted_entropy", adjust_pred_probs=True)


def test_label_quality_scores_accept_one_class_and_rows_not_summing_to_one(spark):
    import cleanlab.rank as cr

    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(3), size=40)
    P[::2] *= 0.7  # every other row sums to 0.7
    one_class = np.zeros(40, dtype=int)
    mixed = rng.integers(0, 3, 40)
    for y in (one_class, mixed):
        df = _lqs_frame(spark, y, P)
        for method in ("self_confidence", "normalized_margin", "confidence_weighted_entropy"):
            want = cr.get_label_quality_scores(y, P, method=method)
            np.testing.assert_allclose(_lqs(df, method=method), want, rtol=0, atol=1e-9, err_msg=method)
        want = cr.get_label_quality_scores(y, P, method="normalized_margin", adjust_pred_probs=True)
        np.testing.assert_allclose(_lqs(df, method="normalized_margin", adjust_pred_probs=True), want, rtol=0,
                                   atol=1e-9)


@pytest.mark.parametrize("filter_by, options, route", [
    ("prune_by_class", {}, "arrow"), ("both", {"frac_noise": 0.6}, "native"),
    ("prune_by_noise_rate", {"num_to_remove_per_class": [9, 4, 12, 6]}, "arrow")])
def test_given_confident_joint_matches_cleanlab(spark, monkeypatch, filter_by, options, route):
    import cleanlab.count as cc
    import cleanlab.filter as cf

    from sparknoise.core import label_issues, validation
    from sparknoise.noise.synthetic import noisy_probabilities

    if route == "native":  # pass 2 would count the selection histogram there; the selection scans instead
        monkeypatch.setattr(validation, "NATIVE_MIN_ROWS", 0)

    d = noisy_probabilities(600, 4, noise_rate=0.2, seed=11)
    y, P = d.labels, d.pred_probs
    cj = cc.compute_confident_joint(y, P, calibrate=False).astype(float)  # not what sparknoise would compute
    cj[0, 1] += 15.5
    monkeypatch.setattr(label_issues, "count_confident_joint", None)  # the confident-joint pass is skipped
    res = sn.find_label_issues(to_frame(spark, d, partitions=2), filter_by=filter_by, confident_joint=cj, **options)
    mask = cf.find_label_issues(y, P, filter_by=filter_by, confident_joint=cj, **options)
    assert not np.array_equal(mask, cf.find_label_issues(y, P, filter_by=filter_by, **options))
    got = ours(res)
    np.testing.assert_array_equal(np.flatnonzero(got["is_label_issue"]), np.flatnonzero(mask))
    np.testing.assert_array_equal(res.confident_joint, cj)
    py, nm, inv = cc.estimate_latent(cj, y)
    np.testing.assert_allclose(res.noise_matrix, nm, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.prior, py, rtol=0, atol=1e-15)
    assert res.num_label_issues == cc.num_label_issues(y, P, confident_joint=cj, estimation_method="off_diagonal_custom")


# A frame built from local data (pandas: what a notebook holds) takes its own forms: one partition, the
# histogram at 256 buckets per cell, pass 2 and the row map as Arrow batch functions, the selection's window
# in one task. Each filter once on it, with a non-default score for the Arrow row map's other branches.
@pytest.mark.parametrize("filter_by, rank_by", [(f, r) for f, r in zip(FILTERS, RANKS * 3)])
def test_every_filter_matches_cleanlab_on_a_frame_from_pandas(spark, filter_by, rank_by):
    d = dataset("k5_imbalanced")
    df = spark.createDataFrame(d.to_pandas())
    assert df.isLocal()
    assert_parity(sn.find_label_issues(df, filter_by=filter_by, rank_by=rank_by), d, filter_by, rank_by)
