"""The inject and evaluate jobs end to end: Delta outputs, the impact curve, PNG charts, the runs log."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyspark.sql import functions as F

from sparknoise.cli import main as cli_main
from sparknoise.jobs.tables import latest_version
from sparknoise.noise.synthetic import features_table

FEATURES = [f"x{j}" for j in range(10)]


@pytest.fixture(scope="module")
def clean_table(spark, tmp_path_factory):
    """Gaussian classes with trusted labels (no noise), as a Delta table."""
    path = str(tmp_path_factory.mktemp("clean") / "input")
    features_table(spark, 3000, 3, n_features=10, noise_rate=0.0, seed=1, separation=1.0).drop("label").withColumnRenamed(
        "true_label", "label").write.format("delta").save(path)
    return path


def test_inject_job_writes_a_noisy_copy(spark, clean_table, tmp_path):
    before = latest_version(spark, clean_table)
    out = tmp_path / "out"
    code = cli_main(["inject", f"--input.path={clean_table}", "--set", "inject.noise_rate=0.1", "--set", "run.id=inj1",
                     "--set", f"output.noisy={out}/noisy", "--set", f"output.runs={out}/runs"])
    assert code == 0
    assert latest_version(spark, clean_table) == before  # the source is never written
    noisy = spark.read.format("delta").load(f"{out}/noisy")
    assert noisy.count() == 3000 and noisy.filter("is_noisy").count() == 300
    original = spark.read.format("delta").load(clean_table).select("id", F.col("label").alias("original"))
    joined = noisy.join(original, "id")
    assert joined.filter("true_label = original").count() == 3000
    assert joined.filter("label != original").count() == 300
    run = spark.read.format("delta").load(f"{out}/runs").filter("run_id = 'inj1'").first()
    assert run["job"] == "inject" and run["status"] == "succeeded" and run["num_flagged"] == 300


def test_bad_inject_config_exits_2(clean_table, tmp_path, capsys):
    code = cli_main(["inject", f"--input.path={clean_table}", "--set", "inject.mode=sideways",
                     "--set", f"output.noisy={tmp_path}/n"])
    assert code == 2
    assert "inject.mode" in capsys.readouterr().err


def test_evaluate_job_impact_curve_and_detection(spark, clean_table, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main([
        "evaluate", f"--input.path={clean_table}", "--set", "evaluate.trusted_label_col=label",
        "--set", f"input.features={FEATURES}", "--set", "model.params={maxIter: 20}", "--set", "model.n_folds=2",
        "--set", "evaluate.noise_rates=[0.0, 0.2]", "--set", "evaluate.noise_mode=class_conditional",
        "--set", "evaluate.frac_zero_noise_rates=0.5", "--set", "run.id=ev1",
        "--set", f"output.detection={out}/detection", "--set", f"output.impact={out}/impact",
        "--set", f"output.plots={out}/plots", "--set", f"output.runs={out}/runs",
    ])
    printed = capsys.readouterr().out
    assert code == 0
    assert "Detection quality" in printed and "Test accuracy" in printed
    impact = {(r["noise_rate"], r["variant"]): r["test_accuracy"]
              for r in spark.read.format("delta").load(f"{out}/impact").filter("run_id = 'ev1'").collect()}
    assert len(impact) == 8
    noisy = [impact[(rate, "noisy")] for rate in (0.0, 0.2)]
    print("impact", sorted(impact.items()))
    # Measured (2,400 training rows, asymmetric class-conditional noise): noisy 0.93 -> 0.88 -> 0.77,
    # pruned at 20%: 0.86, clean 0.93.
    assert noisy[0] > noisy[1] + 0.05
    assert impact[(0.2, "pruned")] > noisy[1] + 0.03  # cleaning recovers part of the loss
    assert impact[(0.2, "downweighted")] > noisy[1] + 0.03
    assert impact[(0.2, "clean")] >= impact[(0.2, "pruned")] - 0.01
    detection = spark.read.format("delta").load(f"{out}/detection").filter("run_id = 'ev1'")
    at20 = {r["detector"]: r for r in detection.filter(F.col("noise_rate") == 0.2).collect()}
    assert {"prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
            "low_normalized_margin", "low_self_confidence", "log_loss_top_fraction",
            "self_confidence_below_0.1", "consensus_prune_by_noise_rate_and_log_loss"} == set(at20)
    cl = at20["prune_by_noise_rate"]
    assert cl["noisy"] > 0 and cl["precision"] > 0.6 and cl["recall"] > 0.5
    assert np.isclose(cl["f1"], 2 * cl["precision"] * cl["recall"] / (cl["precision"] + cl["recall"]))
    assert detection.filter(F.col("noise_rate") == 0.0).first()["noisy"] == 0
    run = spark.read.format("delta").load(f"{out}/runs").filter("run_id = 'ev1'").first()
    assert run["job"] == "evaluate" and run["status"] == "succeeded"
    print("timings", run["timings"])
    metrics = json.loads(run["metrics"])
    assert len(metrics["impact"]) == 8
    assert not (out / "_sparknoise_scratch").exists()  # scratch tables removed after the run
    for name in ("impact_curve.png", "detection_precision_recall.png"):
        _assert_real_png(out / "plots" / name)


def _assert_real_png(path):
    import matplotlib.image as mpimg

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(str(path))
    assert image.shape[0] > 200 and image.shape[1] > 300
    rgb = image[..., :3]
    assert rgb.std() > 0.05  # not blank
    assert (rgb.min(axis=2) < 0.5).mean() > 0.01  # a fair share of dark (drawn) pixels
