"""The jobs and the cleaning loop per task type (``detection.task``): detect, review export/import, apply.

One multi-label run (string tags, own per-class probabilities) goes through the CLI as a user runs
it; its flags are checked against cleanlab's multi-label filter, its loop against the verdicts given.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from multilabel_data import make_multilabel

from sparknoise.cli import main as cli_main

TAGS = ["art", "bio", "cs", "eco"]


@pytest.fixture(scope="module")
def tags_run(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("tags")
    labels, probs, _ = make_multilabel(400, 4, flip=0.1, seed=5)
    rows = [(i, [TAGS[c] for c in lab], [float(x) for x in p], "test" if i % 5 == 0 else "train")
            for i, (lab, p) in enumerate(zip(labels, probs))]
    (spark.createDataFrame(rows, "id long, tags array<string>, pred_probs array<double>, split string")
     .coalesce(2).write.format("delta").save(str(base / "in")))
    out = {n: str(base / n) for n in ("scored", "issues", "runs", "reviews", "cleaned", "audit")}
    conf = base / "tags.yaml"
    conf.write_text(yaml.safe_dump({
        "input": {"path": str(base / "in"), "label_col": "tags", "probs_col": "pred_probs", "classes": TAGS,
                  "passthrough": ["split"]},
        "detection": {"task": "multilabel"},
        "output": out,
    }))
    assert cli_main(["detect", "--config", str(conf), "--set", "run.id=t1"]) == 0
    return {"conf": str(conf), "out": out, "labels": labels, "probs": probs, "base": base}


def _cli(run, *args: str) -> int:
    return cli_main([*args, "--config", run["conf"]])


def test_multilabel_detect_review_and_apply(spark, tags_run):
    from cleanlab.multilabel_classification.filter import find_label_issues

    out, base = tags_run["out"], tags_run["base"]
    expected = np.flatnonzero(find_label_issues(tags_run["labels"], tags_run["probs"]))
    issues = spark.read.format("delta").load(out["issues"]).toPandas().sort_values("issue_rank")
    assert sorted(issues["id"]) == sorted(expected)
    run = spark.read.format("delta").load(out["runs"]).collect()[0]
    assert (run["status"], run["n_rows"], run["n_classes"], json.loads(run["classes"])) == \
        ("succeeded", 400, 4, TAGS)
    assert run["num_flagged"] == len(expected) and json.loads(run["metrics"])["task"] == "multilabel"
    first = issues.iloc[0]
    toggled = set(first["given_label"]) ^ set(first["suggested_label"])
    assert toggled == {TAGS[c] for c in first["flagged_classes"]} and toggled

    # export: JSON lists in csv, a multiple-choice Label Studio config
    assert _cli(tags_run, "review", "export", "--run-id", "t1", "--output", str(base / "q.csv")) == 0
    assert _cli(tags_run, "review", "export", "--run-id", "t1", "--output", str(base / "tasks.json"),
                "--top", "3") == 0
    import csv

    queue = list(csv.DictReader(open(base / "q.csv")))
    assert len(queue) == len(expected) and json.loads(queue[0]["suggested_label"]) == list(first["suggested_label"])
    tasks = json.load(open(base / "tasks.json"))
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == list(first["suggested_label"])
    assert 'choice="multiple"' in open(base / "tasks.label_config.xml").read()

    # verdicts: a tag set by JSON, one by |, a remove, a keep; then apply relabels the rest to the suggestion
    ids = [int(i) for i in issues["id"][:4]]
    with open(base / "verdicts.jsonl", "w") as f:
        f.write(json.dumps({"id": ids[0], "decision": "relabel", "new_label": ["eco", "art"]}) + "\n")
        f.write(json.dumps({"id": ids[1], "decision": "relabel", "new_label": "bio|cs"}) + "\n")
        f.write(json.dumps({"id": ids[2], "decision": "remove"}) + "\n")
        f.write(json.dumps({"id": ids[3], "decision": "keep"}) + "\n")
    assert _cli(tags_run, "review", "import", "--run-id", "t1", "--input", str(base / "verdicts.jsonl")) == 0
    bad = base / "bad.jsonl"
    bad.write_text(json.dumps({"id": ids[0], "decision": "relabel", "new_label": ["art", "zoo"]}) + "\n")
    assert _cli(tags_run, "review", "import", "--run-id", "t1", "--input", str(bad)) == 2
    assert _cli(tags_run, "apply", "--run-id", "t1", "--set", "apply.unreviewed=relabel") == 0
    cleaned = spark.read.format("delta").load(out["cleaned"]).toPandas().set_index("id")
    assert list(cleaned.loc[ids[0], "clean_label"]) == ["art", "eco"]
    assert list(cleaned.loc[ids[1], "clean_label"]) == ["bio", "cs"]
    assert ids[2] not in cleaned.index
    assert list(cleaned.loc[ids[3], "clean_label"]) == list(cleaned.loc[ids[3], "tags"])
    rest = issues[~issues["id"].isin(ids)]
    for _, row in rest.head(5).iterrows():
        assert sorted(cleaned.loc[row["id"], "clean_label"]) == sorted(row["suggested_label"])
    audit = spark.read.format("delta").load(out["audit"]).toPandas()
    assert set(audit["action"]) == {"relabeled", "removed"} and len(audit) == len(expected) - 1


def test_multilabel_report(tags_run):
    import re

    report = tags_run["base"] / "report.html"
    assert _cli(tags_run, "report", "--run-id", "t1", "--output", str(report)) == 0
    page = report.read_text()
    data = json.loads(re.search(r'id="sparknoise-report-data">(.*?)</script>', page, re.S).group(1))
    assert data["task"] == "multilabel" and data["n_classes"] == 4 and data["estimated_noise_rate"] is None
    assert abs(data["overall_label_health_score"] - (1 - data["num_flagged"] / 400)) < 1e-12
    assert "id='tags'" in page and 'id="heatmap-noise-matrix"' not in page and "id='cleaning'" in page
