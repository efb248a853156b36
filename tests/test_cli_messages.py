"""What the CLI prints: for a mistake, one line naming the key and the fix (exit 2); nothing from Spark's
own machinery (Ivy resolution, log banners, progress bars) around it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from sparknoise.cli import main as cli_main
from sparknoise.core.fit_quality import fit_warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_readme_report_command_without_runs_prints_one_line(spark, tmp_path):
    # the README's `sparknoise report --run-id demo --config conf/detect.yaml`, in a folder where nothing ran
    # yet, in a new process that launches its own JVM (as a user's shell does). The first session on a machine
    # resolves the Delta jars through Ivy (and says so); the suite's session (the fixture) has done that.
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    proc = subprocess.run([sys.executable, "-m", "sparknoise.cli", "report", "--run-id", "demo", "--config",
                           os.path.join(ROOT, "conf", "detect.yaml")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    # the JVM's own start-up notice about the vector incubator module (printed by Java, not by Spark's
    # logging; Spark adds the module on Java 17+) is the one line no setting removes
    lines = [line for line in (proc.stdout + proc.stderr).splitlines()
             if line.strip() and not line.startswith("WARNING: Using incubator modules")
             and "could not bind on port" not in line]  # another Spark app on this machine holds the UI port
    assert lines == ["sparknoise: error: 'output.runs' 'sparknoise-output/runs' does not exist; point output.runs "
                     "at the table the detect run wrote (run detect first, with the same --config)"], lines


@pytest.mark.parametrize("command", [
    ["report", "--run-id", "r"],
    ["review", "export", "--run-id", "r", "--output", "q.csv"],
    ["review", "import", "--run-id", "r", "--input", "VERDICTS"],
    ["apply", "--run-id", "r"],
])
def test_loop_commands_name_the_missing_runs_table(spark, tmp_path, capsys, command):
    verdicts = tmp_path / "v.csv"
    verdicts.write_text("id,decision\n1,keep\n")
    outputs = [f"--set=output.{n}={tmp_path / n}" for n in ("scored", "issues", "runs", "reviews", "cleaned", "audit")]
    argv = [a.replace("VERDICTS", str(verdicts)).replace("q.csv", str(tmp_path / "q.csv")) for a in command]
    capsys.readouterr()
    assert cli_main([*argv, *[o.replace("--set=", "--") for o in outputs]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"'output.runs' '{tmp_path / 'runs'}' does not exist" in err[0], err


def test_fit_warnings_point_at_the_model():
    strong = {"n": 1000, "accuracy": 0.9, "log_loss": 0.3, "baseline_accuracy": 0.2, "baseline_log_loss": 1.6}
    weak = {**strong, "accuracy": 0.35}  # closes 0.15 / 0.8 = 19% of the gap to perfect
    assert fit_warnings(strong, 0.1) == []
    [w] = fit_warnings(weak, 0.1)
    assert "model is weak: accuracy 0.350 against 0.200" in w and "input.features" in w
    [w] = fit_warnings(strong, 0.39)
    assert "39.0%" in w and "weak model is the likely cause" in w
    [w] = fit_warnings(None, 0.39)  # probabilities given, no model fitted
    assert "the model's probabilities" in w


def test_scratch_tables_of_a_run_are_dropped(spark):
    # a run's scratch under a table-name prefix (detection.scratch: a catalog name) is dropped after the run
    from sparknoise.jobs.tables import remove_scratch

    for name in ("sn_scratch_r1_probabilities_round_1", "sn_scratch_r1_scored", "sn_scratch_r2_scored"):
        spark.range(3).write.format("delta").mode("overwrite").saveAsTable(name)
    try:
        remove_scratch(spark, "sn_scratch_r1")
        left = {r["tableName"] for r in spark.sql("SHOW TABLES").collect()}
        assert "sn_scratch_r2_scored" in left and not {t for t in left if t.startswith("sn_scratch_r1_")}
    finally:
        spark.sql("DROP TABLE IF EXISTS sn_scratch_r2_scored")


ANNOTATOR_ONLY = ("input.annotations", "input.annotator_col", "input.probs", "input.items")


@pytest.mark.parametrize("job", ["detect", "inject", "evaluate", "audit"])
def test_each_job_lists_and_logs_only_its_own_keys(job, capsys):
    from sparknoise.jobs.config import DEFAULTS, job_keys, job_view

    with pytest.raises(SystemExit):
        cli_main([job, "--help"])
    shown = set(re.findall(r"\b[a-z]+\.[a-z_]+\b", capsys.readouterr().out))  # the dotted keys listed
    assert {"input.path", "input.label_col", "input.probs_col"} <= shown
    assert not shown & set(ANNOTATOR_ONLY), shown
    assert not [k for k in ANNOTATOR_ONLY if k in job_keys(job)]
    # what the runs table records and MLflow logs as params (tracking.params_of flattens this view)
    assert not set(job_view(DEFAULTS, job)["input"]) & {k.split(".")[1] for k in ANNOTATOR_ONLY}
    assert {k.split(".")[1] for k in ANNOTATOR_ONLY} <= set(job_view(DEFAULTS, "annotators")["input"])


def test_a_three_part_name_without_its_catalog_says_so_in_one_line(spark):
    from sparknoise.errors import InputError
    from sparknoise.jobs.tables import check_output_location, read_input, run_rows

    for call, key in ((lambda: read_input(spark, path=None, table="main.ml.training_rows"), "input.table"),
                      (lambda: check_output_location(spark, "output.scored", "main.ml.training_rows"),
                       "output.scored"),
                      (lambda: run_rows(spark, "main.ml.training_rows", "output.runs", "r"), "output.runs")):
        with pytest.raises(InputError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text and "REQUIRES_SINGLE_PART_NAMESPACE" not in text, text
        assert text.startswith(f"'{key}' 'main.ml.training_rows': catalog 'main' is not configured"), text
        assert "Unity Catalog" in text and "path" in text


def test_the_job_session_binds_a_local_driver_to_loopback(monkeypatch):
    # a job that launches its own local JVM sets SPARK_LOCAL_IP, so Spark does not warn on every run that the
    # hostname resolves to a loopback address; under spark-submit or Connect the environment is left alone
    from pyspark.sql import SparkSession

    from sparknoise.jobs import session

    launched = []
    monkeypatch.setattr(SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.setattr(session, "_launched", lambda builder: launched.append(builder) or "session")
    for var in ("SPARK_LOCAL_IP", "PYSPARK_GATEWAY_PORT", "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED",
                "PYSPARK_SUBMIT_ARGS", "DATABRICKS_RUNTIME_VERSION"):
        monkeypatch.delenv(var, raising=False)
    assert session.job_session() == "session" and os.environ.get("SPARK_LOCAL_IP") == "127.0.0.1"
    monkeypatch.delenv("SPARK_LOCAL_IP")
    monkeypatch.setenv("SPARK_REMOTE", "sc://localhost")
    assert session.job_session() == "session" and "SPARK_LOCAL_IP" not in os.environ
    monkeypatch.delenv("SPARK_REMOTE")
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--master yarn pyspark-shell")
    assert session.job_session() == "session" and "SPARK_LOCAL_IP" not in os.environ
