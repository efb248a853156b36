"""The audit job: Datalab's data issues of a whole table (``sn.find_data_issues``), written as Delta.

``run_audit(spark, cfg)`` is what ``sparknoise audit``, ``jobs/audit.py`` (spark-submit) and a
Databricks wheel task call. It reads the input at a pinned Delta version (``input.*`` as in detect:
``input.where``, ``input.drop``), runs :func:`sparknoise.find_data_issues` with ``audit.*``
(``issue_types``, ``features``, ``split_col``, ``group_cols``, ``k``, ``max_exact_rows`` and any
further engine argument in ``audit.params``) and replaces this run id's rows in three Delta tables,
one commit each (a re-run of the same run id replaces its rows, never duplicates them):

* ``output.data_issues`` (long format): one row per (input row, issue type that ran): ``run_id``,
  the id column (``input.id_col``), ``issue_type``, ``score`` (Datalab's ``<type>_score``),
  ``is_issue`` (``is_<type>_issue``) and ``details``, a JSON string: ``near_duplicate_set_id`` and
  ``distance_to_nearest_neighbor`` for near duplicates, ``group_id`` and the row's ``group``
  (``audit.group_cols`` values) for underperforming groups, ``label`` for class imbalance; null otherwise;
* ``output.duplicate_sets``: one row per set of exact or near duplicates: ``near_duplicate_set_id``
  (its smallest id), ``num_members``, ``members`` (sorted ids), ``exact``, ``run_id`` (empty unless
  near_duplicate ran);
* ``output.leakage``: duplicate pairs whose ``audit.split_col`` values differ: ``id``, ``other_id``,
  ``split``, ``other_split``, ``distance``, ``run_id`` (empty without ``audit.split_col``).

The runs row (``output.runs``, job ``audit``) carries ``n_rows``, ``num_flagged`` (rows with at
least one issue), ``num_label_issues`` (when the label type ran) and in ``metrics`` the per-type
summary (count, dataset score), the counts per type, which nearest-neighbour search ran and its
settings, each rule's thresholds, the duplicate-set and leakage-pair counts.

Bad input (no feature columns for a feature-based type, non-numeric or null features, ``k`` at or
above the row count, an unknown issue type, a missing column) raises before anything is written, the
runs table included; the CLI exits 2. Any other failure is recorded in ``runs`` (status failed) and
the three outputs stay as they were. Driver side: the engine's summaries and one aggregate row.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.audit import DataIssuesResult, find_data_issues
from sparknoise.cleaning.data_issues import apply_data_issues
from sparknoise.errors import ConfigError, InputError
from sparknoise.jobs.config import audit_features
from sparknoise.jobs.run_log import run_row, start_record, write_run_record
from sparknoise.jobs.tables import (
    check_output_location,
    check_persistent_name,
    job_input,
    read_table,
    remove_scratch,
    run_rows,
    scratch_location,
    write_run_rows,
)

log = logging.getLogger("sparknoise")

OUTPUTS = ("data_issues", "duplicate_sets", "leakage")


def _check_columns(cfg: dict, df: DataFrame) -> None:
    """Every configured column is in the input (InputError naming the key), before any work."""
    inp, au = cfg["input"], cfg["audit"]
    features, features_col = audit_features(cfg)
    feature_key = "audit.features" if au["features"] is not None else (
        "input.features" if features else "input.features_col")
    wanted = [("input.id_col", inp["id_col"])]
    wanted += [(f"input.{k}", inp[k]) for k in ("label_col", "probs_col") if inp[k]]
    wanted += [(feature_key, c) for c in features or ([features_col] if features_col else [])]
    wanted += [("audit.split_col", au["split_col"])] if au["split_col"] else []
    wanted += [("audit.group_cols", g) for g in au["group_cols"] or []]
    for key, column in wanted:
        if column not in df.columns:
            hint = " (set input.label_col: null to audit without labels)" if key == "input.label_col" else ""
            raise InputError(f"'{key}': column '{column}' is not in the input; available: {df.columns}{hint}",
                             column=column)


def _engine_error(e: ConfigError) -> ConfigError:
    """The engine's message with the config key of the argument it names."""
    text = str(e)
    for prefix, key in (("k=", "audit.k"), ("the input has", "audit.max_exact_rows")):
        if text.startswith(prefix):
            return ConfigError(f"'{key}': {text}")
    return e


