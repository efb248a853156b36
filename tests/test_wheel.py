"""The built wheel, installed into a fresh virtualenv, runs the detect job: what a Databricks wheel task
or ``pip install sparknoise-<version>-py3-none-any.whl`` gets, and what its console shows."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import yaml
from venvs import python_without_sparknoise

from sparknoise._version import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_wheel_installs_and_runs_detect_quietly(spark, tmp_path):
    dist = tmp_path / "dist"
    # what `make wheel` runs
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), ROOT],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    [wheel] = glob.glob(str(dist / "*.whl"))
    assert os.path.basename(wheel) == f"sparknoise-{__version__}-py3-none-any.whl"
    job = json.load(open(os.path.join(ROOT, "conf", "databricks_job.json")))
    assert job["tasks"][0]["libraries"][0]["whl"].endswith("/" + os.path.basename(wheel))
    # a fresh virtualenv; its dependencies come from this environment's site-packages (a .pth line), so the
    # test needs no network: only sparknoise itself is installed, from the wheel
    venv = tmp_path / "venv"
    python, site = python_without_sparknoise(venv)
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
                    wheel], check=True)
    where = subprocess.run([python, "-c", "import sparknoise, os; print(os.path.dirname(sparknoise.__file__))"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert where == os.path.join(site, "sparknoise")
    assert os.path.isfile(os.path.join(where, "jobs", "log4j2.properties"))  # package data is in the wheel

    rows = [(i, i % 3, [0.8 if k == (i + (i % 7 == 0)) % 3 else 0.1 for k in range(3)]) for i in range(300)]
    data = str(tmp_path / "preds")
    spark.createDataFrame(rows, "id long, label long, pred_probs array<double>").write.format("delta").save(data)
    conf = tmp_path / "detect.yaml"
    conf.write_text(yaml.safe_dump({"input": {"path": data, "probs_col": "pred_probs"},
                                    "output": {n: str(tmp_path / "out" / n) for n in ("scored", "issues", "runs")}}))
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=python)
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    proc = subprocess.run([str(venv / "bin" / "sparknoise"), "detect", "--config", str(conf), "--set", "run.id=w",
                           "--log-level", "WARNING"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0] == "run w: succeeded"
    run = spark.read.format("delta").load(str(tmp_path / "out" / "runs")).first()
    assert run["status"] == "succeeded" and run["n_rows"] == 300 and f"flagged {run['num_flagged']} rows" in proc.stdout
    # a successful run prints its result, not Spark's machinery: no Ivy resolution, log banners, progress
    # bars or native-BLAS notices (the JVM's own incubator-module notice is the one line no setting removes)
    noise = [line for line in proc.stderr.splitlines() if line.strip()
             and not line.startswith("WARNING: Using incubator modules") and "could not bind on port" not in line]
    assert noise == [], noise
