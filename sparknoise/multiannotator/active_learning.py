"""Which items to label next: cleanlab's ``get_active_learning_scores`` (2.9.0) on Spark.

A labelled item's score mixes its CROWDLAB consensus quality, weighted by the weights of its
annotators and the model, with the uniform 1/K weighted by the mean annotator weight; an
unlabelled item's score mixes the model's highest (temperature-scaled) probability with 1/K the
same way. Lowest score = label next. Per item: Arrow UDFs (numpy) and native expressions on executors; the driver holds
the temperature, the model weight and the M annotator weights. When every item has one label,
cleanlab's single-label branch applies (no calibration, all weights 1).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise.core.inputs import probs_as_double_array, unfolded
from sparknoise.errors import InputError
from sparknoise.multiannotator.bundle import Columns, build
from sparknoise.multiannotator.calibration import best_temperature
from sparknoise.multiannotator.crowdlab import prepared, run_crowdlab
from sparknoise.multiannotator.udfs import scaled_max_udf

SCORE = "active_learning_score"


def active_learning_scores(
    annotations: DataFrame,
    pred_probs: DataFrame,
    pred_probs_unlabeled: DataFrame | None = None,
    *,
    item_col: str = "id",
    annotator_col: str = "annotator",
    label_col: str = "label",
    probs_col: str = "pred_probs",
    classes: Sequence[Any] | None = None,
    scratch: str | None = None,
) -> DataFrame:
    """(item, ``active_learning_score``, ``num_annotations``) for every labelled item, and for every
    item of ``pred_probs_unlabeled`` (``num_annotations`` 0). Lowest score = label next.

    The scores equal ``cleanlab.multiannotator.get_active_learning_scores`` on the same data in wide
    form. Without ``pred_probs_unlabeled``, the ``pred_probs`` rows of items nobody labelled are
    scored as the unlabelled pool (cleanlab's wide input cannot hold them).
    """
    cols = Columns(item=item_col, annotator=annotator_col, label=label_col, probs=probs_col)
    b = build(annotations, pred_probs, cols, classes=classes, scratch=scratch, allow_single=True)
    K = b.K
    if b.n_multi:
        temperature = best_temperature(b)
        frame, r, _ = run_crowdlab(b, consensus_method="best_quality", quality_method="crowdlab",
                                   calibrate_probs=False, label_quality_method="self_confidence",
                                   temperature=temperature)
        mw, avg = r.mw, float(np.mean(r.aw))
        weights = F.col("aw_sum") + F.lit(mw)
        quality = F.col("cqs")
    else:
        temperature, mw, avg = 1.0, 1.0, 1.0
        frame = prepared(b)
        weights = F.col("m").cast("double") + F.lit(1.0)
        quality = F.get(F.col("probs"), F.col("mv"))
    uniform = F.lit(1.0 / K) * F.lit(avg)
    labelled = frame.select(F.col(item_col), ((quality * weights + uniform) / (weights + F.lit(avg))).alias(SCORE),
                            F.col("m").cast("long").alias("num_annotations"))
    if pred_probs_unlabeled is None:
        pool = unfolded(pred_probs).join(b.frame.select(item_col), item_col, "left_anti")
    else:
        pool = unfolded(pred_probs_unlabeled)
    if probs_col not in pool.columns or item_col not in pool.columns:
        raise InputError(f"pred_probs_unlabeled needs the columns '{item_col}' and '{probs_col}'; it has {pool.columns}",
                         column=probs_col)
    top = scaled_max_udf(K, temperature)(probs_as_double_array(pool.schema[probs_col]))
    unlabelled = pool.select(F.col(item_col), ((top * F.lit(mw) + uniform) / F.lit(mw + avg)).alias(SCORE),
                             F.lit(0).cast("long").alias("num_annotations"))
    return labelled.unionByName(unlabelled)
