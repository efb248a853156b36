"""The annotators job: CROWDLAB over a long table of (item, annotator, label) rows, written as Delta.

``run_annotators(spark, cfg)`` reads ``input.annotations`` (pinned Delta version) and either
``input.probs`` (item id and out-of-fold probabilities in ``input.probs_col``) or ``input.items``
(item id and ``input.features`` / ``input.features_col``: a ``model.*`` estimator is then fitted
out of fold against each item's majority-vote label, the workflow cleanlab recommends). It runs
:func:`sparknoise.multiannotator_quality` with ``annotators.*`` and replaces this run id's rows in
three Delta tables, one commit each:

* ``output.consensus``: one row per item: ``consensus_label``, ``consensus_quality_score``,
  ``annotator_agreement``, ``num_annotations``, ``sample_weight`` (the consensus quality, to train
  on), the item's columns from ``input.items`` when given, and ``run_id``;
* ``output.annotator_stats``: one row per annotator (quality, agreement, worst class, weight);
* ``output.annotation_quality``: one row per annotation with its ``label_quality``.

Bad input (a duplicate (item, annotator), labels outside the classes, items without
probabilities, every item labelled once, null ids) raises before anything is written; the CLI
exits 2. The run is recorded in ``output.runs`` (job ``annotators``).
"""

from __future__ import annotations

import json
import logging
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparknoise.errors import InputError
from sparknoise.jobs.run_log import start_record, write_run_record
from sparknoise.jobs.tables import (
    check_output_location,
    check_persistent_name,
    materialised,
    read_input,
    remove_scratch,
    scratch_location,
    write_run_rows,
)
from sparknoise.ml.cross_validation import cross_val_predict_proba
from sparknoise.ml.estimators import make_estimator
from sparknoise.multiannotator.crowdlab import majority_vote, multiannotator_quality
from sparknoise.storage import is_path

log = logging.getLogger("sparknoise")

OUTPUTS = ("consensus", "annotator_stats", "annotation_quality")


def _read(spark: SparkSession, inp: dict, key: str) -> tuple[str, int | None, DataFrame]:
    location = inp[key]
    try:
        pinned = read_input(spark, path=location if is_path(location) else None,
                            table=None if is_path(location) else location, fmt=inp["format"])
    except InputError as e:
        raise InputError(str(e).replace("'input.path'", f"'input.{key}'").replace("'input.table'", f"'input.{key}'"))\
            from None
    return pinned.location, pinned.version, pinned.df


def _require(df: DataFrame, key: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"'input.{key}' has no column(s) {missing}; available: {df.columns}", column=missing[0])


def _fitted_probabilities(cfg: dict, annotations: DataFrame, items: DataFrame, scratch: str) -> DataFrame:
    """Out-of-fold probabilities of a model trained on each item's majority-vote label."""
    inp, model = cfg["input"], cfg["model"]
    votes = majority_vote(annotations, item_col=inp["id_col"], annotator_col=inp["annotator_col"],
                          label_col=inp["label_col"], classes=inp["classes"])
    train = items.join(votes.withColumnRenamed("majority_label", "__sn_majority"), inp["id_col"])
    oof = cross_val_predict_proba(
        train, make_estimator(model["estimator"], model["params"]), label_col="__sn_majority",
        features_col=inp["features_col"] or "features", id_col=inp["id_col"], n_folds=model["n_folds"],
        seed=model["seed"], probs_col="pred_probs", parallelism=model["parallelism"], features=inp["features"],
        classes=inp["classes"])
    return materialised(oof.select(inp["id_col"], "pred_probs"), scratch, "probabilities")


