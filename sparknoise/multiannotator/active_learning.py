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

    Raises :class:`InputError` up front (as cleanlab does) when the pool's probability rows are null
    or their width is not the labelled items' K (one small aggregation over the pool), besides the
    annotation rules of :func:`multiannotator_quality` (e.g. an item whose every label is null).
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
    _check_pool_width(pred_probs if pred_probs_unlabeled is None else pool, probs_col, K,
                      "pred_probs" if pred_probs_unlabeled is None else "pred_probs_unlabeled")
    top = scaled_max_udf(K, temperature)(probs_as_double_array(pool.schema[probs_col]))
    unlabelled = pool.select(F.col(item_col), ((top * F.lit(mw) + uniform) / F.lit(mw + avg)).alias(SCORE),
                             F.lit(0).cast("long").alias("num_annotations"))
    return labelled.unionByName(unlabelled)


def _check_pool_width(frame: DataFrame, probs_col: str, K: int, name: str) -> None:
    """The unlabelled pool's probability rows: non-null, K entries each (one aggregation, one row back).

    ``frame`` is ``pred_probs_unlabeled``, or all of ``pred_probs`` (whose labelled rows the bundle
    already checked to have K entries) when the pool is its unlabelled rows.
    """
    probs = probs_as_double_array(frame.schema[probs_col])
    row = frame.agg(F.min(F.size(probs)).alias("low"), F.max(F.size(probs)).alias("high"),
                    F.sum(probs.isNull().cast("long")).alias("nulls")).first()
    if row["nulls"]:
        raise InputError(f"{name} column '{probs_col}' is null in {row['nulls']} row(s); give every unlabelled item "
                         "its probabilities, or drop those rows.", column=probs_col)
    widths = sorted({w for w in (row["low"], row["high"]) if w is not None})
    if widths and widths != [K]:
        shown = " to ".join(str(w) for w in widths)
        raise InputError(f"{name} column '{probs_col}' has rows of {shown} entries but the labelled items' "
                         f"probabilities have {K} (K = {K} classes); every probability row needs one entry per "
                         "class, in the same class order.", column=probs_col)
