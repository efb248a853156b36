"""Benchmark: sparknoise.find_multilabel_issues on a Parquet table vs cleanlab's multi-label find_label_issues.

For each size, in one run on one machine:
  * tag sets and per-class probabilities are generated once with numpy (true tags, flipped tags,
    probabilities leaning to the true tags) into a local Parquet folder (reused on later runs);
  * sparknoise: find_multilabel_issues (default arguments) on the folder read back, timed two
    ways: the flagged rows counted (``res.num_flagged``, computed by the call) and every row's flags,
    scores, suggested tags, rank and weight materialised (a ``noop`` write of ``res.rows``); peak
    RSS of the whole process tree (driver JVM, Python, workers) sampled;
  * cleanlab 2.9.0 in a fresh subprocess: the same folder loaded into a list of tag lists and a
    numpy matrix (load time apart), then ``cleanlab.multilabel_classification.filter.find_label_issues``
    timed (n_jobs=None, its default); its peak RSS;
  * the flags are compared (number flagged, symmetric difference of the flagged ids).
Prints a table and writes JSON (bench/results/multilabel.json by default).

    .venv/bin/python bench/bench_multilabel.py --sizes 1000000 --classes 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_find_label_issues import PeakRss  # noqa: E402
from bench_find_label_issues import run_cleanlab as run_cleanlab_child  # noqa: E402

CLEANLAB_CHILD = r"""
import json, resource, sys, time, glob
import numpy as np, pyarrow.parquet as pq
path, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
table = pq.read_table(sorted(glob.glob(path + "/*.parquet")), columns=["id", "labels", "pred_probs"])
order = np.argsort(table.column("id").to_numpy())
labels_col = table.column("labels").combine_chunks()
offsets = labels_col.offsets.to_numpy()
values = labels_col.values.to_numpy()
labels = [values[offsets[i]:offsets[i + 1]].tolist() for i in order]
probs_col = table.column("pred_probs").combine_chunks()
K = len(probs_col[0])
P = np.ascontiguousarray(probs_col.values.to_numpy().reshape(-1, K)[order], dtype=np.float64)
del table, labels_col, probs_col
load = time.perf_counter() - t0
from cleanlab.multilabel_classification.filter import find_label_issues
t1 = time.perf_counter()
mask = find_label_issues(labels, P)
elapsed = time.perf_counter() - t1
np.save(out + ".npy", np.flatnonzero(mask))
json.dump({"load_s": load, "find_label_issues_s": elapsed, "num_flagged": int(mask.sum()),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, open(out, "w"))
"""


def ensure_data(path: str, n: int, k: int, *, seed: int = 7, rows_per_file: int = 125_000) -> None:
    """n rows x k classes of (id, labels array<int>, pred_probs array<double>) as Parquet files."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if os.path.exists(os.path.join(path, "_SUCCESS")):
        return
    t = time.perf_counter()
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.05, 0.3, size=k)
    for part, start in enumerate(range(0, n, rows_per_file)):
        m = min(rows_per_file, n - start)
        true = rng.random((m, k)) < rates
        given = np.where(rng.random((m, k)) < 0.05, ~true, true)
        probs = np.clip(np.where(true, 0.72, 0.2) + rng.normal(0, 0.18, size=(m, k)), 0.0, 1.0)
        rows, cols = np.nonzero(given)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=m))]).astype(np.int32)
        table = pa.table({
            "id": pa.array(np.arange(start, start + m, dtype=np.int64)),
            "labels": pa.ListArray.from_arrays(pa.array(offsets), pa.array(cols.astype(np.int32))),
            "pred_probs": pa.ListArray.from_arrays(pa.array(np.arange(0, m * k + 1, k, dtype=np.int32)),
                                                   pa.array(probs.ravel())),
        })
        pq.write_table(table, os.path.join(path, f"part-{part:05d}.parquet"))
    open(os.path.join(path, "_SUCCESS"), "w").close()
    print(f"  generated {n:,} x {k} into {path} in {time.perf_counter() - t:.1f}s", flush=True)


def run_cleanlab(path: str) -> dict:
    return run_cleanlab_child(path, CLEANLAB_CHILD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "multilabel.json"))
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--skip-cleanlab", action="store_true")
    args = parser.parse_args()

    import logging

    import numpy as np

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    import sparknoise as sn
    from sparknoise.jobs.session import local_spark

    spark = local_spark("sparknoise-bench-multilabel", master="local[*]", driver_memory=args.driver_memory,
                        shuffle_partitions=8)
    k = args.classes
    warm = os.path.join(args.data, f"multilabel_n20000_k{k}")
    ensure_data(warm, 20_000, k)
    sn.find_multilabel_issues(spark.read.parquet(warm)).rows.write.format("noop").mode("overwrite").save()
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        path = os.path.join(args.data, f"multilabel_n{n}_k{k}")
        ensure_data(path, n, k)
        row: dict = {"n": n, "k": k}
        with PeakRss() as rss:
            t = time.perf_counter()
            res = sn.find_multilabel_issues(spark.read.parquet(path))
            row["sparknoise_counted_s"] = round(time.perf_counter() - t, 2)
            row["sparknoise_num_flagged"] = res.num_flagged
            t = time.perf_counter()
            res.rows.write.format("noop").mode("overwrite").save()
            row["sparknoise_rows_materialised_s"] = round(time.perf_counter() - t, 2)
            mine = np.array(sorted(r["id"] for r in res.rows.filter("is_label_issue").select("id").collect()))
        row["sparknoise_peak_rss_mb"] = round(rss.peak / 2**20)
        if not args.skip_cleanlab:
            cl = run_cleanlab(path)
            if "error" in cl:
                row["cleanlab_error"] = cl["error"]
            else:
                row["cleanlab_load_s"] = round(cl["load_s"], 2)
                row["cleanlab_s"] = round(cl["find_label_issues_s"], 2)
                row["cleanlab_peak_rss_mb"] = round(cl["peak_rss_mb"])
                row["cleanlab_num_flagged"] = cl["num_flagged"]
                row["flags_symmetric_difference"] = int(np.setxor1d(mine, cl["flagged_ids"]).size)
                row["ratio_counted"] = round(row["sparknoise_counted_s"] / cl["find_label_issues_s"], 2)
                row["ratio_rows"] = round((row["sparknoise_counted_s"] + row["sparknoise_rows_materialised_s"])
                                          / cl["find_label_issues_s"], 2)
        print(json.dumps(row), flush=True)
        results.append(row)

    doc = {
        "benchmark": "find_multilabel_issues",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print()
    print(f"{'N':>10} {'K':>3} {'counted s':>10} {'rows s':>7} {'cleanlab s':>11} {'ratios c/r':>11} "
          f"{'RSS MB sn/cl':>13} {'flags diff':>10}")
    for r in results:
        ratios = f"{r.get('ratio_counted', '-')}/{r.get('ratio_rows', '-')}"
        mem = f"{r['sparknoise_peak_rss_mb']}/{r.get('cleanlab_peak_rss_mb', '-')}"
        print(f"{r['n']:>10,} {r['k']:>3} {r['sparknoise_counted_s']:>10} {r['sparknoise_rows_materialised_s']:>7} "
              f"{r.get('cleanlab_s', '-'):>11} {ratios:>11} {mem:>13} {r.get('flags_symmetric_difference', '-'):>10}")
    print(f"wrote {args.out}")
    spark.stop()


if __name__ == "__main__":
    main()
