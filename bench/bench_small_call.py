"""Benchmark: a warm small call (5,000 x 5 from pandas, what a notebook holds) against cleanlab in the same run.

One Spark session (local[2], 2 GB driver, 4 shuffle partitions as the tests use). The labels and
probabilities are drawn once (``noisy_probabilities``, as ``probabilities_table`` draws them) into a
pandas frame (id, label, pred_probs). After ``--warmup`` calls, ``--calls`` warm calls are timed:

  * ``find_label_issues``: ``sn.find_label_issues(spark.createDataFrame(pdf))`` returning (the
    estimates and ``num_flagged`` are computed by then);
  * ``flags``: the same plus ``res.rows.filter("is_label_issue").count()``, what a notebook user
    sees when they look at the flagged rows;

with the Spark jobs each starts (benchmark-only: the status tracker) and the stage timings of the
last call (``res.timings``). cleanlab 2.9.0's ``find_label_issues`` runs on the same numpy arrays in
the same process and run (best of ``--calls``); the flags are checked identical (assert). Prints
the medians and ratios, writes JSON (bench/results/small_call.json by default) with the 1-minute
load average before and after.

    flock /tmp/sparknoise-bench.lock .venv/bin/python bench/bench_small_call.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _jobs(spark) -> int:
    """How many Spark jobs the session has started so far (benchmark-only: the status tracker)."""
    return max(spark.sparkContext.statusTracker().getJobIdsForGroup(None) or [-1]) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--calls", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "small_call.json"))
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    load_start = os.getloadavg()[0]
    from cleanlab.filter import find_label_issues as cl_find

    import sparknoise as sn
    from sparknoise.jobs.session import local_spark
    from sparknoise.noise.synthetic import noisy_probabilities

    d = noisy_probabilities(args.rows, args.classes, noise_rate=0.2, seed=7)
    labels = d.labels.astype(np.int64)
    probs = np.ascontiguousarray(d.pred_probs, dtype=np.float64)
    pdf = pd.DataFrame({"id": np.arange(args.rows, dtype=np.int64), "label": labels, "pred_probs": list(probs)})

    cl_times = []
    for _ in range(args.calls):
        t = time.perf_counter()
        mask = cl_find(labels, probs)
        cl_times.append(time.perf_counter() - t)
    cl_ids = np.flatnonzero(mask)

    spark = local_spark("sparknoise-bench-small", master="local[2]", driver_memory="2g", shuffle_partitions=4)
    for _ in range(args.warmup):
        res = sn.find_label_issues(spark.createDataFrame(pdf))
        res.rows.filter("is_label_issue").count()

    call_s, flags_s, call_jobs, flags_jobs = [], [], [], []
    for _ in range(args.calls):
        j0 = _jobs(spark)
        t0 = time.perf_counter()
        res = sn.find_label_issues(spark.createDataFrame(pdf))
        t1 = time.perf_counter()
        j1 = _jobs(spark)
        n_flagged = res.rows.filter("is_label_issue").count()
        t2 = time.perf_counter()
        call_s.append(t1 - t0)
        flags_s.append(t2 - t0)
        call_jobs.append(j1 - j0)
        flags_jobs.append(_jobs(spark) - j0)
        assert n_flagged == res.num_flagged == len(cl_ids), (n_flagged, res.num_flagged, len(cl_ids))
    ours = np.sort(np.array([r["id"] for r in res.rows.filter("is_label_issue").select("id").collect()]))
    differ = int(len(np.setxor1d(ours, cl_ids)))  # benchmark-only collect of the flagged ids
    assert differ == 0, f"{differ} flags differ from cleanlab's"
    stages = dict(res.timings)
    spark.stop()

    cl_best = min(cl_times)
    row = {
        "n": args.rows,
        "k": args.classes,
        "calls": args.calls,
        "find_label_issues_s": [round(t, 3) for t in call_s],
        "flags_counted_s": [round(t, 3) for t in flags_s],
        "find_label_issues_median_s": round(statistics.median(call_s), 3),
        "flags_counted_median_s": round(statistics.median(flags_s), 3),
        "spark_jobs_find_label_issues": call_jobs,
        "spark_jobs_with_flags": flags_jobs,
        "stage_s_last_call": stages,
        "cleanlab_best_s": round(cl_best, 4),
        "cleanlab_median_s": round(statistics.median(cl_times), 4),
        "ratio_find_label_issues": round(statistics.median(call_s) / cl_best, 1),
        "ratio_flags_counted": round(statistics.median(flags_s) / cl_best, 1),
        "num_flagged": int(res.num_flagged),
        "flags_symmetric_difference": differ,
    }
    doc = {
        "benchmark": "small_call",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "spark": "local[2], 2g driver, 4 shuffle partitions, frame from pandas",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "loadavg_1min_start": load_start,
        "loadavg_1min_end": os.getloadavg()[0],
        "results": [row],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print(json.dumps(doc, indent=2))
    print(f"\n{args.rows:,} x {args.classes}: find_label_issues {row['find_label_issues_median_s']} s "
          f"(jobs {call_jobs[-1]}), + flags counted {row['flags_counted_median_s']} s (jobs {flags_jobs[-1]}); "
          f"cleanlab {row['cleanlab_best_s']} s; ratios {row['ratio_find_label_issues']}x / "
          f"{row['ratio_flags_counted']}x; load {load_start:.2f} -> {doc['loadavg_1min_end']:.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
