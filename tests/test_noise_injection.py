"""inject_label_noise: exact realised noise, determinism, bad arguments; detection on injected noise."""

from __future__ import annotations

import numpy as np
import pytest
from cleanlab.benchmarking.noise_generation import noise_matrix_is_valid as cleanlab_is_valid
from pyspark.sql import functions as F

import sparknoise as sn
from sparknoise.core.estimates import round_preserving_sum
from sparknoise.noise.synthetic import noisy_probabilities

N = 3001
NM = np.array([[0.8, 0.1, 0.0], [0.15, 0.9, 0.3], [0.05, 0.0, 0.7]])


@pytest.fixture(scope="module")
def clean(spark):
    """True labels 0..2 (imbalanced) and probabilities favouring the true class; no noise yet."""
    d = noisy_probabilities(N, 3, noise_rate=0.0, prior=[0.5, 0.3, 0.2], separation=3.0, seed=5)
    frame = d.to_pandas().drop(columns=["true_label"])
    return spark.createDataFrame(frame).repartition(3)


def _rows(df):
    return sorted((r["id"], r["label"], r["true_label"], r["is_noisy"]) for r in df.collect())


def test_uniform_flips_exactly_round_rate_n(clean):
    out = sn.inject_label_noise(clean, "label", noise_rate=0.2, seed=1)
    assert out.columns == clean.columns + ["true_label", "is_noisy"]
    rows = _rows(out)
    original = {r["id"]: r["label"] for r in clean.select("id", "label").collect()}
    assert len(rows) == N
    flipped = [r for r in rows if r[3]]
    assert len(flipped) == round(0.2 * N)
    assert all(r[1] != r[2] for r in flipped) and all(r[1] == r[2] for r in rows if not r[3])
    assert all(original[r[0]] == r[2] for r in rows)
    targets = np.bincount([(r[1] - r[2]) % 3 for r in flipped], minlength=3)
    assert targets[0] == 0 and abs(targets[1] - targets[2]) < 0.15 * len(flipped)  # uniform over the others


def test_class_conditional_cells_match_the_matrix(clean):
    out = sn.inject_label_noise(clean, "label", noise_matrix=NM, mode="class_conditional", seed=2)
    realised = np.zeros((3, 3), dtype=int)
    for r in out.groupBy("label", "true_label").count().collect():
        realised[r["label"], r["true_label"]] = r["count"]
    n_k = realised.sum(axis=0)
    assert np.all(np.abs(realised - NM * n_k) < 1.0)  # every cell within rounding
    for k in range(3):
        assert list(realised[:, k]) == list(round_preserving_sum(NM[:, k] * n_k[k]))


def test_generated_matrix_from_noise_rate(clean):
    out = sn.inject_label_noise(clean, "label", noise_rate=0.25, mode="class_conditional", seed=3,
                                frac_zero_noise_rates=0.5)
    flips = out.filter("is_noisy").count()
    assert abs(flips - 0.25 * N) < 0.25 * N * 0.5  # the trace fixes the average rate, not the weighted one
    assert out.filter("is_noisy AND label = true_label").count() == 0


@pytest.mark.parametrize("mode, kwargs", [
    ("uniform", {"noise_rate": 0.3}),
    ("class_conditional", {"noise_matrix": NM}),
    ("instance_dependent", {"noise_rate": 0.2, "probs_col": "pred_probs"}),
])
def test_same_noise_for_any_partitioning_and_run(clean, mode, kwargs):
    first = _rows(sn.inject_label_noise(clean.repartition(1), "label", mode=mode, seed=9, **kwargs))
    again = _rows(sn.inject_label_noise(clean.repartition(6), "label", mode=mode, seed=9, **kwargs))
    assert first == again
    other_seed = _rows(sn.inject_label_noise(clean, "label", mode=mode, seed=10, **kwargs))
    assert other_seed != first


def test_instance_dependent_flips_confusable_rows_to_their_runner_up(clean):
    out = sn.inject_label_noise(clean, "label", noise_rate=0.2, mode="instance_dependent", seed=4,
                                probs_col="pred_probs")
    rows = out.collect()
    flipped = [r for r in rows if r["is_noisy"]]
    assert len(flipped) == round(0.2 * N)

    def runner_up(r):
        p = np.array(r["pred_probs"], dtype=float)
        p[r["true_label"]] = -1
        return int(np.argmax(p)), float(p.max())

    assert all(r["label"] == runner_up(r)[0] for r in flipped)
    w_flipped = np.mean([runner_up(r)[1] for r in flipped])
    w_kept = np.mean([runner_up(r)[1] for r in rows if not r["is_noisy"]])
    assert w_flipped > 1.5 * w_kept


