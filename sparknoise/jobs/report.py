"""`sparknoise report --run-id ID`: the HTML report of a run, from its Delta tables.

A detect run gets the label-health report; an audit run the data-issues report (the same renderer,
its sections chosen by the run's job): per issue type its count and dataset score, the worst rows of
each type, the largest duplicate sets, the closest leakage pairs and the weakest groups, read from
``data_issues``, ``duplicate_sets`` and ``leakage`` (capped at ``--top`` rows each).

The report of an apply run is its detect run's report with that apply's cleaning section: counts
per action and source, per split (``apply.split_col``) what changed and why (action x source), and
the protected rows reviewers changed (the test-split corrections a benchmark maintainer must check),
read from ``audit`` at the version that apply committed. Driver side: small aggregations and at most
``MAX_CORRECTIONS`` audit rows.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparknoise.core.health import summarize_health
from sparknoise.errors import InputError
from sparknoise.jobs.run_log import latest_apply, run_row
from sparknoise.jobs.tables import read_table
from sparknoise.report.annotators import MAX_ANNOTATORS, AnnotatorReportData, write_annotator_report
from sparknoise.report.data import TOP_ROWS, ReportData, quality_histogram, top_rows
from sparknoise.report.html import write_report
from sparknoise.storage import read_version

log = logging.getLogger("sparknoise")

MAX_CORRECTIONS = 200  # protected rows changed by review, listed one by one in the report


def cleaning_details(spark: SparkSession, outputs: dict[str, str], run_id: str,
                     cleaning: dict | None) -> dict | None:
    """The apply run's metrics plus, from its ``audit`` version, changes per (split, action, source) and the
    protected rows it changed (at most ``MAX_CORRECTIONS``)."""
    if not cleaning or "audit" not in outputs:
        return cleaning
    try:
        audit = read_version(spark, outputs["audit"], cleaning.get("audit_version"))
        audit.schema  # noqa: B018 - an audit table that is gone: the counts alone
    except Exception:  # noqa: BLE001
        return cleaning
    audit = audit.filter(F.col("run_id") == run_id)
    split_col = cleaning.get("split_col")
    details = dict(cleaning)
    if split_col and split_col in audit.columns:
        rows = (audit.groupBy(F.col(split_col).cast("string").alias("split"), "action", "source").count()
                .orderBy("split", "action", "source").collect())  # splits x 3 actions x 2 sources
        details["changes_by_split"] = [r.asDict() for r in rows]
    if "protected" in audit.columns:
        columns = [c for c in audit.columns
                   if c not in ("run_id", "issue_rank", "label_quality", "applied_at", "source", "protected")]
        rows = audit.filter(F.col("protected")).orderBy(*columns[:1]).limit(MAX_CORRECTIONS).select(*columns).collect()
        details["corrections"] = pd.DataFrame([r.asDict() for r in rows], columns=columns).fillna("")
    return details


def from_tables(spark: SparkSession, outputs: dict[str, str], run_id: str, *, top: int = TOP_ROWS,
                cleaning: dict | None = None) -> ReportData:
    """Report data of a detect run from its ``runs``, ``issues`` and ``scored`` Delta tables.

    ``cleaning``: the metrics of the apply run to show (default: the run's latest succeeded apply)."""
    record = run_row(spark, outputs["runs"], run_id)
    if record.get("job") not in (None, "detect"):
        raise InputError(f"run '{run_id}' is a {record['job']} run; the report describes detect runs")
    if record["status"] != "succeeded":
        raise InputError(f"run '{run_id}' did not succeed ({record['status']}: {record.get('error')}); "
                         "there is nothing to report")
    config = json.loads(record["config"]) if record.get("config") else {}
    passthrough = list((config.get("input") or {}).get("passthrough") or [])
    issues = read_table(spark, outputs["issues"]).filter(F.col("run_id") == run_id)
    scored = read_table(spark, outputs["scored"]).filter(F.col("run_id") == run_id)
    id_col = (config.get("input") or {}).get("id_col", "id")
    agreement = [c for c in ("confidence", "loss_rank") if c in issues.columns]  # runs before 0.2 lack them
    columns = [id_col, "given_label", "suggested_label", "label_quality", "issue_rank", *agreement, "round",
               *passthrough]
    task = (config.get("detection") or {}).get("task") or "multiclass"
    columns += [c for c in ("flagged_classes",) if c in issues.columns]
    classes = [str(c) for c in json.loads(record["classes"])] if record.get("classes") else []
    run = {k: record.get(k) for k in ("run_id", "status", "started_at", "finished_at", "input_location",
                                       "input_version", "config_sha256", "sparknoise_version", "rounds")}
    run.update(config=config, timings=json.loads(record["timings"]) if record.get("timings") else {})
    metrics = json.loads(record["metrics"]) if record.get("metrics") else {}
    run.update(model_fit=metrics.get("model"), warnings=metrics.get("warnings") or [])
    task_fields: dict = {"task": task}
    if task == "multiclass":
        cj = np.asarray(record["confident_joint"], dtype=np.int64)
        task_fields.update(confident_joint=cj, noise_matrix=np.asarray(record["noise_matrix"], dtype=np.float64),
                           health=summarize_health(cj, record["n_rows"], record["num_label_issues"], classes))
    else:
        task_fields.update(confident_joint=None, noise_matrix=None, health=None)
    if task == "multilabel":
        task_fields["per_class"] = pd.DataFrame(metrics.get("per_class") or [])
    if task == "regression":
        task_fields["regression"] = regression_summary(scored, config, metrics)
    return ReportData(
        run=run, classes=classes, n_rows=record["n_rows"], num_flagged=record["num_flagged"],
        num_label_issues=record["num_label_issues"] or 0,
        quality_histogram=quality_histogram(scored), top_rows=top_rows(issues, columns, top),
        passthrough=passthrough,
        cleaning=cleaning_details(spark, outputs, run_id, cleaning or latest_apply(spark, outputs["runs"], run_id)),
        **task_fields,
    )


REGRESSION_SAMPLE = 2000  # rows of the given-vs-predicted scatter
RESIDUAL_BINS = 40


def regression_summary(scored: DataFrame, config: dict, metrics: dict) -> dict:
    """What a regression run's report section shows: how it ran, a scatter of a sample of rows (at most
    ``REGRESSION_SAMPLE``, the same rows every time: the lowest hashes of the id, plus the flagged rows
    among them) and a residual histogram (``RESIDUAL_BINS`` equal bins between the 0.5% and 99.5%
    residual quantiles, the tails in the end bins). Three small Spark jobs, bounded results."""
    from sparknoise.report.plots import regression_scatter_png, residual_histogram_png

    id_col = (config.get("input") or {}).get("id_col", "id")
    sample = (scored.orderBy(F.xxhash64(F.col(id_col)), F.col(id_col)).limit(REGRESSION_SAMPLE)
              .select("given_label", "predicted_label", "is_label_issue").collect())  # <= REGRESSION_SAMPLE rows
    frame = pd.DataFrame([r.asDict() for r in sample], columns=["given_label", "predicted_label", "is_label_issue"])
    lo, hi = scored.agg(F.percentile_approx("residual", [0.005, 0.995], 10000)).collect()[0][0]  # one row
    width = (hi - lo) / RESIDUAL_BINS if hi > lo else 1.0
    bucket = F.least(F.greatest(F.floor((F.col("residual") - F.lit(lo)) / F.lit(width)), F.lit(0)),
                     F.lit(RESIDUAL_BINS - 1)).cast("int")
    counts = scored.groupBy(bucket.alias("b"), F.col("is_label_issue").alias("f")).count().collect()  # <= 2 x bins
    hist = pd.DataFrame({"bin_start": lo + width * np.arange(RESIDUAL_BINS),
                         "bin_end": lo + width * np.arange(1, RESIDUAL_BINS + 1),
                         "kept": np.zeros(RESIDUAL_BINS, dtype=np.int64),
                         "flagged": np.zeros(RESIDUAL_BINS, dtype=np.int64)})
    for r in counts:
        hist.loc[r["b"], "flagged" if r["f"] else "kept"] += r["count"]
    return {"description": metrics.get("description", ""), "sample_rows": len(frame),
            "scatter_png": regression_scatter_png(frame), "residual_png": residual_histogram_png(hist),
            "k": metrics.get("k"), "uncertainty": metrics.get("uncertainty")}


def annotator_data(spark: SparkSession, outputs: dict[str, str], record: dict) -> AnnotatorReportData:
    """Report data of an annotators run: its runs row, the worst annotators, the consensus histogram."""
    run_id = record["run_id"]
    stats = read_table(spark, outputs["annotator_stats"]).filter(F.col("run_id") == run_id).drop("run_id")
    worst = stats.orderBy(F.col("annotator_quality").asc_nulls_last(), F.col("agreement_with_consensus").asc())\
        .limit(MAX_ANNOTATORS).collect()
    consensus = read_table(spark, outputs["consensus"]).filter(F.col("run_id") == run_id)
    histogram = quality_histogram(consensus.withColumn("__low", F.col("consensus_quality_score") < 0.5),
                                  quality_col="consensus_quality_score", flag_col="__low")
    run = {k: record.get(k) for k in ("run_id", "status", "started_at", "finished_at", "input_location",
                                       "input_version", "config_sha256", "sparknoise_version")}
    run.update(source="annotators job", config=json.loads(record["config"]) if record.get("config") else {},
               timings=json.loads(record["timings"]) if record.get("timings") else {})
    return AnnotatorReportData(run=run, metrics=json.loads(record["metrics"]) if record.get("metrics") else {},
                               annotators=pd.DataFrame([r.asDict() for r in worst], columns=stats.columns),
                               consensus_histogram=histogram)


def audit_data(spark: SparkSession, outputs: dict[str, str], record: dict, *, top: int = TOP_ROWS) -> ReportData:
    """Report data of an audit run: its runs row (summary, search, counts) and capped reads of its tables:
    the ``top`` lowest-scoring flagged rows per issue type, the ``top`` largest duplicate sets, the ``top``
    closest leakage pairs and the ``top`` weakest groups (an aggregation per group)."""
    from pyspark.sql import Window

    run_id = record["run_id"]
    if record["status"] != "succeeded":
        raise InputError(f"audit run '{run_id}' did not succeed ({record['status']}: {record.get('error')}); "
                         "there is nothing to report")
    config = json.loads(record["config"]) if record.get("config") else {}
    metrics = json.loads(record["metrics"]) if record.get("metrics") else {}
    id_col = metrics.get("id_col") or (config.get("input") or {}).get("id_col", "id")
    types = list(metrics.get("issue_types") or [])
    issues = read_table(spark, outputs["data_issues"]).filter(F.col("run_id") == run_id)
    rank = F.row_number().over(Window.partitionBy("issue_type").orderBy(F.col("score").asc_nulls_last(),
                                                                         F.col(id_col)))
    worst = (issues.filter(F.col("is_issue")).withColumn("__rank", rank).filter(F.col("__rank") <= top)
             .select("issue_type", id_col, "score", "details", "__rank").collect())  # <= types x top rows
    worst_rows = pd.DataFrame([r.asDict() for r in worst], columns=["issue_type", id_col, "score", "details", "__rank"])
    worst_rows = (worst_rows.assign(__order=worst_rows["issue_type"].map({t: i for i, t in enumerate(types)}))
                  .sort_values(["__order", "__rank"]).drop(columns=["__order", "__rank"]).reset_index(drop=True)
                  .fillna({"details": ""}))
    audit: dict = {"summary": metrics.get("summary") or [], "search": metrics.get("search") or {},
                   "info": metrics.get("info") or {}, "num_duplicate_sets": metrics.get("num_duplicate_sets"),
                   "num_leakage_pairs": metrics.get("num_leakage_pairs"), "split_col": metrics.get("split_col"),
                   "group_cols": metrics.get("group_cols"), "top": top, "worst_rows": worst_rows}
    if "near_duplicate" in types:
        sets = (read_table(spark, outputs["duplicate_sets"]).filter(F.col("run_id") == run_id)
                .orderBy(F.col("num_members").desc(), F.col("near_duplicate_set_id")).limit(top)
                .select("near_duplicate_set_id", "num_members", "exact", "members").collect())  # <= top sets
        audit["duplicate_sets"] = pd.DataFrame(
            [{**r.asDict(), "members": ", ".join(map(str, r["members"][:MAX_MEMBERS]))
              + (f", ... ({len(r['members']) - MAX_MEMBERS} more)" if len(r["members"]) > MAX_MEMBERS else "")}
             for r in sets], columns=["near_duplicate_set_id", "num_members", "exact", "members"])
        if metrics.get("split_col"):
            pairs = (read_table(spark, outputs["leakage"]).filter(F.col("run_id") == run_id)
                     .orderBy("distance", "id", "other_id").limit(top)
                     .select("id", "other_id", "split", "other_split", "distance").collect())  # <= top pairs
            audit["leakage"] = pd.DataFrame([r.asDict() for r in pairs],
                                            columns=["id", "other_id", "split", "other_split", "distance"])
    if "underperforming_group" in types:
        group = F.get_json_object("details", "$.group")
        rows = (issues.filter(F.col("issue_type") == "underperforming_group")
                .groupBy(group.alias("group")).agg(F.count(F.lit(1)).alias("rows"), F.min("score").alias("score"),
                                                   F.max(F.col("is_issue").cast("int")).alias("flagged"))
                .orderBy("score", "group").limit(top).collect())  # <= top groups
        audit["groups"] = pd.DataFrame([{**r.asDict(), "flagged": bool(r["flagged"])} for r in rows],
                                       columns=["group", "rows", "score", "flagged"])
    run = {k: record.get(k) for k in ("run_id", "status", "started_at", "finished_at", "input_location",
                                       "input_version", "config_sha256", "sparknoise_version")}
    run.update(source="audit job", config=config,
               timings=json.loads(record["timings"]) if record.get("timings") else {})
    return ReportData(
        run=run, classes=[], n_rows=record["n_rows"] or 0, num_flagged=record["num_flagged"] or 0,
        num_label_issues=record.get("num_label_issues") or 0, confident_joint=None, noise_matrix=None, health=None,
        quality_histogram=pd.DataFrame(), top_rows=worst_rows, job="audit", audit=audit)


MAX_MEMBERS = 20  # ids listed per duplicate set in the report


def run_report(spark: SparkSession, cfg: dict, run_id: str, path: str, *, top: int = TOP_ROWS) -> str:
    """Read the run's rows of the configured output tables and write the report to ``path``.

    A detect run gets the label-health report (an apply run: its detect run's, with the cleaning section); an
    audit run the data-issues report; an annotators run the annotator report."""
    started = time.perf_counter()
    record = run_row(spark, cfg["output"]["runs"], run_id)
    if record.get("job") == "annotators":
        write_annotator_report(annotator_data(spark, cfg["output"], record), path)
        log.info("annotator report of run %s written to %s in %.1fs", run_id, path, time.perf_counter() - started)
        return path
    if record.get("job") == "audit":
        data = audit_data(spark, cfg["output"], record, top=top)
        write_report(data, path)
        log.info("data-issues report of audit run %s (%d rows, %d with an issue) written to %s in %.1fs", run_id,
                 data.n_rows, data.num_flagged, path, time.perf_counter() - started)
        return path
    cleaning = None
    if record.get("job") == "apply":  # the detect run's report, with this apply's cleaning section
        if record["status"] != "succeeded":
            raise InputError(f"apply run '{run_id}' did not succeed ({record['status']}: {record.get('error')}); "
                             "there is nothing to report")
        cleaning = {"run_id": run_id, **json.loads(record["metrics"])}
        run_id = cleaning["applied_run_id"]
    data = from_tables(spark, cfg["output"], run_id, top=top, cleaning=cleaning)
    write_report(data, path)
    log.info("report of %s run %s (%d rows, %d classes, %d flagged) written to %s in %.1fs", data.task, run_id,
             data.n_rows, len(data.classes), data.num_flagged, path, time.perf_counter() - started)
    return path
