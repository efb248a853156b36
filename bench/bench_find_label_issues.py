"""Benchmark: sparknoise.find_label_issues on a Delta table vs cleanlab's in-memory find_label_issues.

For each size, in one run on one machine:
  * the probabilities are generated once into a local Delta table (reused on later runs);
  * sparknoise: find_label_issues (default arguments) on the table read back, timed three ways:
    the flagged rows counted (``res.num_flagged``, which find_label_issues computes), every row's
    flag, rank and weight materialised (a `noop` write of ``res.rows``), and a fresh run including
    a Delta write of the scored table; the Spark jobs each launches (the status tracker); peak RSS of the whole process tree (driver JVM,
    Python, workers) is sampled;
  * cleanlab 2.9.0 in a fresh subprocess: the same table loaded into numpy (load time shown
    apart), then ``cleanlab.filter.find_label_issues(labels, pred_probs)`` timed; its peak RSS;
  * the flags are compared (number flagged, and the symmetric difference of flagged ids).
With --partition-check, each size also runs with the input in 1 and in 200 partitions and records
whether the flagged ids and their ranks are identical. Prints a table and writes JSON
(bench/results/find_label_issues.json by default).

    .venv/bin/python bench/bench_find_label_issues.py --sizes 1000000,10000000 --classes 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

CLEANLAB_CHILD = r"""
import json, resource, sys, time, glob
import numpy as np, pyarrow.parquet as pq
path, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
files = sorted(glob.glob(path + "/*.parquet"))
table = pq.read_table(files, columns=["id", "label", "pred_probs"])
ids = table.column("id").to_numpy()
order = np.argsort(ids)
labels = table.column("label").to_numpy()[order]
K = len(table.column("pred_probs").chunk(0)[0])
P = np.concatenate([c.flatten().to_numpy() for c in table.column("pred_probs").chunks]).reshape(-1, K)[order]
P = np.ascontiguousarray(P, dtype=np.float64)
del table
load = time.perf_counter() - t0
import cleanlab.filter as cf
t1 = time.perf_counter()
mask = cf.find_label_issues(labels, P)
elapsed = time.perf_counter() - t1
np.save(out + ".npy", np.flatnonzero(mask))
json.dump({"load_s": load, "find_label_issues_s": elapsed, "num_flagged": int(mask.sum()),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, open(out, "w"))
"""


class PeakRss:
    """Samples the RSS of this process and all its children (the Spark JVM, Python workers)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def ensure_table(spark, path: str, n: int, k: int) -> None:
    from sparknoise.noise.synthetic import probabilities_table

    if os.path.exists(os.path.join(path, "_delta_log")):
        return
    t = time.perf_counter()
    probabilities_table(spark, n, k, noise_rate=0.2, seed=7, rows_per_partition=500_000).write.format(
        "delta"
    ).mode("overwrite").save(path)
    print(f"  generated {n:,} x {k} into {path} in {time.perf_counter() - t:.1f}s", flush=True)


def _jobs(spark) -> int:
    """How many Spark jobs the session has started so far (benchmark-only: the status tracker)."""
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(None) or [-1]) + 1


