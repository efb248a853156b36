"""Bad input through the detect job (DESIGN.md section 6): exit 2, one line naming the column or key,
every output table untouched; and ``input.on_invalid: skip``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F

from sparknoise.cli import main as cli_main

N = 240


def _row(i: int) -> dict:
    k = i % 3
    good = [0.1, 0.1, 0.1]
    good[k] = 0.8
    if i % 11 == 0:  # some noise, so the good run flags rows
        good = good[1:] + good[:1]
    special = i == 7  # the one bad row of each scenario column
    return {
        "id": i, "label": k, "note": f"row {i}", "x0": float(i % 7), "x1": float(k) + (i % 5) / 10,
        "probs": good,
        "probs_short": [0.5, 0.5] if special else good,
        "probs_neg": [1.2, -0.1, -0.1] if special else good,
        "probs_big": [1.5, 0.0, 0.0] if special else good,
        "probs_sum": [0.5, 0.1, 0.1] if special else good,
        "probs_hair": [-0.00001, 1.00001, 0.0] if special else good,  # float32 rounding
        "probs_nan": [float("nan"), 0.5, 0.5] if special else good,
        "probs_null": None if special else good,
        "label_null": None if special else k,
        "label_one": 0,
        "label_rare": 2 if i == 7 else i % 2,  # class 2 has one row: fewer rows than folds
        "x_nan": float("nan") if special else 1.0 * (i % 4),
        "x_inf": float("inf") if special else 1.0 * (i % 4),
        "x_null": None if special else 1.0 * (i % 4),
        "x_text": f"t{i}",
        "dup_id": 5 if special else i,
        "label_float": i / 7,  # a continuous target
        "label_many": i,  # as many classes as rows
        "label_multi": [k, (k + 1) % 3],  # multi-label
    }


SCHEMA = (
    "id long, label long, note string, x0 double, x1 double, probs array<double>, probs_short array<double>, "
    "probs_neg array<double>, probs_big array<double>, probs_sum array<double>, probs_hair array<double>, "
    "probs_nan array<double>, "
    "probs_null array<double>, label_null long, label_one long, label_rare long, x_nan double, x_inf double, "
    "x_null double, x_text string, dup_id long, label_float double, label_many long, label_multi array<long>"
)


@pytest.fixture(scope="module")
def setup(spark, tmp_path_factory):
    """The input table, a config, and the outputs of one good run that no bad run may touch."""
    root = tmp_path_factory.mktemp("badjob")
    rows = [_row(i) for i in range(N)]
    spark.createDataFrame([tuple(r[c.split(" ")[0]] for c in SCHEMA.split(", ")) for r in rows], SCHEMA) \
        .coalesce(1).write.format("delta").save(str(root / "input"))
    os.makedirs(root / "parquet_here")
    spark.range(3).write.mode("overwrite").parquet(str(root / "parquet_here" / "data"))
    cfg = {"input": {"path": str(root / "input"), "probs_col": "probs", "passthrough": ["note"]},
           "output": {n: str(root / n) for n in ("scored", "issues", "runs")}, "run": {"id": "good"}}
    conf = root / "detect.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    assert cli_main(["detect", "--config", str(conf)]) == 0
    return root, str(conf), cfg


def _versions(spark, cfg) -> dict:
    return {n: spark.sql(f"DESCRIBE HISTORY delta.`{cfg['output'][n]}`").agg(F.max("version")).first()[0]
            for n in ("scored", "issues", "runs")}


MODEL = ["--set", "input.probs_col=null", "--set", "model.n_folds=2", "--set", "model.params={maxIter: 5}"]
CASES = {
    # name: (overrides, text the one-line error must contain)
    "missing-column": (["--set", "input.label_col=nope"], "nope"),
    "feature-wrong-type": ([*MODEL, "--set", "input.features=[x0, x_text]"], "x_text"),
    "features-col-wrong-type": ([*MODEL, "--set", "input.features_col=note"], "note"),
    "null-label": (["--set", "input.label_col=label_null"], "label_null"),
    "null-probabilities": (["--set", "input.probs_col=probs_null"], "probs_null"),
    "nan-probabilities": (["--set", "input.probs_col=probs_nan"], "probs_nan"),
    "nan-feature": ([*MODEL, "--set", "input.features=[x0, x_nan]"], "x_nan"),
    "infinite-feature": ([*MODEL, "--set", "input.features=[x0, x_inf]"], "x_inf"),
    "null-feature": ([*MODEL, "--set", "input.features=[x_null, x1]"], "x_null"),
    "label-outside-classes": (["--set", "input.classes=[0, 1, 5]"], "label"),
    "one-class": ([*MODEL, "--set", "input.features=[x0, x1]", "--set", "input.label_col=label_one"], "label_one"),
    "class-smaller-than-folds": ([*MODEL, "--set", "input.features=[x0, x1]", "--set", "input.label_col=label_rare",
                                  "--set", "model.n_folds=3"], "fold"),
    "probs-wrong-length": (["--set", "input.probs_col=probs_short"], "probs_short"),
    "probs-negative": (["--set", "input.probs_col=probs_neg"], "probs_neg"),
    "probs-above-one": (["--set", "input.probs_col=probs_big"], "probs_big"),
    "probs-not-summing-to-one": (["--set", "input.probs_col=probs_sum"], "probs_sum"),
    "probs-a-hair-off": (["--set", "input.probs_col=probs_hair"], "input.probs_repair: clip"),
    "probs-too-far-off-to-repair": (["--set", "input.probs_col=probs_big", "--set", "input.probs_repair=clip"],
                                    "probs_big"),
    "bad-probs-repair": (["--set", "input.probs_repair=round"], "input.probs_repair"),
    "duplicate-ids": (["--set", "input.id_col=dup_id"], "dup_id"),
    "empty-table": (["--set", "input.where=id < 0"], "empty"),
    "unknown-key": (["--set", "detection.colour=red"], "detection.colour"),
    "unknown-estimator": ([*MODEL, "--set", "input.features=[x0]", "--set", "model.estimator=magic"],
                          "model.estimator"),
    "unknown-filter": (["--set", "detection.filter_by=vibes"], "detection.filter_by"),
    "injection-in-table-name": (["--set", "output.issues=a; DROP TABLE b"], "output.issues"),
    "invalid-input-table-name": (["--set", "input.path=null", "--set", "input.table=x.y z"], "input.table"),
    "where-not-boolean": (["--set", "input.where=id + 1"], "input.where"),
    "where-unknown-column": (["--set", "input.where=colour = 'red'"], "input.where"),
    "where-not-sql": (["--set", "input.where=1; DROP TABLE b"], "input.where"),
    "output-is-input": (["--set", "output.scored=INPUT"], "output.scored"),
    "output-holds-parquet": (["--set", "output.issues=PARQUET"], "output.issues"),
    "bad-on-invalid": (["--set", "input.on_invalid=ignore"], "input.on_invalid"),
    "input-path-missing": (["--set", "input.path=INPUT_typo"], "'input.path'"),
    "input-path-is-parquet": (["--set", "input.path=PARQUET/data"], "input.format: parquet"),
    "input-table-is-a-path": (["--set", "input.path=null", "--set", "input.table=demo-output/input"],
                              "looks like a path, not a table name; set 'input.path' instead"),
    "input-table-missing": (["--set", "input.path=null", "--set", "input.table=no_such_table"], "'input.table'"),
    "bare-output-name-in-memory-catalog": (["--set", "output.scored=docs"], "'output.scored' 'docs' is a table name"),
    "drop-unknown-column": (["--set", "input.drop=[colour]"], "'input.drop'"),
    "continuous-label": ([*MODEL, "--set", "input.features=[x0, x1]", "--set", "input.label_col=label_float"],
                         "label column 'label_float' holds continuous values: 205 row(s) are not whole numbers"),
    "continuous-label-own-probs": (["--set", "input.label_col=label_float"], "regression targets are not supported"),
    "too-many-classes": ([*MODEL, "--set", "input.features=[x0, x1]", "--set", "input.label_col=label_many",
                          "--set", "detection.max_classes=100"], "more than detection.max_classes: 100"),
    "multi-label": ([*MODEL, "--set", "input.features=[x0, x1]", "--set", "input.label_col=label_multi"],
                    "multi-label (array) labels are not supported by find_label_issues yet"),
    "bad-max-classes": (["--set", "detection.max_classes=many"], "detection.max_classes"),
    "result-columns-need-drop": (["--set", "input.path=SCORED", "--set", "input.drop=[run_id]",
                                  "--set", "output.scored=SCORED_again"],
                                 "input.drop: ['label_quality'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_and_touches_nothing(spark, setup, capsys, case):
    root, conf, cfg = setup
    before = _versions(spark, cfg)
    overrides, text = CASES[case]
    overrides = [o.replace("INPUT", str(root / "input")).replace("PARQUET", str(root / "parquet_here"))
                 .replace("SCORED", str(root / "scored")) for o in overrides]
    capsys.readouterr()
    assert cli_main(["detect", "--config", conf, "--set", f"run.id={case}", *overrides]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sparknoise: error:")]
    assert len(err) == 1 and text in err[0], err
    if case in ("continuous-label", "continuous-label-own-probs", "too-many-classes", "multi-label"):
        assert len(err[0]) < 400 and "classes=[" not in err[0] and "__sn" not in err[0], err  # short, no plan dump
    assert _versions(spark, cfg) == before
    assert os.listdir(root / "parquet_here") == ["data"]
    assert not os.path.exists(os.path.join("spark-warehouse", "docs"))  # no table name became a local folder


def test_probs_repair_clip_repairs_and_counts(spark, setup):
    root, conf, cfg = setup
    assert cli_main(["detect", "--config", conf, "--set", "run.id=clip", "--set", "input.probs_col=probs_hair",
                     "--set", "input.probs_repair=clip"]) == 0
    run = spark.read.format("delta").load(cfg["output"]["runs"]).filter("run_id = 'clip'").first()
    assert run["status"] == "succeeded" and json.loads(run["metrics"])["repaired_probability_rows"] == 1
    # the repaired row is [0, 1, 0]: the same flags as the good column with that row replaced
    import cleanlab.filter as cf

    rows = [_row(i) for i in range(N)]
    probs = np.array([r["probs_hair"] for r in rows])
    probs[7] = [0.0, 1.0, 0.0]
    mask = cf.find_label_issues(np.array([r["label"] for r in rows]), probs)
    scored = spark.read.format("delta").load(cfg["output"]["scored"]).filter("run_id = 'clip'")
    assert sorted(r["id"] for r in scored.filter("is_label_issue").collect()) == [i for i in range(N) if mask[i]]


def test_input_drop_lets_a_scored_table_be_detected_again(spark, setup):
    # a job's own scored table as input: its result columns go with input.drop
    root, conf, cfg = setup
    result_cols = ["label_quality", "predicted_label", "is_label_issue", "issue_rank", "sample_weight", "round",
                   "run_id"]
    assert cli_main(["detect", "--config", conf, "--set", "run.id=again", "--set", f"input.path={root / 'scored'}",
                     "--set", "input.where=run_id = 'good'", "--set", f"input.drop=[{', '.join(result_cols)}]",
                     "--set", f"output.scored={root / 'scored_again'}"]) == 0
    again = spark.read.format("delta").load(str(root / "scored_again"))
    first = spark.read.format("delta").load(cfg["output"]["scored"]).filter("run_id = 'good'")
    assert sorted(r["id"] for r in again.filter("is_label_issue").collect()) == \
        sorted(r["id"] for r in first.filter("is_label_issue").collect())
    config = json.loads(spark.read.format("delta").load(cfg["output"]["runs"]).filter("run_id = 'again'")
                        .first()["config"])
    assert config["input"]["drop"] == result_cols
    assert set(config) == {"input", "model", "detection", "output", "tracking", "run"}  # no inject/evaluate


def test_on_invalid_skip_excludes_and_counts(spark, setup):
    root, conf, cfg = setup
    assert cli_main(["detect", "--config", conf, "--set", "run.id=skip", "--set", "input.on_invalid=skip",
                     "--set", "input.label_col=label_null"]) == 0
    run = spark.read.format("delta").load(cfg["output"]["runs"]).filter("run_id = 'skip'").first()
    assert run["status"] == "succeeded" and run["n_skipped"] == 1 and run["n_rows"] == N - 1
    assert json.loads(run["metrics"])["skipped"] == {"label_null": 1}
    scored = spark.read.format("delta").load(cfg["output"]["scored"]).filter("run_id = 'skip'")
    assert scored.count() == N - 1 and scored.filter("id = 7").count() == 0
    # the kept rows get the flags of a run on those rows alone
    import cleanlab.filter as cf

    kept = [_row(i) for i in range(N) if i != 7]
    mask = cf.find_label_issues(np.array([r["label"] for r in kept]), np.array([r["probs"] for r in kept]))
    flagged = sorted(r["id"] for r in scored.filter("is_label_issue").select("id").collect())
    assert flagged == [r["id"] for r, m in zip(kept, mask) if m]


# The audit job (sparknoise audit): the engine's messages are unit-tested in test_data_issues.py; here that the
# job stops with one line naming the key or column and writes none of its tables (nor a runs row).
AUDIT_CASES = {
    "unknown-issue-type": (["--set", "audit.issue_types=[duplicates]"], "'audit.issue_types': unknown issue type"),
    "no-features-for-near-duplicates": (["--set", "audit.issue_types=[near_duplicate]"],
                                        "issue type 'near_duplicate' needs feature columns"),
    "null-feature": (["--set", "audit.features=[x0, x_null]"], "feature column 'x_null' has 1 row(s) with a null"),
    "non-numeric-feature": (["--set", "audit.features=[x0, x_text]"], "feature column 'x_text' has type string"),
    "k-not-below-rows": (["--set", "audit.features=[x0, x1]", "--set", "audit.issue_types=[outlier]",
                         "--set", f"audit.k={N}"], "'audit.k': k=240"),
}


@pytest.mark.parametrize("case", list(AUDIT_CASES))
def test_audit_bad_input_exits_2_and_writes_nothing(setup, capsys, case):
    root, _, _ = setup
    out = {n: str(root / f"audit_{case}" / n) for n in ("data_issues", "duplicate_sets", "leakage", "runs")}
    overrides, text = AUDIT_CASES[case]
    capsys.readouterr()
    assert cli_main(["audit", "--set", f"input.path={root / 'input'}", "--set", "input.probs_col=probs",
                     *[a for n, loc in out.items() for a in ("--set", f"output.{n}={loc}")], *overrides]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sparknoise: error:")]
    assert len(err) == 1 and text in err[0], err
    assert not os.path.exists(root / f"audit_{case}")
