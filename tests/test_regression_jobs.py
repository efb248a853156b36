"""The regression jobs through the CLI (``detection.task: regression``): detect with given predictions,
review export/import, apply and the report; detect with a model; inject's corruption modes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from sparknoise.cli import main as cli_main


def _cli(run, *args: str) -> int:
    return cli_main([*args, "--config", run["conf"]])


@pytest.fixture(scope="module")
def numbers_run(spark, tmp_path_factory):
    """A regression table: 600 rows, a linear target with 30 corrupted values, an out-of-fold-like prediction."""
    base = tmp_path_factory.mktemp("numbers")
    rng = np.random.default_rng(3)
    n = 600
    x = rng.normal(size=(n, 3))
    truth = x @ np.array([2.0, -1.0, 0.5]) + 10
    label = truth + rng.normal(0, 0.3, n)
    bad = rng.choice(n, 30, replace=False)
    label[bad] += rng.choice([-1, 1], 30) * 4
    prediction = truth + rng.normal(0, 0.2, n)
    rows = [(int(i), float(label[i]), float(prediction[i]), *map(float, x[i])) for i in range(n)]
    (spark.createDataFrame(rows, "id long, price double, oof double, f0 double, f1 double, f2 double")
     .coalesce(2).write.format("delta").save(str(base / "in")))
    out = {n: str(base / n) for n in ("scored", "issues", "runs", "reviews", "cleaned", "audit")}
    conf = base / "numbers.yaml"
    conf.write_text(yaml.safe_dump({
        "input": {"path": str(base / "in"), "label_col": "price", "prediction_col": "oof"},
        "detection": {"task": "regression", "frac_issues": 0.05},
        "output": out,
    }))
    assert cli_main(["detect", "--config", str(conf), "--set", "run.id=g1"]) == 0
    return {"conf": str(conf), "out": out, "label": label, "prediction": prediction, "bad": bad, "base": base}


def test_regression_detect_review_apply_and_report(spark, numbers_run):
    import csv
    import math
    import re

    run, out, base = numbers_run, numbers_run["out"], numbers_run["base"]
    r = np.abs(run["prediction"] - run["label"])
    quality = np.exp(-r / np.median(r))
    expected = np.lexsort((np.arange(len(r)), quality))[:math.ceil(len(r) * 0.05)]
    issues = spark.read.format("delta").load(out["issues"]).toPandas().sort_values("issue_rank")
    assert list(issues["id"]) == list(expected) and set(expected) <= set(run["bad"])
    assert np.allclose(issues["suggested_label"], run["prediction"][expected], rtol=0, atol=1e-12)
    record = spark.read.format("delta").load(out["runs"]).collect()[0]
    assert json.loads(record["metrics"])["task"] == "regression" and record["num_flagged"] == len(expected)

    assert _cli(run, "review", "export", "--run-id", "g1", "--output", str(base / "q.csv")) == 0
    queue = list(csv.DictReader(open(base / "q.csv")))
    assert [int(q["id"]) for q in queue] == list(expected)
    assert _cli(run, "review", "export", "--run-id", "g1", "--output", str(base / "t.json")) == 2  # no LS tasks
    a, b = int(expected[0]), int(expected[1])
    with open(base / "v.csv", "w") as f:
        f.write(f"id,decision,new_label\n{a},relabel,12.5\n{b},remove,\n")
    assert _cli(run, "review", "import", "--run-id", "g1", "--input", str(base / "v.csv")) == 0
    (base / "bad.csv").write_text(f"id,decision,new_label\n{a},relabel,twelve\n")
    assert _cli(run, "review", "import", "--run-id", "g1", "--input", str(base / "bad.csv")) == 2
    assert _cli(run, "apply", "--run-id", "g1", "--set", "apply.unreviewed=relabel") == 0
    cleaned = spark.read.format("delta").load(out["cleaned"]).toPandas().set_index("id")
    assert cleaned.loc[a, "clean_label"] == 12.5 and b not in cleaned.index
    for i in expected[2:]:
        assert cleaned.loc[int(i), "clean_label"] == pytest.approx(run["prediction"][i], abs=1e-12)

    report = base / "report.html"
    assert _cli(run, "report", "--run-id", "g1", "--output", str(report)) == 0
    page = report.read_text()
    data = json.loads(re.search(r'id="sparknoise-report-data">(.*?)</script>', page, re.S).group(1))
    assert data["task"] == "regression" and data["num_flagged"] == len(expected)
    assert 'id="regression-scatter"' in page and 'id="regression-residuals"' in page


def test_regression_job_with_a_model(spark, numbers_run, tmp_path):
    cfg = yaml.safe_load(open(numbers_run["conf"]))
    cfg["input"] = {"path": cfg["input"]["path"], "label_col": "price", "features": ["f0", "f1", "f2"]}
    cfg["model"] = {"estimator": "linear_regression", "n_folds": 3}
    cfg["detection"].update(n_boot=0)
    cfg["output"] = {k: str(tmp_path / k) for k in ("scored", "issues", "runs")}
    conf = tmp_path / "model.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    assert cli_main(["detect", "--config", str(conf), "--set", "run.id=m1"]) == 0
    issues = spark.read.format("delta").load(cfg["output"]["issues"]).toPandas()
    assert len(issues) == 30 and set(issues["id"]) <= set(numbers_run["bad"])
    scored = spark.read.format("delta").load(cfg["output"]["scored"])
    assert {"predicted_label", "residual", "uncertainty", "label_quality", "sample_weight"} <= set(scored.columns)
    assert cli_main(["detect", "--config", str(conf), "--set", "model.estimator=random_forest"]) == 2


def test_regression_inject_job(spark, numbers_run, tmp_path):
    noisy = str(tmp_path / "noisy")
    args = ["inject", "--config", numbers_run["conf"], "--set", "run.id=i1", "--set", f"output.noisy={noisy}",
            "--set", "inject.mode={shift: 0.05, unit: 0.02}", "--set", f"output.runs={tmp_path / 'runs'}"]
    assert cli_main(args) == 0
    counts = {r["noise_mode"]: r["count"] for r in spark.read.format("delta").load(noisy)
              .groupBy("noise_mode").count().collect()}
    assert counts == {None: 600 - 30 - 12, "shift": 30, "unit": 12}
    assert cli_main([*args[:-4], "--set", "inject.mode=class_conditional"]) == 2
