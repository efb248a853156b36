"""The cleaning loop end to end: agreement in the queue, export, verdicts import, apply, audit, report.

One detect run (string labels, own probabilities, a test split) is shared by the module; every
command runs through the CLI as a user runs it, and values are checked against a numpy oracle.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F

import sparknoise as sn
from sparknoise.cli import main as cli_main
from sparknoise.errors import ConfigError, InputError
from sparknoise.noise.synthetic import noisy_probabilities

NAMES = ["ant", "bee", "cat"]
N = 1500


@pytest.fixture(scope="module")
def loop(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("loop")
    d = noisy_probabilities(N, 3, noise_rate=0.2, seed=41)
    frame = d.to_pandas()
    frame["label"] = [NAMES[k] for k in d.labels]
    frame["split"] = np.where(frame["id"] % 5 == 0, "test", "train")
    frame["text"] = [f"item {i}" for i in frame["id"]]
    spark.createDataFrame(frame.drop(columns=["true_label"])).coalesce(2).write.format("delta").save(str(base / "in"))
    out = {n: str(base / n) for n in ("scored", "issues", "runs", "reviews", "cleaned", "audit", "releases")}
    conf = base / "loop.yaml"
    conf.write_text(yaml.safe_dump({
        "input": {"path": str(base / "in"), "probs_col": "pred_probs", "classes": NAMES,
                  "passthrough": ["text", "split"]},
        "output": out,
    }))
    assert cli_main(["detect", "--config", str(conf), "--set", "run.id=r1"]) == 0
    issues = spark.read.format("delta").load(out["issues"]).toPandas().sort_values("issue_rank")
    return {"conf": str(conf), "out": out, "d": d, "frame": frame, "issues": issues, "base": base}


def _cli(loop, *args: str) -> int:
    return cli_main([*args, "--config", loop["conf"]])


def _table(spark, loop, name):
    return spark.read.format("delta").load(loop["out"][name])


def test_issues_carry_loss_rank_and_confidence(loop):
    d, issues = loop["d"], loop["issues"]
    p_given = d.pred_probs[np.arange(N), d.labels]
    order = np.lexsort((np.arange(N), p_given))  # by p_given ascending (loss descending), ties by id
    loss_rank = np.empty(N, dtype=int)
    loss_rank[order] = np.arange(1, N + 1)
    ids = issues["id"].to_numpy()
    assert list(issues["loss_rank"]) == list(loss_rank[ids])
    flagged = len(issues)
    assert list(issues["confidence"]) == ["high" if r <= flagged else "medium" for r in loss_rank[ids]]
    assert set(issues["confidence"]) == {"high", "medium"}
    assert list(issues["issue_rank"]) == list(range(1, flagged + 1))  # the queue's order is unchanged


def test_export_csv_jsonl_and_label_studio(loop, capsys):
    base, issues = loop["base"], loop["issues"]
    assert _cli(loop, "review", "export", "--run-id", "r1", "--output", str(base / "q.csv"), "--top", "20") == 0
    assert "20 rows" in capsys.readouterr().out
    with open(base / "q.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["id"]) for r in rows] == list(issues["id"][:20])
    assert list(rows[0])[:6] == ["id", "given_label", "suggested_label", "label_quality", "issue_rank", "confidence"]
    assert {"text", "split", "decision", "new_label", "reviewer", "note", "reviewed_at"} <= set(rows[0])
    assert _cli(loop, "review", "export", "--run-id", "r1", "--output", str(base / "q.jsonl")) == 0
    lines = [json.loads(x) for x in open(base / "q.jsonl")]
    assert len(lines) == len(issues) and lines[0]["given_label"] in NAMES
    assert _cli(loop, "review", "export", "--run-id", "r1", "--output", str(base / "tasks.json"), "--top", "5") == 0
    tasks = json.load(open(base / "tasks.json"))
    d = loop["d"]
    for task, (_, row) in zip(tasks, issues.head(5).iterrows()):
        assert task["data"]["id"] == row["id"] and task["data"]["item"] == f"text: item {row['id']}\nsplit: {row['split']}"
        pred = task["predictions"][0]
        assert pred["result"][0]["value"]["choices"] == [row["suggested_label"]]
        assert pred["score"] == pytest.approx(d.pred_probs[row["id"]].max())
    config = ET.parse(base / "tasks.label_config.xml").getroot()
    assert [c.get("value") for c in config.iter("Choice")] == [*NAMES, "remove"]


def _write_verdicts(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "decision", "new_label", "reviewer", "note", "reviewed_at"])
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return str(path)


def test_review_import_apply_audit_and_report(spark, loop, capsys):
    issues = loop["issues"][loop["issues"]["split"] == "train"]
    a, b, c, e = (int(x) for x in issues["id"][:4])
    new_b = next(n for n in NAMES if n != issues.iloc[1]["given_label"])
    verdicts = _write_verdicts(loop["base"] / "v1.csv", [
        {"id": a, "decision": "keep", "reviewer": "ann", "reviewed_at": "2026-11-01T10:00:00Z"},
        {"id": b, "decision": "remove", "reviewer": "ann", "reviewed_at": "2026-11-01T09:00:00Z"},  # superseded
        {"id": b, "decision": "relabel", "new_label": new_b, "reviewer": "bob", "note": "clearly a bug",
         "reviewed_at": "2026-11-02T10:00:00Z"},
        {"id": c, "decision": "remove", "reviewer": "bob", "note": "blurry", "reviewed_at": ""},
        {"id": e, "decision": "Keep"},
    ])
    assert _cli(loop, "review", "import", "--run-id", "r1", "--input", verdicts) == 0
    reviews = _table(spark, loop, "reviews")
    assert reviews.count() == 5 and dict(reviews.dtypes)["id"] == "bigint" and dict(reviews.dtypes)["new_label"] == "string"
    capsys.readouterr()
    assert _cli(loop, "apply", "--run-id", "r1", "--set", "apply.protect_where=split = 'test'") == 0
    printed = capsys.readouterr().out
    cleaned = _table(spark, loop, "cleaned").toPandas().set_index("id")
    audit = _table(spark, loop, "audit").toPandas().set_index("id")
    flagged = set(loop["issues"]["id"])
    protected = set(loop["frame"]["id"][loop["frame"]["split"] == "test"])
    removed = (flagged - protected - {a, b, e}) | {c}
    assert set(cleaned.index) == set(range(N)) - removed
    assert cleaned.loc[b, "clean_label"] == new_b and cleaned.loc[b, "action"] == "relabeled"
    assert cleaned.loc[a, "action"] == "kept" and cleaned.loc[a, "clean_label"] == cleaned.loc[a, "label"]
    assert (cleaned["sample_weight"] == 1.0).all()
    assert set(audit.index) == removed | {b}
    assert audit.loc[b, "source"] == "review" and audit.loc[b, "old_label"] == issues.iloc[1]["given_label"]
    assert audit.loc[b, "reason"] == f"relabeled from {issues.iloc[1]['given_label']} to {new_b} by reviewer bob: clearly a bug"
    assert audit.loc[c, "reason"] == "removed by reviewer bob: blurry"
    policy = audit[audit["source"] == "policy"]
    assert len(policy) == len(removed) - 1 and (policy["action"] == "removed").all()
    some = policy.iloc[0]
    assert some["reason"].startswith("removed by policy apply.unreviewed=remove (not reviewed; flagged by "
                                     "prune_by_noise_rate, suggested label ")
    assert f"issue_rank {some['issue_rank']}, confidence " in some["reason"]
    assert f"kept {N - len(removed) - 1}, relabeled 1, down-weighted 0, removed {len(removed)}; 4 reviewed" in printed
    # rerun: the same rows, no duplicates; the runs table logs both apply runs
    assert _cli(loop, "apply", "--run-id", "r1", "--set", "apply.protect_where=split = 'test'") == 0
    assert _table(spark, loop, "cleaned").count() == len(cleaned) and _table(spark, loop, "audit").count() == len(audit)
    applies = _table(spark, loop, "runs").filter("job = 'apply'").collect()
    assert len(applies) == 2 and all(json.loads(r["metrics"])["applied_run_id"] == "r1" for r in applies)
    assert json.loads(applies[0]["metrics"])["counts"]["by_source"]["review"] == {"removed": 1, "relabeled": 1}
    # the report of the detect run shows the cleaning
    report = loop["base"] / "report.html"
    assert _cli(loop, "report", "--run-id", "r1", "--output", str(report)) == 0
    page = report.read_text()
    assert "<h2 id='cleaning'>Cleaning</h2>" in page and "4 rows reviewed" in page


@pytest.mark.parametrize("rows, fragment", [
    ([{"id": 10**9, "decision": "keep"}], "row 1 (id 1000000000) is not a row of the run's scored table"),
    ([{"id": "UNFLAGGED", "decision": "keep"}], "was not flagged in this run (pass --allow-unflagged"),
    ([{"id": "FLAGGED", "decision": "maybe"}], "row 1 (id FLAGGED): decision 'maybe' is not one of"),
    ([{"id": "FLAGGED", "decision": "relabel"}], "row 1 (id FLAGGED): a relabel needs new_label"),
    ([{"id": "FLAGGED", "decision": "relabel", "new_label": "dog"}], "new_label 'dog' is not one of the run's classes"),
    ([{"id": "FLAGGED", "decision": "keep", "reviewed_at": "t1"},
      {"id": "FLAGGED", "decision": "remove", "reviewed_at": "t1"}], "two different verdicts at the same reviewed_at"),
    ([{"id": "FLAGGED", "decision": "keep", "reviewed_at": "yesterday"}], "reviewed_at 'yesterday' is not an ISO time"),
])
def test_bad_verdicts_exit_2_and_write_nothing(spark, loop, capsys, tmp_path, rows, fragment):
    flagged = int(loop["issues"]["id"].iloc[0])
    unflagged = next(i for i in range(N) if i not in set(loop["issues"]["id"]))
    for r in rows:
        r["id"] = {"FLAGGED": flagged, "UNFLAGGED": unflagged}.get(r["id"], r["id"])
        if r.get("reviewed_at") == "t1":
            r["reviewed_at"] = "2026-11-03T00:00:00Z"
    path = _write_verdicts(tmp_path / "bad.csv", rows)
    before = _table(spark, loop, "reviews").count() if (loop["base"] / "reviews").exists() else 0
    assert _cli(loop, "review", "import", "--run-id", "r1", "--input", path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and path in err and fragment.replace("FLAGGED", str(flagged)) in err, err
    after = _table(spark, loop, "reviews").count() if (loop["base"] / "reviews").exists() else 0
    assert after == before
    if "allow-unflagged" in fragment:  # the same file is accepted when the reviewer meant it
        assert _cli(loop, "review", "import", "--run-id", "r1", "--input", path, "--allow-unflagged") == 0
        assert _table(spark, loop, "reviews").count() == before + 1


def test_bad_files_and_runs_exit_2(loop, capsys, tmp_path):
    no_cols = tmp_path / "cols.csv"
    no_cols.write_text("row,verdict\n1,keep\n")
    assert _cli(loop, "review", "import", "--run-id", "r1", "--input", str(no_cols)) == 2
    assert "needs the columns 'id' and 'decision'" in capsys.readouterr().err
    assert _cli(loop, "review", "import", "--run-id", "nope", "--input", str(no_cols)) == 2
    assert "no run 'nope' in the runs table" in capsys.readouterr().err
    assert _cli(loop, "review", "export", "--run-id", "r1", "--output", str(tmp_path / "q.txt")) == 2
    assert "cannot tell the format" in capsys.readouterr().err


def test_policies_protect_and_verdict_on_a_protected_row(spark, loop):
    scored = _table(spark, loop, "scored")
    issues = _table(spark, loop, "issues")
    iss = loop["issues"].set_index("id")
    flagged = set(iss.index)

    def actions(**kw):
        res = sn.apply_cleaning(scored, id_col="id", label_col="label", issues=issues, **kw)
        return {r["id"]: (r["action"], r["clean_label"], r["sample_weight"])
                for r in res.cleaned.select("id", "action", "clean_label", "sample_weight").collect()}, res

    got, res = actions(unreviewed="downweight", downweight=0.25)
    assert {i for i, (act, _, w) in got.items() if act == "downweighted" and w == 0.25} == flagged
    assert res.summary()["downweighted"] == len(flagged) and res.summary()["by_source"]["policy"] == {
        "downweighted": len(flagged)}
    got, _ = actions(unreviewed="relabel")
    assert all(got[i][1] == iss.loc[i, "suggested_label"] for i in flagged)
    got, _ = actions(unreviewed="relabel", relabel_only_high=True)
    high = set(iss.index[iss["confidence"] == "high"])
    assert set(got) == set(range(N)) - (flagged - high) and all(got[i][1] == iss.loc[i, "suggested_label"] for i in high)
    got, res = actions(unreviewed="keep")
    assert len(got) == N and res.audit.count() == 0
    test_rows = set(loop["frame"]["id"][loop["frame"]["split"] == "test"])
    got, _ = actions(protect="split = 'test'")
    assert set(got) == set(range(N)) - (flagged - test_rows)
    # a verdict on a protected row is an error naming the id; a bad condition names the key
    protected_flagged = min(flagged & test_rows)
    reviews = spark.createDataFrame([(protected_flagged, "remove")], "id long, decision string")
    with pytest.raises(InputError, match=f"id {protected_flagged}: the id is a protected row"):
        sn.apply_cleaning(scored, reviews, protect="split = 'test'")
    with pytest.raises(ConfigError, match="protect condition"):
        sn.apply_cleaning(scored, protect="no_such_column = 1")
    assert _cli(loop, "apply", "--run-id", "r1", "--set", "apply.unreviewed=sometimes") == 2


def test_label_studio_round_trip(spark, loop, tmp_path):
    """Export the queue, load it into a real Label Studio server, annotate through its API, export the
    annotations, import them as verdicts and apply them."""
    import os

    from labelstudio import BINARY, label_studio_server

    if not os.path.exists(BINARY):
        pytest.skip(f"Label Studio is not installed at {BINARY} (make test installs it)")
    tasks_file = tmp_path / "tasks.json"
    assert _cli(loop, "review", "export", "--run-id", "r1", "--output", str(tasks_file), "--top", "3") == 0
    tasks = json.load(open(tasks_file))
    given = [t["data"]["given_label"] for t in tasks]
    ids = [t["data"]["id"] for t in tasks]
    other = next(n for n in NAMES if n != given[1])
    choices = [given[0], other, "remove"]  # keep, relabel, remove
    (tmp_path / "ls").mkdir()
    with label_studio_server(str(tmp_path / "ls")) as ls:
        project = ls.call("POST", "/api/projects", {
            "title": "sparknoise review", "label_config": open(tmp_path / "tasks.label_config.xml").read()})
        imported = ls.call("POST", f"/api/projects/{project['id']}/import", tasks)
        assert imported["task_count"] == 3 and imported["prediction_count"] == 3
        listed = ls.call("GET", f"/api/tasks?project={project['id']}&page_size=100")
        by_row = {t["data"]["id"]: t["id"] for t in (listed["tasks"] if isinstance(listed, dict) else listed)}
        for row_id, choice in zip(ids, choices):
            ls.call("POST", f"/api/tasks/{by_row[row_id]}/annotations", {"result": [{
                "from_name": "verdict", "to_name": "item", "type": "choices", "value": {"choices": [choice]}}]})
        export = ls.call("GET", f"/api/projects/{project['id']}/export?exportType=JSON")
    export_file = tmp_path / "label_studio_export.json"
    export_file.write_text(json.dumps(export))
    assert _cli(loop, "review", "import", "--run-id", "r1", "--input", str(export_file)) == 0
    reviews = _table(spark, loop, "reviews").filter(F.col("source").startswith("labelstudio:")).toPandas()
    got = {r["id"]: (r["decision"], r["new_label"]) for _, r in reviews.iterrows()}
    assert got == {ids[0]: ("keep", None), ids[1]: ("relabel", other), ids[2]: ("remove", None)}
    assert set(reviews["reviewer"]) == {"label-studio user 1"} and reviews["reviewed_at"].notna().all()
    assert _cli(loop, "apply", "--run-id", "r1") == 0
    cleaned = _table(spark, loop, "cleaned").toPandas().set_index("id")
    assert cleaned.loc[ids[0], "action"] == "kept" and ids[2] not in cleaned.index
    assert cleaned.loc[ids[1], "action"] == "relabeled" and cleaned.loc[ids[1], "clean_label"] == other


def test_test_split_by_verdict_only_and_named_releases(spark, loop, capsys, tmp_path):
    """protect_mode policy: reviewers' verdicts change test rows (audited as protected), the policy never does;
    the test split's queue; the apply run's report; publish / list / read a release; a name is never reused."""
    assert _cli(loop, "detect", "--set", "run.id=r2") == 0
    frame, out = loop["frame"], loop["out"]
    split = dict(zip(frame["id"], frame["split"]))
    flagged = set(loop["issues"]["id"])  # r2 reads the same rows and probabilities as r1
    queue = tmp_path / "test_queue.csv"
    assert _cli(loop, "review", "export", "--run-id", "r2", "--output", str(queue), "--where", "split = 'test'") == 0
    rows = list(csv.DictReader(open(queue)))
    test_flagged = sorted(i for i in flagged if split[i] == "test")
    assert sorted(int(r["id"]) for r in rows) == test_flagged and [int(r["issue_rank"]) for r in rows] == sorted(
        int(r["issue_rank"]) for r in rows)
    assert _cli(loop, "review", "export", "--run-id", "r2", "--output", str(queue), "--where", "nope = 1") == 2
    assert "--where 'nope = 1' does not run on the run's scored rows" in capsys.readouterr().err
    t_relabel, t_remove = (int(r["id"]) for r in rows[:2])
    new_label = next(n for n in NAMES if n != rows[0]["given_label"])
    train = next(i for i in sorted(flagged) if split[i] == "train")
    verdicts = _write_verdicts(tmp_path / "v.csv", [
        {"id": t_relabel, "decision": "relabel", "new_label": new_label, "reviewer": "eve", "note": "typo"},
        {"id": t_remove, "decision": "remove", "reviewer": "eve"},
        {"id": train, "decision": "keep", "reviewer": "eve"}])
    assert _cli(loop, "review", "import", "--run-id", "r2", "--input", verdicts) == 0
    protect = ["--set", "apply.protect_where=split = 'test'", "--set", "apply.split_col=split"]
    assert _cli(loop, "apply", "--run-id", "r2", *protect) == 2  # protect_mode all: a verdict on a test row
    assert "set apply.protect_mode: policy" in capsys.readouterr().err
    assert _cli(loop, "apply", "--run-id", "r2", *protect, "--set", "apply.protect_mode=policy",
                "--set", "run.id=a2") == 0
    printed = capsys.readouterr().out
    cleaned = _table(spark, loop, "cleaned").filter("run_id = 'r2'").toPandas().set_index("id")
    audit = _table(spark, loop, "audit").filter("run_id = 'r2'").toPandas().set_index("id")
    removed_train = {i for i in flagged if split[i] == "train"} - {train}
    assert set(cleaned.index) == set(range(N)) - removed_train - {t_remove}
    assert cleaned.loc[t_relabel, "clean_label"] == new_label and cleaned.loc[t_relabel, "action"] == "relabeled"
    assert (cleaned.loc[sorted(set(test_flagged) - {t_relabel, t_remove}), "action"] == "kept").all()
    assert set(audit.index) == removed_train | {t_relabel, t_remove}
    assert set(audit.index[audit["protected"]]) == {t_relabel, t_remove}
    assert (audit.loc[[t_relabel, t_remove], "source"] == "review").all() and set(audit["split"]) == {"test", "train"}
    n_test = sum(1 for s in split.values() if s == "test")
    by_split = {"test": {"kept": n_test - 2, "relabeled": 1, "downweighted": 0, "removed": 1},
                "train": {"kept": N - n_test - len(removed_train), "relabeled": 0, "downweighted": 0,
                          "removed": len(removed_train)}}
    metrics = json.loads(_table(spark, loop, "runs").filter("run_id = 'a2'").first()["metrics"])
    assert metrics["counts"]["by_split"] == by_split and metrics["counts"]["protected"] == {"relabeled": 1,
                                                                                         "removed": 1}
    assert "split test: kept" in printed and "protected rows (split = 'test', protect_mode policy)" in printed, printed
    # the apply run's report: per split what changed and why, the test-split corrections as their own table
    report = tmp_path / "apply.html"
    assert _cli(loop, "report", "--run-id", "a2", "--output", str(report)) == 0
    page = report.read_text()
    assert "<h3 id='cleaning-splits'>Per split (split)</h3>" in page and "Applied by run <code>a2</code>" in page
    corrections = page[page.index("id='cleaning-corrections'"):]
    assert "Protected rows changed by review (2)" in corrections and f"<td>{t_relabel}</td>" in corrections
    # publish, list, read back; a name is never reused
    assert _cli(loop, "publish", "--run-id", "a2", "--release", "v1", "--note", "test split reviewed") == 0
    printed = capsys.readouterr().out
    assert "release v1 (" in printed and "protected rows corrected by review: relabeled 1, removed 1" in printed
    manifest = loop["base"] / "RELEASE-v1.md"
    assert manifest.exists() and "| test | " in manifest.read_text()
    assert _cli(loop, "publish", "--run-id", "r2", "--release", "v1") == 2
    assert "release 'v1' already exists" in capsys.readouterr().err
    assert _cli(loop, "publish", "--run-id", "r2", "--release", "bad name") == 2
    assert _cli(loop, "releases") == 0 and "release v1 (" in capsys.readouterr().out
    # a later apply changes the tables; the release still reads what was published
    assert _cli(loop, "apply", "--run-id", "r2", *protect, "--set", "apply.protect_mode=policy",
                "--set", "apply.unreviewed=keep") == 0
    rel = sn.read_release(spark, out["releases"], "v1")
    assert rel.record["apply_run_id"] == "a2" and rel.record["detect_run_id"] == "r2"
    assert rel.original.count() == N and rel.counts["by_split"] == by_split
    assert sorted(r["id"] for r in rel.cleaned.select("id").collect()) == sorted(cleaned.index)
    assert {r["id"] for r in rel.audit.filter("protected").collect()} == {t_relabel, t_remove}
    with pytest.raises(InputError, match="no release 'v2'"):
        sn.read_release(spark, out["releases"], "v2")


def test_demo_label_studio_tasks_show_the_features_not_the_answer(tmp_path):
    # the demo's review queue carries its features as passthrough columns, never the generator's true_label
    from sparknoise.cleaning.formats import write_queue
    from sparknoise.jobs.demo import FEATURES, TRUTH_COL, demo_config

    shown = demo_config(str(tmp_path))["input"]["passthrough"]
    assert shown == [*FEATURES, "split"] and TRUTH_COL not in shown
    values = {c: 0.123456789 * (i + 1) for i, c in enumerate(FEATURES)}
    row = {"id": 7, "given_label": 1, "suggested_label": 2, "label_quality": 0.01, "issue_rank": 1,
           "confidence": "high", **values, "split": "test", "__score": 0.9}
    (tasks, _), written = write_queue(iter([row]), str(tmp_path / "tasks.json"), "labelstudio", classes=[0, 1, 2], run_id="demo",
                           id_col="id", shown=shown)
    [task] = json.load(open(tasks))
    assert written == 1 and task["predictions"][0]["score"] == 0.9
    assert task["data"]["item"].splitlines() == [*(f"{c}: {v:.6g}" for c, v in values.items()), "split: test"]
    assert TRUTH_COL not in json.dumps(task)


def test_apply_cleaning_names_bad_verdicts_before_anything_is_computed_from_them(spark):
    # the checks run in two small aggregations (verdicts alone; the materialised rows) and fall back to the
    # join naming the ids: each problem still raises the same message, and valid verdicts still apply
    scored = spark.createDataFrame(
        [(i, "a", i % 2 == 0, "b", i + 1, 0.1, "test" if i == 5 else "train") for i in range(6)],
        "id long, label string, is_label_issue boolean, predicted_label string, issue_rank int, label_quality double, "
        "split string")
    cases = [
        ([(7, "keep", None, None)], "1 verdict(s) for id 7: the id is not a row of the scored table"),
        ([(2, "maybe", None, None)], "1 verdict(s) for id 2: the id has a decision that is not one of"),
        ([(5, "remove", None, None)], "1 verdict(s) for id 5: the id is a protected row"),
    ]
    schema = "id long, decision string, new_label string, reviewed_at string"
    for rows, message in cases:
        with pytest.raises(InputError) as e:
            sn.apply_cleaning(scored, spark.createDataFrame(rows, schema), protect="split = 'test'")
        assert str(e.value).startswith(message), str(e.value)
    res = sn.apply_cleaning(scored, spark.createDataFrame([(2, "relabel", "c", None), (3, "remove", None, None)], schema),
                            split_col="split")
    got = {r["id"]: (r["action"], r["clean_label"]) for r in res.cleaned.collect()}
    assert got == {1: ("kept", "a"), 2: ("relabeled", "c"), 5: ("kept", "a")}
    assert res.summary()["by_source"] == {"review": {"relabeled": 1, "removed": 1}, "policy": {"removed": 2}, "none": {"kept": 2}}
    # what a job records, counted with the checks (the written tables are not read back)
    assert res.reviewed == 2 and set(res.split_counts) == {("test", "kept", 1), ("train", "kept", 1),
                                                           ("train", "relabeled", 1), ("train", "removed", 3)}
    assert {(r["action"], r["source"]) for r in res.audit.collect()} == {("relabeled", "review"), ("removed", "review"),
                                                                         ("removed", "policy")}
