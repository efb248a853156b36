"""Benchmark: sparknoise.RegressionCleanLearning (Spark ML LinearRegression) vs cleanlab's regression
CleanLearning (sklearn LinearRegression) on the same table, in one run on one machine.

The table (``--rows`` x ``--features``, a linear target with noise) gets exactly 3% of its values
shifted by 3 standard deviations and 2% swapped in from other rows (``sn.inject_label_noise(...,
task="regression")``), written once to a local Parquet folder. Then:
  * sparknoise: ``RegressionCleanLearning(LinearRegression(), n_folds, n_boot).find_label_issues`` on
    the folder read back, the flags materialised (counted); peak RSS of the whole process tree
    (driver JVM, Python, workers) sampled;
  * cleanlab 2.9.0 in a fresh subprocess: the folder loaded into numpy (load time apart), then
    ``cleanlab.regression.learn.CleanLearning(LinearRegression(), cv_n_folds, n_boot).find_label_issues``;
    its peak RSS;
  * both: the k chosen, the rows flagged, precision and recall against the injected rows, and the
    load average (1, 5, 15 min) before and after each (other sessions share the machine).
``--route fits`` runs the Spark ML fits route (the route before the Gram sums) instead of the default.
Prints a table and writes JSON (bench/results/regression_learn.json by default).

    .venv/bin/python bench/bench_regression_learn.py --rows 1000000 --features 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from bench_find_label_issues import PeakRss  # noqa: E402

CLEANLAB_CHILD = r"""
import glob, json, resource, sys, time
import numpy as np, pyarrow.parquet as pq
path, out, folds, boots, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t0 = time.perf_counter()
t = pq.read_table(sorted(glob.glob(path + "/*.parquet")))
order = np.argsort(t.column("id").to_numpy())
X = np.column_stack([t.column(f"f{j}").to_numpy()[order] for j in range(d)])
y = t.column("price").to_numpy()[order]
noisy = t.column("is_noisy").to_numpy(zero_copy_only=False)[order]
load = time.perf_counter() - t0
from sklearn.linear_model import LinearRegression
from cleanlab.regression.learn import CleanLearning
t1 = time.perf_counter()
cl = CleanLearning(LinearRegression(), cv_n_folds=folds, n_boot=boots, seed=0)
issues = cl.find_label_issues(X, y)
elapsed = time.perf_counter() - t1
flag = issues["is_label_issue"].to_numpy()
tp = int((flag & noisy).sum())
json.dump({"load_s": load, "find_label_issues_s": elapsed, "k": float(cl.k), "num_flagged": int(flag.sum()),
           "precision": tp / max(int(flag.sum()), 1), "recall": tp / max(int(noisy.sum()), 1),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, open(out, "w"))
"""


def ensure_table(spark, path: str, n: int, d: int) -> None:
    import sparknoise as sn

    if os.path.exists(os.path.join(path, "_SUCCESS")):
        return
    from pyspark.sql import functions as F

    df = spark.range(n).select(F.col("id"), *[F.randn(seed=j).alias(f"f{j}") for j in range(d)])
    weights = [((j % 5) - 2) * 0.7 + 0.3 for j in range(d)]
    price = sum((F.col(f"f{j}") * F.lit(w) for j, w in enumerate(weights)), F.lit(20.0)) + F.randn(seed=99) * 0.5
    noisy = sn.inject_label_noise(df.withColumn("price", price), "price", task="regression",
                                  mode={"shift": 0.03, "swap": 0.02}, seed=1)
    noisy.write.mode("overwrite").parquet(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--boots", type=int, default=5)
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "regression_learn.json"))
    parser.add_argument("--skip-cleanlab", action="store_true")
    parser.add_argument("--route", default="auto", choices=["auto", "fits", "gram"],
                        help="RegressionCleanLearning(route=...): 'fits' is the Spark ML fits route")
    args = parser.parse_args()

    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression
    from pyspark.sql import functions as F

    import sparknoise as sn
    from sparknoise.jobs.session import local_spark

    spark = local_spark("bench-regression", driver_memory=args.driver_memory)
    path = os.path.join(args.data, f"regression_{args.rows}x{args.features}")
    ensure_table(spark, path, args.rows, args.features)
    df = VectorAssembler(inputCols=[f"f{j}" for j in range(args.features)], outputCol="features").transform(
        spark.read.parquet(path))
    rcl = sn.RegressionCleanLearning(LinearRegression(), n_folds=args.folds, n_boot=args.boots, seed=0,
                                     route=args.route)
    load_before = os.getloadavg()
    with PeakRss() as rss:
        t = time.perf_counter()
        res = rcl.find_label_issues(df, label_col="price", features_col="features", id_col="id")
        counts = res.rows.agg(F.sum(F.col("is_label_issue").cast("long")).alias("flagged"),
                              F.sum((F.col("is_label_issue") & F.col("is_noisy")).cast("long")).alias("tp"),
                              F.sum(F.col("is_noisy").cast("long")).alias("noisy")).first()
        elapsed = time.perf_counter() - t
    ours = {"find_label_issues_s": elapsed, "k": res.k, "num_flagged": int(counts["flagged"]),
            "precision": counts["tp"] / max(counts["flagged"], 1), "recall": counts["tp"] / max(counts["noisy"], 1),
            "peak_rss_mb": rss.peak / 2**20, "search": res.search, "route": res.search.get("route"),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    spark.stop()
    theirs = None
    if not args.skip_cleanlab:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "cleanlab.json")
            theirs_load = os.getloadavg()
            proc = subprocess.run([sys.executable, "-c", CLEANLAB_CHILD, path, out, str(args.folds), str(args.boots),
                                   str(args.features)], capture_output=True, text=True)
            theirs = json.load(open(out)) if proc.returncode == 0 else {"error": proc.stderr.strip()[-500:]}
            theirs.update({"loadavg_before": theirs_load, "loadavg_after": os.getloadavg()})
    result = {"rows": args.rows, "features": args.features, "folds": args.folds, "boots": args.boots,
              "driver_memory": args.driver_memory, "machine": platform.node(), "cpus": os.cpu_count(),
              "sparknoise": ours, "cleanlab": theirs,
              "ratio": (ours["find_label_issues_s"] / theirs["find_label_issues_s"]
                        if theirs and "find_label_issues_s" in theirs else None)}
    print(json.dumps(result, indent=1, default=str))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    json.dump(result, open(args.out, "w"), indent=1, default=str)


if __name__ == "__main__":
    main()
