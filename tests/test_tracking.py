"""MLflow tracking of job runs (tracking.mlflow: true), read back from a real local MLflow store."""

from __future__ import annotations

import json
import logging
import os

import pytest
import yaml

from sparknoise.cli import main as cli_main

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def probs_table(spark, tmp_path_factory):
    from sparknoise.noise.synthetic import noisy_probabilities

    path = str(tmp_path_factory.mktemp("tracking") / "preds")
    spark.createDataFrame(noisy_probabilities(600, 3, noise_rate=0.2, seed=13).to_pandas()).write.format(
        "delta").save(path)
    return path


def _conf(tmp_path, probs_table, **tracking) -> str:
    conf = tmp_path / "detect.yaml"
    conf.write_text(yaml.safe_dump({
        "input": {"path": probs_table, "probs_col": "pred_probs"},
        "output": {n: str(tmp_path / n) for n in ("scored", "issues", "runs")},
        "tracking": {"mlflow": True, **tracking}}))
    return str(conf)


def test_default_store_is_sqlite_beside_the_outputs(tmp_path, monkeypatch):
    from sparknoise.jobs.tracking import default_uri

    monkeypatch.chdir(tmp_path)
    assert default_uri({"output": {"runs": "out/runs"}}) == f"sqlite:///{tmp_path / 'out' / 'mlruns.db'}"
    assert default_uri({"output": {"runs": "file:///data/x/runs"}}) == "sqlite:////data/x/mlruns.db"
    # a table name or remote storage: the working directory
    assert default_uri({"output": {"runs": "ml.runs"}}) == f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert default_uri({"output": {"runs": "s3://b/runs"}}) == f"sqlite:///{tmp_path / 'mlruns.db'}"


def test_detect_run_is_logged_to_mlflow(spark, probs_table, tmp_path, monkeypatch, caplog):
    # no tracking.uri, no MLFLOW_TRACKING_URI: the default store, a SQLite file beside the outputs that
    # MlflowClient (and `mlflow ui --backend-store-uri`) reads without MLFLOW_ALLOW_FILE_STORE
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO, logger="sparknoise")
    conf = _conf(tmp_path, probs_table, experiment="label-noise", run_name="nightly")
    assert cli_main(["detect", "--config", conf, "--set", "run.id=t1"]) == 0
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ and not (tmp_path / "mlruns").exists()
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    assert any(f"mlflow ui --backend-store-uri {uri}" in r.getMessage() for r in caplog.records)  # how to open it
    run_row = spark.read.format("delta").load(str(tmp_path / "runs")).first()
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("label-noise")
    [logged] = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "nightly"
    assert logged.data.tags["sparknoise.run_id"] == "t1" and logged.data.tags["sparknoise.job"] == "detect"
    assert logged.data.tags["sparknoise.status"] == "succeeded"
    params = logged.data.params
    assert params["input.probs_col"] == "pred_probs" and params["detection.filter_by"] == "prune_by_noise_rate"
    assert "evaluate.noise_rates" not in params  # only the sections detect reads
    assert not {"input.annotations", "input.annotator_col", "input.probs", "input.items"} & set(params)  # annotators
    metrics = logged.data.metrics
    assert metrics["num_flagged"] == run_row["num_flagged"] and metrics["n_rows"] == 600
    assert metrics["num_label_issues"] == run_row["num_label_issues"]
    assert 0 < metrics["estimated_noise_rate"] < 1 and 0 < metrics["label_health_score"] <= 1
    assert metrics["timing.total"] == json.loads(run_row["timings"])["total"]
    assert experiment.artifact_location == f"file://{tmp_path / 'mlartifacts'}"  # beside the store, not in cwd
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert artifacts == {"label-health-report.html", "confident_joint.csv", "noise_matrix.csv"}
    cj = client.download_artifacts(logged.info.run_id, "confident_joint.csv", str(tmp_path))
    lines = open(cj).read().splitlines()
    assert lines[0] == "given\\true,0,1,2"
    assert [int(v) for v in lines[1].split(",")[1:]] == list(run_row["confident_joint"][0])


def test_a_tracking_failure_warns_and_the_run_succeeds(spark, probs_table, tmp_path, caplog):
    conf = _conf(tmp_path, probs_table, uri="nosuchscheme://nowhere")
    assert cli_main(["detect", "--config", conf, "--set", "run.id=t2"]) == 0
    assert spark.read.format("delta").load(str(tmp_path / "runs")).first()["status"] == "succeeded"
    assert any("could not log to MLflow" in r.getMessage() for r in caplog.records)