def test_instance_dependent_from_features(spark):
    from ml_data import classification

    frame, _ = classification(800, 3, seed=3)
    df = spark.createDataFrame(frame.drop(columns=["true_label"]))
    out = sn.inject_label_noise(df, "label", noise_rate=0.1, mode="instance_dependent",
                                features_col=[f"f{i}" for i in range(8)])
    assert out.filter("is_noisy").count() == 80


def test_string_labels(spark):
    df = spark.createDataFrame([(i, ["cat", "dog", "emu"][i % 3]) for i in range(300)], "id long, label string")
    out = sn.inject_label_noise(df, "label", noise_rate=0.1, seed=0)
    assert out.filter("is_noisy").count() == 30
    assert {r[0] for r in out.select("label").distinct().collect()} == {"cat", "dog", "emu"}


def test_noise_matrix_from_trace_is_valid():
    py = np.array([0.5, 0.3, 0.2])
    for seed in range(5):
        m = sn.noise_matrix_from_trace(3, 2.1, py=py, frac_zero_noise_rates=0.5, seed=seed)
        assert np.isclose(np.trace(m), 2.1) and np.allclose(m.sum(axis=0), 1.0)
        assert cleanlab_is_valid(m, py) and sn.noise_matrix_is_valid(m, py)
        assert (m[~np.eye(3, dtype=bool)] == 0).sum() >= 3
    m10 = sn.noise_matrix_from_trace(10, 8.0, py=np.full(10, 0.1), seed=1)
    assert np.isclose(np.trace(m10), 8.0) and cleanlab_is_valid(m10, np.full(10, 0.1))
    rng = np.random.default_rng(0)
    for _ in range(50):  # our validity rule is cleanlab's
        m = rng.dirichlet(np.ones(3), size=3).T
        assert sn.noise_matrix_is_valid(m, py) == cleanlab_is_valid(m, py)


@pytest.mark.parametrize("kwargs, needle", [
    ({"noise_rate": 1.0}, "noise_rate"),
    ({"noise_rate": -0.1}, "noise_rate"),
    ({"noise_rate": 0.1, "mode": "sideways"}, "mode"),
    ({"mode": "class_conditional", "noise_matrix": np.eye(2)}, "3 x 3"),
    ({"mode": "class_conditional", "noise_matrix": [[0.9, 0.1, 0], [0.2, 0.9, 0], [0, 0, 1.0]]}, "sum to 1"),
    ({"mode": "class_conditional"}, "exactly one"),
    ({"mode": "instance_dependent", "noise_rate": 0.1}, "probs_col"),
    ({"noise_matrix": NM}, "class_conditional"),
])
def test_bad_arguments(clean, kwargs, needle):
    with pytest.raises(sn.ConfigError, match=needle):
        sn.inject_label_noise(clean, "label", **kwargs)


def test_bad_input(spark, clean):
    with pytest.raises(sn.InputError, match="true_label"):
        sn.inject_label_noise(clean.withColumn("true_label", F.col("label")), "label", noise_rate=0.1)
    with pytest.raises(sn.InputError, match="duplicate") as e:
        sn.inject_label_noise(clean.unionByName(clean.limit(2)), "label", noise_rate=0.1)
    assert e.value.column == "id"
    with pytest.raises(sn.InputError, match="outside classes"):
        sn.inject_label_noise(clean, "label", noise_rate=0.1, classes=[0, 1])


