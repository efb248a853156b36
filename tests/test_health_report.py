"""The health summary (parity with cleanlab.dataset) and the HTML label-health report."""

from __future__ import annotations

import json
import re

import cleanlab.dataset as cd
import numpy as np
import pandas as pd
import pytest
import yaml
from parity_cases import dataset, to_frame

import sparknoise as sn
from sparknoise.cli import main as cli_main
from sparknoise.core.health import find_overlapping_classes, rank_classes_by_label_quality, summarize_health


def embedded(path) -> dict:
    """The JSON numbers a report embeds."""
    text = open(path, encoding="utf-8").read()
    match = re.search(r'<script type="application/json" id="sparknoise-report-data">(.*?)</script>', text, re.S)
    assert match, "the report embeds its numbers"
    return json.loads(match.group(1).replace("<\\/", "</"))


@pytest.mark.parametrize(
    "name, asymmetric",
    [("k3", False), ("k5_imbalanced", True), ("k4_missing_class", False), ("k25", False)],
)
def test_health_summary_matches_cleanlab_dataset(spark, name, asymmetric):
    d = dataset(name)
    res = sn.find_label_issues(to_frame(spark, d))
    names = [str(c) for c in res.classes]
    ours = sn.health_summary(res, asymmetric=asymmetric)
    ref = cd.health_summary(d.labels, d.pred_probs, class_names=names, asymmetric=asymmetric, verbose=False)
    assert ours.overall_label_health_score == pytest.approx(ref["overall_label_health_score"], abs=1e-15)
    np.testing.assert_allclose(ours.joint, ref["joint"], rtol=0, atol=1e-15)
    pd.testing.assert_frame_equal(ours.classes_by_label_quality, ref["classes_by_label_quality"])
    pd.testing.assert_frame_equal(ours.overlapping_classes, ref["overlapping_classes"])
    # the same numbers from what a run keeps in its runs row (calibrated joint, N, num_label_issues)
    kept = summarize_health(res.confident_joint.astype(int).tolist(), res.n_rows, res.num_label_issues, names,
                            asymmetric=asymmetric)
    pd.testing.assert_frame_equal(kept.classes_by_label_quality, ref["classes_by_label_quality"])
    assert kept.overall_label_health_score == ours.overall_label_health_score
    # the single functions without class names, as cleanlab gives them from a joint
    joint = ref["joint"]
    pd.testing.assert_frame_equal(
        rank_classes_by_label_quality(joint, len(d.labels)),
        cd.rank_classes_by_label_quality(joint=joint, num_examples=len(d.labels)),
    )
    pd.testing.assert_frame_equal(
        find_overlapping_classes(joint, len(d.labels), asymmetric=not asymmetric),
        cd.find_overlapping_classes(joint=joint, num_examples=len(d.labels), asymmetric=not asymmetric),
    )


def test_result_report_and_notebook_tables(spark, tmp_path):
    d = dataset("k3")
    res = sn.find_label_issues(to_frame(spark, d))
    health = res.health_summary()
    assert set(health.as_dict()) == {"overall_label_health_score", "joint", "classes_by_label_quality",
                                     "overlapping_classes"}
    assert "<table" in health._repr_html_() and "Label Quality Score" in health._repr_html_()
    summary = res.summary()
    assert summary["num_flagged"] == res.num_flagged and "<table" in summary._repr_html_()

    path = res.report(str(tmp_path / "nb" / "report.html"), passthrough=["true_label"], top=10)
    data = embedded(path)
    assert data["n_rows"] == 3000 and data["num_flagged"] == res.num_flagged
    assert data["num_label_issues"] == res.num_label_issues
    assert data["overall_label_health_score"] == pytest.approx(health.overall_label_health_score)
    assert data["estimated_noise_rate"] == pytest.approx(1 - np.trace(res.joint))
    assert sum(data["quality_histogram"]["flagged"]) == res.num_flagged
    assert sum(data["quality_histogram"]["kept"]) == 3000 - res.num_flagged
    top = [r["id"] for r in res.issues().limit(10).select("id").collect()]
    assert data["top_ids"] == top
    html = open(path, encoding="utf-8").read()
    assert html.count("data:image/png;base64,") == 3 and "http://" not in html and "https://" not in html
    assert "true_label" in html  # the passthrough column is listed


@pytest.fixture(scope="module")
def job_report(spark, tmp_path_factory):
    """A detect run from the job (own probabilities, string classes) and its report from the tables."""
    from sparknoise.noise.synthetic import noisy_probabilities

    root = tmp_path_factory.mktemp("report_job")
    d = noisy_probabilities(2500, 4, noise_rate=0.2, seed=81)
    names = ["cat", "dog", "fox", "owl"]
    frame = d.to_pandas()
    frame["label"] = [names[k] for k in frame["label"]]
    frame["note"] = [f"row {i}" for i in frame["id"]]
    spark.createDataFrame(frame).write.format("delta").save(str(root / "preds"))
    cfg = {
        "input": {"path": str(root / "preds"), "probs_col": "pred_probs", "classes": names,
                  "passthrough": ["note"]},
        "output": {n: str(root / n) for n in ("scored", "issues", "runs")},
    }
    conf = root / "detect.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    assert cli_main(["detect", "--config", str(conf), "--set", "run.id=rep1"]) == 0
    out = root / "report-rep1.html"
    assert cli_main(["report", "--run-id", "rep1", "--config", str(conf), "--output", str(out)]) == 0
    return cfg, out, d


