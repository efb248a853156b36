"""Building blocks to evaluate regression label-noise detection and model fit, one aggregation each.

* :func:`regression_detection_metrics`: how well a detector's flags (``is_label_issue``) find the
  noise injected by ``inject_label_noise(..., task="regression")``, overall and per noise mode. The
  truth is ``is_noisy`` (the value changed); ``noise_mode`` names the mode. Overall: precision =
  flagged noisy rows / flagged rows, recall = flagged noisy rows / noisy rows, F1 their harmonic
  mean (as ``evaluate_label_noise`` scores its detectors). Per mode ``m``, the detector is scored as
  if ``m`` were the only noise, on the rows that are clean or hit by ``m``: recall = flagged
  ``m``-rows / ``m``-rows, precision = flagged ``m``-rows / (flagged ``m``-rows + flagged clean rows).
* :func:`regression_fit_metrics`: RMSE, MAE and R^2 of a prediction column against a label column.
  R^2 = 1 - SSE / SST with SST = N * population variance of the label (Spark's ``var_pop``, a
  numerically stable merge); when SST = 0, R^2 is 1.0 for a perfect fit and 0.0 otherwise (scikit-
  learn's ``r2_score`` convention).

Both run one aggregation on the executors; one row of sums reaches the driver.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise.errors import InputError
from sparknoise.noise.evaluation import _metrics
from sparknoise.noise.injection import IS_NOISY
from sparknoise.noise.regression_noise import NOISE_MODE, REGRESSION_MODES

DETECTION_BY_MODE_COLUMNS = ["mode", "flagged", "true_positives", "noisy", "precision", "recall", "f1"]


def _require(df: DataFrame, columns: dict[str, str]) -> None:
    for arg, column in columns.items():
        if column not in df.columns:
            raise InputError(f"{arg} '{column}' is not a column of the input; available: {df.columns}. Pass the "
                             f"right name as {arg}=...", column=column)


def regression_detection_metrics(df: DataFrame, *, flag_col: str = "is_label_issue", noisy_col: str = IS_NOISY,
                                 mode_col: str = NOISE_MODE) -> pd.DataFrame:
    """Precision, recall and F1 of ``flag_col`` against ``noisy_col``: one row ``all``, then one row per
    noise mode of ``REGRESSION_MODES`` (see the module docstring). A null flag counts as not flagged.

    Columns: ``mode, flagged, true_positives, noisy, precision, recall, f1`` (precision/recall None
    when their denominator is 0). One aggregation (executors); one row reaches the driver.
    """
    _require(df, {"flag_col": flag_col, "noisy_col": noisy_col, "mode_col": mode_col})
    flag = F.coalesce(F.col(flag_col).cast("boolean"), F.lit(False))
    noisy = F.coalesce(F.col(noisy_col).cast("boolean"), F.lit(False))
    mode = F.col(mode_col)

    def count(cond):
        return F.sum(cond.cast("long"))

    aggs = [count(flag).alias("flagged"), count(flag & noisy).alias("tp"), count(noisy).alias("noisy"),
            count(flag & ~noisy).alias("fp")]
    for i, m in enumerate(REGRESSION_MODES):
        hit = noisy & (mode == F.lit(m))
        aggs += [count(flag & hit).alias(f"tp{i}"), count(hit).alias(f"n{i}")]
    row = df.agg(*aggs).first()  # one row
    value = {k: int(v or 0) for k, v in row.asDict().items()}
    rows: list[dict[str, Any]] = [{"mode": "all", **_metrics(value["flagged"], value["tp"], value["noisy"])}]
    for i, m in enumerate(REGRESSION_MODES):
        tp = value[f"tp{i}"]
        rows.append({"mode": m, **_metrics(tp + value["fp"], tp, value[f"n{i}"])})
    return pd.DataFrame(rows, columns=DETECTION_BY_MODE_COLUMNS)


def regression_fit_metrics(df: DataFrame, *, label_col: str, prediction_col: str) -> dict[str, float]:
    """``{"n", "rmse", "mae", "r2"}`` of ``prediction_col`` against ``label_col`` (see the module
    docstring), in one aggregation (executors; one row reaches the driver). Raises
    :class:`InputError` on a null, NaN or infinite label or prediction, or an empty input."""
    _require(df, {"label_col": label_col, "prediction_col": prediction_col})
    y, p = F.col(label_col).cast("double"), F.col(prediction_col).cast("double")

    def bad(c):
        return F.sum((c.isNull() | F.isnan(c) | (F.abs(c) == F.lit(float("inf")))).cast("long"))

    err = y - p
    row = df.agg(F.count(F.lit(1)).alias("n"), bad(y).alias("bad_y"), bad(p).alias("bad_p"),
                 F.sum(err * err).alias("sse"), F.sum(F.abs(err)).alias("sae"), F.var_pop(y).alias("var")).first()
    n = int(row["n"])
    if n == 0:
        raise InputError("the input has no rows; there is nothing to score.", column=label_col)
    for column, key, arg in ((label_col, "bad_y", "label_col"), (prediction_col, "bad_p", "prediction_col")):
        if row[key]:
            raise InputError(f"{arg} '{column}' has {row[key]} null, NaN or infinite value(s); drop or fix those "
                             "rows before scoring.", column=column)
    sse, sst = float(row["sse"]), float(row["var"]) * n
    r2 = (1.0 - sse / sst) if sst > 0 else (1.0 if sse == 0 else 0.0)
    return {"n": n, "rmse": math.sqrt(sse / n), "mae": float(row["sae"]) / n, "r2": r2}
