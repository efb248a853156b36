"""Benchmark: scale. find_label_issues + the scored Delta table at growing N (and at K = 1000).

For each (N, K) case, probabilities stored as ``array<float>`` (half the bytes of double; both
sparknoise and cleanlab compute in float64 on the widened values):
  * sparknoise (local[*], driver heap capped by --driver-memory): ``find_label_issues`` on the
    Delta table, then the scored rows written to Delta; wall time, the driver JVM's peak heap use
    (sum of the heap pools' peak usage, reset per case) and the peak RSS of the whole process tree
    (driver JVM, Python, workers);
  * cleanlab 2.9.0 in a subprocess on the same data, given the same memory budget
    (--memory-cap-gb, enforced by sampling its RSS and by an address-space limit): its time, or
    how it failed (out of memory, timeout).
Prints a table and writes JSON (bench/results/scale.json by default).

    .venv/bin/python bench/bench_scale.py --cases 10000000x10,30000000x10,100000000x10,1000000x1000

``--compare-flags`` also compares the flagged ids with cleanlab's (not only the counts), and
``--routes arrow,native`` runs find_label_issues once per route (native below 500,000 rows by
lowering ``validation.NATIVE_MIN_ROWS``; arrow at any size by raising it), each compared:

    .venv/bin/python bench/bench_scale.py --cases 200000x1000 --routes arrow,native --compare-flags \
        --memory-cap-gb 8 --out bench/results/scale_200k_k1000_flags.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_find_label_issues import CLEANLAB_CHILD, PeakRss  # noqa: E402


class HeapPeak:
    """The driver JVM's peak heap use (benchmark-only: reads JMX through py4j)."""

    def __init__(self, spark) -> None:
        jvm = spark.sparkContext._jvm
        self._pools = [p for p in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
                       if str(p.getType().toString()) == "Heap memory"]
        self.max_mb = jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**20

    def reset(self) -> None:
        for p in self._pools:
            p.resetPeakUsage()

    def peak_mb(self) -> float:
        return sum(p.getPeakUsage().getUsed() for p in self._pools) / 2**20


