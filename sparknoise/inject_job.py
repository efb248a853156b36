"""The inject job: write a noisy copy of a table (the source is never written), logged in ``runs``.

``run_inject(spark, cfg)`` reads ``input.*`` at a pinned Delta version, applies ``input.where``,
injects noise with ``inject.*`` (see :func:`sparknoise.inject_label_noise`) and overwrites the
Delta table ``output.noisy`` in one commit: every input column, the noisy label in
``input.label_col``, the original in ``true_label`` and ``is_noisy``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import sparknoise
from sparknoise.config import canonical_json, config_hash, is_path
from sparknoise.errors import InputError
from sparknoise.noise_injection import IS_NOISY, inject_label_noise
from sparknoise.run_log import new_run_id, write_run_record
from sparknoise.tables import read_input, read_table

log = logging.getLogger("sparknoise")


def start_record(cfg: dict, job: str) -> tuple[dict, dict, dict]:
    """(cfg with its run id, the runs record so far, the commit metadata) for a job run."""
    cfg = json.loads(json.dumps(cfg))
    cfg["run"]["id"] = cfg["run"]["id"] or new_run_id()
    run_id = cfg["run"]["id"]
    meta = {"run_id": run_id, "config_sha256": config_hash(cfg), "sparknoise_version": sparknoise.__version__}
    record: dict[str, Any] = {
        "run_id": run_id, "status": "running", "error": None, "started_at": dt.datetime.now(dt.timezone.utc),
        "config": canonical_json(cfg), "config_sha256": meta["config_sha256"],
        "sparknoise_version": sparknoise.__version__, "job": job,
    }
    return cfg, record, meta


def run_inject(spark: SparkSession, cfg: dict) -> dict:
    """Run the inject job; returns its runs-table record."""
    clock = time.perf_counter()
    cfg, record, meta = start_record(cfg, "inject")
    inp, inj, run_id = cfg["input"], cfg["inject"], cfg["run"]["id"]
    pinned = read_input(spark, path=inp["path"], table=inp["table"], fmt=inp["format"], version=inp["version"])
    record.update(input_location=pinned.location, input_version=pinned.version)
    df = pinned.df.where(inp["where"]) if inp["where"] else pinned.df
    for key in ("id_col", "label_col"):
        if inp[key] not in df.columns:
            raise InputError(f"'input.{key}': column '{inp[key]}' is not in the input; available: {df.columns}",
                             column=inp[key])
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
                  metrics=json.dumps({"output": out, "flipped": int(counts["flipped"] or 0), "mode": inj["mode"]}))
    write_run_record(spark, cfg["output"]["runs"], record, timings, clock, meta)
    log.info("run %s: wrote %s (%d rows, %d flipped)", run_id, out, record["n_rows"], record["num_flagged"])
    return record
