"""Benchmark: sparknoise.regression_label_quality_scores (outre) exact and approximate vs cleanlab 2.9.0.

For each size, in one run on one machine (local[2] Spark session, 4 shuffle partitions):
  * labels and predictions generated with numpy (a nonlinear truth, Gaussian label noise rounded to
    0.1, 5% of labels corrupted by large errors, predictions = truth + model error);
  * sparknoise with neighbors="exact" (sizes <= --exact-max) and neighbors="approximate": every row's
    score materialised (a ``noop`` write) and timed, then (id, label_quality) collected;
  * cleanlab's ``get_label_quality_scores(labels, predictions)`` (method="outre") timed in this
    process for sizes <= --cleanlab-max (sklearn returns N x ceil(N/2) distances: ~16·N²/2 bytes);
  * agreement: max |sparknoise exact - cleanlab|; approximate vs exact (or vs cleanlab): Spearman
    correlation of the scores and the overlap of their lowest 1% (lowest scores, ties by id).
Sizes above --frame-max (the scale runs: 10M rows with a 2 GB driver heap) are written once as
Parquet by numpy/pyarrow and read back by Spark (no driver-side frame), only the approximate route
runs, and no score reaches the driver: the rows are materialised (a ``noop`` write) and a one-row
summary (count, min, median, lowest-1% cutoff of the scores) is aggregated; the flags of the lowest
1% are compared with the 5% of labels the generator corrupted (the fraction of them among the lowest
1%), the only reference there is at that size.
Prints the figures and writes JSON (bench/results/regression_scores.json by default), after each size.

    .venv/bin/python bench/bench_regression_scores.py --sizes 5000 20000 200000
    .venv/bin/python bench/bench_regression_scores.py --sizes 10000000 --driver-memory 2g \
        --out bench/results/regression_scores_10m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def make_regression(n: int, seed: int = 0, with_bad: bool = False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    truth = 3 * x[:, 0] + 2 * np.sin(2 * x[:, 1]) + x[:, 2] ** 2
    labels = np.round(truth + rng.normal(size=n) * 0.3, 1)
    bad = rng.random(n) < 0.05
    labels[bad] += np.round(rng.normal(size=bad.sum()) * 6, 1)
    predictions = truth + rng.normal(size=n) * 0.6
    return (labels, predictions, bad) if with_bad else (labels, predictions)


def parquet_table(n: int, data_dir: str) -> str:
    """The generated rows (id, label, prediction, corrupted) as a Parquet folder, written once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(data_dir, f"regression_n{n}")
    if os.path.exists(os.path.join(path, "_SUCCESS")):
        return path
    os.makedirs(path, exist_ok=True)
    labels, predictions, bad = make_regression(n, with_bad=True)
    step = 1_000_000
    for i, start in enumerate(range(0, n, step)):
        stop = min(n, start + step)
        pq.write_table(pa.table({"id": np.arange(start, stop), "label": labels[start:stop],
                                 "prediction": predictions[start:stop], "corrupted": bad[start:stop]}),
                       os.path.join(path, f"part-{i:05d}.parquet"))
    open(os.path.join(path, "_SUCCESS"), "w").close()
    return path


