"""evaluate_label_noise(task="regression") and the evaluate job with detection.task: regression.

Tiny data (400 rows x 3 features, a linear target), 2 folds, no bootstrap, k fixed: the checks are the
exact ones (injected counts per mode, precision/recall recomputed from the tables' counts, the
clean model's R² and RMSE against scikit-learn's ordinary least squares on the same rows).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pyspark.ml.regression import LinearRegression

import sparknoise as sn
from sparknoise.cli import main as cli_main
from sparknoise.errors import ConfigError
from sparknoise.jobs.config import load_config
from sparknoise.noise.evaluation import split_train_test
from sparknoise.noise.regression_evaluation import mode_rates

FEATURES = ["x0", "x1", "x2"]
N = 400


def _numbers() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 3))
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["y"] = X @ np.array([1.5, -2.0, 0.5]) + 3.0 + rng.normal(scale=0.3, size=N)
    frame["id"] = np.arange(N)
    return frame


def _sklearn_clean_fit(spark, frame: pd.DataFrame) -> tuple[float, float, int, int]:
    """scikit-learn's OLS fitted on the evaluation's train split, scored on its test split (R², RMSE)."""
    from sklearn.linear_model import LinearRegression as OLS
    from sklearn.metrics import mean_squared_error, r2_score

    train, test = split_train_test(spark.createDataFrame(frame[["id"]]), "id", test_fraction=0.2, seed=0)
    train_ids = {r["id"] for r in train.collect()}
    test_ids = {r["id"] for r in test.collect()}
    tr, te = frame[frame["id"].isin(train_ids)], frame[frame["id"].isin(test_ids)]
    pred = OLS().fit(tr[FEATURES], tr["y"]).predict(te[FEATURES])
    return r2_score(te["y"], pred), float(np.sqrt(mean_squared_error(te["y"], pred))), len(tr), len(te)


def _check_scores(detection: pd.DataFrame) -> None:
    """precision = tp / flagged, recall = tp / noisy, F1 their harmonic mean, from the table's counts."""
    for rec in detection.to_dict("records"):
        precision = rec["true_positives"] / rec["flagged"] if rec["flagged"] else None
        recall = rec["true_positives"] / rec["noisy"] if rec["noisy"] else None
        for key, want in (("precision", precision), ("recall", recall)):
            got = rec[key]
            assert (want is None and (got is None or got != got)) or got == pytest.approx(want, abs=1e-12), rec
        if precision and recall:
            assert rec["f1"] == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-12)


def test_mode_rates_split_each_rate_between_the_modes():
    assert mode_rates(None, 0.2) == {"shift": 0.2}
    assert mode_rates({"unit": 1, "shift": 3}, 0.2) == pytest.approx({"shift": 0.15, "unit": 0.05})
    assert list(mode_rates({"unit": 1, "shift": 3}, 0.2)) == ["shift", "unit"]  # the fixed mode order
    for bad in ("uniform", {"shift": 0}, {"tilt": 1}, {}):
        with pytest.raises(ConfigError, match="noise_mode|share"):
            mode_rates(bad, 0.1)


def test_evaluate_regression_api(spark):
    frame = _numbers()
    r2, rmse, n_train, n_test = _sklearn_clean_fit(spark, frame)
    res = sn.evaluate_label_noise(
        spark.createDataFrame(frame), label_col="y", estimator=LinearRegression(), features=FEATURES,
        task="regression", noise_rates=[0.1], detection_noise_rate=0.1, noise_mode={"shift": 1, "unit": 1},
        n_folds=2, n_boot=0, frac_issues=0.1, include_aleatoric_uncertainty=False, test_fraction=0.2, seed=0,
        parallelism=2)
    print(res.detection.to_string(), res.impact.to_string(), res.timings, sep="\n")
    assert res.task == "regression" and res.classes == () and (res.n_train, res.n_test) == (n_train, n_test)
    det = res.detection
    assert list(det.columns) == ["noise_rate", "detector", "mode", "flagged", "true_positives", "noisy",
                                 "precision", "recall", "f1"]
    assert set(det["detector"]) == {"regression_clean_learning"}
    assert list(zip(det["noise_rate"], det["mode"])) == [(0.1, "all"), (0.1, "shift"), (0.1, "unit")]
    # exactly round(rate * N) rows per mode (a shift or a x/÷10 always changes these values)
    per_mode = int(round(0.05 * n_train))
    noisy = dict(zip(zip(det["noise_rate"], det["mode"]), det["noisy"]))
    assert noisy == {(0.1, "all"): 2 * per_mode, (0.1, "shift"): per_mode, (0.1, "unit"): per_mode}
    _check_scores(det)
    imp = res.impact
    assert list(imp.columns) == ["noise_rate", "variant", "train_rows", "flagged", "test_rows", "r2", "rmse", "mae"]
    assert list(zip(imp["noise_rate"], imp["variant"])) == [(0.1, v) for v in ("noisy", "pruned", "clean")]
    assert set(imp["test_rows"]) == {n_test}
    for rate in (0.1,):
        flagged = int(det[(det["noise_rate"] == rate) & (det["mode"] == "all")]["flagged"].iloc[0])
        at = imp[imp["noise_rate"] == rate].set_index("variant")
        assert at.loc["pruned", "flagged"] == flagged and at.loc["pruned", "train_rows"] == n_train - flagged
        assert at.loc["noisy", "train_rows"] == at.loc["clean", "train_rows"] == n_train
        # Spark's LinearRegression (regParam 0, normal equations) is scikit-learn's OLS
        assert at.loc["clean", "r2"] == pytest.approx(r2, abs=1e-6)
        assert at.loc["clean", "rmse"] == pytest.approx(rmse, abs=1e-6)
    at1 = imp[imp["noise_rate"] == 0.1].set_index("variant")
    assert at1.loc["noisy", "r2"] < r2 - 0.05  # 10% corrupted values cost R²


