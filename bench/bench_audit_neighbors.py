"""Benchmark: recall of find_data_issues' approximate (IVF) nearest-neighbour search against exact kNN.

In one run on one machine (local[2] Spark session, 8 shuffle partitions):
  * data (numpy): N rows x d features from a mixture of --centres Gaussian clusters (centres N(0, 1),
    spread --spread), so cosine distance (Datalab's metric above 3 features) has structure; then 1% of
    the rows replaced by near copies of other rows (a copy plus N(0, 1e-4) noise): the planted near
    duplicates;
  * recall@k: ``sparknoise.audit.approximate.knn`` (the search find_data_issues runs beyond
    max_exact_rows) for each --probes value (default None: the probes self-tuned to --target, 0.95,
    as find_data_issues does) with the default cells, materialised and timed (the tuning included); the lists
    of --queries random rows collected and compared with their exact k nearest neighbours by numpy
    brute force against all N rows in this process (cleanlab's metric, self excluded; the brute-force
    time for the sample is scaled to N to estimate the exact search's cost, i.e. what Datalab's
    sklearn brute-force graph does on one machine). recall@k = mean |approx ∩ exact| / k;
  * planted near duplicates: ``sn.find_data_issues(..., issue_types=["near_duplicate"])`` with the
    defaults (neighbors="auto" -> approximate above 50,000 rows), timed; the fraction of planted copies
    (and of their sources) flagged ``is_near_duplicate_issue``, and whether each copy's set holds its
    source.
Records os.getloadavg() before and after (other engineers share the 2-core machine). Writes JSON to
bench/results/audit_neighbors.json (or --out).

    .venv/bin/python bench/bench_audit_neighbors.py --rows 200000 --dim 32
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


def make_data(n: int, d: int, centres: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    C = rng.normal(0, 1, (centres, d))
    X = C[rng.integers(0, centres, n)] + rng.normal(0, spread, (n, d))
    planted = rng.choice(n, n // 100, replace=False)
    others = np.setdiff1d(np.arange(n), planted)
    sources = rng.choice(others, len(planted), replace=False)
    X[planted] = X[sources] + rng.normal(0, 1e-4, (len(planted), d))
    return X, planted, sources


def exact_neighbours(X: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Cosine distance, self excluded, ties to the smaller index (the library's rule)."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    norms[norms == 0] = 1
    Xn = X / norms[:, None]
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 256):
        q = queries[s:s + 256]
        D = np.clip(1 - Xn[q] @ Xn.T, 0, 2)
        D[np.arange(len(q)), q] = np.inf
        for t in range(len(q)):
            part = np.argpartition(D[t], k)[:k + 1]
            pick = part[np.lexsort((part, D[t, part]))][:k]
            out[s + t] = pick
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--centres", type=int, default=200)
    ap.add_argument("--spread", type=float, default=0.5)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--probes", type=lambda v: None if v == "None" else int(v), nargs="+", default=[None],
                    help="n_probe values; None (the default): tuned to --target")
    ap.add_argument("--cells", type=int, default=None)
    ap.add_argument("--target", type=float, default=0.95, help="recall_target for the tuned probes (--probes None)")
    ap.add_argument("--skip-duplicates", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "audit_neighbors.json"))
    args = ap.parse_args()

    import pandas as pd
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    import sparknoise as sn
    from sparknoise.audit import approximate
    from sparknoise.audit.inputs import ID
    from sparknoise.audit.inputs import X as XCOL

    spark = (SparkSession.builder.master("local[2]").config("spark.sql.shuffle.partitions", "8")
             .config("spark.driver.memory", "2g").config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    n, d, k = args.rows, args.dim, args.k
    X, planted, sources = make_data(n, d, args.centres, args.spread)
    out = {"rows": n, "dim": d, "k": k, "centres": args.centres, "spread": args.spread, "metric": "cosine",
           "planted_near_duplicates": len(planted), "machine": platform.platform(), "cpus": os.cpu_count(),
           "spark": "local[2], 8 shuffle partitions", "loadavg_start": os.getloadavg(), "runs": []}
    rng = np.random.default_rng(1)
    queries = np.sort(rng.choice(n, args.queries, replace=False))
    t0 = time.perf_counter()
    truth = exact_neighbours(X, queries, k)
    brute = time.perf_counter() - t0
    out["exact_sample_seconds"] = round(brute, 2)
    out["exact_full_estimate_seconds"] = round(brute * n / len(queries), 1)
    print(f"exact kNN of {len(queries)} sample rows by numpy brute force: {brute:.1f} s "
          f"(all {n:,} rows: ~{brute * n / len(queries):.0f} s, one process)")

    pdf = pd.DataFrame({"id": np.arange(n, dtype=np.int64)})
    pdf["features"] = list(X)
    frame = spark.createDataFrame(pdf).repartition(8)
    frame.write.format("noop").mode("overwrite").save()
    work = frame.select(F.col("id").alias(ID), F.col("features").alias(XCOL))
    qset = spark.createDataFrame(pd.DataFrame({ID: queries.astype(np.int64)}))
    for probe in args.probes:
        t0 = time.perf_counter()
        lists, settings = approximate.knn(work, k=k, metric="cosine", n_rows=n, n_cells=args.cells, n_probe=probe,
                                            recall_target=args.target)
        lists = lists.localCheckpoint(eager=True)
        elapsed = time.perf_counter() - t0
        got = lists.join(qset, ID).toPandas().set_index(ID).loc[queries]
        hits = [len(set(a) & set(b.tolist())) for a, b in zip(got["nn_ids"], truth)]
        recall = float(np.mean(hits)) / k
        run = {**settings, "seconds": round(elapsed, 1), f"recall_at_{k}": round(recall, 4),
               "queries": len(queries), "queries_with_all_k": int(np.sum(np.array(hits) == k)),
               "speedup_vs_exact_estimate": round(out["exact_full_estimate_seconds"] / elapsed, 2)}
        out["runs"].append(run)
        run["meets_target"] = recall >= args.target
        tuned = (f", tuned: estimated {settings['estimated_recall']:.4f} on {settings['recall_sample']} sampled rows, "
                 f"cap {settings['probe_cap']}" if "estimated_recall" in settings else ", given")
        print(f"approximate: n_cells={settings['n_cells']} n_probe={settings['n_probe']}{tuned}: recall@{k} = "
              f"{recall:.4f} (target >= {args.target}: {'met' if recall >= args.target else 'MISSED'}), {elapsed:.0f} s "
              f"(largest cell {settings['largest_cell']}, median {settings['median_cell']})")
        _write(out, args.out)

    if not args.skip_duplicates:
        cols = frame.select("id", *[F.col("features")[j].alias(f"f{j}") for j in range(d)])
        t0 = time.perf_counter()
        res = sn.find_data_issues(cols, features=[f"f{j}" for j in range(d)], issue_types=["near_duplicate"], k=k)
        elapsed = time.perf_counter() - t0
        flags = res.rows.select("id", "is_near_duplicate_issue", "near_duplicate_set_id")
        pids = spark.createDataFrame(pd.DataFrame({"id": np.concatenate([planted, sources]).astype(np.int64)}))
        got = flags.join(pids, "id").toPandas().set_index("id")
        copy_found = got.loc[planted, "is_near_duplicate_issue"].to_numpy()
        source_found = got.loc[sources, "is_near_duplicate_issue"].to_numpy()
        same_set = (got.loc[planted, "near_duplicate_set_id"].to_numpy() == got.loc[sources, "near_duplicate_set_id"]
                    .to_numpy())
        summary = res.summary()
        out["near_duplicates"] = {
            "search": res.search, "seconds": round(elapsed, 1), "timings": res.timings,
            "planted_copies_flagged": round(float(copy_found.mean()), 4),
            "sources_flagged": round(float(source_found.mean()), 4),
            "copy_and_source_in_one_set": round(float(same_set.mean()), 4),
            "num_flagged": int(summary["num_issues"][0]), "radius": res.info["near_duplicate"]["radius"]}
        print(f"find_data_issues(near_duplicate), {res.search['kind']} search: {elapsed:.0f} s; planted copies flagged "
              f"{copy_found.mean():.4f}, their sources {source_found.mean():.4f}, same set {same_set.mean():.4f}; "
              f"{int(summary['num_issues'][0])} rows flagged in all")
    out["loadavg_end"] = os.getloadavg()
    _write(out, args.out)


def _write(out: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=2, default=str)


if __name__ == "__main__":
    main()
