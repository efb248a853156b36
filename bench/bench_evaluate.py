"""evaluate_label_noise without scratch: each step computed once (localCheckpoint) against the old behaviour
(every later step recomputing the out-of-fold probabilities and scored rows lazily).

The measured case of issue 31: a frame built from pandas (20,000 rows by default), 4 noise rates, 3 folds, no
``scratch``. ``--compare`` also runs the old behaviour in the same session (materialisation switched off by
patching ``materialised`` back to the identity where ``scratch`` is None) and prints the ratio. Results (and the
two runs' tables) must be identical; the script checks that. Writes JSON to bench/results/.

    .venv/bin/python bench/bench_evaluate.py --rows 20000 --compare
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rates", default="0.1,0.2,0.3,0.4")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--compare", action="store_true", help="also run without materialisation (slow)")
    ap.add_argument("--out", default="bench/results/evaluate_no_scratch.json")
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from pyspark.ml.classification import LogisticRegression

    import sparknoise as sn
    import sparknoise.ml.clean_learning
    import sparknoise.multiannotator.bundle
    import sparknoise.noise.evaluation
    import sparknoise.storage
    from sparknoise.jobs.session import local_spark
    from sparknoise.noise.synthetic import features_table

    spark = local_spark("bench-evaluate", master="local[2]", shuffle_partitions=4)
    pdf = features_table(spark, args.rows, 4, n_features=8, noise_rate=0.0, seed=3).drop("true_label").toPandas()
    rates = [float(r) for r in args.rates.split(",")]

    def run():
        df = spark.createDataFrame(pdf)  # a frame from pandas, as in a notebook
        t = time.perf_counter()
        res = sn.evaluate_label_noise(df, estimator=LogisticRegression(maxIter=50), label_col="label",
                                      features=[f"x{j}" for j in range(8)], noise_rates=rates,
                                      detection_noise_rate=rates[1], n_folds=args.folds, seed=0)
        return time.perf_counter() - t, res

    figures = {"rows": args.rows, "rates": rates, "folds": args.folds}
    seconds, res = run()
    figures["materialised_s"] = round(seconds, 1)
    print(f"evaluate_label_noise, {args.rows:,} rows from pandas, {len(rates)} rates, {args.folds} folds, no scratch: "
          f"{seconds:.1f} s with each step materialised once (localCheckpoint)")
    if args.compare:
        original = sparknoise.storage.materialised

        def lazy(df, scratch, name):
            return df if scratch is None else original(df, scratch, name)

        for module in (sparknoise.noise.evaluation, sparknoise.ml.clean_learning, sparknoise.multiannotator.bundle):
            module.materialised = lazy
        old_seconds, old = run()
        figures["recomputed_s"] = round(old_seconds, 1)
        figures["speedup"] = round(old_seconds / seconds, 2)
        same = res.detection.equals(old.detection) and res.impact.equals(old.impact)
        figures["identical_results"] = bool(same)
        print(f"the same call recomputing every step lazily: {old_seconds:.1f} s ({old_seconds / seconds:.1f}x); "
              f"identical tables: {same}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(figures, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
