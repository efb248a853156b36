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
from pyspark.sql import functions as F

from sparknoise.cli import main as cli_main

TAGS = ["art", "bio", "cs", "eco"]


@pytest.fixture(scope="module")
def tags_run(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("tags")
    labels, probs, _ = make_multilabel(400, 4, flip=0.1, seed=5)
    rows = [(i, [TAGS[c] for c in lab], [float(x) for x in p], "test" if i % 5 == 0 else "train",
             *[float(x) + 0.1 * (i % 7) for x in p[:2]])
            for i, (lab, p) in enumerate(zip(labels, probs))]
    (spark.createDataFrame(rows, "id long, tags array<string>, pred_probs array<double>, split string, "
                                 "f0 double, f1 double")
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


def _joined_tags(spark, tags_run, path) -> str:
    """The tags run's input with the tag arrays joined into one string per row ("art | cs", "" for none)."""
    (spark.read.format("delta").load(str(tags_run["base"] / "in")).withColumn("tags", F.array_join("tags", " | "))
     .write.format("delta").save(str(path)))
    return str(path)


def test_multilabel_job_fits_a_binary_model_per_class(spark, tags_run, tmp_path):
    """A delimited tag string (input.label_sep) and a model: one binary model per class per fold, the
    classes found by the folds (no input.classes)."""
    cfg = yaml.safe_load(open(tags_run["conf"]))
    cfg["input"].update(path=_joined_tags(spark, tags_run, tmp_path / "joined"), label_sep="|", classes=None,
                        probs_col=None, features=["f0", "f1"], passthrough=[], drop=["pred_probs"])
    cfg["model"] = {"estimator": "logistic_regression", "n_folds": 2}
    cfg["output"] = {k: str(tmp_path / k) for k in ("scored", "issues", "runs")}
    conf = tmp_path / "model.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    assert cli_main(["detect", "--config", str(conf), "--set", "run.id=m1"]) == 0
    scored = spark.read.format("delta").load(cfg["output"]["scored"])
    widths = {r[0] for r in scored.select(F.size("pred_probs")).distinct().collect()}
    assert scored.count() == 400 and widths == {4} and scored.filter("is_label_issue").count() > 0
    tags = {r["id"]: r["tags"] for r in scored.select("id", "tags").collect()}
    assert tags == {i: [TAGS[c] for c in lab] for i, lab in enumerate(tags_run["labels"])}  # split back exactly
    run = spark.read.format("delta").load(cfg["output"]["runs"]).first()
    assert json.loads(run["classes"]) == TAGS


def test_label_sep_splits_a_tag_string(spark):
    from sparknoise.errors import ConfigError, InputError
    from sparknoise.jobs.config import load_config
    from sparknoise.jobs.tables import split_tags

    df = spark.createDataFrame([(1, "a|b"), (2, ""), (3, " c | a.b |"), (4, None), (5, " | ")], "id int, t string")
    got = {r["id"]: r["t"] for r in split_tags(df, "t", "|").collect()}
    assert got == {1: ["a", "b"], 2: [], 3: ["c", "a.b"], 4: None, 5: []}  # "|" and "." taken literally
    assert {r["id"]: r["t"] for r in split_tags(df, "t", ".").collect()}[3] == ["c | a", "b |"]
    with pytest.raises(InputError, match="'input.label_sep'.*'id' has type int"):
        split_tags(df, "id", "|")
    base = ["input.table=tags", "input.features=[f0]"]
    assert load_config(overrides=[*base, "detection.task=multilabel", "input.label_sep='|'"])["input"][
        "label_sep"] == "|"
    with pytest.raises(ConfigError, match="'input.label_sep'.*detection.task multilabel"):
        load_config(overrides=[*base, "input.label_sep=';'"])
    with pytest.raises(ConfigError, match="non-empty string"):
        load_config(overrides=[*base, "detection.task=multilabel", "input.label_sep=''"])


def test_evaluate_job_multilabel(spark, tags_run, tmp_path, capsys):
    """detection.task: multilabel in the evaluate job (tags from a delimited string): every filter
    scored over the injected (row, class) flips, one-vs-rest fits scored by micro/macro F1."""
    from sparknoise.core.flags import FILTERS

    out = tmp_path / "out"
    code = cli_main([
        "evaluate", f"--input.path={_joined_tags(spark, tags_run, tmp_path / 'joined')}",
        "--set", "input.label_col=tags", "--set", "input.label_sep='|'", "--set", "input.features=[f0, f1]",
        "--set", "input.drop=[pred_probs]", "--set", "detection.task=multilabel", "--set", "model.n_folds=2",
        "--set", "evaluate.noise_rates=[0.1]", "--set", "evaluate.detection_noise_rate=0.1",
        "--set", "evaluate.test_where=id % 5 = 0", "--set", "run.id=ml1",
        "--set", f"output.detection={out}/detection", "--set", f"output.impact={out}/impact",
        "--set", f"output.plots={out}/plots", "--set", f"output.runs={out}/runs",
    ])
    printed = capsys.readouterr().out
    assert code == 0 and "Test micro F1" in printed and "Test macro F1" in printed
    detection = spark.read.format("delta").load(f"{out}/detection").toPandas().set_index("detector")
    impact = spark.read.format("delta").load(f"{out}/impact").toPandas().set_index("variant")
    assert set(detection.index) == set(FILTERS) | {"self_confidence_below_0.1"}
    # exactly round(0.1 n_c) tags lost and round(0.1 (N - n_c)) gained per class on the 320 train rows
    train = [lab for i, lab in enumerate(tags_run["labels"]) if i % 5 != 0]
    counts = [sum(c in lab for lab in train) for c in range(4)]
    assert set(detection["noisy"]) == {sum(round(0.1 * n) + round(0.1 * (len(train) - n)) for n in counts)}
    main = detection.loc["prune_by_noise_rate"]
    assert 0 < main["true_positives"] <= main["flagged"] and 0 < main["precision"] <= 1
    assert set(impact.index) == {"noisy", "pruned", "downweighted", "clean"} and set(impact["test_rows"]) == {80}
    assert impact.loc["pruned", "train_rows"] == len(train) - impact.loc["pruned", "flagged"]
    for v in impact.index:
        assert 0 < impact.loc[v, "micro_f1"] <= 1 and 0 < impact.loc[v, "macro_f1"] <= 1
        assert 0 <= impact.loc[v, "test_accuracy"] <= 1
    assert impact.loc["clean", "micro_f1"] > 0.4  # f0, f1 carry classes 0 and 1 (0.52 measured)
