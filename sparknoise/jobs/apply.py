"""`sparknoise apply --run-id R`: the cleaned table and the audit trail of a detect run.

Reads the run's scored rows, its issues (for ``confidence``) and its verdicts in ``output.reviews``
(pinned to one Delta version; none yet is fine), applies them with :func:`sparknoise.apply_cleaning`
and the ``apply.*`` policy, and writes ``output.cleaned`` and ``output.audit``, one commit each,
replacing that run id's rows (a rerun gives the same tables). The apply run is recorded in
``output.runs`` (``job = apply``) with the detect run it applied, the reviews version, the Delta
versions of ``cleaned`` and ``audit`` it wrote, and the counts per action and source, of protected
rows (``apply.protect_where``) per action, and with ``apply.split_col`` per split and action
(counted by :func:`sparknoise.apply_cleaning` with its checks, before the writes: the written tables
are not read back; the two versions come from one query of their histories). Bad verdicts or settings
stop it before anything is written.

Given the run id of an ``audit`` run instead, it reads that run's input table at the Delta version
the audit read, its ``duplicate_sets`` and ``leakage`` rows, and removes one copy per duplicate set
and split (``apply.drop_duplicates: keep_first``) and the train-side copy of each leakage pair
(``apply.drop_leakage: train``, the split value ``apply.train_split``) with
:func:`sparknoise.apply_data_issues`: ``cleaned`` is the table without them, ``audit`` one row per
removed row with its reasons; the runs row and counts are as above (counted from the two tables just
written: small aggregations).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import traceback

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparknoise.cleaning.apply import ACTIONS, apply_cleaning
from sparknoise.cleaning.data_issues import apply_data_issues
from sparknoise.errors import ConfigError, InputError
from sparknoise.jobs.run_log import detect_run, run_row, start_record, write_run_record
from sparknoise.jobs.tables import (
    _delta_ref,
    check_output_location,
    is_path,
    job_input,
    latest_version,
    run_rows,
    write_run_rows,
)
from sparknoise.jobs.tracking import track
from sparknoise.storage import read_version

log = logging.getLogger("sparknoise")


def _reviews(spark: SparkSession, location: str, run_id: str):
    """(the run's verdicts at the latest version, that version), or (None, None) with no reviews table."""
    try:
        version = latest_version(spark, location)
    except Exception:  # noqa: BLE001 - no table yet: nobody has reviewed anything
        log.info("no reviews table at %s: applying the policy to every flagged row", location)
        return None, None
    reader = spark.read.format("delta").option("versionAsOf", version)
    df = reader.load(location) if is_path(location) else reader.table(location)
    return df.filter(F.col("run_id") == run_id).drop("run_id"), version


def _counts(spark: SparkSession, cfg: dict, run_id: str, versions: dict[str, int | None]) -> dict:
    """(An audit run's apply, whose result carries no counts.) Counts per action, per (source, action), of
    protected rows per action and, with ``apply.split_col``,
    per (split, action), from the two tables at the versions just written (small aggregations: <= 4 x 3 x 2
    rows, and splits x 4 rows)."""
    out, split_col = cfg["output"], cfg["apply"]["split_col"]
    counts = {a: 0 for a in ACTIONS}
    by_source: dict[str, dict[str, int]] = {"review": {}, "policy": {}}
    protected: dict[str, int] = {}
    cleaned = read_version(spark, out["cleaned"], versions["cleaned"]).filter(F.col("run_id") == run_id)
    for r in cleaned.groupBy("action").count().collect():
        counts[r[0]] = r[1]  # <= 3 rows
    audit = read_version(spark, out["audit"], versions["audit"]).filter(F.col("run_id") == run_id)
    for r in audit.groupBy("action", "source", "protected").count().collect():
        if r[0] == "removed":
            counts["removed"] += r[3]
        by_source[r[1]][r[0]] = by_source[r[1]].get(r[0], 0) + r[3]
        if r[2]:
            protected[r[0]] = protected.get(r[0], 0) + r[3]
    result = {**counts, "rows": sum(counts.values()), "by_source": by_source, "protected": protected}
    if split_col:
        by_split: dict[str, dict[str, int]] = {}
        kept = cleaned.groupBy(F.col(split_col).cast("string"), "action").count().collect()
        removed = audit.filter(F.col("action") == "removed").groupBy(F.col(split_col).cast("string"), "action")
        for r in [*kept, *removed.count().collect()]:  # splits x 4 rows
            by_split.setdefault(str(r[0]), {a: 0 for a in ACTIONS})[r[1]] += r[2]
        result["by_split"] = dict(sorted(by_split.items()))
    return result


def _decided_counts(result, split_col: str | None) -> dict:
    """The same counts as :func:`_counts`, from what :func:`apply_cleaning` counted with its checks (one
    aggregation of the decided rows, before the writes): nothing is read again. ``by_source`` and
    ``protected`` count the changed rows (the audit table's), ``by_split`` every row."""
    counts = {a: 0 for a in ACTIONS}
    by_source: dict[str, dict[str, int]] = {"review": {}, "policy": {}}
    protected: dict[str, int] = {}
    for action, source, is_protected, n in result.counts:
        counts[action] += n
        if action != "kept":  # the audit table's rows
            by_source[source][action] = by_source[source].get(action, 0) + n
            if is_protected:
                protected[action] = protected.get(action, 0) + n
    out = {**counts, "rows": sum(counts.values()), "by_source": by_source, "protected": protected}
    if split_col:
        by_split: dict[str, dict[str, int]] = {}
        for split, action, n in result.split_counts:
            by_split.setdefault(split, {a: 0 for a in ACTIONS})[action] += n
        out["by_split"] = dict(sorted(by_split.items()))
    return out


def _commit_versions(spark: SparkSession, locations: dict[str, str], run_id: str) -> dict[str, int | None]:
    """:func:`sparknoise.jobs.tables.commit_version` of several tables in one query (their histories unioned:
    one row per commit, never their data)."""
    hists = [spark.sql(f"DESCRIBE HISTORY {_delta_ref(loc)}").select(F.lit(name).alias("name"), "version",
                                                                      "userMetadata")
             for name, loc in locations.items()]
    union = hists[0]
    for h in hists[1:]:
        union = union.unionByName(h)
    rows = (union.filter(F.get_json_object("userMetadata", "$.run_id") == run_id)
            .groupBy("name").agg(F.max("version")).collect())  # one row per table
    found = {r[0]: int(r[1]) for r in rows if r[1] is not None}
    return {name: found.get(name) for name in locations}


def run_apply(spark: SparkSession, cfg: dict, run_id: str) -> dict:
    """Apply the verdicts and policy to detect run ``run_id`` (or the ``apply.drop_*`` settings to audit run
    ``run_id``); returns the apply run's runs record."""
    clock = time.perf_counter()
    out, ap = cfg["output"], cfg["apply"]
    if cfg["run"]["id"] == run_id:
        raise ConfigError(f"run.id '{run_id}' is the id of the run being applied (--run-id): the apply run needs its "
                          "own id (its runs row would replace that run's); remove run.id from the config or "
                          "set another one with --set run.id=...")
    if run_row(spark, out["runs"], run_id).get("job") == "audit":
        return _run_apply_audit(spark, cfg, run_id, clock)
    detect = detect_run(spark, out["runs"], run_id)
    inp = detect["config_dict"].get("input") or {}
    id_col, label_col = inp.get("id_col", "id"), inp.get("label_col", "label")
    filter_by = (detect["config_dict"].get("detection") or {}).get("filter_by")
    task = (detect["config_dict"].get("detection") or {}).get("task") or "multiclass"
    cfg, record, meta = start_record(cfg, "apply")
    for name in ("cleaned", "audit"):
        check_output_location(spark, f"output.{name}", out[name])
    timings: dict[str, float] = {}
    scored = run_rows(spark, out["scored"], "output.scored", run_id)
    issues = run_rows(spark, out["issues"], "output.issues", run_id)
    reviews, version = _reviews(spark, out["reviews"], run_id)
    record.update(input_location=out["scored"], input_version=version)
    applied_at = dt.datetime.now(dt.timezone.utc)
    try:
        result = apply_cleaning(
            scored, reviews, id_col=id_col, label_col=label_col, unreviewed=ap["unreviewed"],
            downweight=ap["downweight"], relabel_only_high=ap["relabel_only_high"], protect=ap["protect_where"],
            protect_mode=ap["protect_mode"], split_col=ap["split_col"],
            suggested_col="suggested_labels" if task == "multilabel" else "predicted_label",
            issues=issues if "confidence" in issues.columns else None, filter_by=filter_by, applied_at=applied_at,
        )
    except ConfigError as e:
        if ap["protect_where"] and "protect condition" in str(e):
            raise ConfigError(f"'apply.protect_where': {e}") from None
        raise
    except InputError as e:
        if "protected row" in str(e):
            raise InputError(f"{e} (apply.protect_where {ap['protect_where']!r}; set apply.protect_mode: policy to "
                             "let reviewers change protected rows)") from None
        if ap["split_col"] and getattr(e, "column", None) == ap["split_col"]:
            raise InputError(f"'apply.split_col' {ap['split_col']!r} is not a column of the scored rows; "
                             f"available: {scored.columns}", column=ap["split_col"]) from None
        raise
    timings["checks"] = round(time.perf_counter() - clock, 3)

    def reviewed() -> int:  # the ids with a verdict: counted with the checks
        return result.reviewed

    return _write_and_record(
        spark, cfg, run_id, result, record, {**meta, "applied_run_id": run_id}, timings, clock, detect, reviewed,
        {"reviews_location": out["reviews"], "reviews_version": version, "unreviewed": ap["unreviewed"],
         "protect_where": ap["protect_where"], "protect_mode": ap["protect_mode"], "split_col": ap["split_col"]})


def _run_apply_audit(spark: SparkSession, cfg: dict, run_id: str, clock: float) -> dict:
    """Audit run ``run_id``: its input table (at the version the audit read), minus one row of each duplicate set
    and split (``apply.drop_duplicates``) and the train-side copy of each leakage pair (``apply.drop_leakage``),
    with :func:`sparknoise.apply_data_issues`; the removed rows and their reasons go to ``output.audit``."""
    out, ap = cfg["output"], cfg["apply"]
    audited = run_row(spark, out["runs"], run_id)
    if audited["status"] != "succeeded":
        raise InputError(f"audit run '{run_id}' did not succeed ({audited['status']}: {audited.get('error')}); "
                         "run audit again first")
    config = json.loads(audited["config"]) if audited.get("config") else {}
    metrics = json.loads(audited["metrics"]) if audited.get("metrics") else {}
    inp = {**config["input"], "version": audited.get("input_version")}
    id_col, split_col = metrics.get("id_col") or inp.get("id_col", "id"), metrics.get("split_col")
    outputs = metrics.get("outputs") or {}
    cfg, record, meta = start_record(cfg, "apply")
    for name in ("cleaned", "audit"):
        check_output_location(spark, f"output.{name}", out[name])
    timings: dict[str, float] = {}
    _, rows = job_input(spark, inp)
    rows = rows.withColumn("run_id", F.lit(run_id))  # the rows of this apply in cleaned and audit
    record.update(input_location=audited.get("input_location"), input_version=audited.get("input_version"))
    issue_types = metrics.get("issue_types") or []
    sets = (run_rows(spark, outputs["duplicate_sets"], "the audit run's duplicate_sets", run_id)
            if "near_duplicate" in issue_types and outputs.get("duplicate_sets") else None)
    leak = (run_rows(spark, outputs["leakage"], "the audit run's leakage", run_id)
            if split_col and "near_duplicate" in issue_types and outputs.get("leakage") else None)
    log.info("apply to audit run %s of %s (version %s): drop_duplicates=%s, drop_leakage=%s (train split %r)",
             run_id, audited.get("input_location"), audited.get("input_version"), ap["drop_duplicates"],
             ap["drop_leakage"], ap["train_split"])
    result = apply_data_issues(rows, id_col=id_col, duplicate_sets=sets, leakage=leak,
                               drop_duplicates=ap["drop_duplicates"], drop_leakage=ap["drop_leakage"],
                               split_col=split_col, train_split=ap["train_split"])
    timings["checks"] = round(time.perf_counter() - clock, 3)
    cfg = {**cfg, "apply": {**ap, "split_col": split_col}}  # the counts per split use the audit's split column
    return _write_and_record(
        spark, cfg, run_id, result, record, {**meta, "applied_run_id": run_id}, timings, clock, audited, lambda: 0,
        {"applied_job": "audit", "drop_duplicates": ap["drop_duplicates"], "drop_leakage": ap["drop_leakage"],
         "train_split": ap["train_split"], "split_col": split_col, "unreviewed": None, "reviews_version": None})


def _write_and_record(spark: SparkSession, cfg: dict, run_id: str, result, record: dict, meta: dict,
                      timings: dict[str, float], clock: float, applied: dict, reviewed, settings: dict) -> dict:
    """Write ``cleaned`` and ``audit`` (one commit each, this run id's rows replaced), count them, record the
    apply run in ``runs`` (and MLflow); on a failure the runs row says so and the error is raised."""
    out = cfg["output"]
    try:
        t = time.perf_counter()
        write_run_rows(result.cleaned, out["cleaned"], run_id=run_id, metadata=meta, merge_schema=True)
        timings["write_cleaned"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        write_run_rows(result.audit, out["audit"], run_id=run_id, metadata=meta, merge_schema=True)
        timings["write_audit"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        versions = _commit_versions(spark, {name: out[name] for name in ("cleaned", "audit")}, record["run_id"])
        if result.counts is not None and (result.split_counts is not None or not cfg["apply"]["split_col"]):
            counts = _decided_counts(result, cfg["apply"]["split_col"])  # counted before the writes: no re-read
        else:
            counts = _counts(spark, cfg, run_id, versions)
        counts["reviewed"] = reviewed()
        timings["counts"] = round(time.perf_counter() - t, 3)
        record.update(status="succeeded", n_rows=counts["rows"], num_flagged=applied.get("num_flagged"),
                      classes=applied.get("classes"), n_classes=applied.get("n_classes"),
                      metrics=json.dumps({"applied_run_id": run_id, **settings, "cleaned_version": versions["cleaned"],
                                          "audit_version": versions["audit"], "counts": counts}, sort_keys=True))
    except Exception as e:
        record.update(status="failed", error=f"{type(e).__name__}: {e}"[:4000],
                      metrics=json.dumps({"applied_run_id": run_id}))
        log.error("apply run %s of %s failed: %s", record["run_id"], run_id, record["error"])
        log.debug("%s", traceback.format_exc())
        write_run_record(spark, out["runs"], record, timings, clock, meta)
        track(spark, cfg, "apply", record, timings)
        raise
    t = time.perf_counter()
    write_run_record(spark, out["runs"], record, timings, clock, meta)
    timings["runs_record"] = round(time.perf_counter() - t, 3)
    track(spark, cfg, "apply", record, timings, metrics={f"rows.{k}": v for k, v in counts.items()})
    record["timings"] = json.dumps(timings, sort_keys=True)
    log.info("apply run %s of run %s: %s in %.1fs", record["run_id"], run_id, counts, time.perf_counter() - clock)
    return record


def summary_lines(record: dict) -> list[str]:
    """Human-readable lines about a finished apply run."""
    m = json.loads(record["metrics"])
    c = m["counts"]
    if m.get("applied_job") == "audit":
        return [
            f"apply run {record['run_id']} of audit run {m['applied_run_id']}: {record['status']}",
            f"rows {c['rows']}: kept {c['kept']}, removed {c['removed']} (drop_duplicates {m['drop_duplicates']}, "
            f"drop_leakage {m['drop_leakage']}, train split {m['train_split']!r}); reasons in the audit table",
            *[f"split {name}: kept {acts.get('kept', 0)}, removed {acts.get('removed', 0)}"
              for name, acts in (c.get("by_split") or {}).items()],
        ]
    return [
        f"apply run {record['run_id']} of detect run {m['applied_run_id']}: {record['status']}",
        f"rows {c['rows']}: kept {c['kept']}, relabeled {c['relabeled']}, down-weighted {c['downweighted']}, "
        f"removed {c['removed']}; {c['reviewed']} reviewed (reviews version {m['reviews_version']})",
        f"by review: {c['by_source']['review']}; by policy ({m['unreviewed']}): {c['by_source']['policy']}",
        *([f"protected rows ({m.get('protect_where')}, protect_mode {m.get('protect_mode')}) changed by review: "
           f"{c['protected']}"] if c.get("protected") else []),
        *[f"split {name}: " + ", ".join(f"{a} {acts.get(a, 0)}" for a in ACTIONS)
          for name, acts in (c.get("by_split") or {}).items()],
    ]
