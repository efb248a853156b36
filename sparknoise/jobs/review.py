"""`sparknoise review export|import`: the review queue out to reviewers, their verdicts back in.

* export: the run's flagged rows from ``output.issues`` in ``issue_rank`` order (``--top N``), with
  ``confidence`` and the run's passthrough columns (Label Studio tasks without passthrough columns show
  the run's ``input.features``; ``--where``: only the flagged rows matching a SQL condition over the
  run's scored columns, e.g. ``split = 'test'``: the test split's queue), written to a local csv / jsonl / Label Studio
  file. The rows stream to the driver one partition of the ordered queue at a time (``toLocalIterator``)
  and are written as they arrive: the driver's memory does not grow with the queue, ``--top`` or not.
* import: a verdicts file (csv / jsonl / Label Studio JSON export) checked in full, then appended
  to ``output.reviews`` in one Delta commit. Any problem (an unknown run, a malformed row, an id that
  is not a row of the run, or not flagged without ``--allow-unflagged``) is an InputError naming the
  file and the row or id, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.cleaning.formats import LABEL_KINDS, format_of, read_verdicts, write_queue
from sparknoise.core.inputs import probs_as_double_array
from sparknoise.errors import ConfigError, InputError
from sparknoise.jobs.run_log import detect_run
from sparknoise.jobs.tables import check_output_location, is_path, run_rows

log = logging.getLogger("sparknoise")

REVIEW_COLUMNS = ("decision", "new_label", "reviewer", "note", "reviewed_at", "imported_at", "source")


def export_queue(spark: SparkSession, cfg: dict, run_id: str, path: str, *, top: int | None = None,
                 fmt: str | None = None, where: str | None = None) -> tuple[list[str], int]:
    """Write the run's review queue to ``path``; returns (files written, rows written).

    ``where``: a SQL condition over the run's scored columns; only flagged rows matching it are queued
    (a semi-join of the issues with the matching scored ids: the executors filter, nothing else moves).
    """
    fmt = format_of(path, fmt)
    out = cfg["output"]
    record = detect_run(spark, out["runs"], run_id)
    inp = record["config_dict"].get("input") or {}
    id_col, passthrough = inp.get("id_col", "id"), list(inp.get("passthrough") or [])
    kind = label_kind(record)
    if kind == "number" and fmt == "labelstudio":
        raise ConfigError("Label Studio tasks are written for class and tag labels; export a regression run's queue "
                          "as csv or jsonl (reviewers fill in new_label with the right number)")
    classes = json.loads(record["classes"]) if record.get("classes") else []
    issues = run_rows(spark, out["issues"], "output.issues", run_id)
    agreement = [c for c in ("confidence",) if c in issues.columns]
    columns = [id_col, "given_label", "suggested_label", "label_quality", "issue_rank", *agreement, *passthrough]
    queue = issues.select(*columns)
    if where:
        scored = run_rows(spark, out["scored"], "output.scored", run_id)
        try:
            matching = scored.filter(F.expr(where)).select(id_col)
            matching.schema  # noqa: B018 - resolve now: a bad condition fails here, naming the option
        except Exception as e:  # noqa: BLE001 - any parse or analysis error of the user's SQL
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"--where {where!r} does not run on the run's scored rows: {first[:300]}; use a SQL "
                              f"condition over its columns {scored.columns}") from None
        queue = queue.join(matching, id_col, "left_semi")
    queue = queue.orderBy("issue_rank")
    if top is not None:
        queue = queue.limit(int(top))
    shown = passthrough
    if fmt == "labelstudio":  # the prediction's score: the model's probability of the suggested label
        scored = run_rows(spark, out["scored"], "output.scored", run_id)
        probs_col = inp.get("probs_col") or "pred_probs"
        score = F.array_max(probs_as_double_array(scored.schema[probs_col])).alias("__score")
        # what the reviewer reads: the passthrough columns, else the run's feature columns (never only labels)
        features = inp.get("features") if isinstance(inp.get("features"), list) else []
        extra = [] if passthrough else [c for c in features if c in scored.columns and c not in columns]
        shown = passthrough or extra
        queue = queue.join(scored.select(id_col, score, *extra), id_col, "left").orderBy("issue_rank")
    # streamed: one partition of the ordered queue at a time, written as it arrives, so the driver holds
    # at most a partition of rows however long the queue (a 10M-row run with 30% flagged included)
    rows = (r.asDict() for r in queue.toLocalIterator())
    files, count = write_queue(rows, path, fmt, classes=classes, run_id=run_id, id_col=id_col, shown=shown,
                               kind=kind)
    log.info("review queue of run %s: %d rows written to %s (%s)", run_id, count, ", ".join(files), fmt)
    return files, count


def label_kind(record: dict) -> str:
    """What a label of this detect run is (``LABEL_KINDS``): one class, a tag set or a number."""
    task = (record.get("config_dict") or {}).get("detection", {}).get("task") or "multiclass"
    return LABEL_KINDS[task]


def import_verdicts(spark: SparkSession, cfg: dict, run_id: str, path: str, *, fmt: str | None = None,
                    allow_unflagged: bool = False) -> int:
    """Check a verdicts file against the run and append it to ``output.reviews``; returns the verdicts added."""
    fmt = format_of(path, fmt)
    out = cfg["output"]
    record = detect_run(spark, out["runs"], run_id)
    check_output_location(spark, "output.reviews", out["reviews"])
    inp = record["config_dict"].get("input") or {}
    id_col, label_col = inp.get("id_col", "id"), inp.get("label_col", "label")
    kind = label_kind(record)
    classes = json.loads(record["classes"]) if record.get("classes") else []
    verdicts = read_verdicts(path, fmt, id_col=id_col, classes=classes, kind=kind)
    if not verdicts:
        raise InputError(f"{path}: no verdicts in the file; nothing imported")
    scored = run_rows(spark, out["scored"], "output.scored", run_id)
    id_type = scored.schema[id_col].dataType
    label_type = scored.schema[label_col].dataType
    given = spark.createDataFrame([(str(v.id), v.where) for v in verdicts], "__sn_raw_id string, __sn_where string")
    typed = given.withColumn(id_col, F.col("__sn_raw_id").cast(id_type))
    checked = typed.join(scored.select(id_col, F.col("is_label_issue").alias("__sn_flag")), id_col, "left")
    problems = {
        "is not a row of the run's scored table": F.col("__sn_flag").isNull(),
        "was not flagged in this run (pass --allow-unflagged to review it anyway)":
            ~F.col("__sn_flag") & F.lit(not allow_unflagged),
    }
    aggs = []
    for i, cond in enumerate(problems.values()):
        aggs.append(F.sum(F.when(cond, 1).otherwise(0)).alias(f"n{i}"))
        aggs.append(F.min(F.when(cond, F.concat_ws(" ", "__sn_where", F.lit(f"({id_col}"),
                                                   F.concat("__sn_raw_id", F.lit(")"))))).alias(f"first{i}"))
    row = checked.agg(*aggs).first()  # one row
    for i, text in enumerate(problems):
        if row[f"n{i}"]:
            raise InputError(f"{path}: {row[f'first{i}']} {text}" + (f"; {row[f'n{i}'] - 1} more like it"
                                                                      if row[f"n{i}"] > 1 else ""))
    imported_at = dt.datetime.now(dt.timezone.utc)
    source = f"{fmt}:{os.path.abspath(path)}"
    # new_label travels as text (JSON for a tag list) and is typed like the label column below
    rows = [(run_id, str(v.id), v.decision, None if v.new_label is None else
             json.dumps(v.new_label) if kind == "tags" else str(v.new_label), v.reviewer, v.note,
             v.reviewed_at, imported_at, source) for v in verdicts]
    schema = T.StructType([
        T.StructField("run_id", T.StringType()), T.StructField(id_col, T.StringType()),
        T.StructField("decision", T.StringType()), T.StructField("new_label", T.StringType()),
        T.StructField("reviewer", T.StringType()), T.StructField("note", T.StringType()),
        T.StructField("reviewed_at", T.TimestampType()), T.StructField("imported_at", T.TimestampType()),
        T.StructField("source", T.StringType()),
    ])
    new_label = (F.from_json("new_label", label_type) if kind == "tags" else
                 F.col("new_label").cast("double") if kind == "number" else F.col("new_label").cast(label_type))
    frame = (spark.createDataFrame(rows, schema).withColumn(id_col, F.col(id_col).cast(id_type))
             .withColumn("new_label", new_label))
    meta = {"run_id": run_id, "job": "review import", "source": source}
    writer = (frame.write.format("delta").mode("append").option("mergeSchema", "true")
              .option("userMetadata", json.dumps(meta, sort_keys=True)))
    writer.save(out["reviews"]) if is_path(out["reviews"]) else writer.saveAsTable(out["reviews"])
    log.info("run %s: %d verdicts from %s appended to %s", run_id, len(rows), path, out["reviews"])
    return len(rows)