def run_cleanlab(path: str, child: str = CLEANLAB_CHILD) -> dict:
    """Run ``child`` (a script: argv = table path, JSON out; it also writes the flagged ids to <out>.npy) in a
    fresh process, so its peak memory is its own; returns its JSON plus ``flagged_ids``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cleanlab.json")
        # the current Delta snapshot's files: the bench tables are written once, so every parquet
        # file in the folder belongs to it
        proc = subprocess.run([sys.executable, "-c", child, path, out], capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else f"exit {proc.returncode}"}
        res = json.load(open(out))
        import numpy as np

        res["flagged_ids"] = np.load(out + ".npy")
        return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "find_label_issues.json"))
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--skip-cleanlab", action="store_true")
    parser.add_argument("--partition-check", action="store_true",
                        help="also run each size with the input in 1 and in 200 partitions and compare the flags")
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    import numpy as np

    import sparknoise as sn
    from sparknoise.jobs.session import local_spark

    spark = local_spark("sparknoise-bench", master="local[*]", driver_memory=args.driver_memory,
                        shuffle_partitions=8)
    # warm-up (JIT, Python workers) on a small table, so the first size is not penalised: once on
    # each route (100,000 rows take the Arrow passes; the native route is forced for the second call)
    from sparknoise.core import validation

    warm = os.path.join(args.data, f"probs_n100000_k{args.classes}")
    ensure_table(spark, warm, 100_000, args.classes)
    min_rows = validation.NATIVE_MIN_ROWS
    for native in (False, True):
        validation.NATIVE_MIN_ROWS = 0 if native else min_rows
        sn.find_label_issues(spark.read.format("delta").load(warm)).rows.write.format("noop").mode("overwrite").save()
    validation.NATIVE_MIN_ROWS = min_rows
    results = []
    load_start = list(os.getloadavg())  # other engineers share the machine: 1/5/15-minute load averages
    for n in [int(s) for s in args.sizes.split(",")]:
        k = args.classes
        path = os.path.join(args.data, f"probs_n{n}_k{k}")
        print(f"== N={n:,} K={k}", flush=True)
        ensure_table(spark, path, n, k)
        df = spark.read.format("delta").load(path)
        with PeakRss() as rss:
            jobs0 = _jobs(spark)
            t0 = time.perf_counter()
            res = sn.find_label_issues(df)
            counted = res.num_flagged  # computed by find_label_issues itself: the "flagged rows counted" figure
            t_estimates = time.perf_counter() - t0
            jobs_counted = _jobs(spark) - jobs0
            first_run_stages = dict(res.timings)
            res.rows.write.format("noop").mode("overwrite").save()
            t_flags = time.perf_counter() - t0
            jobs_noop = _jobs(spark) - jobs0
        with tempfile.TemporaryDirectory(dir=args.data) as tmp:
            jobs1 = _jobs(spark)
            t1 = time.perf_counter()
            res = sn.find_label_issues(df)
            res.rows.write.format("delta").save(os.path.join(tmp, "scored"))
            t_write = time.perf_counter() - t1
            jobs_delta = _jobs(spark) - jobs1
        ours = np.sort(
            np.array([r["id"] for r in res.rows.filter("is_label_issue").select("id").collect()], dtype=np.int64)
        )  # benchmark-only collect of the flagged ids, for the parity check
        row = {
            "n": n,
            "k": k,
            "sparknoise_estimates_s": round(t_estimates, 2),
            "sparknoise_counted_s": round(t_estimates, 2),
            "sparknoise_num_flagged_counted": counted,
            "spark_jobs": {"counted": jobs_counted, "noop": jobs_noop, "delta": jobs_delta},
            "sparknoise_flags_materialised_s": round(t_flags, 2),
            "sparknoise_with_delta_write_s": round(t_write, 2),
            "sparknoise_peak_rss_mb": round(rss.peak / 2**20),
            "sparknoise_num_flagged": res.num_flagged,
            "sparknoise_stage_s": {**first_run_stages, "rows_materialised": round(t_flags - t_estimates, 3)},
            "sparknoise_delta_run_stage_s": res.timings,
            "driver_memory": args.driver_memory,
        }
        if not args.skip_cleanlab:
            cl = run_cleanlab(path)
            if "error" in cl:
                row["cleanlab_error"] = cl["error"]
            else:
                row.update(
                    cleanlab_load_s=round(cl["load_s"], 2),
                    cleanlab_s=round(cl["find_label_issues_s"], 2),
                    cleanlab_peak_rss_mb=round(cl["peak_rss_mb"]),
                    cleanlab_num_flagged=cl["num_flagged"],
                    flags_symmetric_difference=int(len(np.setxor1d(ours, cl["flagged_ids"]))),
                    ratio_counted=round(t_estimates / cl["find_label_issues_s"], 2),
                    ratio_flags=round(t_flags / cl["find_label_issues_s"], 2),
                    ratio_with_write=round(t_write / cl["find_label_issues_s"], 2),
                )
        if args.partition_check:
            flagged = {}
            for parts in (1, 200):
                t = time.perf_counter()
                r = sn.find_label_issues(df.repartition(parts))
                flagged[parts] = r.rows.filter("is_label_issue").select("id", "issue_rank")
                flagged[parts].write.format("noop").mode("overwrite").save()
                row[f"partitions_{parts}_s"] = round(time.perf_counter() - t, 2)
            differ = (flagged[1].exceptAll(flagged[200]).count() + flagged[200].exceptAll(flagged[1]).count())
            row["partitions_1_vs_200_rows_differing"] = differ  # flagged (id, issue_rank) pairs in one, not the other
        print(json.dumps(row), flush=True)
        results.append(row)

    doc = {
        "benchmark": "find_label_issues",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "loadavg_start": load_start,
        "loadavg_end": list(os.getloadavg()),
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print()
    print(f"{'N':>12} {'K':>4} {'counted s':>10} {'noop s':>8} {'delta s':>8} {'jobs c/n/d':>11} {'cleanlab s':>11} "
          f"{'ratios c/n/d':>16} {'flags diff':>10}")
    for r in results:
        jobs = "/".join(str(r["spark_jobs"][k]) for k in ("counted", "noop", "delta"))
        ratios = "/".join(str(r.get(k, "-")) for k in ("ratio_counted", "ratio_flags", "ratio_with_write"))
        print(
            f"{r['n']:>12,} {r['k']:>4} {r['sparknoise_counted_s']:>10} {r['sparknoise_flags_materialised_s']:>8} "
            f"{r['sparknoise_with_delta_write_s']:>8} {jobs:>11} {r.get('cleanlab_s', '-'):>11} {ratios:>16} "
            f"{r.get('flags_symmetric_difference', '-'):>10}"
        )
    print(f"load average {load_start} -> {doc['loadavg_end']}")
    print(f"wrote {args.out}")
    spark.stop()


if __name__ == "__main__":
    main()
