"""The audit job end to end through the CLI: planted duplicates, a leakage pair and outliers in the
three Delta tables and the runs row, a re-run of the same run id replacing its rows, and the
data-issues report. (The engine's answers against Datalab are in test_data_issues.py.)"""

from __future__ import annotations

import json
import re

import pandas as pd
import yaml
from audit_data import make_audit_data
from pyspark.sql import functions as F

from sparknoise.cli import main as cli_main

# every type but label (the Confident Learning engine, covered by the detect job's tests)
TYPES = ["outlier", "near_duplicate", "class_imbalance", "null", "underperforming_group"]


def _rows(spark, location, run_id):
    return spark.read.format("delta").load(location).filter(F.col("run_id") == run_id)


def test_audit_job_tables_rerun_and_report(spark, tmp_path, capsys):
    data = make_audit_data()  # 400 rows, string ids r0000.., split alternating train/test
    spark.createDataFrame(data["pdf"]).coalesce(2).write.format("delta").save(str(tmp_path / "in"))
    out = {n: str(tmp_path / n) for n in ("data_issues", "duplicate_sets", "leakage", "runs", "cleaned", "audit")}
    conf = tmp_path / "audit.yaml"
    conf.write_text(yaml.safe_dump({
        "input": {"path": str(tmp_path / "in"), "label_col": "label", "probs_col": "pred_probs"},
        "audit": {"features": data["cols"], "split_col": "split", "group_cols": ["segment"], "k": 10,
                  "issue_types": TYPES},
        "output": out, "run": {"id": "a1"}}))
    assert cli_main(["audit", "--config", str(conf)]) == 0
    printed = capsys.readouterr().out
    assert "exact nearest-neighbour search" in printed and "leakage pairs" in printed

    def snapshot():
        issues = _rows(spark, out["data_issues"], "a1").toPandas()
        sets = _rows(spark, out["duplicate_sets"], "a1").toPandas()
        leak = _rows(spark, out["leakage"], "a1").toPandas()
        runs = _rows(spark, out["runs"], "a1").toPandas()
        return issues, sets, leak, runs

    issues, sets, leak, runs = snapshot()
    # long format: every row once per issue type
    assert len(issues) == 400 * len(TYPES) and sorted(set(issues["issue_type"])) == sorted(TYPES)
    assert list(issues.columns[:6]) == ["run_id", "id", "issue_type", "score", "is_issue", "details"]
    flagged = {t: set(g.loc[g["is_issue"], "id"]) for t, g in issues.groupby("issue_type")}
    planted = {"r0010", "r0011", "r0012", "r0100", "r0101", "r0020", "r0021", "r0030", "r0031"}
    assert planted <= flagged["near_duplicate"]
    assert {"r0041", "r0042"} <= flagged["outlier"]  # (planted r0040 points where the data does: cosine)
    assert flagged["null"] == set()
    nd = issues[(issues["issue_type"] == "near_duplicate") & (issues["id"] == "r0011")].iloc[0]
    assert json.loads(nd["details"]) == {"near_duplicate_set_id": "r0010", "distance_to_nearest_neighbor": 0.0}
    group = json.loads(issues[(issues["issue_type"] == "underperforming_group") & (issues["id"] == "r0000")]
                       .iloc[0]["details"])
    assert set(group) == {"group_id", "group"} and set(group["group"]) == {"segment"}
    # the duplicate sets: the exact triple, and the planted pairs
    by_id = sets.set_index("near_duplicate_set_id")
    assert list(by_id.loc["r0010", "members"]) == ["r0010", "r0011", "r0012"] and by_id.loc["r0010", "exact"]
    assert list(by_id.loc["r0100", "members"]) == ["r0100", "r0101"] and by_id.loc["r0100", "exact"]
    assert not by_id.loc["r0020", "exact"]
    # leakage: the planted pair straddles the split (100 is train, 101 test), at distance 0
    pair = leak[(leak["id"] == "r0100") & (leak["other_id"] == "r0101")]
    assert len(pair) == 1 and pair.iloc[0]["distance"] == 0.0
    assert {pair.iloc[0]["split"], pair.iloc[0]["other_split"]} == {"train", "test"}
    assert (leak["split"] != leak["other_split"]).all()
    assert {("r0010", "r0011"), ("r0011", "r0012"), ("r0020", "r0021")} <= set(zip(leak["id"], leak["other_id"]))
    # the runs row: job, counts per type (as in the table), the search and its settings
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["job"] == "audit" and run["status"] == "succeeded" and run["n_rows"] == 400
    metrics = json.loads(run["metrics"])
    assert metrics["counts"] == {t: len(flagged[t]) for t in TYPES}
    assert run["num_flagged"] == len(set().union(*flagged.values()))
    assert pd.isna(run["num_label_issues"])  # no label type ran
    assert metrics["search"] == {"kind": "exact", "metric": "cosine", "k": 10, "n_rows": 400, "dim": 6}
    assert metrics["num_duplicate_sets"] == len(sets) and metrics["num_leakage_pairs"] == len(leak)
    assert [r["issue_type"] for r in metrics["summary"]] == TYPES

    # the report renders the audit sections
    report = tmp_path / "report.html"
    assert cli_main(["report", "--config", str(conf), "--run-id", "a1", "--output", str(report), "--top", "5"]) == 0
    page = report.read_text()
    embedded = json.loads(re.search(r'id="sparknoise-report-data">(.*?)</script>', page, re.S).group(1))
    assert embedded["job"] == "audit" and embedded["n_rows"] == 400
    assert embedded["num_leakage_pairs"] == len(leak) and embedded["search"]["kind"] == "exact"
    assert [r["num_issues"] for r in embedded["summary"]] == [metrics["counts"][t] for t in TYPES]
    assert set(embedded["worst_ids"]["outlier"]) <= flagged["outlier"] and len(embedded["worst_ids"]["outlier"]) <= 5
    for section in ("issue-types", "worst-rows", "duplicate-sets", "leakage", "weakest-groups"):
        assert f"id='{section}'" in page, section
    assert "r0100" in page and "data-issues report" in page

    # the same run id again (here near duplicates only): its rows replaced in every table, nothing appended
    assert cli_main(["audit", "--config", str(conf), "--set", "audit.issue_types=[near_duplicate]"]) == 0
    issues2, sets2, leak2, runs2 = snapshot()
    assert len(issues2) == 400 and set(issues2["issue_type"]) == {"near_duplicate"}
    before = issues[issues["issue_type"] == "near_duplicate"].sort_values("id").reset_index(drop=True)
    assert issues2.sort_values("id").reset_index(drop=True)[before.columns].equals(before)
    assert len(sets2) == len(sets) and len(leak2) == len(leak) and len(runs2) == 1
    assert json.loads(runs2.iloc[0]["metrics"])["counts"] == {"near_duplicate": metrics["counts"]["near_duplicate"]}

    # apply on the audit run: one row per duplicate set and split kept, the train-side copy of each pair removed
    assert cli_main(["apply", "--config", str(conf), "--run-id", "a1"]) == 2  # its own run id is needed
    assert "is the id of the run being applied" in capsys.readouterr().err
    assert cli_main(["apply", "--config", str(conf), "--run-id", "a1", "--set", "run.id=ap1"]) == 0
    assert "of audit run a1" in capsys.readouterr().out
    removed = _rows(spark, out["audit"], "a1").toPandas().set_index("id")
    split = dict(zip(data["pdf"]["id"], data["pdf"]["split"]))
    copies = {m for ms in sets["members"] for m in ms if m != min(x for x in ms if split[x] == split[m])}
    train_side = {i if s == "train" else o for i, o, s in zip(leak["id"], leak["other_id"], leak["split"])}
    assert set(removed.index) == copies | train_side and "r0011" not in removed.index  # the test copy stays
    assert removed.loc["r0100", "issue_type"] == "leakage" and (removed["source"] == "policy").all()
    assert _rows(spark, out["cleaned"], "a1").count() == 400 - len(removed)
    applied = spark.read.format("delta").load(out["runs"]).filter(F.col("job") == "apply").toPandas()
    counts = json.loads(applied.iloc[0]["metrics"])["counts"]
    assert counts["removed"] == len(removed) and counts["kept"] == 400 - len(removed)

    # detect on the audited table, leaving out the rows the audit flagged (here: the duplicate copies apply drops)
    assert cli_main(["detect", "--config", str(conf), "--set", "input.exclude_run=a1", "--set", "run.id=d1",
                     "--set", f"output.scored={tmp_path / 'scored'}", "--set", f"output.issues={tmp_path / 'issues'}"]) == 0
    scored_ids = set(_rows(spark, str(tmp_path / "scored"), "d1").toPandas()["id"])
    assert scored_ids == set(data["pdf"]["id"]) - set(removed.index)
    detect_run = spark.read.format("delta").load(out["runs"]).filter(F.col("run_id") == "d1").first()
    assert json.loads(detect_run["metrics"])["excluded"]["excluded_rows"] == len(removed)