def run_annotators(spark: SparkSession, cfg: dict) -> dict:
    """Run the annotators job; returns its runs-table record."""
    clock = time.perf_counter()
    cfg, record, meta = start_record(cfg, "annotators")
    inp, an, out, run_id = cfg["input"], cfg["annotators"], cfg["output"], cfg["run"]["id"]
    timings: dict[str, float] = {}
    location, version, annotations = _read(spark, inp, "annotations")
    record.update(input_location=location, input_version=version)
    _require(annotations, "annotations", [inp["id_col"], inp["annotator_col"], inp["label_col"]])
    for name in (*OUTPUTS, "runs"):
        check_output_location(spark, f"output.{name}", out[name])
    scratch = scratch_location(an["scratch"], out["consensus"], run_id)
    check_persistent_name(spark, "annotators.scratch", scratch)
    items = None
    try:
        t = time.perf_counter()
        if inp["probs"]:
            _, _, probs = _read(spark, inp, "probs")
            _require(probs, "probs", [inp["id_col"], inp["probs_col"]])
            probs_col = inp["probs_col"]
        else:
            _, _, items = _read(spark, inp, "items")
            _require(items, "items", [inp["id_col"], *(inp["features"] or [inp["features_col"]])])
            probs = _fitted_probabilities(cfg, annotations, items, scratch)
            probs_col = "pred_probs"
            timings["cross_validation"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        res = multiannotator_quality(
            annotations, probs, item_col=inp["id_col"], annotator_col=inp["annotator_col"], label_col=inp["label_col"],
            probs_col=probs_col, classes=inp["classes"], consensus_method=an["consensus_method"],
            quality_method=an["quality_method"], calibrate_probs=an["calibrate_probs"],
            label_quality_method=an["label_quality_method"], scratch=scratch)
        timings["crowdlab"] = round(time.perf_counter() - t, 3)
        consensus = res.items.withColumn("sample_weight", F.col("consensus_quality_score"))
        if items is not None:
            consensus = consensus.join(items, inp["id_col"], "left")
        frames = {"consensus": consensus, "annotator_stats": res.annotators, "annotation_quality": res.annotations}
        for name in OUTPUTS:
            t = time.perf_counter()
            write_run_rows(frames[name].withColumn("run_id", F.lit(run_id)), out[name], run_id=run_id, metadata=meta,
                           merge_schema=True)
            timings[f"write_{name}"] = round(time.perf_counter() - t, 3)
    finally:
        remove_scratch(spark, scratch)
    summary = res.summary()
    written = spark.read.format("delta").load(out["consensus"]) if is_path(out["consensus"]) else spark.read.table(
        out["consensus"])
    counts = written.where(F.col("run_id") == run_id).agg(F.avg("consensus_quality_score").alias("mean_quality"),
                           F.sum((F.col("consensus_quality_score") < 0.5).cast("long")).alias("low")).first()
    summary.update(mean_consensus_quality=counts["mean_quality"], low_quality_items=int(counts["low"] or 0),
                   outputs={name: out[name] for name in OUTPUTS})
    record.update(status="succeeded", n_rows=summary["n_items"], num_flagged=summary["low_quality_items"],
                  metrics=json.dumps(summary, default=str))
    write_run_record(spark, out["runs"], record, timings, clock, meta)
    log.info("run %s: %d items, %d annotators: consensus in %s", run_id, summary["n_items"], summary["n_annotators"],
             out["consensus"])
    return record


def summary_lines(record: dict) -> list[str]:
    """What the CLI prints after a run."""
    m = json.loads(record["metrics"])
    lines = [f"run {record['run_id']}: {m['n_items']} items, {m['n_annotators']} annotators, "
             f"{m['n_annotations']} annotations, {m['num_classes']} classes",
             f"consensus ({m['consensus_method']}, {m['quality_method']}): mean quality "
             f"{m['mean_consensus_quality']:.4f}; {m['low_quality_items']} items below 0.5"]
    if m.get("model_weight") is not None:
        lines.append(f"model weight {m['model_weight']:.4f}"
                     + (f", temperature {m['temperature']}" if m.get("temperature") is not None else ""))
    lines.append("tables: " + " ".join(m["outputs"][n] for n in OUTPUTS))
    return lines