def _details(issue_type: str, rows: DataFrame, context: dict[str, Any]) -> Any:
    if issue_type == "near_duplicate":
        return F.to_json(F.struct("near_duplicate_set_id", "distance_to_nearest_neighbor"))
    if issue_type == "underperforming_group" and context.get("group_cols"):
        return F.to_json(F.struct(F.col("group_id"),
                                  F.struct(*[F.col(f"__au_g{i}").alias(g)
                                             for i, g in enumerate(context["group_cols"])]).alias("group")))
    if issue_type == "class_imbalance" and context.get("label_col"):
        return F.to_json(F.struct(F.col("__au_label").alias("label")))
    return F.lit(None).cast("string")


def data_issues_frame(result: DataIssuesResult, df: DataFrame, *, label_col: str | None,
                      group_cols: list[str] | None, run_id: str) -> DataFrame:
    """The long ``data_issues`` rows of a result: one per (row, issue type), lazy (a union of row maps over
    the materialised ``result.rows``, joined by id to the input's label / group columns when their types ran)."""
    id_col = result.id_col
    rows = result.rows
    extra = []
    if label_col and "class_imbalance" in result.issue_types:
        extra.append(F.col(label_col).alias("__au_label"))
    if group_cols and "underperforming_group" in result.issue_types:
        extra += [F.col(g).alias(f"__au_g{i}") for i, g in enumerate(group_cols)]
    if extra:
        ident = F.col(id_col).cast("long") if isinstance(df.schema[id_col].dataType, T.IntegralType) \
            else F.col(id_col)
        rows = rows.join(df.select(ident.alias(id_col), *extra), id_col, "left")
    context = {"label_col": label_col, "group_cols": group_cols}
    parts = [rows.select(F.lit(run_id).alias("run_id"), F.col(id_col), F.lit(t).alias("issue_type"),
                         F.col(f"{t}_score").cast("double").alias("score"),
                         F.col(f"is_{t}_issue").cast("boolean").alias("is_issue"),
                         _details(t, rows, context).alias("details"))
             for t in result.issue_types]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def _duplicate_sets(spark: SparkSession, result: DataIssuesResult, run_id: str) -> DataFrame:
    if "near_duplicate" in result.issue_types:
        return result.duplicate_sets().withColumn("run_id", F.lit(run_id))
    id_type = result.rows.schema[result.id_col].dataType
    return spark.createDataFrame([], T.StructType([
        T.StructField("near_duplicate_set_id", id_type), T.StructField("num_members", T.LongType()),
        T.StructField("members", T.ArrayType(id_type)), T.StructField("exact", T.BooleanType()),
        T.StructField("run_id", T.StringType())]))


def _leakage(spark: SparkSession, result: DataIssuesResult, df: DataFrame, split_col: str | None,
             run_id: str) -> DataFrame:
    if split_col and "near_duplicate" in result.issue_types:
        return result.leakage().withColumn("run_id", F.lit(run_id))
    id_type = result.rows.schema[result.id_col].dataType
    split_type = df.schema[split_col].dataType if split_col else T.StringType()
    return spark.createDataFrame([], T.StructType([
        T.StructField("id", id_type), T.StructField("other_id", id_type), T.StructField("split", split_type),
        T.StructField("other_split", split_type), T.StructField("distance", T.DoubleType()),
        T.StructField("run_id", T.StringType())]))


def _row_counts(result: DataIssuesResult) -> tuple[int, int]:
    """(rows, rows with at least one issue): one aggregation over the materialised rows."""
    any_issue = F.lit(False)
    for t in result.issue_types:
        any_issue = any_issue | F.coalesce(F.col(f"is_{t}_issue"), F.lit(False))
    row = result.rows.agg(F.count(F.lit(1)).alias("n"), F.sum(any_issue.cast("long")).alias("f")).collect()[0]
    return int(row["n"]), int(row["f"] or 0)