# Measured on this data (3001 rows, separation 3): uniform 20%: precision 0.964, recall 0.905;
# class-conditional (NM above): precision 0.953, recall 0.891. The thresholds leave a margin.
@pytest.mark.parametrize("kwargs, min_precision, min_recall", [
    ({"noise_rate": 0.2, "mode": "uniform"}, 0.9, 0.85),
    ({"noise_matrix": NM, "mode": "class_conditional"}, 0.85, 0.8),
])
def test_confident_learning_finds_injected_noise(clean, kwargs, min_precision, min_recall):
    noisy = sn.inject_label_noise(clean, "label", seed=11, **kwargs)
    res = sn.find_label_issues(noisy, label_col="label", probs_col="pred_probs", id_col="id")
    row = res.rows.agg(F.sum((F.col("is_label_issue") & F.col("is_noisy")).cast("long")).alias("tp"),
                       F.sum(F.col("is_label_issue").cast("long")).alias("flagged"),
                       F.sum(F.col("is_noisy").cast("long")).alias("noisy")).first()
    precision, recall = row["tp"] / row["flagged"], row["tp"] / row["noisy"]
    print(f"{kwargs['mode']}: precision {precision:.3f} recall {recall:.3f}")
    assert precision >= min_precision and recall >= min_recall


@pytest.mark.parametrize("mode", ["uniform", "class_conditional"])
def test_the_recorded_noise_of_a_fixed_table(spark, mode):
    from noise_golden import GOLDEN, fingerprint

    assert fingerprint(spark, mode) == GOLDEN[mode]  # tests/connect checks the same numbers on Spark Connect


# ---- task="regression" -------------------------------------------------------------------------------------

MIX = {"shift": 0.05, "swap": 0.04, "unit": 0.03, "default": 0.02}


@pytest.fixture(scope="module")
def numeric(spark):
    """2,000 rows: a continuous label ``y`` (no zeros, all distinct) and an integer label ``k`` (7 values)."""
    rng = np.random.default_rng(3)
    y = np.round(rng.normal(50.0, 10.0, 2000), 3) + np.arange(2000) * 1e-6
    rows = [(i, float(y[i]), int(i * 5 % 7)) for i in range(2000)]
    return spark.createDataFrame(rows, "id long, y double, k int").repartition(3)


def _reg_rows(rows):
    return sorted((r["id"], r["y"], r["true_label"], r["is_noisy"], r["noise_mode"]) for r in rows)


def test_regression_modes_hit_exact_counts_follow_their_rules_for_any_partitioning(numeric):
    out = sn.inject_label_noise(numeric, "y", task="regression", mode=MIX, seed=5, shift_std=2.5)
    assert out.columns == numeric.columns + ["true_label", "is_noisy", "noise_mode"]
    assert dict(out.dtypes)["y"] == "double"
    rows = out.collect()
    again = sn.inject_label_noise(numeric.repartition(1), "y", task="regression", mode=MIX, seed=5, shift_std=2.5)
    assert _reg_rows(again.collect()) == _reg_rows(rows)  # the same rows, values and modes, to the last bit
    original = {r["id"]: r["y"] for r in numeric.select("id", "y").collect()}
    values = np.array(list(original.values()))
    by_mode = {m: [r for r in rows if r["noise_mode"] == m] for m in MIX}
    assert {m: len(v) for m, v in by_mode.items()} == {m: round(rate * 2000) for m, rate in MIX.items()}
    assert all(r["true_label"] == original[r["id"]] for r in rows)
    assert all(r["is_noisy"] == (r["noise_mode"] is not None) for r in rows)  # every hit changes y here
    assert all(r["y"] == r["true_label"] for r in rows if r["noise_mode"] is None)
    delta = np.array([r["y"] - r["true_label"] for r in by_mode["shift"]])
    assert np.allclose(np.abs(delta), 2.5 * values.std(), rtol=1e-9)  # population sd, +-2.5 sd
    assert 0 < (delta > 0).sum() < len(delta)
    swapped = by_mode["swap"]
    assert all(r["y"] in set(values) - {r["true_label"]} for r in swapped)  # another row's value
    assert len({r["y"] for r in swapped}) > 0.9 * len(swapped)  # drawn across the table, not one donor
    ratio = np.array([r["y"] / r["true_label"] for r in by_mode["unit"]])
    assert np.all(np.isclose(ratio, 10.0) | np.isclose(ratio, 0.1)) and 0 < np.isclose(ratio, 10.0).sum() < len(ratio)
    assert all(r["y"] == 0.0 for r in by_mode["default"])


