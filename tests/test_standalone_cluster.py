"""The detect job on a real standalone cluster (master + 2 workers on 127.0.0.1, spark-submit), with
one worker killed while the fold models are fitted: it finishes with exactly the answer of an
undisturbed run on local Spark (flags, ranks, weights, folds, every matrix)."""

from __future__ import annotations

import os
import threading

import pytest
import yaml
from ml_data import classification
from standalone import ROOT, standalone_cluster

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
    return path


def _conf(folder, input_path: str, run_id: str) -> str:
    # a decision tree: its class probabilities are ratios of integer counts, so they do not depend on
    # the order in which partial aggregates from different executors are merged
    cfg = {"input": {"path": input_path, "features": FEATURES},
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


def test_cluster_matches_local_and_survives_a_killed_worker(spark, cluster, features_input, tmp_path):
    script = os.path.join(ROOT, "jobs", "detect.py")
    # a worker (and its executor) killed while the fold models are being fitted
    hit = tmp_path / "hit"
    hit.mkdir()
    killed = threading.Event()

    def on_line(line: str) -> None:
        if "fold 1/2 fitted" in line and not killed.is_set():
            cluster.kill_worker(1)
            killed.set()

    code, out = cluster.submit(script, "--config", _conf(hit, features_input, "hit"), on_line=on_line)
    assert killed.is_set(), "the worker was killed during cross-validation"
    assert code == 0, out[-3000:]
    assert "run hit: succeeded" in out
    master_log = open(os.path.join(cluster.folder, "master.log")).read()
    assert "Removing worker" in master_log or "lost" in master_log.lower(), master_log[-2000:]
    # undisturbed, on local Spark (this test session), the same config
    local = tmp_path / "local"
    local.mkdir()
    assert cli_main(["detect", "--config", _conf(local, features_input, "local")]) == 0

    hit_rows, hit_run = _outputs(spark, hit, "hit")
    local_rows, local_run = _outputs(spark, local, "local")
    assert len(local_rows) == 2000 and local_run["num_flagged"] > 0
    assert hit_rows == local_rows and hit_run == local_run