def run_audit(spark: SparkSession, cfg: dict) -> dict:
    """Run the audit job; returns its runs-table record. Bad input raises before any write."""
    clock = time.perf_counter()
    cfg, record, meta = start_record(cfg, "audit")
    inp, au, out, run_id = cfg["input"], cfg["audit"], cfg["output"], cfg["run"]["id"]
    timings: dict[str, float] = {}
    pinned, df = job_input(spark, inp)
    record.update(input_location=pinned.location, input_version=pinned.version)
    log.info("run %s: audit of %s (version %s)", run_id, pinned.location, pinned.version)
    _check_columns(cfg, df)
    for name in (*OUTPUTS, "runs"):
        check_output_location(spark, f"output.{name}", out[name])
    # intermediate tables: under audit.scratch when set (Delta, removed after the run), else the engine's
    # localCheckpoint (the executors' block stores: much cheaper for small inputs)
    scratch = scratch_location(au["scratch"], out["data_issues"], run_id) if au["scratch"] else None
    if scratch is not None:
        check_persistent_name(spark, "audit.scratch", scratch)
    features, features_col = audit_features(cfg)
    kwargs: dict[str, Any] = dict(au["params"] or {})
    if au["max_exact_rows"] is not None:
        kwargs["max_exact_rows"] = au["max_exact_rows"]
    try:
        t = time.perf_counter()
        try:
            result = find_data_issues(
                df, id_col=inp["id_col"], features=features, features_col=features_col,
                label_col=inp["label_col"] or None, probs_col=inp["probs_col"] or None, split_col=au["split_col"],
                group_cols=au["group_cols"], issue_types=au["issue_types"], k=au["k"], scratch=scratch, **kwargs)
        except ConfigError as e:
            raise _engine_error(e) from None
        timings["find_data_issues"] = round(time.perf_counter() - t, 3)
        timings.update({f"find_data_issues.{k}": v for k, v in result.timings.items()})
        summary = result.summary()
        counts = {r.issue_type: int(r.num_issues) for r in summary.itertuples()}
        log.info("run %s: %s; issues per type: %s", run_id, _search_text(result.search), counts)
        frames = {
            "data_issues": data_issues_frame(result, df, label_col=inp["label_col"] or None,
                                             group_cols=au["group_cols"], run_id=run_id),
            "duplicate_sets": _duplicate_sets(spark, result, run_id),
            "leakage": _leakage(spark, result, df, au["split_col"], run_id),
        }
        n_rows, num_flagged = _row_counts(result)
        written = {"data_issues": n_rows * len(result.issue_types)}
        for name in OUTPUTS:
            t = time.perf_counter()
            write_run_rows(frames[name], out[name], run_id=run_id, metadata=meta, merge_schema=True)
            if name not in written:  # the sets and pairs: counted on the table just written
                written[name] = read_table(spark, out[name]).filter(F.col("run_id") == run_id).count()
            timings[f"write_{name}"] = round(time.perf_counter() - t, 3)
            log.info("run %s: %d rows written to output.%s (%s)", run_id, written[name], name, out[name])
        metrics = {
            "issue_types": list(result.issue_types),
            "summary": [{"issue_type": r.issue_type, "num_issues": int(r.num_issues), "score": float(r.score)}
                        for r in summary.itertuples()],
            "counts": counts, "search": result.search, "info": result.info,
            "num_duplicate_sets": written["duplicate_sets"], "num_leakage_pairs": written["leakage"],
            "features": features or ([features_col] if features_col else []), "split_col": au["split_col"],
            "group_cols": au["group_cols"], "id_col": inp["id_col"], "outputs": {n: out[n] for n in OUTPUTS},
        }
        record.update(status="succeeded", n_rows=n_rows, num_flagged=num_flagged,
                      num_label_issues=counts.get("label"), metrics=json.dumps(metrics, default=str))
    except (InputError, ConfigError):
        raise  # bad input: nothing written
    except Exception as e:
        record.update(status="failed", error=f"{type(e).__name__}: {e}"[:4000])
        log.error("run %s failed: %s", run_id, record["error"])
        log.debug("%s", traceback.format_exc())
        write_run_record(spark, out["runs"], record, timings, clock, meta)
        raise
    finally:
        if scratch is not None:
            remove_scratch(spark, scratch)
    write_run_record(spark, out["runs"], record, timings, clock, meta)
    log.info("run %s succeeded: %d of %d rows with an issue in %.1fs", run_id, num_flagged, n_rows,
             time.perf_counter() - clock)
    return record


