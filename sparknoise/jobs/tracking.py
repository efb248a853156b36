"""MLflow tracking of job runs (``tracking.mlflow: true``): detect, evaluate and apply runs appear in
the team's MLflow experiments beside their training runs. Driver side; only K- and KxK-sized data.

What one sparknoise run logs, as one MLflow run:

* params: the config sections the job read, flattened to dotted keys (``input.path``,
  ``model.estimator``, ...); values longer than MLflow's 6,000 characters are cut;
* metrics: the counts (``n_rows``, ``num_flagged``, ...), for detect the estimated noise rate, the
  label health score and the out-of-fold model's accuracy and log loss, for evaluate the detector
  precision and recall at the detection noise rate and the test accuracy per variant, for apply the
  rows per action; and every stage timing as ``timing.<stage>`` (seconds);
* artifacts: detect: the label-health report (HTML), the confident joint and the noise matrix
  (CSV, classes as headers); evaluate: the detection and impact tables (CSV) and the PNG charts;
* tags: ``sparknoise.run_id``, ``sparknoise.job``, ``sparknoise.status``, ``sparknoise.version``.

Where it goes: ``tracking.uri`` when set; else ``MLFLOW_TRACKING_URI`` (Databricks sets it to its
own server); else a local SQLite store, ``sqlite:///<folder>/mlruns.db`` beside the outputs (the folder
of ``output.runs`` when that is a local path, else the working directory), as MLflow recommends (its
``file:`` store is deprecated and, from MLflow 3.13 on, refused by ``MlflowClient`` and ``mlflow ui``
without ``MLFLOW_ALLOW_FILE_STORE=true``). Open it with ``mlflow ui --backend-store-uri
sqlite:///<folder>/mlruns.db``. Experiments sparknoise creates in a local SQLite store keep their
artifacts beside it, in ``<folder>/mlartifacts``; in the default store, runs go to the experiment
``sparknoise`` unless ``tracking.experiment`` names another. A SQLite store needs SQLAlchemy and
Alembic (in the ``mlflow`` extra; full ``mlflow`` has them). ``tracking.experiment`` (on Databricks a
workspace path such as ``/Shared/sparknoise``) and ``tracking.run_name`` (default
``sparknoise-<job>-<run id>``) name the run.

Tracking never fails a run or its tables: any error (mlflow missing, server unreachable) is a warning.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import tempfile
from typing import Any

from pyspark.sql import SparkSession

from sparknoise._version import __version__
from sparknoise.jobs.config import job_view

log = logging.getLogger("sparknoise")

PARAM_LIMIT = 6000
STORE_FILE = "mlruns.db"
ARTIFACTS_FOLDER = "mlartifacts"
DEFAULT_EXPERIMENT = "sparknoise"
_METRIC_NAME = re.compile(r"[^\w\-. :/]")


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[prefix] = text[:PARAM_LIMIT]


def params_of(cfg: dict, job: str) -> dict[str, str]:
    """The config sections ``job`` reads, flattened to dotted keys with string values."""
    out: dict[str, str] = {}
    _flat("", job_view(cfg, job), out)
    return out


def default_uri(cfg: dict) -> str:
    """The local SQLite store sparknoise uses when no tracking URI is given: ``mlruns.db`` in the folder of
    ``output.runs`` (a local path), else in the working directory."""
    from sparknoise.jobs.tables import _local_path

    runs = (cfg.get("output") or {}).get("runs")
    local = _local_path(runs) if isinstance(runs, str) and runs else None
    folder = os.path.dirname(local.rstrip("/")) if local else os.getcwd()
    return f"sqlite:///{os.path.join(folder, STORE_FILE)}"


def _sqlite_file(uri: str) -> str | None:
    """The database file of a local ``sqlite:///`` URI (None for other stores or an in-memory database)."""
    if not uri.startswith("sqlite:///") or uri in ("sqlite:///", "sqlite:///:memory:"):
        return None
    return os.path.abspath(uri[len("sqlite:///"):])


def _use_experiment(mlflow: Any, uri: str, name: str | None) -> None:
    """Make ``name`` the active experiment; in a local SQLite store a new one keeps its artifacts beside
    the database (MLflow's default would be ``./mlruns`` under whatever the working directory is)."""
    if not name:
        return
    db = _sqlite_file(uri)
    if db is not None:
        client = mlflow.MlflowClient(tracking_uri=uri)
        if client.get_experiment_by_name(name) is None:
            location = os.path.join(os.path.dirname(db), ARTIFACTS_FOLDER)
            try:
                client.create_experiment(name, artifact_location=f"file://{location}")
            except Exception:  # noqa: BLE001 - another run created it first: use theirs
                if client.get_experiment_by_name(name) is None:
                    raise
    mlflow.set_experiment(name)


