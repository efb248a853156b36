"""`python -m sparknoise.demo`: the whole flow on a generated noisy dataset, local Spark + Delta.

Generates N rows of K-class out-of-fold-like probabilities with 15% of labels flipped, writes them
as a local Delta table, reads the table back, finds the label issues, writes the scored rows and
the flagged rows as Delta tables, and prints what it found against the known flips.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from pyspark.sql import functions as F

import sparknoise as sn
from sparknoise.local_spark import local_spark
from sparknoise.synthetic import probabilities_table


def main(argv: list[str] | None = None) -> None:
    """Run the demo; see ``--help``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.15)
    parser.add_argument("--out", default="demo-output", help="folder for the local Delta tables")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    out = os.path.abspath(args.out)
    spark = local_spark("sparknoise-demo", shuffle_partitions=8)
    started = time.perf_counter()

    input_path = f"{out}/input"
    probabilities_table(
        spark, args.rows, args.classes, noise_rate=args.noise, seed=42, rows_per_partition=50_000
    ).write.format("delta").mode("overwrite").save(input_path)
    table = spark.read.format("delta").load(input_path)

    res = sn.find_label_issues(table, label_col="label", probs_col="pred_probs", id_col="id")
    res.rows.write.format("delta").mode("overwrite").save(f"{out}/scored")
    scored = spark.read.format("delta").load(f"{out}/scored")
    scored.filter("is_label_issue").select(
        "id", F.col("label").alias("given_label"), F.col("predicted_label").alias("suggested_label"),
        "label_quality", "issue_rank",
    ).write.format("delta").mode("overwrite").save(f"{out}/issues")

    truth = scored.groupBy().agg(
        F.sum(F.when(F.col("is_label_issue") & (F.col("label") != F.col("true_label")), 1).otherwise(0)).alias("tp"),
        F.sum(F.when(F.col("label") != F.col("true_label"), 1).otherwise(0)).alias("flips"),
    ).first()
    precision = truth["tp"] / max(res.num_flagged, 1)
    recall = truth["tp"] / max(truth["flips"], 1)
    table_view = res.class_table()
    print()
    print(f"sparknoise demo: {res.n_rows:,} rows, {res.num_classes} classes, {truth['flips']:,} labels flipped")
    print(f"flagged {res.num_flagged:,} rows ({res.num_flagged / res.n_rows:.1%}); "
          f"precision {precision:.3f}, recall {recall:.3f} against the known flips")
    print(table_view.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"tables: {input_path}, {out}/scored, {out}/issues")
    print(f"total {time.perf_counter() - started:.1f}s")
    spark.stop()


if __name__ == "__main__":
    main()