def _search_text(search: dict) -> str:
    if not search or search.get("kind") in (None, "none"):
        return "no nearest-neighbour search (no feature-based type ran)"
    settings = ", ".join(f"{k} {v}" for k, v in search.items() if k != "kind")
    return f"{search['kind']} nearest-neighbour search ({settings})"


def summary_lines(record: dict) -> list[str]:
    """What the CLI prints after an audit run."""
    m = json.loads(record["metrics"])
    lines = [f"run {record['run_id']}: {record['n_rows']:,} rows, {record['num_flagged']:,} with at least one issue",
             _search_text(m.get("search") or {})]
    for r in m["summary"]:
        lines.append(f"  {r['issue_type']:<22} {r['num_issues']:>8,} issues   score {r['score']:.4f}")
    lines.append(f"duplicate sets {m['num_duplicate_sets']:,}, leakage pairs {m['num_leakage_pairs']:,}")
    lines.append("tables: " + " ".join(m["outputs"][n] for n in OUTPUTS))
    return lines


def audit_exclusions(spark: SparkSession, cfg: dict, df: DataFrame) -> tuple[DataFrame, dict] | None:
    """The ids the detect job leaves out of ``df`` with ``input.exclude_run`` (an audit run), and what was read.

    ``input.exclude_types``: ``near_duplicate`` excludes the copies ``apply`` would drop (every member of a
    duplicate set but its first per split, and the train-side copy of each leakage pair: the rules of
    :func:`sparknoise.apply_data_issues` with their defaults, the split read from ``df``); any other type
    excludes every row it flagged in the run's ``data_issues``. Lazy: one column, ``input.id_col``."""
    inp = cfg["input"]
    run_id = inp["exclude_run"]
    if run_id is None:
        return None
    runs = inp["exclude_runs"] or cfg["output"]["runs"]
    audited = run_row(spark, runs, run_id)
    if audited.get("job") != "audit" or audited["status"] != "succeeded":
        raise InputError(f"'input.exclude_run': run '{run_id}' in {runs} is a {audited.get('status')} "
                         f"{audited.get('job')} run; give the id of a succeeded audit run (and 'input.exclude_runs', "
                         "the runs table that holds it, if it is not output.runs)")
    metrics = json.loads(audited["metrics"])
    outputs, ran = metrics["outputs"], metrics.get("issue_types") or []
    id_col, audit_id = inp["id_col"], metrics.get("id_col") or "id"
    parts = []
    flagged_types = [t for t in inp["exclude_types"] if t != "near_duplicate" and t in ran]
    if flagged_types:
        issues = run_rows(spark, outputs["data_issues"], "the audit run's data_issues", run_id)
        parts.append(issues.filter(F.col("is_issue") & F.col("issue_type").isin(flagged_types))
                     .select(F.col(audit_id).alias(id_col)))
    if "near_duplicate" in inp["exclude_types"] and "near_duplicate" in ran:
        split_col = metrics.get("split_col")
        split_col = split_col if split_col in df.columns else None
        copies = apply_data_issues(
            df.select(id_col, *([split_col] if split_col else [])), id_col=id_col,
            duplicate_sets=run_rows(spark, outputs["duplicate_sets"], "the audit run's duplicate_sets", run_id),
            leakage=run_rows(spark, outputs["leakage"], "the audit run's leakage", run_id) if split_col else None,
            split_col=split_col)
        parts.append(copies.audit.select(id_col))
    missing = [t for t in inp["exclude_types"] if t not in ran]
    if missing:
        log.warning("'input.exclude_types' %s did not run in audit run %s (it ran %s): nothing excluded for them",
                    missing, run_id, ran)
    if not parts:
        return None
    ids = parts[0]
    for p in parts[1:]:
        ids = ids.unionByName(p)
    return ids.distinct(), {"exclude_run": run_id, "exclude_runs": runs, "exclude_types": inp["exclude_types"]}
