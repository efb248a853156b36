"""Every bad input of DESIGN.md section 6 that concerns find_label_issues raises a named error."""

from __future__ import annotations

import math

import pytest

import sparknoise as sn
from sparknoise.errors import ConfigError, InputError, SparkNoiseError

SCHEMA = "id long, label long, pred_probs array<double>"
GOOD = [(0, 0, [0.9, 0.1]), (1, 1, [0.2, 0.8]), (2, 0, [0.6, 0.4]), (3, 1, [0.3, 0.7])]


def _run(spark, rows, schema=SCHEMA, **kwargs):
    return sn.find_label_issues(spark.createDataFrame(rows, schema), **kwargs)


def _raises(spark, rows, column, schema=SCHEMA, error=InputError, **kwargs):
    with pytest.raises(error) as info:
        _run(spark, rows, schema, **kwargs)
    assert isinstance(info.value, SparkNoiseError)
    assert f"'{column}'" in str(info.value), str(info.value)
    return info.value


def test_good_input_passes(spark):
    assert _run(spark, GOOD).n_rows == 4


def test_missing_column(spark):
    _raises(spark, GOOD, "probs", probs_col="probs")


def test_wrong_probability_type(spark):
    _raises(spark, [(0, 0, "x"), (1, 1, "y")], "pred_probs", schema="id long, label long, pred_probs string")


def test_wrong_label_type_without_classes(spark):
    rows = [(0, "cat", [0.9, 0.1]), (1, "dog", [0.2, 0.8])]
    _raises(spark, rows, "label", schema="id long, label string, pred_probs array<double>")


def test_wrong_id_type(spark):
    _raises(spark, [(0.5, 0, [0.9, 0.1]), (1.5, 1, [0.2, 0.8])], "id", schema="id double, label long, pred_probs array<double>")


def test_null_label(spark):
    _raises(spark, GOOD + [(4, None, [0.5, 0.5])], "label")


def test_nan_label(spark):
    rows = [(i, float(y), p) for i, y, p in GOOD] + [(4, math.nan, [0.5, 0.5])]
    _raises(spark, rows, "label", schema="id long, label double, pred_probs array<double>")


def test_null_probabilities(spark):
    _raises(spark, GOOD + [(4, 0, None)], "pred_probs")


def test_null_entry_in_probabilities(spark):
    _raises(spark, GOOD + [(4, 0, [0.5, None])], "pred_probs")


def test_nan_probabilities(spark):
    _raises(spark, GOOD + [(4, 0, [math.nan, 0.5])], "pred_probs")


def test_null_id(spark):
    _raises(spark, GOOD + [(None, 0, [0.5, 0.5])], "id")


def test_label_outside_range(spark):
    err = _raises(spark, GOOD + [(4, 2, [0.5, 0.5]), (5, 3, [0.5, 0.5])], "label")
    assert "0..1" in str(err)
    # cleanlab's rule, which its tests pin: the probabilities need a column for the largest label
    assert "'pred_probs' must have at least 4 columns" in str(err)
    df = spark.createDataFrame(GOOD + [(4, 2, [0.5, 0.5])], SCHEMA)
    with pytest.raises(InputError, match="must have at least 3 columns"):
        sn.label_quality_scores(df)


def test_negative_label(spark):
    _raises(spark, GOOD + [(4, -1, [0.5, 0.5])], "label")


def test_continuous_label(spark):
    rows = [(i, y + 0.25 * (i % 2), p) for i, y, p in GOOD]
    err = _raises(spark, rows, "label", schema="id long, label double, pred_probs array<double>")
    assert "non-integral" in str(err) and "regression targets are not supported" in str(err)


def test_multilabel_array_label(spark):
    rows = [(i, [y], p) for i, y, p in GOOD]
    for classes in (None, [0, 1]):
        err = _raises(spark, rows, "label", schema="id long, label array<long>, pred_probs array<double>",
                      classes=classes)
        assert "multi-label (array) labels are not supported by find_label_issues yet" in str(err)
        assert "classes=[" not in str(err)


def test_label_not_in_classes(spark):
    rows = [(0, "cat", [0.9, 0.1]), (1, "dog", [0.2, 0.8]), (2, "cow", [0.5, 0.5])]
    _raises(spark, rows, "label", schema="id long, label string, pred_probs array<double>", classes=["cat", "dog"])


def test_fewer_than_two_classes(spark):
    rows = [(0, 0, [0.9, 0.1]), (1, 0, [0.8, 0.2])]
    _raises(spark, rows, "label")


