"""Faults around the detect job's writes: a killed driver, concurrent runs, input appended mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml
from pyspark.sql import functions as F

from sparknoise.cli import main as cli_main
from sparknoise.jobs.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 3000


@pytest.fixture(scope="module")
def probs_input(spark, tmp_path_factory):
    from sparknoise.noise.synthetic import noisy_probabilities

    d = noisy_probabilities(N, 4, noise_rate=0.2, seed=91)
    path = str(tmp_path_factory.mktemp("faults") / "preds")
    spark.createDataFrame(d.to_pandas()).repartition(2).write.format("delta").save(path)
    return path


def _cfg(tmp_path, input_path: str) -> dict:
    return {"input": {"path": input_path, "probs_col": "pred_probs"},
            "output": {n: str(tmp_path / n) for n in ("scored", "issues", "runs")}}


def _run_rows(spark, location: str, run_id: str) -> int:
    if not os.path.exists(os.path.join(location, "_delta_log")):
        return 0
    return spark.read.format("delta").load(location).filter(F.col("run_id") == run_id).count()


def test_killed_driver_leaves_whole_runs_and_the_rerun_replaces_them(spark, probs_input, tmp_path):
    cfg = _cfg(tmp_path, probs_input)
    conf = tmp_path / "detect.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1",
               PYSPARK_SUBMIT_ARGS="--master local[2] --conf spark.sql.shuffle.partitions=4 "
                                   "--conf spark.databricks.delta.snapshotPartitions=2 pyspark-shell")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sparknoise.cli", "detect", "--config", str(conf), "--set", "run.id=k"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    first_commit = os.path.join(cfg["output"]["scored"], "_delta_log", "00000000000000000000.json")
    deadline = time.time() + 600
    try:
        while not os.path.exists(first_commit) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the job ended before the kill; it should still be writing"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its JVM, in the middle of the writes
        proc.wait(timeout=60)
    scored_rows = _run_rows(spark, cfg["output"]["scored"], "k")
    issues_rows = _run_rows(spark, cfg["output"]["issues"], "k")
    runs = _run_rows(spark, cfg["output"]["runs"], "k")
    assert scored_rows in (0, N)  # all of the run's rows or none, never a part
    assert runs == 0  # the runs row is written last: nothing says the run succeeded
    # the same run id again: succeeds, and every table holds the run exactly once
    assert cli_main(["detect", "--config", str(conf), "--set", "run.id=k"]) == 0
    run = spark.read.format("delta").load(cfg["output"]["runs"]).collect()
    assert len(run) == 1 and run[0]["status"] == "succeeded"
    assert _run_rows(spark, cfg["output"]["scored"], "k") == N
    assert _run_rows(spark, cfg["output"]["issues"], "k") == run[0]["num_flagged"]
    assert issues_rows in (0, run[0]["num_flagged"])
    ids = spark.read.format("delta").load(cfg["output"]["scored"]).groupBy("id").count().filter("count > 1")
    assert ids.count() == 0


def test_concurrent_runs_into_the_same_tables_both_land(spark, probs_input, tmp_path):
    from sparknoise.jobs.detect import run_detect

    cfg = _cfg(tmp_path, probs_input)
    records, errors = {}, []

    def run(run_id: str) -> None:
        try:
            c = load_config(None, [f"input.path={probs_input}", "input.probs_col=pred_probs",
                                   *[f"output.{n}={cfg['output'][n]}" for n in ("scored", "issues", "runs")],
                                   f"run.id={run_id}"])
            records[run_id] = run_detect(spark, c)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(r,)) for r in ("c1", "c2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert not errors, errors
    runs = {r["run_id"]: r for r in spark.read.format("delta").load(cfg["output"]["runs"]).collect()}
    assert set(runs) == {"c1", "c2"} and all(r["status"] == "succeeded" for r in runs.values())
    for run_id in ("c1", "c2"):
        assert _run_rows(spark, cfg["output"]["scored"], run_id) == N
        assert _run_rows(spark, cfg["output"]["issues"], run_id) == runs[run_id]["num_flagged"] > 0
    assert runs["c1"]["num_flagged"] == runs["c2"]["num_flagged"]  # same input, same answer


def test_rows_appended_during_a_run_are_not_read(spark, probs_input, tmp_path, monkeypatch):
    import sparknoise.jobs.detect as dj

    path = str(tmp_path / "growing")
    spark.read.format("delta").load(probs_input).write.format("delta").save(path)
    original = dj.find_label_issues

    def append_then_detect(df, **kwargs):
        extra = spark.read.format("delta").load(path).limit(100).withColumn("id", F.col("id") + 10 * N)
        extra.write.format("delta").mode("append").save(path)  # a writer appends mid-run
        return original(df, **kwargs)

    monkeypatch.setattr(dj, "find_label_issues", append_then_detect)
    cfg = _cfg(tmp_path, path)
    conf = tmp_path / "detect.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    assert cli_main(["detect", "--config", str(conf), "--set", "run.id=p"]) == 0
    run = spark.read.format("delta").load(cfg["output"]["runs"]).first()
    assert run["input_version"] == 0 and run["n_rows"] == N
    assert spark.read.format("delta").load(path).count() == N + 100  # the append did happen
    scored = spark.read.format("delta").load(cfg["output"]["scored"])
    assert scored.count() == N and scored.filter(F.col("id") >= 10 * N).count() == 0
