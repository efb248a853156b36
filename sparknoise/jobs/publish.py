"""`sparknoise publish --run-id R --release NAME` and `sparknoise releases`: named, immutable releases.

publish records a cleaned dataset beside its original as one row of ``output.releases`` (Delta):
the detect run's input location, format and pinned Delta version, the ``cleaned`` and ``audit``
versions that apply run R committed (R may also be a detect run id: its latest succeeded apply),
the counts per action, source, split and of protected rows (how many test labels reviewers
corrected, how many training rows were removed, relabeled or down-weighted), the apply and detect
config hashes and the sparknoise version. It also writes ``RELEASE-<NAME>.md`` and
``RELEASE-<NAME>.json`` beside the releases table (a local folder; ``--manifest-dir`` elsewhere).

Releases are immutable: a name that exists is refused before anything is written, and the row is
inserted with a Delta MERGE that only inserts when the name is absent, so two concurrent publishes
of one name cannot both land (the loser gets the same error). Driver side: it reads a handful of
``runs`` rows and the tables' commit histories, never the data.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import uuid
from typing import Any

from pyspark.sql import SparkSession

from sparknoise._version import __version__
from sparknoise.cleaning.apply import ACTIONS
from sparknoise.cleaning.releases import RELEASES_SCHEMA, check_release_name, release_row
from sparknoise.errors import ConfigError, InputError
from sparknoise.jobs.run_log import detect_run, latest_apply, run_row
from sparknoise.jobs.tables import _delta_ref, _local_path, check_output_location, commit_version, is_path, read_table

log = logging.getLogger("sparknoise")


def _apply_run(spark: SparkSession, runs: str, run_id: str) -> dict[str, Any]:
    """The succeeded apply run ``run_id``, or the latest succeeded apply of detect run ``run_id``."""
    record = run_row(spark, runs, run_id)
    if record.get("job") in (None, "detect"):
        latest = latest_apply(spark, runs, run_id)
        if latest is None:
            raise InputError(f"detect run '{run_id}' has never been applied; run `sparknoise apply --run-id {run_id}` "
                             "first, then publish that apply run")
        record = run_row(spark, runs, latest["run_id"])
    elif record.get("job") != "apply":
        raise InputError(f"run '{run_id}' is a {record['job']} run; publish an apply run (or a detect run that was "
                         "applied)")
    if record["status"] != "succeeded":
        raise InputError(f"apply run '{record['run_id']}' did not succeed ({record['status']}); run apply again")
    return record


def _absolute(location: str) -> str:
    """A relative local path made absolute (a release must read the same table from any working directory)."""
    if is_path(location) and "://" not in location and not location.startswith(("/", "file:", "dbfs:")):
        return os.path.abspath(location)
    return location


def _manifest_dir(releases: str, manifest_dir: str | None) -> str | None:
    if manifest_dir:
        return manifest_dir
    local = _local_path(releases)
    return os.path.dirname(local.rstrip("/")) if local else None


def _insert(spark: SparkSession, releases: str, row: dict[str, Any], meta: dict[str, Any]) -> None:
    """Insert the release row only if its name is absent (MERGE ... WHEN NOT MATCHED), creating the table."""
    names = [f.split(" ")[0] for f in RELEASES_SCHEMA.split(", ")]
    frame = spark.createDataFrame([tuple(row.get(n) for n in names)], RELEASES_SCHEMA)
    try:
        read_table(spark, releases).schema  # noqa: B018 - does the table exist?
        exists = True
    except Exception:  # noqa: BLE001
        exists = False
    if not exists:
        writer = frame.write.format("delta").mode("errorifexists").option("userMetadata", json.dumps(meta))
        try:
            writer.save(releases) if is_path(releases) else writer.saveAsTable(releases)
            return
        except Exception:  # noqa: BLE001 - created meanwhile by another publish: merge into it below
            log.info("releases table %s appeared meanwhile; inserting with a merge", releases)
    view = f"sn_release_{uuid.uuid4().hex[:12]}"
    frame.createOrReplaceTempView(view)
    try:
        spark.sql(f"MERGE INTO {_delta_ref(releases)} AS t USING {view} AS s ON t.release = s.release "
                  "WHEN NOT MATCHED THEN INSERT *")
    finally:
        spark.catalog.dropTempView(view)


def manifest_markdown(row: dict[str, Any]) -> str:
    """The release as a short Markdown page (what RELEASE-<NAME>.md holds)."""
    c = row["counts"] if isinstance(row["counts"], dict) else json.loads(row["counts"])
    lines = [
        f"# Release {row['release']}", "",
        f"{row['note']}" if row.get("note") else "", "",
        f"- created: {row['created_at']:%Y-%m-%d %H:%M:%S} UTC" if isinstance(row["created_at"], dt.datetime)
        else f"- created: {row['created_at']}",
        f"- original: `{row['input_location']}` ({row['input_format']}, Delta version {row['input_version']})",
        f"- cleaned: `{row['cleaned_location']}` version {row['cleaned_version']}",
        f"- audit: `{row['audit_location']}` version {row['audit_version']}",
        f"- detect run `{row['detect_run_id']}` (config sha256 {row['detect_config_sha256']}), apply run "
        f"`{row['apply_run_id']}` (config sha256 {row['config_sha256']}), sparknoise {row['sparknoise_version']}",
        "", "## What changed", "",
        f"rows {c.get('rows', 0)}: kept {c.get('kept', 0)}, relabeled {c.get('relabeled', 0)}, down-weighted "
        f"{c.get('downweighted', 0)}, removed {c.get('removed', 0)}; {c.get('reviewed', 0)} rows reviewed.", "",
        "Protected rows (test split) changed by reviewers: " + (", ".join(
            f"{a} {n}" for a, n in sorted((c.get("protected") or {}).items())) or "none"), "",
    ]
    by_split = c.get("by_split") or {}
    if by_split:
        lines += ["| split | kept | relabeled | downweighted | removed |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {s} | {a.get('kept', 0)} | {a.get('relabeled', 0)} | {a.get('downweighted', 0)} | "
                  f"{a.get('removed', 0)} |" for s, a in by_split.items()]
        lines.append("")
    lines += ["Read it back:", "", "```python", "import sparknoise as sn",
              f"rel = sn.read_release(spark, {_absolute(row['releases_location'])!r}, {row['release']!r})",
              "rel.original, rel.cleaned, rel.audit", "```", ""]
    return "\n".join(lines)


def run_publish(spark: SparkSession, cfg: dict, run_id: str, release: str, *, note: str | None = None,
                manifest_dir: str | None = None) -> dict[str, Any]:
    """Publish apply run ``run_id`` (or a detect run's latest apply) as release ``release``; returns its row."""
    check_release_name(release)
    out = cfg["output"]
    check_output_location(spark, "output.releases", out["releases"])
    existing = release_row(spark, out["releases"], release)
    if existing is not None:
        raise ConfigError(f"release {release!r} already exists (published {existing['created_at']} from apply run "
                          f"{existing['apply_run_id']}); releases are immutable: choose another --release name")
    apply = _apply_run(spark, out["runs"], run_id)
    metrics = json.loads(apply["metrics"])
    detect = detect_run(spark, out["runs"], metrics["applied_run_id"])
    versions = {}
    for name in ("cleaned", "audit"):
        versions[name] = metrics.get(f"{name}_version")
        if versions[name] is None:  # apply runs before 0.3 did not record it: find its commit
            versions[name] = commit_version(spark, out[name], apply["run_id"])
        if versions[name] is None:
            raise InputError(f"'output.{name}' {out[name]!r} holds no commit of apply run '{apply['run_id']}'; "
                             f"check output.{name} (the table that apply run wrote) or run apply again")
    input_format = ((detect["config_dict"].get("input") or {}).get("format")) or "delta"
    directory = _manifest_dir(out["releases"], manifest_dir)
    row: dict[str, Any] = {
        "release": release, "release_uid": uuid.uuid4().hex, "created_at": dt.datetime.now(dt.timezone.utc),
        "note": note, "apply_run_id": apply["run_id"], "detect_run_id": detect["run_id"],
        "input_location": detect["input_location"], "input_format": input_format,
        "input_version": detect["input_version"], "cleaned_location": _absolute(out["cleaned"]),
        "cleaned_version": versions["cleaned"], "audit_location": _absolute(out["audit"]),
        "audit_version": versions["audit"],
        "config_sha256": apply["config_sha256"], "detect_config_sha256": detect["config_sha256"],
        "counts": json.dumps(metrics["counts"], sort_keys=True), "sparknoise_version": __version__,
        "manifest": os.path.join(directory, f"RELEASE-{release}.md") if directory else None,
    }
    meta = {"run_id": apply["run_id"], "release": release, "job": "publish", "sparknoise_version": __version__}
    _insert(spark, out["releases"], row, meta)
    landed = release_row(spark, out["releases"], release)
    if landed is None or landed["release_uid"] != row["release_uid"]:
        raise ConfigError(f"release {release!r} was published concurrently by another run (apply run "
                          f"{landed and landed['apply_run_id']}); releases are immutable: choose another name")
    if directory:
        os.makedirs(directory, exist_ok=True)
        page = {**row, "counts": metrics["counts"], "releases_location": out["releases"]}
        with open(os.path.join(directory, f"RELEASE-{release}.md"), "w", encoding="utf-8") as f:
            f.write(manifest_markdown(page))
        with open(os.path.join(directory, f"RELEASE-{release}.json"), "w", encoding="utf-8") as f:
            json.dump(page, f, indent=2, sort_keys=True, default=str)
    else:
        log.info("release %s: no local folder for the manifest (releases table %s); pass --manifest-dir to write "
                 "one", release, out["releases"])
    log.info("release %s published: apply run %s of detect run %s, cleaned v%s, audit v%s", release,
             apply["run_id"], detect["run_id"], versions["cleaned"], versions["audit"])
    return {**row, "counts": metrics["counts"]}


def list_releases(spark: SparkSession, cfg: dict) -> list[dict[str, Any]]:
    """Every release, oldest first (one row each: a small table)."""
    location = cfg["output"]["releases"]
    try:
        table = read_table(spark, location)
        table.schema  # noqa: B018
    except Exception:  # noqa: BLE001 - nothing published yet
        return []
    columns = ["release", "created_at", "apply_run_id", "detect_run_id", "cleaned_version", "audit_version",
               "counts", "note"]
    return [r.asDict() for r in table.select(*columns).orderBy("created_at", "release").collect()]


def release_lines(row: dict[str, Any]) -> list[str]:
    """Human-readable lines about one release (publish's output and `sparknoise releases`)."""
    c = row["counts"] if isinstance(row["counts"], dict) else json.loads(row["counts"] or "{}")
    protected = c.get("protected") or {}
    when = row["created_at"]
    when = when.strftime("%Y-%m-%d %H:%M:%S") if isinstance(when, dt.datetime) else str(when)
    return [
        f"release {row['release']} ({when}): apply run {row['apply_run_id']} of detect run {row['detect_run_id']}, "
        f"cleaned v{row['cleaned_version']}, audit v{row['audit_version']}" + (f" - {row['note']}" if row.get("note")
                                                                              else ""),
        f"  rows {c.get('rows', 0)}: kept {c.get('kept', 0)}, relabeled {c.get('relabeled', 0)}, down-weighted "
        f"{c.get('downweighted', 0)}, removed {c.get('removed', 0)}; protected rows corrected by review: "
        f"relabeled {protected.get('relabeled', 0)}, removed {protected.get('removed', 0)}",
        *[f"  split {s}: " + ", ".join(f"{a} {acts.get(a, 0)}" for a in ACTIONS)
          for s, acts in (c.get("by_split") or {}).items()],
    ]