def test_regression_integer_labels_become_double(spark):
    from noise_golden import GOLDEN, REGRESSION_MIX, regression_fingerprint, regression_noise, table

    out = regression_noise(spark)  # labels 0, 1, 2 (long), shift/swap/unit/default, default_value -1
    assert dict(out.dtypes)["label"] == "double" and dict(out.dtypes)["true_label"] == "double"
    rows = out.collect()
    assert regression_fingerprint(rows) == GOLDEN["regression"]  # tests/connect checks the same numbers
    counts = {m: sum(r["noise_mode"] == m for r in rows) for m in REGRESSION_MIX}
    assert counts == {m: round(rate * 2000) for m, rate in REGRESSION_MIX.items()}
    sd = np.std([r[1] for r in table(spark).collect()])
    assert all(abs(abs(r["label"] - r["true_label"]) - 3 * sd) < 1e-12 for r in rows if r["noise_mode"] == "shift")
    assert all(r["label"] != r["true_label"] and r["label"] in (0, 1, 2) for r in rows if r["noise_mode"] == "swap")
    assert all(r["label"] == -1.0 and r["is_noisy"] for r in rows if r["noise_mode"] == "default")
    unit = [r for r in rows if r["noise_mode"] == "unit"]
    assert all(r["label"] in (r["true_label"] * 10, r["true_label"] / 10) for r in unit)
    assert all(r["is_noisy"] == (r["true_label"] != 0) for r in unit)  # x10 of a zero is still zero
    assert sum(not r["is_noisy"] for r in unit) > 0


