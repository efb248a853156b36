"""Benchmark: CROWDLAB (multiannotator_quality) on Spark against cleanlab.multiannotator in one run.

Each case is ``ITEMSxLABELSxANNOTATORS`` (K classes, default 10): every item gets LABELS labels
from distinct annotators of varied skill, and out-of-fold-like probabilities. The data is written
once as Parquet under ``--data`` (pyarrow, no Spark). Then, per case:

  * sparknoise: ``multiannotator_quality`` (cleanlab's defaults: best_quality, crowdlab) reading
    the Parquet tables, its bundle materialised in a scratch Delta table, and the three outputs
    (items, annotations, annotators) written as Delta tables; wall time, the number of Spark jobs
    and the peak resident memory of the driver process tree (Python + JVM), sampled every 0.2 s;
  * cleanlab 2.9.0 (unless ``--no-cleanlab``): in a child process limited to ``--cleanlab-limit-gb``
    of address space, reads the same Parquet, pivots to the wide items x annotators matrix
    (``convert_long_to_wide_dataset``) and runs ``get_label_quality_multiannotator``; wall time
    and peak memory, or "out of memory" when the limit is hit. The consensus labels are compared.

    .venv/bin/python bench/bench_multiannotator.py --cases 100000x5x2000,1000000x5x2000
    .venv/bin/python bench/bench_multiannotator.py --cases 10000000x5x2000 --no-cleanlab --driver-memory 2g \\
        --out bench/results/multiannotator_10m.json

Prints a table and writes JSON (bench/results/multiannotator.json by default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_detect_job import _commit  # noqa: E402
from bench_find_label_issues import PeakRss  # noqa: E402

_CLEANLAB_CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
limit = int(float(sys.argv[3]) * 2**30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
out = {}
try:
    t = time.perf_counter()
    long = pd.read_parquet(sys.argv[1])
    probs = pd.read_parquet(sys.argv[2])
    p = np.stack(probs.sort_values("id")["pred_probs"].to_numpy())
    out["read_s"] = time.perf_counter() - t
    from cleanlab.multiannotator import convert_long_to_wide_dataset, get_label_quality_multiannotator
    t = time.perf_counter()
    wide = convert_long_to_wide_dataset(long.rename(columns={"id": "task"}))
    out["pivot_s"] = time.perf_counter() - t
    t = time.perf_counter()
    res = get_label_quality_multiannotator(wide, p, verbose=False)
    out["crowdlab_s"] = time.perf_counter() - t
    labels = res["label_quality"]["consensus_label"].to_numpy()
    np.save(sys.argv[4], labels)
    out["status"] = "ok"
except MemoryError:
    out["status"] = "out of memory"
out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(out))
"""