def _csv(matrix: list[list[Any]], classes: list[str], corner: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([corner, *classes])
    for name, row in zip(classes, matrix):
        writer.writerow([name, *row])
    return buf.getvalue()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def track(spark: SparkSession, cfg: dict, job: str, record: dict, timings: dict[str, float], *,
          metrics: dict[str, Any] | None = None, files: dict[str, str] | None = None) -> str | None:
    """Log one job run to MLflow when ``tracking.mlflow`` is true; returns the MLflow run id (or None).

    ``metrics``: extra numbers (non-numbers are skipped); ``files``: artifact name -> local path.
    Detect runs also get their report and matrices (read back from the run's tables).
    """
    tracking = cfg.get("tracking") or {}
    if not tracking.get("mlflow"):
        return None
    try:
        return _log(spark, cfg, job, record, timings, tracking, metrics or {}, files or {})
    except Exception as e:  # noqa: BLE001 - tracking never fails a run
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("run %s: could not log to MLflow (%s: %s); the run and its tables are unaffected",
                    record.get("run_id"), type(e).__name__, first[:300])
        return None


def _log(spark: SparkSession, cfg: dict, job: str, record: dict, timings: dict[str, float], tracking: dict,
         extra: dict[str, Any], files: dict[str, str]) -> str:
    try:
        import mlflow
    except ImportError:
        raise RuntimeError("tracking.mlflow is true but mlflow is not installed: pip install "
                           "'sparknoise[mlflow]' (or mlflow)") from None
    uri = tracking.get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    experiment = tracking.get("experiment")
    if not uri:  # nothing chosen: a local SQLite store beside the outputs
        uri, experiment = default_uri(cfg), experiment or DEFAULT_EXPERIMENT
        os.makedirs(os.path.dirname(_sqlite_file(uri) or ""), exist_ok=True)
    if uri.startswith("file:") or "://" not in uri and not uri.startswith("databricks"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # a file store asked for: MLflow >= 3.13 refuses it
    mlflow.set_tracking_uri(uri)
    _use_experiment(mlflow, uri, experiment)
    run_id = record["run_id"]
    numbers = {k: record.get(k) for k in ("n_rows", "n_classes", "num_flagged", "num_label_issues", "n_skipped",
                                         "rounds")}
    numbers.update(extra)
    numbers.update({f"timing.{k}": v for k, v in timings.items()})
    artifacts: dict[str, str] = {}
    if job == "detect" and record.get("status") == "succeeded":
        numbers.update(_detect_extras(spark, cfg, record, artifacts))
    name = tracking.get("run_name") or f"sparknoise-{job}-{run_id}"
    tags = {"sparknoise.run_id": run_id, "sparknoise.job": job, "sparknoise.status": str(record.get("status")),
            "sparknoise.version": __version__}
    with mlflow.start_run(run_name=name, tags=tags, nested=mlflow.active_run() is not None) as run:
        mlflow.log_params(params_of(cfg, job))
        clean = {_METRIC_NAME.sub("_", k): _number(v) for k, v in numbers.items()}
        mlflow.log_metrics({k: v for k, v in clean.items() if v is not None})
        for artifact, text in artifacts.items():
            mlflow.log_text(text, artifact)
        for artifact, path in files.items():
            if os.path.isfile(path):
                mlflow.log_artifact(path, artifact_path=os.path.dirname(artifact) or None)
        log.info("run %s logged to MLflow: %s (run %s)%s", run_id, uri, run.info.run_id,
                 f"; browse it with: mlflow ui --backend-store-uri {uri}" if uri.startswith("sqlite:") else "")
        return run.info.run_id


def _detect_extras(spark: SparkSession, cfg: dict, record: dict, artifacts: dict[str, str]) -> dict[str, Any]:
    """A detect run's report, matrices and headline numbers (report data from its tables)."""
    from sparknoise.jobs.report import from_tables
    from sparknoise.report.html import write_report

    data = from_tables(spark, cfg["output"], record["run_id"])
    with tempfile.TemporaryDirectory() as folder:
        path = write_report(data, os.path.join(folder, "report.html"))
        with open(path, encoding="utf-8") as f:
            artifacts["label-health-report.html"] = f.read()
    classes = [str(c) for c in data.classes]
    artifacts["confident_joint.csv"] = _csv(data.confident_joint.tolist(), classes, "given\\true")
    artifacts["noise_matrix.csv"] = _csv(data.noise_matrix.tolist(), classes, "given\\true")
    head = data.headline()
    numbers: dict[str, Any] = {"estimated_noise_rate": head["estimated_noise_rate"],
                               "label_health_score": head["overall_label_health_score"]}
    metrics = json.loads(record["metrics"]) if record.get("metrics") else {}
    for key, value in (metrics.get("model") or {}).items():
        numbers[f"model.{key}"] = value
    numbers["repaired_probability_rows"] = metrics.get("repaired_probability_rows")
    return numbers