def test_one_column_probabilities(spark):
    rows = [(0, 0, [1.0]), (1, 0, [1.0])]
    _raises(spark, rows, "pred_probs")


def test_rows_of_wrong_length(spark):
    _raises(spark, GOOD + [(4, 0, [0.5, 0.25, 0.25])], "pred_probs")


def test_rows_of_wrong_length_for_classes(spark):
    _raises(spark, GOOD, "pred_probs", classes=[0, 1, 2])


def test_negative_probability(spark):
    _raises(spark, GOOD + [(4, 0, [-0.1, 1.1])], "pred_probs")


def test_probability_above_one(spark):
    _raises(spark, GOOD + [(4, 0, [1.2, 0.0])], "pred_probs")


def test_rows_not_summing_to_one(spark):
    err = _raises(spark, GOOD + [(4, 0, [0.5, 0.4])], "pred_probs")
    assert "sum to 1" in str(err)


def test_duplicate_ids(spark):
    err = _raises(spark, GOOD + [(3, 0, [0.5, 0.5])], "id")
    assert "duplicate" in str(err)


def test_empty_frame(spark):
    _raises(spark, [], "label")


def test_result_column_already_present(spark):
    rows = [(i, y, p, 1.0) for i, y, p in GOOD]
    _raises(spark, rows, "sample_weight", schema=SCHEMA + ", sample_weight double")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filter_by": "prune_by_magic"},
        {"rank_by": "vibes"},
        {"weights": "heavy"},
        {"frac_noise": 1.5},
        {"filter_by": "confident_learning", "num_to_remove_per_class": 3},
    ],
)
def test_bad_options_raise_config_error(spark, kwargs):
    with pytest.raises(ConfigError) as info:
        _run(spark, GOOD, **kwargs)
    name = next(iter(kwargs)) if "num_to_remove_per_class" not in kwargs else "num_to_remove_per_class"
    assert name in str(info.value)
    if "num_to_remove_per_class" in kwargs:  # cleanlab's wording, which its tests pin
        assert "not supported" in str(info.value) and "confident_learning" in str(info.value)


FEATURE_SCHEMA = "id long, label long, a double, b double, t string"


@pytest.mark.parametrize(
    "bad_row, features, column",
    [
        ((9, 0, float("nan"), 1.0, "x"), ["a", "b"], "a"),
        ((9, 0, 1.0, float("inf"), "x"), ["a", "b"], "b"),
        ((9, 0, None, 1.0, "x"), ["a", "b"], "a"),
        ((9, None, 1.0, 1.0, "x"), ["a", "b"], "label"),
        ((None, 0, 1.0, 1.0, "x"), ["a", "b"], "id"),
        ((9, 0, 1.0, 1.0, "x"), ["a", "t"], "t"),
    ],
    ids=["nan-feature", "infinite-feature", "null-feature", "null-label", "null-id", "text-feature"],
)
def test_cross_val_refuses_bad_rows_before_fitting(spark, bad_row, features, column):
    from pyspark.ml.classification import LogisticRegression

    rows = [(i, i % 2, float(i), float(i % 3), "x") for i in range(9)] + [bad_row]
    df = spark.createDataFrame(rows, FEATURE_SCHEMA)
    with pytest.raises(InputError) as info:
        sn.cross_val_predict_proba(df, LogisticRegression(maxIter=3), features=features, n_folds=2)
    assert f"'{column}'" in str(info.value) and info.value.column == column, str(info.value)


def _probability_rows(ids):
    return [(int(i), int(i) % 2, [0.7, 0.3] if i % 2 == 0 else [0.2, 0.8]) for i in ids]


@pytest.mark.parametrize(
    "layout",
    [
        [[0, 1, 2, 3], [2, 5, 6]],  # two increasing runs whose ranges overlap
        [[0, 1, 2], [0, 1, 2]],  # identical ranges: two runs, one (low, high) group
        [[5, 3, 9, 3], [10, 11]],  # descents: three runs in one task, overlapping
        [[1, 2, 3], [3, 4, 5]],  # touching ranges share their end point
        [[7, 8, 9, 1, 2, 8]],  # one task, two runs (as when a task reads two files)
        [list(range(100, 0, -1)) + [50]],  # too many runs for one task: the exact check decides
    ],
    ids=["overlap", "same-range", "unsorted", "touching", "two-runs-one-task", "many-runs"],
)
def test_duplicate_ids_across_and_within_tasks(spark, layout):
    with pytest.raises(InputError) as info:
        sn.find_label_issues(_laid_out(spark, layout))
    assert "duplicate" in str(info.value)


