"""Benchmark: the detect job end to end (k-fold LogisticRegression + detection + three Delta tables).

A generated table of N rows x D Gaussian features, K classes, 15% of labels flipped (cached as a
local Delta table under ~/.cache/sparknoise/bench-data), then ``run_detect`` with the default
config (prune_by_noise_rate, weights cleanlab) and ``model.params``. Timed stages:

  * cross_validation: the k fold models fitted (``cross_val_predict_proba``; its output is lazy);
  * the out-of-fold probabilities written once to the run's scratch table (``job_timings_s``:
    ``probabilities_written_round_1``), which every detection pass then reads;
  * find_label_issues: the estimates (its scans of the scratch table), with its stage breakdown;
  * write_outputs: the scored and issues Delta tables (the row map, the ranks);
  * total: ``run_detect`` from reading the input to the runs-table row.

Prints the figures and precision/recall against the known flips, writes JSON
(bench/results/detect_job.json by default).

    .venv/bin/python bench/bench_detect_job.py --rows 10000000 --features 20 --classes 10
    # XGBoost's Spark estimator instead of logistic regression (model.estimator: xgboost)
    .venv/bin/python bench/bench_detect_job.py --rows 1000000 --features 10 --classes 5 --estimator xgboost \
        --params '{"n_estimators": 100, "max_depth": 6, "num_workers": 2}' --out bench/results/detect_job_xgboost.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=30, help="logistic regression's maxIter")
    parser.add_argument("--estimator", default="logistic_regression", help="model.estimator")
    parser.add_argument("--params", default=None, help="model.params as JSON (default: {maxIter: --max-iter})")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "detect_job.json"))
    args = parser.parse_args()

    import logging

    import psutil
    from bench_find_label_issues import PeakRss
    from pyspark.sql import functions as F

    import sparknoise.jobs.detect as dj
    from sparknoise.jobs.config import load_config
    from sparknoise.jobs.session import local_spark
    from sparknoise.noise.synthetic import features_table

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    spark = local_spark("sparknoise-bench-detect", driver_memory=args.driver_memory, shuffle_partitions=8)
    n, d, k = args.rows, args.features, args.classes
    path = os.path.join(args.data, f"features_n{n}_d{d}_k{k}_noisy")
    if not os.path.exists(os.path.join(path, "_delta_log")):
        t = time.perf_counter()
        features_table(spark, n, k, n_features=d, noise_rate=0.15, seed=3, rows_per_partition=500_000).write.format(
            "delta").mode("overwrite").save(path)
        print(f"generated {n:,} x {d} features into {path} in {time.perf_counter() - t:.1f}s", flush=True)
    out = os.path.join(args.data, "detect-job-output")
    shutil.rmtree(out, ignore_errors=True)

    stages: dict[str, float] = {}
    flis_stages: dict[str, float] = {}
    real_cv, real_fli = dj.cross_val_predict_proba, dj.find_label_issues

    def timed_cv(*a, **kw):
        t = time.perf_counter()
        res = real_cv(*a, **kw)
        stages["cross_validation"] = round(time.perf_counter() - t, 2)
        return res

    def timed_fli(*a, **kw):
        t = time.perf_counter()
        res = real_fli(*a, **kw)
        stages["find_label_issues"] = round(time.perf_counter() - t, 2)
        flis_stages.update(res.timings)
        return res

    dj.cross_val_predict_proba, dj.find_label_issues = timed_cv, timed_fli
    features = [f"x{j}" for j in range(d)]
    params = json.loads(args.params) if args.params else {"maxIter": args.max_iter}
    cfg = load_config(None, [
        f"input.path={path}", f"input.features={features}", "input.passthrough=[true_label]",
        f"model.n_folds={args.folds}", f"model.params={json.dumps(params)}", f"model.estimator={args.estimator}",
        f"output.scored={out}/scored", f"output.issues={out}/issues", f"output.runs={out}/runs", "run.id=bench",
    ])
    with PeakRss() as rss:
        t0 = time.perf_counter()
        record = dj.run_detect(spark, cfg)
        total = time.perf_counter() - t0
    job_timings = json.loads(spark.read.format("delta").load(f"{out}/runs").first()["timings"])
    scored = spark.read.format("delta").load(f"{out}/scored")
    truth = scored.groupBy().agg(
        F.sum((F.col("is_label_issue") & (F.col("label") != F.col("true_label"))).cast("long")).alias("tp"),
        F.sum((F.col("label") != F.col("true_label")).cast("long")).alias("flips"),
    ).first()
    flagged = record["num_flagged"]
    row = {
        "n": n, "features": d, "k": k, "folds": args.folds, "estimator": args.estimator,
        "params": params, "driver_memory": args.driver_memory,
        "total_s": round(total, 2), "stages_s": stages, "find_label_issues_stages_s": flis_stages,
        "job_timings_s": job_timings, "num_flagged": flagged,
        "precision": round(truth["tp"] / max(flagged, 1), 4), "recall": round(truth["tp"] / max(truth["flips"], 1), 4),
        "peak_rss_mb": round(rss.peak / 2**20), "model_fit": json.loads(record["metrics"]).get("model"),
    }
    doc = {
        "benchmark": "detect_job",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(), "platform": platform.platform()},
        "results": [row],
        "commit": _commit(),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print(json.dumps(row, indent=2))
    print(f"wrote {args.out}")
    shutil.rmtree(out, ignore_errors=True)
    spark.stop()


if __name__ == "__main__":
    main()
