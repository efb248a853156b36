"""The ``runs`` table: one row per job run (detect, inject, evaluate, apply), written last or on failure,
and the lookups of a run's row. Driver side; each lookup reads one or two rows."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparknoise._version import __version__
from sparknoise.errors import InputError
from sparknoise.jobs.config import canonical_json, config_hash, job_view
from sparknoise.jobs.tables import read_table, run_rows, write_run_rows

RUNS_SCHEMA = (
    "run_id string, status string, error string, started_at timestamp, finished_at timestamp, "
    "input_location string, input_version long, config string, config_sha256 string, sparknoise_version string, "
    "n_rows long, n_classes int, classes string, num_flagged long, num_label_issues long, rounds int, "
    "thresholds array<double>, confident_joint array<array<long>>, noise_matrix array<array<double>>, "
    "inverse_noise_matrix array<array<double>>, prior array<double>, timings string, job string, metrics string, n_skipped long"
)


def new_run_id() -> str:
    """A fresh run id: UTC time plus a random suffix, sortable."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def start_record(cfg: dict, job: str) -> tuple[dict, dict, dict]:
    """(cfg with its run id, the runs record so far, the commit metadata) for a job run.

    The record's config (and its hash) holds only the sections and keys ``job`` reads.
    """
    cfg = json.loads(json.dumps(cfg))
    cfg["run"]["id"] = cfg["run"]["id"] or new_run_id()
    run_id = cfg["run"]["id"]
    view = job_view(cfg, job)
    meta = {"run_id": run_id, "config_sha256": config_hash(view), "sparknoise_version": __version__}
    record: dict[str, Any] = {
        "run_id": run_id, "status": "running", "error": None, "started_at": dt.datetime.now(dt.timezone.utc),
        "config": canonical_json(view), "config_sha256": meta["config_sha256"],
        "sparknoise_version": __version__, "job": job,
    }
    return cfg, record, meta


def write_run_record(spark: SparkSession, location: str, record: dict, timings: dict, clock: float,
                     meta: dict) -> None:
    """Append (or replace, for the same run id) the run's row; missing fields are null."""
    record = dict(record)
    record["finished_at"] = dt.datetime.now(dt.timezone.utc)
    timings["total"] = round(time.perf_counter() - clock, 3)
    record["timings"] = json.dumps(timings, sort_keys=True)
    names = [f.split(" ")[0] for f in RUNS_SCHEMA.split(", ")]
    row = tuple(record.get(n) for n in names)
    write_run_rows(spark.createDataFrame([row], RUNS_SCHEMA), location, run_id=record["run_id"], metadata=meta,
                   merge_schema=True)


def run_row(spark: SparkSession, runs_location: str, run_id: str) -> dict[str, Any]:
    """The ``runs`` row of one run as a dict; InputError if the table or the run is missing."""
    rows = run_rows(spark, runs_location, "output.runs", run_id).limit(2).collect()
    if not rows:
        raise InputError(f"no run '{run_id}' in the runs table {runs_location}; check --run-id and output.runs")
    return rows[0].asDict()


def detect_run(spark: SparkSession, runs_location: str, run_id: str) -> dict[str, Any]:
    """The ``runs`` row of a succeeded detect run, with its config parsed into ``config_dict``."""
    record = run_row(spark, runs_location, run_id)
    if record.get("job") not in (None, "detect"):
        raise InputError(f"run '{run_id}' is a {record['job']} run; give the run id of a detect run (--run-id)")
    if record["status"] != "succeeded":
        raise InputError(f"run '{run_id}' did not succeed ({record['status']}: {record.get('error')}); "
                         "run detect again first")
    record["config_dict"] = json.loads(record["config"]) if record.get("config") else {}
    return record


def latest_apply(spark: SparkSession, runs_location: str, run_id: str) -> dict[str, Any] | None:
    """The metrics of the latest succeeded apply run of detect run ``run_id``, or None."""
    rows = (read_table(spark, runs_location)
            .filter((F.col("job") == "apply") & (F.col("status") == "succeeded")
                    & (F.get_json_object("metrics", "$.applied_run_id") == run_id))
            .orderBy(F.col("finished_at").desc()).select("run_id", "metrics").limit(1).collect())
    if not rows:
        return None
    return {"run_id": rows[0]["run_id"], **json.loads(rows[0]["metrics"])}