def _laid_out(spark, layout):
    """One partition per list of ids, each holding its ids in the order given."""
    tagged = [(*r, p, n) for p, part in enumerate(layout) for n, r in enumerate(_probability_rows(part))]
    df = spark.createDataFrame(tagged, SCHEMA + ", part int, pos int").repartitionByRange(len(layout), "part")
    df = df.sortWithinPartitions("pos").drop("part", "pos")
    assert df.rdd.getNumPartitions() == len(layout)  # test-side check of the layout
    return df


def test_increasing_disjoint_ids_need_no_id_aggregation(spark, caplog, monkeypatch):
    import logging

    from sparknoise.core import validation

    monkeypatch.setattr(validation, "MAX_ID_RUNS", 16)  # so that 400 interleaved ids are too many runs

    df = spark.createDataFrame(_probability_rows(range(0, 400)), SCHEMA).repartitionByRange(4, "id")
    with caplog.at_level(logging.INFO, logger="sparknoise"):
        assert sn.find_label_issues(df).n_rows == 400
    assert any("ids are unique: 4 runs of consecutive ids" in m for m in caplog.messages)
    # one task reading two files written in id order, the later range first (two runs), and one
    # whose files follow each other with a gap (two runs: the gap is not covered)
    two_files = _laid_out(spark, [list(range(200, 400)) + list(range(0, 200))])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sparknoise"):
        assert sn.find_label_issues(two_files).n_rows == 400
    assert any("ids are unique: 2 runs of consecutive ids" in m for m in caplog.messages)
    gap = _laid_out(spark, [list(range(0, 100)) + list(range(300, 400)), list(range(100, 300))])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sparknoise"):
        assert sn.find_label_issues(gap).n_rows == 400
    assert any("ids are unique: 3 runs of consecutive ids" in m for m in caplog.messages)
    # interleaved ids (unique, but every step is 2: too many runs) fall back to the exact check
    shuffled = _laid_out(spark, [list(range(0, 400, 2)), list(range(1, 400, 2))])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sparknoise"):
        assert sn.find_label_issues(shuffled).n_rows == 400
    assert any("ids checked for nulls and duplicates" in m for m in caplog.messages)


def test_id_runs_prove_uniqueness_only_when_disjoint():
    from sparknoise.core.class_stats import ids_proven_unique

    assert ids_proven_unique([(0, 9), (10, 19), (20, 20)], 3, 0)
    assert not ids_proven_unique([(0, 9), (9, 19)], 2, 0)  # touching
    assert not ids_proven_unique([(0, 9)], 2, 0)  # two runs merged into one range
    assert not ids_proven_unique([(0, 9), (20, 29)], 2, 1)  # an unsorted task
    assert ids_proven_unique([(20, 29), (0, 9)], 2, 0)  # order of the groups does not matter


def test_probs_repair_clip_matches_cleanlab_on_the_repaired_rows(spark):
    import cleanlab.filter as cf
    import numpy as np

    from sparknoise.noise.synthetic import noisy_probabilities

    d = noisy_probabilities(400, 3, noise_rate=0.2, seed=5)
    probs = [[float(v) for v in p] for p in d.pred_probs]
    hair = {3: [1.00002, 0.00003, 0.0], 10: [-0.00004, 0.3, 0.70004], 17: [0.0, 1.0, 0.0]}  # 17 needs nothing
    for i, row in hair.items():
        probs[i] = row
    rows = [(i, int(d.labels[i]), probs[i]) for i in range(len(probs))]
    _raises(spark, rows, "pred_probs")  # refused by default; the message names probs_repair
    res = _run(spark, rows, probs_repair="clip")
    assert res.n_repaired == 2
    fixed = np.array(probs)
    for i in (3, 10):
        clipped = np.clip(fixed[i], 0.0, 1.0)
        fixed[i] = clipped / sum(clipped.tolist())  # summed left to right, as Spark's aggregate does
    mask = cf.find_label_issues(d.labels, fixed)
    assert sorted(r["id"] for r in res.issues().select("id").collect()) == np.flatnonzero(mask).tolist()
    # further off than 1e-4 is still refused
    rows[5] = (5, rows[5][1], [1.001, 0.0, 0.0])
    with pytest.raises(InputError, match="pred_probs"):
        _run(spark, rows, probs_repair="clip")