def run_at_scale(spark, path: str, n: int) -> dict:
    """Approximate outre scores on a Parquet table: materialised, summarised, nothing row-level collected."""
    from pyspark.sql import functions as F

    import sparknoise as sn

    frame = spark.read.parquet(path)
    t0 = time.perf_counter()
    res = sn.score_regression_labels(frame, neighbors="approximate")  # the other columns ride along
    res.rows.write.format("noop").mode("overwrite").save()
    elapsed = time.perf_counter() - t0
    m = max(1, n // 100)
    scored = res.rows
    cutoff = scored.agg(F.percentile_approx("label_quality", m / n, 100000).alias("q")).first()["q"]
    low = scored.where(F.col("label_quality") <= cutoff).agg(
        F.count(F.lit(1)).alias("lowest"), F.sum(F.col("corrupted").cast("long")).alias("corrupted_in_lowest"),
        F.min("label_quality").alias("min")).first()
    return {"seconds": elapsed, "search": res.search, "k": res.k, "scaling_factor": res.scaling_factor,
            "lowest_1pct_rows": low["lowest"], "corrupted_among_lowest_1pct": low["corrupted_in_lowest"] / low["lowest"],
            "min_score": low["min"]}


def agreement(reference: np.ndarray, other: np.ndarray) -> dict:
    from scipy.stats import spearmanr

    m = max(1, len(reference) // 100)
    low_ref = set(np.argsort(reference, kind="stable")[:m].tolist())
    low_other = set(np.argsort(other, kind="stable")[:m].tolist())
    return {"spearman": float(spearmanr(reference, other).statistic),
            "lowest_1pct_overlap": len(low_ref & low_other) / m,
            "max_abs_diff": float(np.max(np.abs(reference - other)))}


def run_sparknoise(spark, frame, n: int, neighbors: str) -> tuple[np.ndarray, dict]:
    import sparknoise as sn

    t0 = time.perf_counter()
    res = sn.score_regression_labels(frame, neighbors=neighbors)
    res.rows.write.format("noop").mode("overwrite").save()
    elapsed = time.perf_counter() - t0
    rows = res.rows.select("id", "label_quality").collect()
    scores = np.empty(n)
    for r in rows:
        scores[r["id"]] = r["label_quality"]
    return scores, {"seconds": elapsed, "search": res.search, "k": res.k, "scaling_factor": res.scaling_factor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 200000])
    parser.add_argument("--exact-max", type=int, default=200000)
    parser.add_argument("--cleanlab-max", type=int, default=20000)
    parser.add_argument("--frame-max", type=int, default=200000)
    parser.add_argument("--driver-memory", default=None)
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "regression_scores.json"))
    args = parser.parse_args()

    import pandas as pd

    from sparknoise.jobs.session import local_spark

    spark = local_spark("bench-regression-scores", master="local[2]", shuffle_partitions=4,
                        driver_memory=args.driver_memory)
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "driver_memory": args.driver_memory or "default", "sizes": []}
    try:
        for n in args.sizes:
            if n > args.frame_max:
                entry = {"rows": n, "approximate": run_at_scale(spark, parquet_table(n, args.data), n),
                         "load_average": os.getloadavg()}
                report["sizes"].append(entry)
                print(json.dumps(entry), flush=True)
                os.makedirs(os.path.dirname(args.out), exist_ok=True)
                with open(args.out, "w") as f:
                    json.dump(report, f, indent=2)
                continue
            labels, predictions = make_regression(n)
            pdf = pd.DataFrame({"id": np.arange(n), "label": labels, "prediction": predictions})
            frame = spark.createDataFrame(pdf).repartition(4)
            entry: dict = {"rows": n, "distinct_points": int(len(pdf.groupby(["label", "prediction"])))}
            reference = None
            if n <= args.cleanlab_max:
                from cleanlab.regression.rank import get_label_quality_scores

                t0 = time.perf_counter()
                reference = get_label_quality_scores(labels, predictions)
                entry["cleanlab_seconds"] = time.perf_counter() - t0
            if n <= args.exact_max:
                exact, info = run_sparknoise(spark, frame, n, "exact")
                entry["exact"] = info
                if reference is not None:
                    entry["exact"]["max_abs_diff_vs_cleanlab"] = float(np.max(np.abs(exact - reference)))
                reference = exact
            approx, info = run_sparknoise(spark, frame, n, "approximate")
            entry["approximate"] = info
            if reference is not None:
                entry["approximate"]["vs_exact"] = agreement(reference, approx)
            report["sizes"].append(entry)
            print(json.dumps(entry), flush=True)
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            with open(args.out, "w") as f:
                json.dump(report, f, indent=2)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
