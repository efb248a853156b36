"""The detect job end to end: YAML config, three Delta tables, idempotent runs, rounds, failures (spark-submit
with the `make zip` package runs in test_standalone_cluster)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml
from ml_data import classification
from pyspark.sql import functions as F

from sparknoise.cli import main as cli_main

FEATURES = [f"f{i}" for i in range(8)]


def _conf(tmp_path, **sections) -> str:
    out = tmp_path / "out"
    cfg = {"output": {"scored": str(out / "scored"), "issues": str(out / "issues"), "runs": str(out / "runs")}}
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path = tmp_path / "detect.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _tables(spark, conf_path):
    cfg = yaml.safe_load(open(conf_path))
    return [spark.read.format("delta").load(cfg["output"][n]) for n in ("scored", "issues", "runs")]


@pytest.fixture(scope="module")
def probs_table(spark, tmp_path_factory):
    from sparknoise.noise.synthetic import noisy_probabilities

    d = noisy_probabilities(3000, 4, noise_rate=0.2, seed=32)
    path = str(tmp_path_factory.mktemp("probs") / "preds")
    spark.createDataFrame(d.to_pandas()).write.format("delta").save(path)
    return path, d


def test_bring_your_own_probabilities_and_idempotent_reruns(spark, probs_table, tmp_path):
    import cleanlab.filter as cf

    path, d = probs_table
    conf = _conf(tmp_path, input={"path": path, "probs_col": "pred_probs"})
    assert cli_main(["detect", "--config", conf, "--set", "run.id=a"]) == 0
    scored, issues, runs = _tables(spark, conf)
    flagged = sorted(r["id"] for r in issues.select("id").collect())
    assert flagged == list(np.flatnonzero(cf.find_label_issues(d.labels, d.pred_probs)))
    before = sorted(tuple(r) for r in scored.drop("pred_probs").collect())
    # the same run id again: contents identical, no duplicates
    assert cli_main(["detect", "--config", conf, "--run.id=a"]) == 0
    scored, issues, runs = _tables(spark, conf)
    assert sorted(tuple(r) for r in scored.drop("pred_probs").collect()) == before
    assert issues.count() == len(flagged) and runs.count() == 1
    # a second run id appends
    assert cli_main(["detect", "--config", conf, "--set", "run.id=b"]) == 0
    scored, issues, runs = _tables(spark, conf)
    assert scored.count() == 2 * 3000 and issues.count() == 2 * len(flagged)
    assert sorted(r["run_id"] for r in runs.collect()) == ["a", "b"]


@pytest.mark.parametrize(
    "args, key",
    [
        (["--set", "input.colour=red"], "input.colour"),
        (["--set", "model.estimator=magic_forest", "--set", "input.probs_col=null", "--set", "input.features=[f0]"],
         "model.estimator"),
        (["--set", "input.label_col=nope"], "input.label_col"),
        (["--set", "output.issues=INPUT"], "output.issues"),
    ],
    ids=["unknown-key", "unknown-estimator", "missing-column", "output-is-input"],
)
def test_bad_config_fails_fast_and_writes_nothing(spark, probs_table, tmp_path, capsys, args, key):
    path, _ = probs_table
    conf = _conf(tmp_path, input={"path": path, "probs_col": "pred_probs"})
    args = [a.replace("INPUT", path) for a in args]
    assert cli_main(["detect", "--config", conf, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0], err
    cfg = yaml.safe_load(open(conf))
    for name in ("scored", "issues", "runs"):
        assert not os.path.exists(cfg["output"][name])


def test_iterative_cleaning_records_rounds(spark, tmp_path):
    frame, _ = classification(900, 3, seed=33, noise_rate=0.25)
    path = str(tmp_path / "small")
    spark.createDataFrame(frame).coalesce(1).write.format("delta").save(path)
    conf = _conf(tmp_path, input={"path": path, "features": FEATURES},
                 model={"params": {"maxIter": 20}, "n_folds": 2}, detection={"iterations": 2, "min_new_issues": 1})
    assert cli_main(["detect", "--config", conf, "--set", "run.id=it"]) == 0
    scored, issues, runs = _tables(spark, conf)
    per_round = {r["round"]: r["count"] for r in issues.groupBy("round").count().collect()}
    rounds = runs.first()["rounds"]
    assert rounds == 2  # the second round found new issues
    assert set(per_round) == set(range(1, rounds + 1))
    counts = [per_round[r] for r in sorted(per_round)]
    assert counts == sorted(counts, reverse=True)  # non-increasing
    assert scored.count() == 900 and scored.filter("is_label_issue").count() == sum(counts)
    assert scored.filter(F.col("is_label_issue") & (F.col("sample_weight") != 0)).count() == 0
    # every round's rows have an issue_rank, ranked after the earlier rounds' rows: 1..flagged, in round order
    ranked = sorted((r["issue_rank"], r["round"]) for r in issues.select("issue_rank", "round").collect())
    assert [rank for rank, _ in ranked] == list(range(1, sum(counts) + 1))
    assert [rnd for _, rnd in ranked] == sorted(rnd for _, rnd in ranked)
    assert not (tmp_path / "out" / "_sparknoise_scratch").exists()  # the rounds' scratch tables are removed


def test_demo_command_runs(spark, tmp_path, capsys):
    # in-process (the test session is the active one): the same CLI code as `sparknoise demo`
    assert cli_main(["demo", "--rows", "4000", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "sparknoise demo: 4,000 rows, 5 classes" in out
    assert "precision" in out and "recall" in out
    assert "label-health report:" in out and (tmp_path / "demo" / "report.html").stat().st_size > 10_000
    runs = spark.read.format("delta").load(str(tmp_path / "demo" / "runs")).collect()
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"


def test_a_failure_mid_run_is_recorded_and_writes_no_rows(spark, tmp_path, monkeypatch):
    import sparknoise.jobs.detect as dj

    rows = [(i, i % 2, [0.9, 0.1] if i % 2 == 0 else [0.2, 0.8]) for i in range(40)]
    path = str(tmp_path / "in")
    spark.createDataFrame(rows, "id long, label long, pred_probs array<double>").write.format("delta").save(path)
    conf = _conf(tmp_path, input={"path": path, "probs_col": "pred_probs"})

    def broken(*args, **kwargs):
        raise RuntimeError("executor lost (simulated)")

    monkeypatch.setattr(dj, "_issues_frame", broken)  # after detection, before any output write
    with pytest.raises(RuntimeError):
        cli_main(["detect", "--config", conf, "--set", "run.id=f"])
    cfg = yaml.safe_load(open(conf))
    assert not os.path.exists(cfg["output"]["scored"]) and not os.path.exists(cfg["output"]["issues"])
    run = spark.read.format("delta").load(cfg["output"]["runs"]).collect()
    assert len(run) == 1 and run[0]["status"] == "failed" and "executor lost" in run[0]["error"]
