"""The evaluate job: detection quality and the impact curve as Delta tables, PNG charts and a runs row.

``detection.task: regression`` evaluates a numeric label with a regressor (``model.estimator``):
regression noise modes (``evaluate.noise_mode``: a mode or a mapping mode -> share), detection by
``RegressionCleanLearning`` (``detection.frac_issues`` fixes k, ``detection.n_boot``,
``detection.include_aleatoric_uncertainty``), and the tables gain ``mode`` (detection: ``all`` and
each injected mode) and ``r2``, ``rmse``, ``mae`` (impact, with ``test_accuracy`` null); those
columns are added to an existing table (Delta schema merge). The impact chart plots test R².

``detection.task: multilabel`` evaluates an array-of-tags label (or a delimited string with
``input.label_sep``): tags flip per class, the detectors are scored over (row, class) flips, and the
impact table gains ``micro_f1`` and ``macro_f1`` (``test_accuracy``: exact tag-set matches; schema
merge as for regression). The impact chart plots test micro F1.

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
from sparknoise.noise.multilabel_evaluation import MULTILABEL_IMPACT_COLUMNS
from sparknoise.noise.regression_evaluation import REGRESSION_DETECTION_COLUMNS, REGRESSION_IMPACT_COLUMNS
from sparknoise.report.plots import detection_bars_png, impact_curve_png

log = logging.getLogger("sparknoise")

DETECTION_SCHEMA = ("run_id string, noise_mode string, noise_rate double, detector string, flagged long, "
                    "true_positives long, noisy long, precision double, recall double, f1 double")
IMPACT_SCHEMA = ("run_id string, noise_mode string, noise_rate double, variant string, train_rows long, "
                 "flagged long, test_rows long, test_accuracy double")
# detection.task: regression: one detector scored per mode; the impact in R2, RMSE and MAE.
REGRESSION_DETECTION_SCHEMA = ("run_id string, noise_mode string, noise_rate double, detector string, mode string, "
                               "flagged long, true_positives long, noisy long, precision double, recall double, "
                               "f1 double")
REGRESSION_IMPACT_SCHEMA = ("run_id string, noise_mode string, noise_rate double, variant string, train_rows long, "
                            "flagged long, test_rows long, r2 double, rmse double, mae double")
# detection.task: multilabel: detection over (row, class) flips (same columns); the impact in F1 too.
MULTILABEL_IMPACT_SCHEMA = IMPACT_SCHEMA + ", micro_f1 double, macro_f1 double"


def _rows(frame: pd.DataFrame, columns: list[str], run_id: str, mode: str) -> list[tuple]:
    def value(v):
        return None if v is None or (isinstance(v, float) and v != v) else (v.item() if hasattr(v, "item") else v)

    return [(run_id, mode, *[value(v) for v in rec]) for rec in frame[columns].itertuples(index=False)]


def scratch_location(cfg: dict) -> str:
    """Where this run materialises its intermediate Delta tables (one folder or prefix per run id)."""
    return tables.scratch_location(cfg["evaluate"]["scratch"], cfg["output"]["detection"], cfg["run"]["id"])


def write_plots(result: EvaluationResult, folder: str, detection_noise_rate: float) -> list[str]:
    """The two PNG charts of an evaluation; returns their paths."""
    if result.task == "regression":
        return [
            impact_curve_png(result.impact, os.path.join(folder, "impact_curve.png"), metric="r2",
                             ylabel="test R² (trusted values)", title="Test R² vs injected label noise"),
            detection_bars_png(result.detection, os.path.join(folder, "detection_precision_recall.png"),
                               noise_rate=detection_noise_rate, labels="mode"),
        ]
    if result.task == "multilabel":
        return [
            impact_curve_png(result.impact, os.path.join(folder, "impact_curve.png"), metric="micro_f1",
                             ylabel="test micro F1 (trusted tags)", title="Test micro F1 vs injected tag noise"),
            detection_bars_png(result.detection, os.path.join(folder, "detection_precision_recall.png"),
                               noise_rate=detection_noise_rate),
        ]
    return [
        impact_curve_png(result.impact, os.path.join(folder, "impact_curve.png")),
        detection_bars_png(result.detection, os.path.join(folder, "detection_precision_recall.png"),
                           noise_rate=detection_noise_rate),
    ]


def format_tables(result: EvaluationResult) -> str:
    """Both tables as text (what the job prints)."""
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        if result.task == "regression":
            r2 = result.impact.pivot(index="noise_rate", columns="variant", values="r2")
            rmse = result.impact.pivot(index="noise_rate", columns="variant", values="rmse")
            order = [c for c in ("noisy", "pruned", "clean") if c in r2.columns]
            return ("Detection quality against the injected noise (all rows, then per mode):\n"
                    + result.detection.to_string(index=False)
                    + "\n\nTest R² (trusted test values) by training values:\n" + r2[order].to_string()
                    + "\n\nTest RMSE:\n" + rmse[order].to_string())
        if result.task == "multilabel":
            order = [c for c in ("noisy", "pruned", "downweighted", "clean") if c in set(result.impact["variant"])]
            micro = result.impact.pivot(index="noise_rate", columns="variant", values="micro_f1")[order]
            macro = result.impact.pivot(index="noise_rate", columns="variant", values="macro_f1")[order]
            return ("Detection quality against the known tag flips ((row, class) pairs):\n"
                    + result.detection.to_string(index=False)
                    + "\n\nTest micro F1 (trusted test tags) by training tags:\n" + micro.to_string()
                    + "\n\nTest macro F1:\n" + macro.to_string())
        impact = result.impact.pivot(index="noise_rate", columns="variant", values="test_accuracy")
        impact = impact[[c for c in ("noisy", "pruned", "downweighted", "clean") if c in impact.columns]]
        return ("Detection quality against the known flips:\n" + result.detection.to_string(index=False)
                + "\n\nTest accuracy (trusted test labels) by training labels:\n" + impact.to_string())


def run_evaluate(spark: SparkSession, cfg: dict) -> tuple[dict, EvaluationResult]:
    """Run the evaluate job; returns (its runs-table record, the evaluation)."""
    clock = time.perf_counter()
    cfg, record, meta = start_record(cfg, "evaluate")
    inp, ev, model, out, run_id = cfg["input"], cfg["evaluate"], cfg["model"], cfg["output"], cfg["run"]["id"]
    trusted = ev["trusted_label_col"] or inp["label_col"]
    pinned, df = job_input(spark, inp, label_cols=[trusted])
    record.update(input_location=pinned.location, input_version=pinned.version)
    for name in ("detection", "impact", "runs"):
        check_output_location(spark, f"output.{name}", out[name])
    det = cfg["detection"]
    regression, multilabel = det["task"] == "regression", det["task"] == "multilabel"
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
        task_args = (dict(task="regression", n_boot=det["n_boot"], frac_issues=det["frac_issues"],
                          include_aleatoric_uncertainty=det["include_aleatoric_uncertainty"]) if regression
                     else dict(task="multilabel") if multilabel else {})
        result = evaluate_label_noise(
            df, label_col=trusted, estimator=make_estimator(model["estimator"], model["params"], task=det["task"]),
            id_col=inp["id_col"], features=inp["features"], features_col=inp["features_col"],
            noise_rates=ev["noise_rates"], noise_mode=ev["noise_mode"],
            detection_noise_rate=ev["detection_noise_rate"], test_where=ev["test_where"],
            test_fraction=ev["test_fraction"], n_folds=model["n_folds"], seed=ev["seed"],
            filter_by=cfg["detection"]["filter_by"], downweight=cfg["detection"]["downweight"],
            loss_top_fraction=ev["loss_top_fraction"], self_confidence_threshold=ev["self_confidence_threshold"],
            classes=inp["classes"], scratch=scratch, frac_zero_noise_rates=ev["frac_zero_noise_rates"],
            parallelism=ev["parallelism"], **task_args,
        )
        timings.update(result.timings)
        t = time.perf_counter()
        mode = ev["noise_mode"]
        mode = json.dumps(mode, sort_keys=True) if isinstance(mode, dict) else mode
        if regression:
            detection_columns, detection_schema = REGRESSION_DETECTION_COLUMNS, REGRESSION_DETECTION_SCHEMA
            impact_columns, impact_schema = REGRESSION_IMPACT_COLUMNS, REGRESSION_IMPACT_SCHEMA
        elif multilabel:
            detection_columns, detection_schema = DETECTION_COLUMNS, DETECTION_SCHEMA
            impact_columns, impact_schema = MULTILABEL_IMPACT_COLUMNS, MULTILABEL_IMPACT_SCHEMA
        else:
            detection_columns, detection_schema = DETECTION_COLUMNS, DETECTION_SCHEMA
            impact_columns, impact_schema = IMPACT_COLUMNS, IMPACT_SCHEMA
        detection = spark.createDataFrame(_rows(result.detection, detection_columns, run_id, mode), detection_schema)
        impact = spark.createDataFrame(_rows(result.impact, impact_columns, run_id, mode), impact_schema)
        # a regression (multilabel) run adds its columns (mode; r2, rmse, mae | micro_f1, macro_f1) to a table
        # a multiclass run created
        write_run_rows(detection, out["detection"], run_id=run_id, metadata=meta, merge_schema=regression)
        write_run_rows(impact, out["impact"], run_id=run_id, metadata=meta, merge_schema=regression or multilabel)
        plots = write_plots(result, out["plots"], float(ev["detection_noise_rate"]))
        timings["write_outputs"] = round(time.perf_counter() - t, 3)
        at = result.detection[result.detection["noise_rate"] == float(ev["detection_noise_rate"])]
        record.update(
            status="succeeded", n_rows=result.n_train + result.n_test, n_classes=None if regression else len(result.classes),
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
    """The evaluation in MLflow: precision/recall per detector (per mode for regression) at the detection
    rate, accuracy (regression: R² and RMSE) per variant and rate."""
    rate = float(cfg["evaluate"]["detection_noise_rate"])
    numbers: dict[str, float] = {}
    regression = result.task == "regression"
    for row in result.detection[result.detection["noise_rate"] == rate].to_dict(orient="records"):
        name = f"{row['detector']}.{row['mode']}" if regression else row["detector"]
        for key in ("precision", "recall", "f1"):
            numbers[f"detection.{name}.{key}"] = row[key]
    for row in result.impact.to_dict(orient="records"):
        pairs = ((("r2", "r2"), ("rmse", "rmse")) if regression else
                 (("micro_f1", "micro_f1"), ("macro_f1", "macro_f1")) if result.task == "multilabel"
                 else (("accuracy", "test_accuracy"),))
        for key, column in pairs:
            numbers[f"{key}.{row['variant']}.rate_{row['noise_rate']:g}"] = row[column]
    with tempfile.TemporaryDirectory() as folder:
        files = {f"plots/{os.path.basename(p)}": p for p in plots}
        for name, frame in (("detection.csv", result.detection), ("impact.csv", result.impact)):
            frame.to_csv(os.path.join(folder, name), index=False)
            files[name] = os.path.join(folder, name)
        track(spark, cfg, "evaluate", record, timings, metrics=numbers, files=files)


def read_evaluation(spark: SparkSession, location: str, run_id: str):
    """One run's rows of a detection or impact table."""
    return read_table(spark, location).filter(F.col("run_id") == run_id)