def test_regression_detection_and_fit_metrics_match_sklearn(spark):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, precision_score, r2_score, recall_score

    rng = np.random.default_rng(0)
    n = 400
    mode = rng.choice(["shift", "swap", "unit", "default", None], size=n, p=[0.1, 0.1, 0.1, 0.1, 0.6])
    noisy = np.array([m is not None for m in mode]) & (rng.random(n) > 0.05)
    flag = np.where(noisy, rng.random(n) < 0.7, rng.random(n) < 0.1)
    y, p = rng.normal(size=n), rng.normal(size=n)
    df = spark.createDataFrame(
        [(int(i), bool(noisy[i]), mode[i], bool(flag[i]), float(y[i]), float(p[i])) for i in range(n)],
        "id long, is_noisy boolean, noise_mode string, is_label_issue boolean, y double, p double")
    got = sn.regression_detection_metrics(df).set_index("mode")
    assert got.loc["all", "precision"] == pytest.approx(precision_score(noisy, flag))
    assert got.loc["all", "recall"] == pytest.approx(recall_score(noisy, flag))
    for m in ("shift", "swap", "unit", "default"):
        keep = ~noisy | (mode == m)  # the clean rows and mode m's noise only
        assert got.loc[m, "precision"] == pytest.approx(precision_score(noisy[keep], flag[keep]))
        assert got.loc[m, "recall"] == pytest.approx(recall_score(noisy[keep], flag[keep]))
        assert got.loc[m, "noisy"] == (noisy & (mode == m)).sum()
    fit = sn.regression_fit_metrics(df, label_col="y", prediction_col="p")
    assert fit["n"] == n
    assert fit["r2"] == pytest.approx(r2_score(y, p)) and fit["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert fit["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    const = sn.regression_fit_metrics(df.selectExpr("1.0 AS y", "1.0 AS p"), label_col="y", prediction_col="p")
    assert const["r2"] == r2_score(np.ones(3), np.ones(3)) == 1.0


@pytest.mark.parametrize("kwargs, needle", [
    ({"mode": "sideways", "noise_rate": 0.1}, "mode 'sideways' is unknown for task='regression'"),
    ({"mode": "class_conditional", "noise_rate": 0.1}, "class-label mode: pass task='multiclass'"),
    ({"mode": "shift", "noise_rate": 1.0}, "noise_rate must be a number in"),
    ({"mode": {"shift": -0.1}}, "rate of mode 'shift'"),
    ({"mode": {"shift": 0.6, "swap": 0.4}}, "sum to less than 1"),
    ({"mode": {"shift": 0.1}, "noise_rate": 0.1}, "drop noise_rate"),
    ({"mode": "swap"}, "needs noise_rate"),
    ({"noise_rate": 0.1, "noise_matrix": NM}, "noise_matrix is not used by task='regression'"),
    ({"noise_rate": 0.1, "classes": [0, 1]}, "classes is not used"),
    ({"noise_rate": 0.1, "shift_std": 0}, "shift_std must be a positive"),
    ({"noise_rate": 0.1, "mode": "unit", "factor": 1}, "factor must be"),
    ({"noise_rate": 0.1, "task": "ordinal"}, "task 'ordinal' is unknown"),
    ({"noise_rate": 0.1, "task": "multiclass", "default_value": 1.0}, "default_value is not used by task='multiclass'"),
    ({"noise_rate": 0.1, "task": "multiclass", "mode": {"uniform": 0.1}}, "dict mode"),
    ({"noise_rate": 0.1, "task": "multiclass", "mode": "swap"}, "task='regression' for it"),
])
def test_regression_bad_arguments(clean, kwargs, needle):
    kwargs = {"task": "regression", **kwargs}
    with pytest.raises(sn.ConfigError, match=needle.replace("(", r"\(").replace("[", r"\[")):
        sn.inject_label_noise(clean, "label", **kwargs)


def test_regression_bad_input(spark, clean):
    strings = spark.createDataFrame([(1, "a"), (2, "b")], "id long, label string")
    with pytest.raises(sn.InputError, match="task='regression' needs a numeric label") as e:
        sn.inject_label_noise(strings, "label", task="regression", noise_rate=0.1)
    assert e.value.column == "label"
    with pytest.raises(sn.InputError, match="noise_mode"):
        sn.inject_label_noise(clean.withColumn("noise_mode", F.lit("x")), "label", task="regression", noise_rate=0.1)
    nan = spark.createDataFrame([(1, 1.0), (2, float("nan"))], "id long, label double")
    with pytest.raises(sn.InputError, match="NaN"):
        sn.inject_label_noise(nan, "label", task="regression", noise_rate=0.1)


# Multi-label tags: 1,500 rows x 4 string tags (class priors 0.5, 0.3, 0.15, 0.05), [] for no tag;
# a few rows are given unsorted or with a repeated tag (they come back sorted and deduplicated).
TAGS = ["ant", "bee", "cat", "dog"]
TAG_NM = [[[0.9, 0.2], [0.1, 0.8]], [[1.0, 0.5], [0.0, 0.5]], [[0.95, 0.0], [0.05, 1.0]], [[0.7, 0.3], [0.3, 0.7]]]


def _tag_rows():
    rng = np.random.default_rng(8)
    hot = rng.random((1500, 4)) < np.array([0.5, 0.3, 0.15, 0.05])
    rows = [(i, [TAGS[c] for c in np.flatnonzero(h)]) for i, h in enumerate(hot)]
    rows[1] = (1, ["cat", "ant", "cat"])
    return rows


@pytest.fixture(scope="module")
def tagged(spark):
    return spark.createDataFrame(_tag_rows(), "id long, tags array<string>").repartition(3)


def _tag_flips(rows):
    """(K, 2) realised flips per class: [gained, lost], checking every row's bookkeeping on the way."""
    realised = np.zeros((4, 2), dtype=int)
    for r in rows:
        true, noisy = set(r["true_label"]), list(r["tags"])
        assert noisy == sorted(set(noisy), key=TAGS.index)  # sorted in class order, no repeats
        changed = sorted(TAGS.index(t) for t in true.symmetric_difference(noisy))
        assert list(r["flipped_classes"]) == changed and r["is_noisy"] == bool(changed)
        for c in changed:
            realised[c, int(TAGS[c] in true)] += 1
    return realised


def test_multilabel_rate_flips_exact_counts_per_class_and_direction_for_any_partitioning(tagged):
    original = dict(_tag_rows())
    runs = [sn.inject_label_noise(tagged.repartition(p), "tags", noise_rate=0.1, seed=4, task="multilabel")
            for p in (1, 5)]
    assert runs[0].columns == ["id", "tags", "true_label", "is_noisy", "flipped_classes"]
    rows = [sorted(run.collect(), key=lambda r: r["id"]) for run in runs]
    assert rows[0] == rows[1]  # the same flips whatever the partitioning
    assert {r["id"]: list(r["true_label"]) for r in rows[0]} == original  # kept as given
    n_c = np.array([sum(TAGS[c] in set(t) for t in original.values()) for c in range(4)])
    expected = np.column_stack(([round(0.1 * (1500 - n)) for n in n_c], [round(0.1 * n) for n in n_c]))
    assert (_tag_flips(rows[0]) == expected).all()


def test_multilabel_per_class_matrix_gives_exact_counts(tagged):
    out = sn.inject_label_noise(tagged, "tags", noise_matrix=TAG_NM, seed=2, task="multilabel", classes=TAGS)
    rows = out.collect()
    n_c = np.array([sum(TAGS[c] in set(r["true_label"]) for r in rows) for c in range(4)])
    m = np.array(TAG_NM)
    expected = [[round_preserving_sum((1500 - n_c[c]) * m[c, :, 0])[1], round_preserving_sum(n_c[c] * m[c, :, 1])[0]]
                for c in range(4)]
    realised = _tag_flips(rows)
    assert (realised == np.array(expected)).all()
    assert realised[1, 0] == 0 and realised[2, 1] == 0 and abs(realised[1, 1] - n_c[1] / 2) <= 0.5


@pytest.mark.parametrize("kwargs, needle", [
    ({"noise_rate": 0.1, "mode": "class_conditional"}, "mode 'class_conditional' is not used by task='multilabel'"),
    ({"noise_rate": 1.0}, "noise_rate must be a number in"),
    ({}, "exactly one of noise_rate"),
    ({"noise_matrix": [[0.9, 0.1], [0.1, 0.9]]}, "noise_matrix has shape"),
    ({"noise_matrix": [[[0.9, 0.2], [0.2, 0.8]]]}, "class 0's column 0 sums to 1.1"),
    ({"noise_rate": 0.1, "shift_std": 2.0}, "shift_std is not used by task='multilabel'"),
    ({"noise_rate": 0.1, "probs_col": "p"}, "probs_col is not used by task='multilabel'"),
])
def test_multilabel_bad_arguments(kwargs, needle):
    with pytest.raises(sn.ConfigError, match=needle.replace("(", r"\(")):
        sn.inject_label_noise(None, "tags", task="multilabel", **kwargs)  # checked before the frame is read


def test_multilabel_bad_input(spark, tagged, clean):
    with pytest.raises(sn.InputError, match="needs an array of tags") as e:
        sn.inject_label_noise(clean, "label", task="multilabel", noise_rate=0.1)
    assert e.value.column == "label"
    with pytest.raises(sn.ConfigError, match="noise_matrix has shape .* needs 4 x 2 x 2"):
        sn.inject_label_noise(tagged, "tags", task="multilabel", noise_matrix=TAG_NM[:3], classes=TAGS)
    small = spark.createDataFrame([(1, ["ant"]), (2, None), (3, ["emu"])], "id long, tags array<string>")
    with pytest.raises(sn.InputError, match="1 null array"):
        sn.inject_label_noise(small, "tags", task="multilabel", noise_rate=0.1, classes=TAGS)
    with pytest.raises(sn.InputError, match="outside classes"):
        sn.inject_label_noise(small.filter("id != 2"), "tags", task="multilabel", noise_rate=0.1, classes=TAGS)


def test_multilabel_inject_job(spark, tmp_path, capsys):
    from sparknoise.cli import main as cli_main

    source = str(tmp_path / "tags")
    spark.createDataFrame([(i, [t for j, t in enumerate(TAGS) if (i >> j) & 1]) for i in range(192)],
                          "id long, tags array<string>").write.format("delta").save(source)
    args = ["inject", f"--input.path={source}", "--set", "input.label_col=tags", "--set", "detection.task=multilabel",
            "--set", f"input.classes={TAGS}", "--set", "run.id=ml1", "--set", f"output.noisy={tmp_path}/noisy",
            "--set", f"output.runs={tmp_path}/runs"]
    assert cli_main([*args, "--set", "inject.noise_rate=0.25"]) == 0
    noisy = spark.read.format("delta").load(f"{tmp_path}/noisy").collect()
    assert len(noisy) == 192 and all(r["true_label"] == [t for j, t in enumerate(TAGS) if (r["id"] >> j) & 1]
                                     for r in noisy)
    lost = sum(TAGS[c] in r["true_label"] for r in noisy for c in r["flipped_classes"])
    assert lost == 4 * 24  # every tag is on 96 rows: 24 lose it
    run = spark.read.format("delta").load(f"{tmp_path}/runs").filter("run_id = 'ml1'").first()
    assert run["status"] == "succeeded" and run["num_flagged"] == sum(r["is_noisy"] for r in noisy)
    assert cli_main([*args, "--set", "inject.mode=class_conditional"]) == 2
    assert cli_main([*args, "--set", "inject.noise_matrix=[[[0.9, 0.2], [0.2, 0.8]]]"]) == 2
    assert "'inject.noise_matrix' columns must sum to 1" in capsys.readouterr().err