def run_cleanlab(path: str, cap_bytes: int, timeout_s: float, keep_flags: bool = False) -> dict:
    """cleanlab in a child process under a memory budget: its figures, or how it failed."""
    import psutil

    def limit() -> None:  # hard stop a little above the budget (address space > RSS)
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes + (4 << 30), cap_bytes + (4 << 30)))

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cleanlab.json")
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CLEANLAB_CHILD, path, out], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=limit)
        peak, outcome = 0, None
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak = max(peak, ps.memory_info().rss)
            except psutil.Error:
                pass
            if peak > cap_bytes:
                proc.kill()
                outcome = f"out of memory (RSS above the {cap_bytes / 2**30:.0f} GiB budget)"
            elif time.perf_counter() - t0 > timeout_s:
                proc.kill()
                outcome = f"timeout after {timeout_s:.0f}s"
            time.sleep(0.1)
        _, err = proc.communicate()
        wall = time.perf_counter() - t0
        if outcome is None and proc.returncode != 0:
            last = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
            outcome = "out of memory (" + last + ")" if "MemoryError" in err or "Unable to allocate" in err else last
        if outcome is not None:
            return {"cleanlab_outcome": outcome, "cleanlab_wall_s": round(wall, 1), "cleanlab_peak_rss_mb": round(peak / 2**20)}
        res = json.load(open(out))
        got = {"cleanlab_outcome": "ok", "cleanlab_load_s": round(res["load_s"], 2),
               "cleanlab_s": round(res["find_label_issues_s"], 2), "cleanlab_num_flagged": res["num_flagged"],
               "cleanlab_peak_rss_mb": round(max(peak / 2**20, res["peak_rss_mb"]))}
        if keep_flags:  # positions in id order (the child sorts by id); the tables' ids are 0..N-1
            import numpy as np

            got["flagged_positions"] = np.load(out + ".npy")
        return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="10000000x10,30000000x10,100000000x10,1000000x1000")
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "scale.json"))
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--memory-cap-gb", type=float, default=16.0)
    parser.add_argument("--cleanlab-timeout", type=float, default=900.0)
    parser.add_argument("--skip-cleanlab", action="store_true")
    parser.add_argument("--skip-write", action="store_true", help="find_label_issues only, no scored Delta table")
    parser.add_argument("--compare-flags", action="store_true", help="compare the flagged ids with cleanlab's")
    parser.add_argument("--routes", default="", help="e.g. arrow,native: one find_label_issues per route, "
                        "forced through validation.NATIVE_MIN_ROWS (default: as the library decides)")
    args = parser.parse_args()

    import logging

    import psutil
    from pyspark.sql import functions as F

    import sparknoise as sn
    from sparknoise.core import validation
    from sparknoise.jobs.session import local_spark
    from sparknoise.noise.synthetic import probabilities_table

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    cap = int(args.memory_cap_gb * 2**30)
    early = {}  # cleanlab on tables that exist already runs before Spark starts: their memory never adds up
    if not args.skip_cleanlab:
        for case in args.cases.split(","):
            n, k = (int(x) for x in case.lower().split("x"))
            path = os.path.join(args.data, f"probs_n{n}_k{k}_float_sep{2.0 if k <= 100 else 8.0:g}")
            if os.path.exists(os.path.join(path, "_delta_log")):
                early[case] = {"cleanlab_memory_cap_gb": args.memory_cap_gb,
                               **run_cleanlab(path, cap, args.cleanlab_timeout, keep_flags=args.compare_flags)}
                print(f"cleanlab {case}: {early[case].get('cleanlab_outcome')}", flush=True)
    spark = local_spark("sparknoise-bench-scale", driver_memory=args.driver_memory, shuffle_partitions=8)
    heap = HeapPeak(spark)
    results = []
    for case in args.cases.split(","):
        n, k = (int(x) for x in case.lower().split("x"))
        # a model as sure of the true class at K = 1000 as at K = 10 needs a larger logit gap
        separation = 2.0 if k <= 100 else 8.0
        path = os.path.join(args.data, f"probs_n{n}_k{k}_float_sep{separation:g}")
        if not os.path.exists(os.path.join(path, "_delta_log")):
            t = time.perf_counter()
            probabilities_table(spark, n, k, noise_rate=0.2, seed=11, rows_per_partition=max(1, min(500_000, 50_000_000 // k)),
                                probs_type="float", separation=separation).write.format("delta").mode("overwrite").save(path)
            print(f"generated {n:,} x {k} (float) into {path} in {time.perf_counter() - t:.1f}s", flush=True)
        print(f"== N={n:,} K={k}", flush=True)
        df = spark.read.format("delta").load(path)
        row = {"n": n, "k": k, "probs_type": "array<float>", "separation": separation,
               "load_average_before": os.getloadavg()}
        if case in early:
            row.update(early[case])
        elif not args.skip_cleanlab:  # first, so that its memory is free again while Spark runs
            row["cleanlab_memory_cap_gb"] = args.memory_cap_gb
            row.update(run_cleanlab(path, cap, args.cleanlab_timeout, keep_flags=args.compare_flags))
        theirs = row.pop("flagged_positions", None)
        if theirs is not None:
            bounds = df.agg(F.min("id").alias("lo"), F.max("id").alias("hi"), F.count("id").alias("n")).first()
            assert (bounds["lo"], bounds["hi"], bounds["n"]) == (0, n - 1, n), "ids are not 0..N-1"
        default_min_rows = validation.NATIVE_MIN_ROWS
        for route in (args.routes.split(",") if args.routes else [""]):
            validation.NATIVE_MIN_ROWS = {"": default_min_rows, "native": 0, "arrow": 2**31 - 1}[route]
            suffix = f"_{route}" if route else ""
            heap.reset()
            with PeakRss() as rss, tempfile.TemporaryDirectory(dir=args.data) as tmp:
                t0 = time.perf_counter()
                res = sn.find_label_issues(df)
                t_estimates = time.perf_counter() - t0
                if not args.skip_write:
                    res.rows.write.format("delta").save(os.path.join(tmp, "scored"))
                total = time.perf_counter() - t0
            row.update({
                f"sparknoise_estimates_s{suffix}": round(t_estimates, 2),
                f"sparknoise_with_delta_write_s{suffix}": round(total, 2),
                f"sparknoise_stage_s{suffix}": res.timings, f"sparknoise_num_flagged{suffix}": res.num_flagged,
                "driver_heap_max_mb": round(heap.max_mb), f"driver_heap_peak_mb{suffix}": round(heap.peak_mb()),
                f"sparknoise_peak_rss_mb{suffix}": round(rss.peak / 2**20),
            })
            if theirs is not None:
                import numpy as np

                ours = np.sort(np.array([r["id"] for r in res.issues().select("id").collect()], dtype=np.int64))
                row[f"flags_only_sparknoise{suffix}"] = int(np.setdiff1d(ours, theirs).size)
                row[f"flags_only_cleanlab{suffix}"] = int(np.setdiff1d(theirs, ours).size)
                print(f"route {route or 'default'}: {ours.size:,} flagged, cleanlab {theirs.size:,}; only ours "
                      f"{row[f'flags_only_sparknoise{suffix}']}, only cleanlab {row[f'flags_only_cleanlab{suffix}']}",
                      flush=True)
        validation.NATIVE_MIN_ROWS = default_min_rows
        row["load_average_after"] = os.getloadavg()
        print(json.dumps(row), flush=True)
        results.append(row)
        tens = [r for r in results if r["k"] == 10]
        base = next((r for r in tens if r["n"] == 10_000_000), None)
        if base is not None:
            for r in tens:
                if "sparknoise_with_delta_write_s" in r and "sparknoise_with_delta_write_s" in base:
                    r["growth_vs_10m"] = round(r["sparknoise_with_delta_write_s"] / base["sparknoise_with_delta_write_s"], 2)
        doc = {
            "benchmark": "scale",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                        "python": platform.python_version(), "platform": platform.platform()},
            "results": results,
        }
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:  # after every case: a long run keeps what it measured
            json.dump(doc, f, indent=2)
    print()
    print(f"{'N':>12} {'K':>5} {'route':>7} {'sparknoise s':>13} {'heap peak MB':>13} {'RSS MB':>8} {'cleanlab':>30}")
    for r in results:
        cl = f"{r['cleanlab_s']} s" if r.get("cleanlab_outcome") == "ok" else r.get("cleanlab_outcome", "-")
        for route in (args.routes.split(",") if args.routes else [""]):
            sfx = f"_{route}" if route else ""
            print(f"{r['n']:>12,} {r['k']:>5} {route or '-':>7} {r['sparknoise_with_delta_write_s' + sfx]:>13} "
                  f"{r['driver_heap_peak_mb' + sfx]:>13} {r['sparknoise_peak_rss_mb' + sfx]:>8} {cl[:30]:>30}")
    print(f"wrote {args.out}")
    spark.stop()


if __name__ == "__main__":
    main()
