"""The inject job: write a noisy copy of a table (the source is never written), logged in ``runs``.

``run_inject(spark, cfg)`` reads ``input.*`` at a pinned Delta version, applies ``input.where``,
injects noise with ``inject.*`` (see :func:`sparknoise.inject_label_noise`; ``detection.task:
regression`` corrupts numbers: shift, swap, unit, default; ``detection.task: multilabel`` flips
tags per class with ``inject.noise_rate`` or a per-class ``inject.noise_matrix``, ``input.classes``
listing string tags) and overwrites the Delta table ``output.noisy`` in one commit: every input
column, the noisy label in ``input.label_col``, the original in ``true_label`` and ``is_noisy``
(and ``noise_mode`` for a regression target, ``flipped_classes`` for tags).
"""

from __future__ import annotations

import json
import logging
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparknoise.errors import InputError
from sparknoise.jobs.run_log import start_record, write_run_record
from sparknoise.jobs.tables import check_output_location, job_input, read_table
from sparknoise.noise.injection import IS_NOISY, inject_label_noise
from sparknoise.storage import is_path

log = logging.getLogger("sparknoise")


def run_inject(spark: SparkSession, cfg: dict) -> dict:
    """Run the inject job; returns its runs-table record."""
    clock = time.perf_counter()
    cfg, record, meta = start_record(cfg, "inject")
    inp, inj, run_id = cfg["input"], cfg["inject"], cfg["run"]["id"]
    pinned, df = job_input(spark, inp)
    record.update(input_location=pinned.location, input_version=pinned.version)
    for name in ("noisy", "runs"):
        check_output_location(spark, f"output.{name}", cfg["output"][name])
    for key in ("id_col", "label_col"):
        if inp[key] not in df.columns:
            raise InputError(f"'input.{key}': column '{inp[key]}' is not in the input; available: {df.columns}",
                             column=inp[key])
    if cfg["detection"]["task"] == "regression":
        noisy = inject_label_noise(
            df, inp["label_col"], noise_rate=None if isinstance(inj["mode"], dict) else inj["noise_rate"],
            mode=inj["mode"], seed=inj["seed"], id_col=inp["id_col"], task="regression",
            shift_std=inj["shift_std"], factor=inj["factor"], default_value=inj["default_value"])
    elif cfg["detection"]["task"] == "multilabel":
        noisy = inject_label_noise(
            df, inp["label_col"], noise_rate=None if inj["noise_matrix"] is not None else inj["noise_rate"],
            noise_matrix=inj["noise_matrix"], seed=inj["seed"], id_col=inp["id_col"], classes=inp["classes"],
            task="multilabel")
    else:
        noisy = inject_label_noise(
            df, inp["label_col"], noise_rate=None if inj["noise_matrix"] is not None else inj["noise_rate"],
            noise_matrix=inj["noise_matrix"], mode=inj["mode"], seed=inj["seed"], id_col=inp["id_col"],
            classes=inp["classes"], probs_col=inp["probs_col"], features_col=inp["features"] or inp["features_col"],
            frac_zero_noise_rates=inj["frac_zero_noise_rates"],
        )
    timings: dict[str, float] = {}
    t = time.perf_counter()
    out = cfg["output"]["noisy"]
    writer = noisy.write.format("delta").mode("overwrite").option("overwriteSchema", "true").option(
        "userMetadata", json.dumps(meta, sort_keys=True))
    writer.save(out) if is_path(out) else writer.saveAsTable(out)
    timings["write_noisy"] = round(time.perf_counter() - t, 3)
    counts = read_table(spark, out).agg(F.count(F.lit(1)).alias("n"),
                                        F.sum(F.col(IS_NOISY).cast("long")).alias("flipped")).first()
    record.update(status="succeeded", n_rows=int(counts["n"]), num_flagged=int(counts["flipped"] or 0),
                  metrics=json.dumps({"output": out, "flipped": int(counts["flipped"] or 0), "mode": inj["mode"],
                                      "task": cfg["detection"]["task"]}))
    write_run_record(spark, cfg["output"]["runs"], record, timings, clock, meta)
    log.info("run %s: wrote %s (%d rows, %d flipped)", run_id, out, record["n_rows"], record["num_flagged"])
    return record
