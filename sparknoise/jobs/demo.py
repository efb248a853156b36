"""`sparknoise demo` (`make demo`): the detect job on a generated noisy dataset, local Spark + Delta.

Generates a labelled feature table with 15% of labels flipped (the true label kept beside it) and
a ``split`` column (every fifth id ``test``, the rest ``train``), writes it as a local Delta table,
runs the detect job with the default config (5-fold logistic regression, prune_by_noise_rate) and
prints what it found against the known flips.
"""

from __future__ import annotations

import logging
import os
import time

from pyspark.sql import functions as F

from sparknoise.jobs.config import load_config
from sparknoise.jobs.detect import run_detect
from sparknoise.jobs.report import run_report
from sparknoise.jobs.session import job_session
from sparknoise.jobs.tables import read_table
from sparknoise.noise.synthetic import features_table

log = logging.getLogger("sparknoise")


FEATURES = [f"x{j}" for j in range(10)]
TRUTH_COL = "true_label"  # the clean label the generator keeps: for scoring the demo, never shown to reviewers


def demo_config(out: str) -> dict:
    """The demo's detect config on ``<out>/input``. The issues table (and so the review queue and its Label
    Studio tasks) carries the features and the split as passthrough columns: what a reviewer looks at, not
    the answer."""
    return load_config(None, [
        f"input.path={out}/input", f"input.features={FEATURES}", f"input.passthrough={[*FEATURES, 'split']}",
        f"output.scored={out}/scored", f"output.issues={out}/issues", f"output.runs={out}/runs",
        "run.id=demo",
    ])


def run_demo(rows: int = 200_000, classes: int = 5, noise: float = 0.15, out: str = "demo-output") -> dict:
    """Generate the data, run detect, print a summary; returns the run record."""
    out = os.path.abspath(out)
    spark = job_session("sparknoise-demo")
    started = time.perf_counter()
    input_path = f"{out}/input"
    table = features_table(spark, rows, classes, n_features=10, noise_rate=noise, seed=42)
    table = table.withColumn("split", F.when(F.col("id") % 5 == 0, F.lit("test")).otherwise(F.lit("train")))
    table.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(input_path)
    cfg = demo_config(out)
    record = run_detect(spark, cfg)
    scored = read_table(spark, f"{out}/scored").filter(F.col("run_id") == "demo")
    truth = scored.groupBy().agg(
        F.sum((F.col("is_label_issue") & (F.col("label") != F.col(TRUTH_COL))).cast("long")).alias("tp"),
        F.sum((F.col("label") != F.col(TRUTH_COL)).cast("long")).alias("flips"),
    ).first()
    flagged = record["num_flagged"]
    precision = truth["tp"] / max(flagged, 1)
    recall = truth["tp"] / max(truth["flips"], 1)
    noise_per_class = [1 - row[k] for k, row in enumerate(record["noise_matrix"])]
    print()
    print(f"sparknoise demo: {record['n_rows']:,} rows, {record['n_classes']} classes, "
          f"{truth['flips']:,} labels flipped ({noise:.0%})")
    print(f"flagged {flagged:,} rows ({flagged / record['n_rows']:.1%}); precision {precision:.3f}, "
          f"recall {recall:.3f} against the known flips")
    print("estimated noise per class (1 - P(given=k | true=k)): "
          + ", ".join(f"{k}: {v:.3f}" for k, v in enumerate(noise_per_class)))
    print(f"tables (Delta): {input_path}  {out}/scored  {out}/issues  {out}/runs")
    report = run_report(spark, cfg, "demo", f"{out}/report.html")
    print(f"label-health report: {report}")
    print(f"total {time.perf_counter() - started:.1f}s")
    return record