def test_job_report_holds_the_runs_table_numbers(spark, job_report, capsys):
    cfg, out, d = job_report
    run = spark.read.format("delta").load(cfg["output"]["runs"]).filter("run_id = 'rep1'").first()
    data = embedded(out)
    assert data["run_id"] == "rep1"
    assert (data["n_rows"], data["n_classes"], data["num_flagged"], data["num_label_issues"]) == (
        run["n_rows"], run["n_classes"], run["num_flagged"], run["num_label_issues"])
    assert data["classes"] == json.loads(run["classes"]) == ["cat", "dog", "fox", "owl"]
    cj = np.array(run["confident_joint"], dtype=float)
    assert data["estimated_noise_rate"] == pytest.approx(1 - np.trace(cj / cj.sum()))
    assert data["overall_label_health_score"] == pytest.approx(1 - run["num_label_issues"] / run["n_rows"])
    # the class table is cleanlab's on the same labels and probabilities
    ref = cd.health_summary(d.labels, d.pred_probs, class_names=data["classes"], verbose=False)
    assert data["overall_label_health_score"] == pytest.approx(ref["overall_label_health_score"])
    ours = pd.DataFrame(data["classes_by_label_quality"])
    pd.testing.assert_frame_equal(ours, ref["classes_by_label_quality"], check_dtype=False)
    # the histogram covers the scored table; the listed rows are the issues table's first 50
    assert sum(data["quality_histogram"]["flagged"]) == run["num_flagged"]
    assert sum(data["quality_histogram"]["kept"]) == run["n_rows"] - run["num_flagged"]
    issues = spark.read.format("delta").load(cfg["output"]["issues"])
    first = [r["id"] for r in issues.orderBy("issue_rank").limit(50).select("id").collect()]
    assert data["top_ids"] == first
    html = open(out, encoding="utf-8").read()
    assert cfg["input"]["path"] in html and "input Delta version" in html and "row " in html
    # a run id that is not there: a one-line error naming the run and the key, exit 2
    assert cli_main(["report", "--run-id", "nope", "--set", f"output.runs={cfg['output']['runs']}",
                     "--set", f"output.issues={cfg['output']['issues']}",
                     "--set", f"output.scored={cfg['output']['scored']}"]) == 2
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and "output.runs" in err


def test_report_opens_in_headless_chromium(job_report, tmp_path):
    from browser import find_or_install_chromium, headless
    from matplotlib.image import imread

    chromium, why = find_or_install_chromium()
    if chromium is None:
        pytest.skip(f"headless Chromium unavailable: {why}")
    _, out, _ = job_report
    url = f"file://{out}"
    dom = headless(chromium, url, str(tmp_path / "profile-dom"), "--virtual-time-budget=5000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-heatmap-loaded="true"' in dom.stdout, "the heatmap image decoded in the browser"
    shot = tmp_path / "report.png"
    proc = headless(chromium, url, str(tmp_path / "profile-shot"), "--window-size=1280,1400",
                    f"--screenshot={shot}")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    pixels = imread(str(shot))[..., :3]  # floats in [0, 1]
    assert pixels.shape[:2] == (1400, 1280)
    assert pixels.std() > 0.05, "the page is not blank"
    # the heatmap is on screen: viridis' dark purple and its yellow, which nothing else on the page uses
    as_int = (pixels * 255).round().astype(int)

    def near(rgb, tol=40):
        return int((np.abs(as_int - np.array(rgb)).sum(axis=2) < tol).sum())

    assert near((68, 1, 84)) > 500 and near((253, 231, 37)) > 500


def test_report_stays_readable_at_100_classes(tmp_path):
    from sparknoise.report.data import ReportData
    from sparknoise.report.html import write_report
    from sparknoise.report.plots import most_confused_classes

    K, n = 100, 50_000
    rng = np.random.default_rng(5)
    cj = rng.integers(0, 4, size=(K, K)) + np.diag(rng.integers(300, 600, size=K))
    cj[7, 42] = cj[42, 7] = 90  # the most confused pair
    names = [f"class_{k}" for k in range(K)]
    health = summarize_health(cj, n, 4000, names)
    hist = pd.DataFrame({"bin_start": np.arange(20) / 20, "bin_end": np.arange(1, 21) / 20,
                         "flagged": [100] * 5 + [0] * 15, "kept": [0] * 5 + [100] * 15})
    top = pd.DataFrame({"id": range(50), "given_label": names[:50], "suggested_label": names[50:],
                        "label_quality": np.linspace(0, 0.1, 50), "issue_rank": range(1, 51)})
    data = ReportData(run={"run_id": "k100"}, classes=names, n_rows=n, num_flagged=500, num_label_issues=4000,
                      confident_joint=cj, noise_matrix=cj / cj.sum(axis=0), health=health,
                      quality_histogram=hist, top_rows=top)
    shown = most_confused_classes(health.joint, 30)
    assert len(shown) == 30 and {7, 42} <= set(shown)
    html = open(write_report(data, str(tmp_path / "k100.html")), encoding="utf-8").read()
    assert "100 classes are too many for a readable heatmap" in html and 'id="heatmap-noise-matrix"' in html
    assert html.count("<tr>") < 100 + 25 + 50 + 40  # classes, top pairs, rows, run details: not K x K cells
    assert embedded(tmp_path / "k100.html")["top_ids"] == list(range(50))
