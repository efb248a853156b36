"""How well out-of-fold probabilities fit the given labels, and when to distrust a detection because of it.

Confident Learning reads every confident disagreement between the model and a label as label
noise, so a weak model (too few features, underfitting) looks exactly like very noisy labels.
This module measures the model against the simplest baseline and says so:

* :func:`probability_fit`: accuracy (argmax == given label, lowest index on ties) and log loss
  (mean of ``-ln p[given]``, with ``p`` clipped at 1e-15 like scikit-learn) of the probabilities,
  and the majority-class baseline (always predict the most frequent class; the class frequencies
  as probabilities). One native aggregation on the executors, grouped by label: K rows reach the
  driver.
* :func:`fit_warnings`: the warnings a run logs and records (driver side, K-sized input).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise.core.inputs import label_index, probs_as_double_array
from sparknoise.core.row_expressions import argmax_first

LOG_LOSS_EPS = 1e-15
# A model that closes less than this share of the gap between the baseline's accuracy and 1 is weak.
WEAK_SKILL = 0.25
# An estimated share of wrong labels above this is rarely real; a weak model is the usual cause.
HIGH_NOISE = 0.3


def probability_fit(df: DataFrame, *, label_col: str, probs_col: str,
                    classes: Sequence[Any] | None = None) -> dict[str, float]:
    """Accuracy and log loss of ``probs_col`` against ``label_col``, and the majority-class baseline.

    Rows whose label is not one of the classes are left out. Returns ``accuracy``, ``log_loss``,
    ``baseline_accuracy``, ``baseline_log_loss`` and ``n`` (the rows measured).
    """
    index = label_index(df.schema[label_col], classes)
    probs = probs_as_double_array(df.schema[probs_col])
    p_given = F.greatest(F.get(probs, index), F.lit(LOG_LOSS_EPS))
    per_class = (
        df.select(index.alias("k"), (argmax_first(probs) == index).cast("long").alias("hit"),
                  (-F.log(p_given)).alias("nll"))
        .where(F.col("k") >= 0)
        .groupBy("k").agg(F.count(F.lit(1)).alias("n"), F.sum("hit").alias("hits"), F.sum("nll").alias("nll"))
        .collect()  # one row per class
    )
    n = sum(int(r["n"]) for r in per_class)
    if n == 0:
        return {"n": 0}
    counts = sorted((int(r["n"]) for r in per_class), reverse=True)
    return {
        "n": n,
        "accuracy": sum(int(r["hits"] or 0) for r in per_class) / n,
        "log_loss": sum(float(r["nll"] or 0.0) for r in per_class) / n,
        "baseline_accuracy": counts[0] / n,
        "baseline_log_loss": -sum(c / n * math.log(c / n) for c in counts if c),
    }


def fit_warnings(fit: dict[str, float] | None, estimated_noise: float) -> list[str]:
    """Warnings when the detection is likely the model's fault rather than the labels'.

    ``fit`` is :func:`probability_fit`'s result (None when the probabilities were given, not fitted);
    ``estimated_noise`` is the estimated share of wrong labels (cleanlab's num_label_issues / rows).
    """
    out = []
    if fit and fit.get("n"):
        acc, base = fit["accuracy"], fit["baseline_accuracy"]
        skill = (acc - base) / (1.0 - base) if base < 1.0 else 1.0
        if skill < WEAK_SKILL:
            out.append(
                f"the out-of-fold model is weak: accuracy {acc:.3f} against {base:.3f} for always predicting the "
                f"most frequent class (log loss {fit['log_loss']:.3f} against {fit['baseline_log_loss']:.3f}). "
                "Confident Learning reads a weak model's mistakes as label noise: give the model more or better "
                "features (input.features) or another estimator (model.estimator, model.params) before trusting "
                "the flags")
    if estimated_noise > HIGH_NOISE:
        cause = ("the model's probabilities, not the labels, are the likely cause: check how they were made"
                 if not fit else "a weak model is the likely cause: give it more or better features "
                 "(input.features) or another estimator (model.estimator, model.params)")
        out.append(f"the estimated share of wrong labels is {estimated_noise:.1%}, very high for real data; {cause}")
    return out
