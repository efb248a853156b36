"""The detect job: read a table, get out-of-fold probabilities, find label issues, write three tables.

``run_detect(spark, cfg)`` is what ``sparknoise detect``, ``jobs/detect.py`` (spark-submit) and the
Databricks wheel task all call. Outputs (Delta tables; each row carries its run_id):

* scored: every input row once + label_quality, predicted_label, is_label_issue, issue_rank,
  sample_weight, fold (when a model ran), run_id;
* issues: the flagged rows: run_id, id, given_label, suggested_label, label_quality, issue_rank,
  reason, round (+ passthrough columns);
* runs: one row per run: status, timings, input and pinned version, config and its SHA-256,
  version, counts and the K/KxK estimates.

With a model, the out-of-fold probabilities are written once to the run's scratch location
(``detection.scratch``; removed after the run when local) so detection's passes read a table, not
k fold models' predictions. scored and issues are written only after the whole detection succeeded; runs is written last
(succeeded) or on failure (failed, with the error), so an interrupted run never reads as done.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparknoise.core.agreement import CONFIDENCE, LOSS_RANK, flagged_with_agreement
from sparknoise.core.fit_quality import fit_warnings, probability_fit
from sparknoise.core.invalid_rows import ClassLabelRules, screen_invalid
from sparknoise.core.label_issues import find_label_issues
from sparknoise.core.result import LabelIssuesResult
from sparknoise.errors import InputError
from sparknoise.jobs.audit import audit_exclusions
from sparknoise.jobs.run_log import start_record, write_run_record
from sparknoise.jobs.tables import (
    check_output_location,
    check_persistent_name,
    job_input,
    materialised,
    remove_scratch,
    scratch_location,
    write_run_rows,
)
from sparknoise.jobs.tasks import task_detection
from sparknoise.jobs.tracking import track
from sparknoise.ml.cross_validation import cross_val_predict_proba
from sparknoise.ml.estimators import make_estimator

log = logging.getLogger("sparknoise")

def _reason(filter_by: str) -> Any:
    text = {
        "prune_by_noise_rate": "confident learning (prune_by_noise_rate): among the rows of its given class most "
        "likely to belong to the suggested class",
        "prune_by_class": "confident learning (prune_by_class): among the lowest self-confidence rows of its class",
        "both": "confident learning (both prune_by_class and prune_by_noise_rate)",
        "confident_learning": "confident learning: confidently counted in another class",
        "predicted_neq_given": "the model predicts another class",
        "low_normalized_margin": "among the lowest normalized margins",
        "low_self_confidence": "among the lowest self-confidences",
    }[filter_by]
    return F.lit(text)


def _probabilities(cfg: dict, df: DataFrame) -> tuple[DataFrame, str]:
    inp, model = cfg["input"], cfg["model"]
    if inp["probs_col"]:
        return df, inp["probs_col"]
    oof = cross_val_predict_proba(
        df, make_estimator(model["estimator"], model["params"]), label_col=inp["label_col"],
        features_col=inp["features_col"] or "features", id_col=inp["id_col"], n_folds=model["n_folds"],
        seed=model["seed"], probs_col="pred_probs", parallelism=model["parallelism"],
        features=inp["features"], classes=inp["classes"], check_invalid=False,
        max_classes=cfg["detection"]["max_classes"],
    )
    return oof, "pred_probs"


def _materialised_probabilities(cfg: dict, df: DataFrame, scratch: str, r: int,
                                timings: dict) -> tuple[DataFrame, str]:
    """The round's out-of-fold probabilities, written once to the run's scratch location when a model ran.

    Detection reads its input several times (validation, confident joint, selection, flags); a
    lazy out-of-fold frame would re-run every fold model's transform over the whole input on each
    read, so its rows are materialised first (a Delta write and read, never a cache).
    """
    t = time.perf_counter()
    oof, probs = _probabilities(cfg, df)
    if cfg["input"]["probs_col"]:
        return oof, probs
    timings[f"cross_validation_round_{r}"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    oof = materialised(oof, scratch, f"probabilities_round_{r}")
    timings[f"probabilities_written_round_{r}"] = round(time.perf_counter() - t, 3)
    return oof, probs


def _detect(cfg: dict, df: DataFrame, probs_col: str) -> LabelIssuesResult:
    inp, det = cfg["input"], cfg["detection"]
    return find_label_issues(
        df, label_col=inp["label_col"], probs_col=probs_col, id_col=inp["id_col"], classes=inp["classes"],
        filter_by=det["filter_by"], rank_by=det["rank_by"], frac_noise=det["frac_noise"],
        num_to_remove_per_class=det["num_to_remove_per_class"],
        min_examples_per_class=det["min_examples_per_class"], weights=det["weights"], downweight=det["downweight"],
        probs_repair=inp["probs_repair"],
    )


def run_detect(spark: SparkSession, cfg: dict) -> dict:
    """Run the detect job; returns the runs-table row as a dict. Raises after recording a failure."""
    clock = time.perf_counter()
    cfg, record, meta = start_record(cfg, "detect")  # a private copy of cfg, with its run id
    run_id = cfg["run"]["id"]
    timings: dict[str, float] = {}
    # Problems found before any work (unreadable input, missing columns) write nothing at all.
    inp = cfg["input"]
    pinned, df = job_input(spark, inp)
    record.update(input_location=pinned.location, input_version=pinned.version)
    log.info("run %s: input %s (version %s)", run_id, pinned.location, pinned.version)
    _check_columns(cfg, df)
    excluded = audit_exclusions(spark, cfg, df)
    if excluded is not None:  # rows an audit flagged (duplicate copies, outliers, null rows) left out
        # the rows left out, counted once from the input's id column alone (the rows the anti-join drops are
        # the ones a semi-join keeps): no count of the whole input before and after
        excluded[1]["excluded_rows"] = df.select(inp["id_col"]).join(excluded[0], inp["id_col"], "left_semi").count()
        df = df.join(excluded[0], inp["id_col"], "left_anti")
        log.info("run %s: %d rows left out by audit run %s (%s)", run_id, excluded[1]["excluded_rows"],
                 inp["exclude_run"], ", ".join(inp["exclude_types"]))
    for name in ("scored", "issues", "runs"):
        check_output_location(spark, f"output.{name}", cfg["output"][name])
    scratch = scratch_location(cfg["detection"]["scratch"], cfg["output"]["scored"], run_id)
    check_persistent_name(spark, "detection.scratch", scratch)
    # Probabilities are validated by find_label_issues' first pass anyway (before any write); screening
    # them here too would be one more scan of the widest column, so only skip mode looks at them.
    skip = inp["on_invalid"] == "skip"
    # The same aggregation checks that the labels look like classes (unless input.classes lists them): a
    # continuous or id-like label stops here, not inside the folds' fits.
    rules = (ClassLabelRules(cfg["detection"]["max_classes"])
             if inp["classes"] is None and cfg["detection"]["task"] == "multiclass" else None)
    # a regression run's own predictions (and uncertainties) are screened like features when skipping
    numeric = [inp[k] for k in ("prediction_col", "uncertainty_col") if skip and inp.get(k)]
    screened = screen_invalid(df, inp["on_invalid"], id_col=inp["id_col"], label_col=inp["label_col"],
                              features=(inp["features"] or []) + numeric or None, features_col=inp["features_col"],
                              probs_col=inp["probs_col"] if skip else None, class_labels=rules)
    if screened.skipped:
        log.warning("run %s: %d input rows left out (input.on_invalid: skip): %s", run_id, screened.n_skipped,
                    {k: v for k, v in screened.skipped.items() if k != "__rows__"})
    df = screened.df
    metrics: dict[str, Any] = {"skipped": {k: v for k, v in screened.skipped.items() if k != "__rows__"}}
    if excluded is not None:
        metrics["excluded"] = excluded[1]
    record.update(n_skipped=screened.n_skipped, metrics=json.dumps(metrics))
    # From here on, a failure is recorded in the runs table; scored and issues stay as they were. Bad input
    # found by validation (InputError) is reported like the checks above: nothing is written at all.
    try:
        if cfg["detection"]["task"] != "multiclass":
            _other_task(spark, cfg, df, scratch, record, metrics, timings, meta)
            return _finish(spark, cfg, record, timings, clock, meta)
        result, scored, rounds, num_flagged = _rounds(cfg, df, timings, metrics)
        metrics["repaired_probability_rows"] = result.n_repaired
        metrics["warnings"] = fit_warnings(metrics.get("model"), result.num_label_issues / max(result.n_rows, 1))
        for warning in metrics["warnings"]:
            log.warning("run %s: %s", run_id, warning)
        t = time.perf_counter()
        # The scored rows are computed once, into the run's scratch location: the issues (with their
        # loss ranks) and the scored output are both read from there, so the row map runs once and
        # nothing reaches the outputs until every row is computed.
        scored = materialised(scored.withColumn("run_id", F.lit(run_id)), scratch, "scored")
        timings["scored_computed"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        issues = _issues_frame(cfg, scored, result, num_flagged, run_id)
        write_run_rows(scored, cfg["output"]["scored"], run_id=run_id, metadata=meta)
        write_run_rows(issues, cfg["output"]["issues"], run_id=run_id, metadata=meta)
        timings["write_outputs"] = round(time.perf_counter() - t, 3)
        record.update(
            status="succeeded", n_rows=result.n_rows, n_classes=result.num_classes,
            classes=json.dumps(list(result.classes), default=str),
            num_flagged=num_flagged,
            num_label_issues=result.num_label_issues, rounds=rounds,
            thresholds=result.thresholds.tolist(), confident_joint=result.confident_joint.astype(int).tolist(),
            noise_matrix=result.noise_matrix.tolist(), inverse_noise_matrix=result.inverse_noise_matrix.tolist(),
            prior=result.prior.tolist(), metrics=json.dumps(metrics),
        )
    except InputError:
        raise
    except Exception as e:
        record.update(status="failed", error=f"{type(e).__name__}: {e}"[:4000])
        log.error("run %s failed: %s", run_id, record["error"])
        log.debug("%s", traceback.format_exc())
        write_run_record(spark, cfg["output"]["runs"], record, timings, clock, meta)
        track(spark, cfg, "detect", record, timings)
        raise
    finally:
        remove_scratch(spark, scratch)
    return _finish(spark, cfg, record, timings, clock, meta)


def _finish(spark: SparkSession, cfg: dict, record: dict, timings: dict, clock: float, meta: dict) -> dict:
    write_run_record(spark, cfg["output"]["runs"], record, timings, clock, meta)
    track(spark, cfg, "detect", record, timings)
    log.info("run %s succeeded: %s of %s rows flagged in %.1fs", record["run_id"], record["num_flagged"],
             record["n_rows"], time.perf_counter() - clock)
    return record


def _other_task(spark: SparkSession, cfg: dict, df: DataFrame, scratch: str, record: dict, metrics: dict,
                timings: dict, meta: dict) -> None:
    """A multi-label or regression run (``detection.task``): the task's engine, then the same writes."""
    run_id, inp = cfg["run"]["id"], cfg["input"]
    t = time.perf_counter()
    detection = task_detection(cfg, scratch)(df)
    timings["round_1"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    scored = materialised(detection.scored.withColumn("run_id", F.lit(run_id)), scratch, "scored")
    timings["scored_computed"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    issues = (scored.filter("is_label_issue")
              .select(F.lit(run_id).alias("run_id"), F.col(inp["id_col"]), *detection.queue_columns,
                      *[F.col(c) for c in inp["passthrough"] or []]))
    write_run_rows(scored, cfg["output"]["scored"], run_id=run_id, metadata=meta)
    write_run_rows(issues, cfg["output"]["issues"], run_id=run_id, metadata=meta)
    timings["write_outputs"] = round(time.perf_counter() - t, 3)
    metrics.update(detection.metrics)
    record.update(status="succeeded", metrics=json.dumps(metrics), **detection.record)


def _check_columns(cfg: dict, df: DataFrame) -> None:
    inp = cfg["input"]
    wanted = [("input.id_col", inp["id_col"]), ("input.label_col", inp["label_col"])]
    wanted += [("input.features", c) for c in inp["features"] or []]
    wanted += [(f"input.{k}", inp[k]) for k in ("features_col", "probs_col", "prediction_col", "uncertainty_col")
               if inp.get(k)]
    wanted += [("input.passthrough", c) for c in inp["passthrough"] or []]
    for key, column in wanted:
        if column not in df.columns:
            raise InputError(f"'{key}': column '{column}' is not in the input; available: {df.columns}", column=column)


def _rounds(cfg: dict, df: DataFrame, timings: dict,
            metrics: dict) -> tuple[LabelIssuesResult, DataFrame, int, int]:
    """Detection, repeated on the rows not yet flagged for detection.iterations rounds.

    Returns (the first round's result, the scored rows, the rounds kept, the rows flagged in all of
    them). Rows flagged in round r >= 2 are ranked after every earlier round's rows: their
    ``issue_rank`` is their rank within round r plus the number of rows flagged before it.

    With more than one round, each round's rows are materialised in the run's scratch location
    (a Delta write + read; the library never caches), so a round never recomputes the ones before it.
    When a model made the probabilities, ``metrics["model"]`` gets the first round's fit (accuracy,
    log loss, majority-class baseline: one aggregation over the materialised probabilities).
    """
    det, ident = cfg["detection"], cfg["input"]["id_col"]
    scratch = scratch_location(det["scratch"], cfg["output"]["scored"], cfg["run"]["id"])
    t = time.perf_counter()
    oof, probs = _materialised_probabilities(cfg, df, scratch, 1, timings)
    result = _detect(cfg, oof, probs)
    timings["round_1"] = round(time.perf_counter() - t, 3)
    if not cfg["input"]["probs_col"]:
        t = time.perf_counter()
        metrics["model"] = probability_fit(oof, label_col=cfg["input"]["label_col"], probs_col=probs,
                                           classes=result.classes)
        timings["model_fit_round_1"] = round(time.perf_counter() - t, 3)
        for line in summary_lines({"metrics": json.dumps({"model": metrics["model"]})})[-1:]:
            log.info("%s", line)
    scored = result.rows.withColumn("round", F.when(F.col("is_label_issue"), F.lit(1)))
    if det["iterations"] == 1:
        return result, scored, 1, result.num_flagged
    flagged_so_far = result.num_flagged
    scored = materialised(scored, scratch, "round_1")
    remaining = scored.filter(~F.col("is_label_issue")).select(*df.columns)
    rounds = 1
    for r in range(2, det["iterations"] + 1):
        t = time.perf_counter()
        oof_r, probs_r = _materialised_probabilities(cfg, remaining, scratch, r, timings)
        res_r = _detect(cfg, oof_r, probs_r)
        timings[f"round_{r}"] = round(time.perf_counter() - t, 3)
        log.info("round %d: %d new issues", r, res_r.num_flagged)
        if res_r.num_flagged < max(1, det["min_new_issues"]):
            break
        rounds = r
        rows_r = materialised(res_r.rows, scratch, f"round_{r}")
        new = rows_r.filter("is_label_issue").select(
            ident, F.lit(r).alias("__sn_round"), (F.col("issue_rank") + F.lit(flagged_so_far)).alias("__sn_rank"))
        flagged_so_far += res_r.num_flagged
        scored = (
            scored.join(new, ident, "left")
            .withColumn("round", F.coalesce(F.col("round"), F.col("__sn_round")))
            .withColumn("is_label_issue", F.col("is_label_issue") | F.col("__sn_round").isNotNull())
            .withColumn("issue_rank", F.coalesce(F.col("issue_rank"), F.col("__sn_rank")))
            .withColumn("sample_weight", F.when(F.col("__sn_round").isNotNull(), F.lit(0.0))
                        .otherwise(F.col("sample_weight")))
            .drop("__sn_round", "__sn_rank")
        )
        remaining = rows_r.filter(~F.col("is_label_issue")).select(*df.columns)
    return result, scored, rounds, flagged_so_far


def _issues_frame(cfg: dict, scored: DataFrame, result: LabelIssuesResult, num_flagged: int,
                  run_id: str) -> DataFrame:
    """The review queue: the flagged rows of ``scored`` with their agreement with the loss ranking."""
    inp = cfg["input"]
    flagged = flagged_with_agreement(scored, label_col=inp["label_col"], probs_col=inp["probs_col"] or "pred_probs",
                                     id_col=inp["id_col"], classes=result.classes, num_flagged=num_flagged,
                                     rank_by=result.rank_by)
    cols = [
        F.lit(run_id).alias("run_id"),
        F.col(inp["id_col"]),
        F.col(inp["label_col"]).alias("given_label"),
        F.col("predicted_label").alias("suggested_label"),
        F.col("label_quality"),
        F.col("issue_rank"),
        _reason(result.filter_by).alias("reason"),
        F.col("round").cast("int").alias("round"),
        F.col(LOSS_RANK),
        F.col(CONFIDENCE),
    ] + [F.col(c) for c in inp["passthrough"] or []]
    return flagged.select(*cols)


def summary_lines(record: dict) -> list[str]:
    """Human-readable lines about a finished run."""
    nm = np.array(record["noise_matrix"]) if record.get("noise_matrix") else None
    metrics = json.loads(record["metrics"]) if record.get("metrics") else {}
    if metrics.get("task") == "regression":  # no classes: the k and the uncertainty that decided the flags
        what = [f"rows {record.get('n_rows')}, regression target",
                f"flagged {record.get('num_flagged')} rows (k = {metrics.get('k')}, uncertainty "
                f"{metrics.get('uncertainty')})"]
    else:
        what = [f"rows {record.get('n_rows')}, classes {record.get('n_classes')} {record.get('classes')}",
                f"flagged {record.get('num_flagged')} rows (cleanlab num_label_issues {record.get('num_label_issues')})"]
    lines = [f"run {record['run_id']}: {record['status']}", *what] if "run_id" in record else []
    if nm is not None:
        lines.append("estimated noise per true class: " + ", ".join(f"{1 - d:.3f}" for d in np.diagonal(nm)))
    fit = metrics.get("model")
    if fit and fit.get("n"):
        lines.append(f"out-of-fold model: accuracy {fit['accuracy']:.4f}, log loss {fit['log_loss']:.4f} "
                     f"(always the most frequent class: {fit['baseline_accuracy']:.4f}, "
                     f"{fit['baseline_log_loss']:.4f})")
    lines += [f"warning: {w}" for w in metrics.get("warnings") or []]
    return lines
