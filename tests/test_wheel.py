"""The built wheel, installed into a fresh virtualenv, runs the detect job: what a Databricks wheel task
or ``pip install sparknoise-<version>-py3-none-any.whl`` gets, and what its console shows."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest
import yaml
from venvs import python_without_sparknoise

from sparknoise._version import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fresh_env() -> dict[str, str]:
    """This process's environment without PYTHONPATH: a fresh environment sees only what is installed in it."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    # what `make wheel` runs
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), ROOT],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    [built] = glob.glob(str(dist / "*.whl"))
    return built


def test_wheel_ships_the_license_and_asks_for_ranges(wheel):
    info = f"sparknoise-{__version__}.dist-info"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"{info}/METADATA").decode()
        shipped = z.read(f"{info}/licenses/LICENSE").decode()
    assert f"{info}/licenses/LICENSE" in names
    assert shipped == open(os.path.join(ROOT, "LICENSE")).read() and "Apache License" in shipped
    assert "Version 2.0, January 2004" in shipped and "END OF TERMS AND CONDITIONS" in shipped
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    spark = [r.split(";")[0] for r in requires if r.startswith(("pyspark", "delta-spark", "delta_spark"))]
    assert spark and not [r for r in spark if "==" in r], spark  # no pins: the runtime's own Spark is kept
    # the pins live in constraints.txt, which `make venv` installs with
    pins = open(os.path.join(ROOT, "constraints.txt")).read()
    assert "pyspark==" in pins and "delta-spark==" in pins
    assert "-c constraints.txt" in open(os.path.join(ROOT, "Makefile")).read()


def test_wheel_keeps_the_pyspark_an_environment_already_has(wheel, tmp_path):
    # a Databricks runtime (or any cluster image) with its own pyspark, here 4.1.1: `pip install <wheel>` must
    # take it as it is. pip decides from the installed distributions' metadata, so the environment holds
    # pyspark 4.1.1's metadata and this environment's other packages (through a .pth line to a folder of links
    # to them, without sparknoise or pyspark 4.2.0); --no-index: pip can only keep what is there, or fail if
    # the wheel asked for another pyspark. No download, no copy of Spark.
    import importlib.metadata as md
    import sysconfig

    ours = sysconfig.get_paths()["purelib"]
    links = tmp_path / "packages"
    links.mkdir()
    for name in os.listdir(ours):
        low = name.lower()
        if not (low.startswith(("sparknoise", "__editable__", "pyspark-")) or low.endswith(".pth")):
            os.symlink(os.path.join(ours, name), links / name)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "runtime")], check=True)
    python = str(tmp_path / "runtime" / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "packages.pth"), "w") as f:
        f.write(f"{links}\n")
    real = md.distribution("pyspark")
    fake = os.path.join(site, "pyspark-4.1.1.dist-info")
    os.makedirs(fake)
    with open(os.path.join(fake, "METADATA"), "w") as f:
        f.write(re.sub(r"(?m)^Version: .*$", "Version: 4.1.1", real.read_text("METADATA")))
    for name in ("INSTALLER", "RECORD"):
        open(os.path.join(fake, name), "w").close()
    seen = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('pyspark'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert seen == "4.1.1" and real.version != "4.1.1"
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--dry-run", "--no-index",
                           "--quiet", "--report", str(report), wheel], capture_output=True, text=True,
                          cwd=tmp_path, env=_fresh_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    installs = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.load(open(report))["install"]}
    assert installs == {"sparknoise": __version__}, installs  # nothing else: pyspark 4.1.1 and delta-spark stay


def test_wheel_installs_and_runs_detect_quietly(spark, wheel, tmp_path):
    assert os.path.basename(wheel) == f"sparknoise-{__version__}-py3-none-any.whl"
    job = json.load(open(os.path.join(ROOT, "conf", "databricks_job.json")))
    assert job["tasks"][0]["libraries"][0]["whl"].endswith("/" + os.path.basename(wheel))
    # a fresh virtualenv; its dependencies come from this environment's site-packages (a .pth line), so the
    # test needs no network: only sparknoise itself is installed, from the wheel
    venv = tmp_path / "venv"
    python, site = python_without_sparknoise(venv)
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
                    wheel], check=True, cwd=tmp_path, env=_fresh_env())
    where = subprocess.run([python, "-c", "import sparknoise, os; print(os.path.dirname(sparknoise.__file__))"],
                           capture_output=True, text=True, check=True, cwd=tmp_path, env=_fresh_env()).stdout.strip()
    assert where == os.path.join(site, "sparknoise")
    assert os.path.isfile(os.path.join(where, "jobs", "log4j2.properties"))  # package data is in the wheel

    rows = [(i, i % 3, [0.8 if k == (i + (i % 7 == 0)) % 3 else 0.1 for k in range(3)]) for i in range(300)]
    data = str(tmp_path / "preds")
    spark.createDataFrame(rows, "id long, label long, pred_probs array<double>").write.format("delta").save(data)
    conf = tmp_path / "detect.yaml"
    conf.write_text(yaml.safe_dump({"input": {"path": data, "probs_col": "pred_probs"},
                                    "output": {n: str(tmp_path / "out" / n) for n in ("scored", "issues", "runs")}}))
    # no SPARK_LOCAL_IP: the job binds the local driver to loopback itself, so Spark's "hostname resolves to a
    # loopback address" warning must not appear either
    env = dict(_fresh_env(), PYSPARK_PYTHON=python)
    env.pop("SPARK_LOCAL_IP", None)
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
