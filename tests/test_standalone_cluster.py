"""The detect job on a real standalone cluster (master + 2 workers on 127.0.0.1), submitted as the README
says (spark-submit, the `make zip` package in --py-files, Ivy pointed at sparknoise's cache) with driver
and worker interpreters that do not have sparknoise installed, and one worker killed while the fold
models are fitted: it writes the three tables and finishes with exactly the answer of an undisturbed
run on local Spark (flags, ranks, weights, folds, every matrix), which is also the Python API's answer
on the job's own out-of-fold probabilities."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import yaml
from ml_data import classification
from standalone import ROOT, standalone_cluster
from venvs import python_without_sparknoise

import sparknoise as sn
from sparknoise.cli import main as cli_main

FEATURES = [f"f{i}" for i in range(8)]
COLUMNS = ["id", "label_quality", "predicted_label", "is_label_issue", "issue_rank", "sample_weight", "fold"]
MATRICES = ["n_rows", "num_flagged", "num_label_issues", "thresholds", "confident_joint", "noise_matrix",
            "inverse_noise_matrix", "prior"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with standalone_cluster(str(tmp_path_factory.mktemp("standalone"))) as c:
        yield c


@pytest.fixture(scope="module")
def features_input(spark, tmp_path_factory):
    frame, _ = classification(2000, 3, seed=57, noise_rate=0.2)
    path = str(tmp_path_factory.mktemp("cluster_input") / "train")
    spark.createDataFrame(frame).repartition(4).write.format("delta").save(path)
    return path, frame


def _conf(folder, input_path: str, run_id: str) -> str:
    # a decision tree: its class probabilities are ratios of integer counts, so they do not depend on
    # the order in which partial aggregates from different executors are merged
    cfg = {"input": {"path": input_path, "features": FEATURES, "passthrough": ["true_label"]},
           "model": {"estimator": "decision_tree", "params": {"maxDepth": 5}, "n_folds": 2},
           "output": {n: str(folder / n) for n in ("scored", "issues", "runs")}, "run": {"id": run_id}}
    path = folder / "detect.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _outputs(spark, folder, run_id: str):
    scored = spark.read.format("delta").load(str(folder / "scored")).filter(f"run_id = '{run_id}'")
    rows = sorted(tuple(r) for r in scored.select(*COLUMNS).collect())
    run = spark.read.format("delta").load(str(folder / "runs")).filter(f"run_id = '{run_id}'").first()
    assert run["status"] == "succeeded"
    return rows, {k: run[k] for k in MATRICES}


def _python_without_sparknoise(folder) -> str:
    """An interpreter with sparknoise's dependencies but not sparknoise (checked), like a cluster's Python."""
    python, _ = python_without_sparknoise(folder / "cluster-python")
    assert subprocess.run([python, "-c", "import pyspark, numpy, pandas, yaml"], cwd=folder).returncode == 0
    assert subprocess.run([python, "-c", "import sparknoise"], cwd=folder, capture_output=True).returncode != 0
    return python


def test_cluster_matches_local_and_survives_a_killed_worker(spark, cluster, features_input, tmp_path):
    input_path, frame = features_input
    script = os.path.join(ROOT, "jobs", "detect.py")
    # what `make zip` builds, run by interpreters without sparknoise
    package = subprocess.run([sys.executable, os.path.join(ROOT, "dev", "package_zip.py"), str(tmp_path / "dist")],
                             capture_output=True, text=True, check=True).stdout.strip()
    python = _python_without_sparknoise(tmp_path)
    # a worker (and its executor) killed while the fold models are being fitted
    hit = tmp_path / "hit"
    hit.mkdir()
    killed = threading.Event()

    def on_line(line: str) -> None:
        if "fold 1/2 fitted" in line and not killed.is_set():
            cluster.kill_worker(1)
            killed.set()

    code, out = cluster.submit(script, "--config", _conf(hit, input_path, "hit"), on_line=on_line, python=python,
                               package=package)
    assert killed.is_set(), "the worker was killed during cross-validation"
    assert code == 0, out[-3000:]
    assert "run hit: succeeded" in out
    master_log = open(os.path.join(cluster.folder, "master.log")).read()
    assert "Removing worker" in master_log or "lost" in master_log.lower(), master_log[-2000:]
    # undisturbed, on local Spark (this test session), the same config
    local = tmp_path / "local"
    local.mkdir()
    assert cli_main(["detect", "--config", _conf(local, input_path, "local")]) == 0

    hit_rows, hit_run = _outputs(spark, hit, "hit")
    local_rows, local_run = _outputs(spark, local, "local")
    assert len(local_rows) == 2000 and local_run["num_flagged"] > 0
    assert hit_rows == local_rows and hit_run == local_run

    # the cluster run's tables: every input row scored once, the issues table = the flagged rows
    scored, issues, runs = (spark.read.format("delta").load(str(hit / n)) for n in ("scored", "issues", "runs"))
    assert {r["id"] for r in scored.select("id").collect()} == set(frame["id"])
    flagged = {r["id"] for r in scored.filter("is_label_issue").select("id").collect()}
    assert {r["id"] for r in issues.select("id").collect()} == flagged and flagged
    assert set(issues.columns) >= {"run_id", "id", "given_label", "suggested_label", "label_quality", "issue_rank",
                                   "reason", "round", "true_label"}
    [run] = runs.collect()
    assert run["num_flagged"] == len(flagged) and run["input_version"] == 0 and len(run["config_sha256"]) == 64
    # the same flags as the Python API on the job's own out-of-fold probabilities (scored.pred_probs)
    probs_rows = scored.select("id", "label", "pred_probs")
    assert {r["id"] for r in sn.find_label_issues(probs_rows).issues().select("id").collect()} == flagged
    # the out-of-fold model's fit, recorded beside the majority-class baseline
    pdf = probs_rows.toPandas()
    probs, labels = np.stack(pdf["pred_probs"].to_numpy()), pdf["label"].to_numpy()
    metrics = json.loads(run["metrics"])
    fit = metrics["model"]
    assert fit["n"] == len(frame) and fit["accuracy"] == np.mean(probs.argmax(axis=1) == labels)
    p_given = np.maximum(probs[np.arange(len(labels)), labels], 1e-15)  # clipped like scikit-learn's log_loss
    assert fit["log_loss"] == pytest.approx(-np.mean(np.log(p_given)), abs=1e-12)
    assert fit["baseline_accuracy"] == np.bincount(labels).max() / len(labels)
    assert metrics["warnings"] == []
    # every commit carries the run's metadata
    history = spark.sql(f"DESCRIBE HISTORY delta.`{hit / 'issues'}`").collect()
    assert '"run_id": "hit"' in history[0]["userMetadata"]
