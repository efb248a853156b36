"""The detect and report jobs on a Spark Connect session with Delta: cleanlab's flags, three tables."""

from __future__ import annotations

import json
import re

import cleanlab.filter as cf
import numpy as np

from sparknoise.jobs.config import load_config
from sparknoise.jobs.detect import run_detect
from sparknoise.jobs.report import run_report
from sparknoise.noise.synthetic import noisy_probabilities


def test_detect_and_report_jobs_on_connect(spark, tmp_path):
    d = noisy_probabilities(2000, 3, noise_rate=0.2, seed=3)
    frame = d.to_pandas()
    frame.loc[5, "label"] = None  # one row without a label: skipped and counted
    spark.createDataFrame(frame).write.format("delta").save(str(tmp_path / "in"))
    outputs = [f"output.{n}={tmp_path / n}" for n in ("scored", "issues", "runs")]
    cfg = load_config(None, [f"input.path={tmp_path / 'in'}", "input.probs_col=pred_probs",
                             "input.on_invalid=skip", "run.id=c", *outputs])
    record = run_detect(spark, cfg)
    keep = np.arange(2000) != 5
    labels, probs = d.labels[keep], d.pred_probs[keep]
    expected = np.flatnonzero(keep)[cf.find_label_issues(labels, probs)]
    issues = spark.read.format("delta").load(str(tmp_path / "issues"))
    assert sorted(r["id"] for r in issues.select("id").collect()) == expected.tolist()
    run = spark.read.format("delta").load(str(tmp_path / "runs")).first()
    assert run["status"] == "succeeded" and run["n_skipped"] == 1 and record["num_flagged"] == len(expected)
    path = run_report(spark, load_config(None, outputs, job="report"), "c", str(tmp_path / "report.html"))
    text = open(path, encoding="utf-8").read()
    data = json.loads(re.search(r'id="sparknoise-report-data">(.*?)</script>', text, re.S).group(1))
    assert data["num_flagged"] == len(expected) and data["n_rows"] == 1999