def generate(folder: str, items: int, labels: int, annotators: int, K: int, seed: int = 0) -> tuple[str, str]:
    """annotations.parquet (id, annotator, label) and probs.parquet (id, pred_probs), vectorised numpy."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ann_path, probs_path = os.path.join(folder, "annotations.parquet"), os.path.join(folder, "probs.parquet")
    if os.path.exists(ann_path) and os.path.exists(probs_path):
        return ann_path, probs_path
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    skill = rng.uniform(0.55, 0.95, annotators)
    chunk = 1_000_000
    ann_writer = probs_writer = None
    for lo in range(0, items, chunk):
        n = min(chunk, items - lo)
        ids = np.arange(lo, lo + n, dtype=np.int64)
        truth = rng.integers(0, K, n)
        # distinct annotators per item: start + j * step (mod M) with j * step < M
        start = rng.integers(0, annotators, n)
        step = rng.integers(1, max(2, annotators // labels), n)
        who = (start[:, None] + np.arange(labels)[None, :] * step[:, None]) % annotators
        right = rng.random((n, labels)) < skill[who]
        given = np.where(right, truth[:, None], rng.integers(0, K, (n, labels)))
        annotations = pa.table({"id": np.repeat(ids, labels), "annotator": who.ravel().astype(np.int64),
                                "label": given.ravel().astype(np.int64)})
        logits = rng.normal(0, 1, (n, K))
        logits[np.arange(n), truth] += 2.0
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        probs = pa.table({"id": ids, "pred_probs": pa.array(list(p), type=pa.list_(pa.float64()))})
        ann_writer = ann_writer or pq.ParquetWriter(ann_path, annotations.schema)
        probs_writer = probs_writer or pq.ParquetWriter(probs_path, probs.schema)
        ann_writer.write_table(annotations)
        probs_writer.write_table(probs)
    ann_writer.close()
    probs_writer.close()
    return ann_path, probs_path


def run_spark(spark, ann_path: str, probs_path: str, work: str) -> dict:
    import sparknoise as sn

    tracker = spark.sparkContext.statusTracker()  # bench only: counts the Spark jobs of the run
    before = max(tracker.getJobIdsForGroup(None) or [-1])
    out: dict = {}
    with PeakRss() as mem:
        t = time.perf_counter()
        res = sn.multiannotator_quality(spark.read.parquet(ann_path), spark.read.parquet(probs_path),
                                        scratch=os.path.join(work, "scratch"))
        out["estimates_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        for name, frame in (("items", res.items), ("annotations", res.annotations), ("annotators", res.annotators)):
            frame.write.format("delta").mode("overwrite").save(os.path.join(work, name))
        out["write_s"] = round(time.perf_counter() - t, 2)
    out["total_s"] = round(out["estimates_s"] + out["write_s"], 2)
    out["peak_rss_gb"] = round(mem.peak / 2**30, 2)
    out["spark_jobs"] = max(tracker.getJobIdsForGroup(None) or [-1]) - before
    out["model_weight"] = res.model_weight
    return out


def run_cleanlab(ann_path: str, probs_path: str, limit_gb: float, labels_out: str) -> dict:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CLEANLAB_CHILD, ann_path, probs_path, str(limit_gb), labels_out],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        out = {"status": f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"}
    out["wall_s"] = round(wall, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="100000x5x2000,1000000x5x2000")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--no-cleanlab", action="store_true")
    parser.add_argument("--cleanlab-limit-gb", type=float, default=16.0)
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "multiannotator.json"))
    args = parser.parse_args()

    import numpy as np

    from sparknoise.jobs.session import local_spark

    spark = local_spark("sparknoise-bench-multiannotator", driver_memory=args.driver_memory, shuffle_partitions=8)
    results = []
    for case in args.cases.split(","):
        items, labels, annotators = (int(x) for x in case.split("x"))
        folder = os.path.join(args.data, f"multiannotator_{items}x{labels}x{annotators}_k{args.classes}")
        t = time.perf_counter()
        ann_path, probs_path = generate(folder, items, labels, annotators, args.classes)
        print(f"{case}: data ready in {time.perf_counter() - t:.1f}s ({folder})", flush=True)
        work = tempfile.mkdtemp(prefix="sn-bench-ma-")
        try:
            ours = run_spark(spark, ann_path, probs_path, work)
            row = {"case": case, "items": items, "labels_per_item": labels, "annotators": annotators,
                   "classes": args.classes, "sparknoise": ours}
            print(f"  sparknoise: {ours}", flush=True)
            if not args.no_cleanlab:
                ref_labels = os.path.join(work, "cleanlab_labels.npy")
                theirs = run_cleanlab(ann_path, probs_path, args.cleanlab_limit_gb, ref_labels)
                row["cleanlab"] = theirs
                print(f"  cleanlab: {theirs}", flush=True)
                if theirs.get("status") == "ok":
                    mine = spark.read.format("delta").load(os.path.join(work, "items")).orderBy("id").select(
                        "consensus_label").toPandas()["consensus_label"].to_numpy()
                    row["consensus_labels_equal"] = bool(np.array_equal(mine, np.load(ref_labels)))
                    row["ratio_to_cleanlab"] = round(ours["total_s"] / (theirs["pivot_s"] + theirs["crowdlab_s"]), 2)
                    print(f"  same consensus labels: {row['consensus_labels_equal']}; ratio (sparknoise total / "
                          f"cleanlab pivot + crowdlab): {row['ratio_to_cleanlab']}", flush=True)
            results.append(row)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    spark.stop()
    meta = {"machine": f"{os.cpu_count()} cores, {platform.platform()}", "driver_memory": args.driver_memory,
            "commit": _commit(), "cleanlab_limit_gb": args.cleanlab_limit_gb}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2, default=str)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
