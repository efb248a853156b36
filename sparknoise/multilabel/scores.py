"""multilabel_label_quality_scores: cleanlab 2.9.0's multi-label ``get_label_quality_scores`` and
``get_label_quality_scores_per_class`` as a column.

One validating scan (inputs.py, executors, K-sized result), then a lazy row map (one Arrow UDF,
executors, no shuffle): per class the binary score of [1 - p_c, p_c] against the tag (the
multiclass kernels at K = 2), aggregated across classes on the row.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise.core.estimates import confident_thresholds
from sparknoise.errors import ConfigError
from sparknoise.multilabel import inputs
from sparknoise.multilabel.issues import annotate_udf, check_score_options


def multilabel_label_quality_scores(
    df: DataFrame,
    *,
    label_col: str = "labels",
    probs_col: str = "pred_probs",
    classes: Sequence[Any] | None = None,
    method: str = "self_confidence",
    aggregator_kwargs: dict | None = None,
    adjust_pred_probs: bool = False,
) -> DataFrame:
    """``df`` plus ``label_quality`` (cleanlab's ``get_label_quality_scores``) and
    ``label_quality_per_class`` (``get_label_quality_scores_per_class``: K scores per row).

    ``method``: self_confidence | normalized_margin | confidence_weighted_entropy (per class);
    ``aggregator_kwargs``: default ``{"method": "exponential_moving_average", "alpha": 0.8}``, or
    ``{"method": "softmin", "temperature": ...}``, or a callable method. ``adjust_pred_probs``: subtract
    each class's confident thresholds (from the validating scan's K x 2 sums, on the driver) from its
    binary probabilities and renormalise before scoring, as cleanlab (not with
    confidence_weighted_entropy). Raises InputError for bad input.
    """
    check_score_options(method, aggregator_kwargs)
    if adjust_pred_probs and method == "confidence_weighted_entropy":
        raise ConfigError("adjust_pred_probs is not supported with method='confidence_weighted_entropy' (as in "
                          "cleanlab); use self_confidence or normalized_margin.")
    inp = inputs.prepare(df, label_col=label_col, probs_col=probs_col, id_col=None, classes=classes)
    K = inputs.num_classes_of(inp)
    prof = inputs.profile(inp, K, check_unique_ids=False)
    thresholds = None
    if adjust_pred_probs:
        counts = prof.binary_counts
        thresholds = np.array([confident_thresholds(counts[c], prof.sums[c]) for c in range(K)])
    work = inputs.with_work_column(inp, K)
    udf = annotate_udf(K, [], None, method, aggregator_kwargs, with_flags=False, adjust_thresholds=thresholds)
    out = work.withColumn("__ml_out", udf(F.col(inputs.WORK), F.lit(0).cast("long")))
    return out.select(*[F.col(c) for c in df.columns], F.col("__ml_out.label_quality").alias("label_quality"),
                      F.col("__ml_out.label_quality_per_class").alias("label_quality_per_class"))