def test_evaluate_regression_config_errors():
    base = ["input.table=numbers", "input.features=[x0, x1]", "detection.task=regression"]
    with pytest.raises(ConfigError, match="'model.estimator' 'logistic_regression' is not a regressor"):
        load_config(overrides=base, job="evaluate")
    with pytest.raises(ConfigError, match="evaluate.noise_mode"):
        load_config(overrides=[*base, "model.estimator=linear_regression", "evaluate.noise_mode=class_conditional"],
                    job="evaluate")
    cfg = load_config(overrides=[*base, "model.estimator=linear_regression"], job="evaluate")
    assert cfg["evaluate"]["noise_mode"] == "shift"  # the multiclass default becomes the regression default


def test_evaluate_job_regression(spark, tmp_path, capsys):
    frame = _numbers()
    source = str(tmp_path / "input")
    spark.createDataFrame(frame).write.format("delta").save(source)
    out = tmp_path / "out"
    code = cli_main([
        "evaluate", f"--input.path={source}", "--set", "input.label_col=y", "--set", f"input.features={FEATURES}",
        "--set", "detection.task=regression", "--set", "model.estimator=linear_regression",
        "--set", "model.n_folds=2", "--set", "detection.n_boot=0", "--set", "detection.frac_issues=0.1",
        "--set", "detection.include_aleatoric_uncertainty=false",
        "--set", "evaluate.noise_rates=[0.1]", "--set", "evaluate.detection_noise_rate=0.1",
        "--set", "evaluate.noise_mode=swap", "--set", "run.id=rg1",
        "--set", f"output.detection={out}/detection", "--set", f"output.impact={out}/impact",
        "--set", f"output.plots={out}/plots", "--set", f"output.runs={out}/runs",
    ])
    printed = capsys.readouterr().out
    assert code == 0
    assert "Test R²" in printed and "Test RMSE" in printed
    detection = spark.read.format("delta").load(f"{out}/detection").toPandas().sort_values("mode")
    impact = spark.read.format("delta").load(f"{out}/impact").toPandas()
    r2, rmse, n_train, n_test = _sklearn_clean_fit(spark, frame)
    assert list(detection["mode"]) == ["all", "swap"] and set(detection["noise_mode"]) == {"swap"}
    assert set(detection["run_id"]) == {"rg1"} and set(detection["detector"]) == {"regression_clean_learning"}
    swapped = int(detection.loc[detection["mode"] == "swap", "noisy"].iloc[0])
    assert swapped == int(detection.loc[detection["mode"] == "all", "noisy"].iloc[0]) == int(round(0.1 * n_train))
    _check_scores(detection.replace({np.nan: None}))
    clean = impact[impact["variant"] == "clean"].iloc[0]
    assert clean["r2"] == pytest.approx(r2, abs=1e-6) and clean["rmse"] == pytest.approx(rmse, abs=1e-6)
    assert sorted(impact["variant"]) == ["clean", "noisy", "pruned"] and set(impact["test_rows"]) == {n_test}
    run = spark.read.format("delta").load(f"{out}/runs").filter("run_id = 'rg1'").first()
    print("timings", run["timings"])
    assert run["job"] == "evaluate" and run["status"] == "succeeded" and run["n_rows"] == N
    metrics = json.loads(run["metrics"])
    assert [d["mode"] for d in metrics["detection"]] == ["all", "swap"] and len(metrics["impact"]) == 3
    assert not (out / "_sparknoise_scratch").exists()
    for name in ("impact_curve.png", "detection_precision_recall.png"):
        data = (out / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
