"""Benchmark: k-fold cross_val_predict_proba vs one fit on all rows, and vs scikit-learn.

N rows x D features, K classes, LogisticRegression, in one run:
  * Spark ML: one fit on all rows (timed), then sparknoise.cross_val_predict_proba with k folds,
    timed until every out-of-fold probability is materialised (a `noop` write); ratio = cv / fit
    (the target is at most k);
  * scikit-learn on the same data in numpy: one fit, and cross_val_predict(method="predict_proba")
    with StratifiedKFold(k) (n_jobs=1 and n_jobs=-1); ratio likewise.
Prints the figures and writes JSON (bench/results/cross_val.json).

    .venv/bin/python bench/bench_cross_val.py --rows 1000000 --features 20 --classes 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=50)
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "cross_val.json"))
    args = parser.parse_args()

    import logging

    import numpy as np
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression as SkLogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    import sparknoise as sn
    from sparknoise.jobs.session import local_spark

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    X, y = make_classification(n_samples=args.rows, n_features=args.features, n_informative=10,
                               n_classes=args.classes, random_state=0)
    path = os.path.join(args.data, f"features_n{args.rows}_d{args.features}_k{args.classes}")
    spark = local_spark("sparknoise-bench-cv", driver_memory="4g", shuffle_partitions=8)
    if not os.path.exists(os.path.join(path, "_delta_log")):
        import pandas as pd

        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(args.features)])
        frame.insert(0, "label", y.astype(np.int64))
        frame.insert(0, "id", np.arange(args.rows, dtype=np.int64))
        spark.createDataFrame(frame).repartition(8).write.format("delta").save(path)
    table = spark.read.format("delta").load(path)
    df = VectorAssembler(inputCols=[f"f{i}" for i in range(args.features)], outputCol="features").transform(table)
    lr = LogisticRegression(maxIter=args.max_iter, tol=1e-6)

    t = time.perf_counter()
    lr.fit(df)
    spark_fit = time.perf_counter() - t
    t = time.perf_counter()
    oof = sn.cross_val_predict_proba(df, lr, n_folds=args.folds, seed=0)
    oof.write.format("noop").mode("overwrite").save()
    spark_cv = time.perf_counter() - t

    sk = SkLogisticRegression(max_iter=args.max_iter, tol=1e-6)
    t = time.perf_counter()
    sk.fit(X, y)
    sk_fit = time.perf_counter() - t
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=0)
    t = time.perf_counter()
    cross_val_predict(sk, X, y, cv=folds, method="predict_proba", n_jobs=1)
    sk_cv = time.perf_counter() - t
    t = time.perf_counter()
    cross_val_predict(sk, X, y, cv=folds, method="predict_proba", n_jobs=-1)
    sk_cv_parallel = time.perf_counter() - t

    row = {
        "rows": args.rows, "features": args.features, "classes": args.classes, "folds": args.folds,
        "spark_fit_s": round(spark_fit, 2), "spark_cv_s": round(spark_cv, 2),
        "spark_cv_over_fit": round(spark_cv / spark_fit, 2),
        "sklearn_fit_s": round(sk_fit, 2), "sklearn_cv_s": round(sk_cv, 2),
        "sklearn_cv_parallel_s": round(sk_cv_parallel, 2),
        "sklearn_cv_over_fit": round(sk_cv / sk_fit, 2),
        "spark_cv_over_sklearn_cv": round(spark_cv / sk_cv, 2),
    }
    doc = {"benchmark": "cross_val_predict_proba", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "results": [row]}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print(json.dumps(row, indent=2))
    print(f"wrote {args.out}")
    spark.stop()


if __name__ == "__main__":
    main()