def test_native_pass_one_finds_what_the_arrow_pass_finds(spark):
    """From NATIVE_MIN_ROWS rows pass 1 is a native aggregation: the Arrow pass's counts and exact
    self-confidence sums, and every row rule with the Arrow pass's problem codes."""
    from sparknoise.core import class_stats, native_stats, validation
    from sparknoise.core.inputs import NOT_A_CLASS, prepare_input

    def both(rows):
        prepared = prepare_input(spark.createDataFrame(rows, SCHEMA), label_col="label", probs_col="pred_probs",
                                 id_col="id")
        native = native_stats.class_stats_native(prepared, 3, 1e-3)
        arrow = validation._arrow_pass(prepared, 3, None, 1e-3, with_ids=False)
        return prepared, native, arrow

    good = [(0, 0, [0.9, 0.05, 0.05]), (1, 1, [0.2, 0.7, 0.1]), (2, 2, [0.1, 0.2, 0.7]), (3, 0, [1 / 3, 1 / 3, 1 / 3]),
            (4, 1, [1.0 + 1e-7, -1e-7, 0.0])]
    _, native, (counts, hi, lo, problems, *_) = both(good)
    assert not native.problems and not problems
    assert native.counts.tolist() == counts.tolist() == [2, 2, 1]
    assert list(native.hi_sums) == list(hi) and list(native.lo_sums) == list(lo)
    nan, inf = math.nan, math.inf
    bad = [(10, None, [0.9, 0.05, 0.05]), (11, -1, [0.9, 0.05, 0.05]), (12, 3, [0.9, 0.05, 0.05]), (13, 1, None),
           (14, 1, [0.5, 0.5]), (15, 1, [0.5, None, 0.5]), (16, 1, [nan, 0.5, 0.5]), (17, 2, [-0.1, 0.6, 0.5]),
           (18, 2, [1.2, -0.1, -0.1]), (19, 2, [0.5, 0.5, 0.5]), (20, 2, [inf, 0.0, 0.0]), (21, 0, [0.0, 0.0, 0.0])]
    _, native, arrow = both(good + bad)  # every rule counted in one scan; the first in order raises
    assert native.largest_label == arrow[-1] == 3  # the message names the width the probabilities would need
    cs = class_stats
    assert native.problems == {NOT_A_CLASS: 2, cs.LABEL_TOO_LARGE: 1, cs.NULL_PROBS: 1, cs.WRONG_LENGTH: 1,
                               cs.NULL_ENTRY: 1, cs.NAN_PROB: 1, cs.NEGATIVE_PROB: 2, cs.PROB_ABOVE_ONE: 2,
                               cs.ROW_SUM_OFF: 3}


def test_native_id_runs(spark, monkeypatch):
    """The native route proves ids unique by runs of consecutive ids over disjoint ranges, else says 0."""
    from sparknoise.core import validation
    from sparknoise.core.inputs import prepare_input

    def runs(layout):
        prepared = prepare_input(_laid_out(spark, layout), label_col="label", probs_col="pred_probs", id_col="id")
        return validation._ids_proven_unique_natively(prepared)

    monkeypatch.setattr(validation, "MAX_ID_RUNS", 16)
    assert runs([list(range(0, 100)), list(range(100, 200))]) == 2
    assert runs([list(range(50, 100)) + list(range(0, 50))]) == 2  # one task, later range first
    assert runs([[1, 2, 3], [3, 4, 5]]) == 0  # touching ranges share their end point
    assert runs([[7, 8, 9, 1, 2, 8]]) == 0  # a duplicate inside one task
    assert runs([list(range(0, 40, 2)), list(range(1, 40, 2))]) == 0  # interleaved: too many runs


@pytest.mark.parametrize("cj, message", [([[3, 1], [0, 4], [1, 1]], r"shape \(3, 2\); it must be K x K = \(2, 2\)"),
                                         ([[3, -1], [0, 4]], "non-negative"), ("many", "K x K matrix")])
def test_given_confident_joint_is_checked(spark, cj, message):
    with pytest.raises(InputError, match=message):
        _run(spark, GOOD, confident_joint=cj)


def test_given_confident_joint_is_ignored_where_cleanlab_ignores_it(spark, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="sparknoise"):
        res = _run(spark, GOOD, filter_by="confident_learning", confident_joint=[[0, 2], [2, 0]])
    assert any("confident_joint is ignored by filter_by='confident_learning'" in m for m in caplog.messages)
    assert res.confident_joint.tolist() == _run(spark, GOOD, filter_by="confident_learning").confident_joint.tolist()
