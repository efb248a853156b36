"""The evaluate job: detection quality and the impact curve as Delta tables, PNG charts and a runs row.

``run_evaluate(spark, cfg)`` reads ``input.*`` (pinned Delta version, ``input.where``), runs
:func:`sparknoise.evaluate_label_noise` with the trusted label ``evaluate.trusted_label_col``
(default ``input.label_col``), then writes ``output.detection`` and ``output.impact`` (rows of this
run id replaced), ``impact_curve.png`` and ``detection_precision_recall.png`` under
``output.plots``, prints both tables and records the run in ``output.runs`` (job = evaluate).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import traceback

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparknoise.errors import InputError
from sparknoise.jobs import tables
from sparknoise.jobs.run_log import start_record, write_run_record
from sparknoise.jobs.tables import check_output_location, job_input, read_table, write_run_rows
from sparknoise.jobs.tracking import track
from sparknoise.ml.estimators import make_estimator
from sparknoise.noise.evaluation import DETECTION_COLUMNS, IMPACT_COLUMNS, EvaluationResult, evaluate_label_noise
from sparknoise.report.plots import detection_bars_png, impact_curve_png

log = logging.getLogger("sparknoise")

DETECTION_SCHEMA = ("run_id string, noise_mode string, noise_rate double, detector string, flagged long, "
                    "true_positives long, noisy long, precision double, recall double, f1 double")
IMPACT_SCHEMA = ("run_id string, noise_mode string, noise_rate double, variant string, train_rows long, "
                 "flagged long, test_rows long, test_accuracy double")


def _rows(frame: pd.DataFrame, columns: list[str], run_id: str, mode: str) -> list[tuple]:
    def value(v):
        return None if v is None or (isinstance(v, float) and v != v) else (v.item() if hasattr(v, "item") else v)

    return [(run_id, mode, *[value(v) for v in rec]) for rec in frame[columns].itertuples(index=False)]


def scratch_location(cfg: dict) -> str:
    """Where this run materialises its intermediate Delta tables (one folder or prefix per run id)."""
    return tables.scratch_location(cfg["evaluate"]["scratch"], cfg["output"]["detection"], cfg["run"]["id"])


def write_plots(result: EvaluationResult, folder: str, detection_noise_rate: float) -> list[str]:
    """The two PNG charts of an evaluation; returns their paths."""
    return [
        impact_curve_png(result.impact, os.path.join(folder, "impact_curve.png")),
        detection_bars_png(result.detection, os.path.join(folder, "detection_precision_recall.png"),
                           noise_rate=detection_noise_rate),
    ]


def format_tables(result: EvaluationResult) -> str:
    """Both tables as text (what the job prints)."""
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        impact = result.impact.pivot(index="noise_rate", columns="variant", values="test_accuracy")
        impact = impact[[c for c in ("noisy", "pruned", "downweighted", "clean") if c in impact.columns]]
        return ("Detection quality against the known flips:\n" + result.detection.to_string(index=False)
                + "\n\nTest accuracy (trusted test labels) by training labels:\n" + impact.to_string())


def run_evaluate(spark: SparkSession, cfg: dict) -> tuple[dict, EvaluationResult]:
    """Run the evaluate job; returns (its runs-table record, the evaluation)."""
    clock = time.perf_counter()
    cfg, record, meta = start_record(cfg, "evaluate")
    inp, ev, model, out, run_id = cfg["input"], cfg["evaluate"], cfg["model"], cfg["output"], cfg["run"]["id"]
    pinned, df = job_input(spark, inp)
    record.update(input_location=pinned.location, input_version=pinned.version)
    for name in ("detection", "impact", "runs"):
        check_output_location(spark, f"output.{name}", out[name])
    trusted = ev["trusted_label_col"] or inp["label_col"]
    for key, column in (("input.id_col", inp["id_col"]), ("evaluate.trusted_label_col", trusted),
                        *[("input.features", c) for c in inp["features"] or []],
                        *[("input.features_col", c) for c in [inp["features_col"]] if c]):
        if column not in df.columns:
            raise InputError(f"'{key}': column '{column}' is not in the input; available: {df.columns}",
                             column=column)
    timings: dict[str, float] = {}
    scratch = scratch_location(cfg)
    tables.check_persistent_name(spark, "evaluate.scratch", scratch)
    try:
        result = evaluate_label_noise(
            df, label_col=trusted, estimator=make_estimator(model["estimator"], model["params"]),
            id_col=inp["id_col"], features=inp["features"], features_col=inp["features_col"],
            noise_rates=ev["noise_rates"], noise_mode=ev["noise_mode"],
            detection_noise_rate=ev["detection_noise_rate"], test_where=ev["test_where"],
            test_fraction=ev["test_fraction"], n_folds=model["n_folds"], seed=ev["seed"],
            filter_by=cfg["detection"]["filter_by"], downweight=cfg["detection"]["downweight"],
            loss_top_fraction=ev["loss_top_fraction"], self_confidence_threshold=ev["self_confidence_threshold"],
            classes=inp["classes"], scratch=scratch, frac_zero_noise_rates=ev["frac_zero_noise_rates"],
            parallelism=ev["parallelism"],
        )
        timings.update(result.timings)
        t = time.perf_counter()
        mode = ev["noise_mode"]
        detection = spark.createDataFrame(_rows(result.detection, DETECTION_COLUMNS, run_id, mode), DETECTION_SCHEMA)
        impact = spark.createDataFrame(_rows(result.impact, IMPACT_COLUMNS, run_id, mode), IMPACT_SCHEMA)
        write_run_rows(detection, out["detection"], run_id=run_id, metadata=meta)
        write_run_rows(impact, out["impact"], run_id=run_id, metadata=meta)
        plots = write_plots(result, out["plots"], float(ev["detection_noise_rate"]))
        timings["write_outputs"] = round(time.perf_counter() - t, 3)
        at = result.detection[result.detection["noise_rate"] == float(ev["detection_noise_rate"])]
        record.update(
            status="succeeded", n_rows=result.n_train + result.n_test, n_classes=len(result.classes),
            classes=json.dumps(list(result.classes), default=str),
            metrics=json.dumps({"n_train": result.n_train, "n_test": result.n_test, "plots": plots,
                                "detection": at.to_dict(orient="records"),
                                "impact": result.impact.to_dict(orient="records")}, default=str),
        )
    except Exception as e:
        record.update(status="failed", error=f"{type(e).__name__}: {e}"[:4000])
        log.error("run %s failed: %s", run_id, record["error"])
        log.debug("%s", traceback.format_exc())
        write_run_record(spark, out["runs"], record, timings, clock, meta)
        track(spark, cfg, "evaluate", record, timings)
        raise
    finally:
        tables.remove_scratch(spark, scratch)
    write_run_record(spark, out["runs"], record, timings, clock, meta)
    _track(spark, cfg, record, timings, result, plots)
    log.info("run %s: evaluation written to %s, %s and %s", run_id, out["detection"], out["impact"], out["plots"])
    return record, result


def _track(spark: SparkSession, cfg: dict, record: dict, timings: dict, result: EvaluationResult,
           plots: list[str]) -> None:
    """The evaluation in MLflow: precision/recall per detector at the detection rate, accuracy per variant."""
    rate = float(cfg["evaluate"]["detection_noise_rate"])
    numbers: dict[str, float] = {}
    for row in result.detection[result.detection["noise_rate"] == rate].to_dict(orient="records"):
        for key in ("precision", "recall", "f1"):
            numbers[f"detection.{row['detector']}.{key}"] = row[key]
    for row in result.impact.to_dict(orient="records"):
        numbers[f"accuracy.{row['variant']}.rate_{row['noise_rate']:g}"] = row["test_accuracy"]
    with tempfile.TemporaryDirectory() as folder:
        files = {f"plots/{os.path.basename(p)}": p for p in plots}
        for name, frame in (("detection.csv", result.detection), ("impact.csv", result.impact)):
            frame.to_csv(os.path.join(folder, name), index=False)
            files[name] = os.path.join(folder, name)
        track(spark, cfg, "evaluate", record, timings, metrics=numbers, files=files)


def read_evaluation(spark: SparkSession, location: str, run_id: str):
    """One run's rows of a detection or impact table."""
    return read_table(spark, location).filter(F.col("run_id") == run_id)
