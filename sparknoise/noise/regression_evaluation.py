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

* :func:`evaluate_regression_rate`: one noise rate of ``evaluate_label_noise(..., task="regression")``
  (inject, detect with ``RegressionCleanLearning``, fit the regressor on the noisy and on the cleaned
  rows, score on the untouched test split); :func:`mode_rates` splits a rate between the modes.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Mapping

import pandas as pd
from pyspark.ml import Estimator
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise.errors import ConfigError, InputError
from sparknoise.ml.cross_validation import activate
from sparknoise.noise.injection import IS_NOISY, inject_label_noise
from sparknoise.noise.regression_noise import NOISE_MODE, REGRESSION_MODES
from sparknoise.noise.scores import detection_scores as _metrics
from sparknoise.regression.learn import RegressionCleanLearning
from sparknoise.storage import materialised

log = logging.getLogger("sparknoise")

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


# --- evaluate_label_noise(..., task="regression"): one noise rate ----------------------------------

REGRESSION_DETECTOR = "regression_clean_learning"
REGRESSION_VARIANTS = ("noisy", "pruned", "clean")
REGRESSION_DETECTION_COLUMNS = ["noise_rate", "detector", "mode", "flagged", "true_positives", "noisy", "precision",
                                "recall", "f1"]
REGRESSION_IMPACT_COLUMNS = ["noise_rate", "variant", "train_rows", "flagged", "test_rows", "r2", "rmse", "mae"]
_EV_VECTOR = "__ev_rg_vector"
_EV_PRED = "__ev_rg_prediction"


def mode_rates(noise_mode: str | Mapping[str, float] | None, rate: float) -> dict[str, float]:
    """The rate of each regression mode at the total noise ``rate`` (driver).

    One mode name (default ``shift``) gets the whole rate; a mapping mode -> share splits it in
    proportion to the shares (``{shift: 1, unit: 1}`` at 0.2: 0.1 each). Raises :class:`ConfigError`
    on an unknown mode or a share that is not a positive finite number.
    """
    if noise_mode is None:
        noise_mode = "shift"
    if isinstance(noise_mode, str):
        shares = {noise_mode: 1.0}
    elif isinstance(noise_mode, Mapping) and noise_mode:
        shares = dict(noise_mode)
    else:
        raise ConfigError(f"noise_mode {noise_mode!r} must be a regression mode {list(REGRESSION_MODES)} or a "
                          "non-empty mapping mode -> share (e.g. {'shift': 1, 'unit': 1})")
    for m, share in shares.items():
        if m not in REGRESSION_MODES:
            raise ConfigError(f"noise_mode {m!r} is not a regression mode; use one of {list(REGRESSION_MODES)} or a "
                              "mapping of them to shares")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < math.inf:
            raise ConfigError(f"the share of noise mode {m!r} is {share!r}; it must be a positive number (each "
                              "rate is split between the modes in proportion to their shares)")
    total = float(sum(shares.values()))
    return {m: float(rate) * float(shares[m]) / total for m in REGRESSION_MODES if m in shares}


def _vectorised(df: DataFrame, features: str) -> DataFrame:
    return df.withColumn(_EV_VECTOR, array_to_vector(F.col(features)))


def fit_and_score(estimator: Estimator, train: DataFrame, test: DataFrame, *, label_col: str, features: str,
                  true_label_col: str) -> dict[str, float]:
    """Fit the regressor on ``train`` (``label_col`` against the ``features`` array), predict ``test``
    and score the predictions against ``true_label_col`` (:func:`regression_fit_metrics`). The fit and
    the scoring run on Spark; one aggregate row reaches the driver."""
    est = estimator.copy({estimator.getParam("featuresCol"): _EV_VECTOR, estimator.getParam("labelCol"): label_col,
                          estimator.getParam("predictionCol"): _EV_PRED})
    model = est.fit(_vectorised(train, features).withColumn(label_col, F.col(label_col).cast("double")))
    return regression_fit_metrics(model.transform(_vectorised(test, features)), label_col=true_label_col,
                                  prediction_col=_EV_PRED)


def evaluate_regression_rate(rate: float, *, train: DataFrame, test: DataFrame, estimator: Estimator, id_col: str,
                             label: str, features: str, true_label: str, n_train: int, n_test: int,
                             noise_mode: str | Mapping[str, float] | None, seed: int, n_folds: int, n_boot: int,
                             frac_issues: float | None, include_aleatoric_uncertainty: bool, scratch: str | None,
                             clean: dict[str, float], parallelism: int,
                             parallel_map: Callable[[Callable, list, int], list]) -> tuple[list, list, dict]:
    """Detection rows, impact rows and timings of one noise rate of a regression evaluation (driver
    orchestration; every row-level step on Spark).

    1. noise: ``inject_label_noise(task="regression")`` with :func:`mode_rates` (rate 0: none);
    2. detection: ``RegressionCleanLearning(estimator, n_folds, n_boot, seed)`` on the noisy train
       split (``frac_issues`` fixes k: ``coarse_search_range=[k], fine_search_size=0``), scored by
       :func:`regression_detection_metrics` (``all`` and each injected mode);
    3. impact: the regressor fitted on the noisy rows and on the rows not flagged (``pruned``), scored
       on the test split's trusted values (``clean``, fitted once on the trusted train values, is passed in).
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    rates = mode_rates(noise_mode, rate)
    if rate > 0:
        noisy = inject_label_noise(train, label, mode=rates, seed=seed, id_col=id_col, task="regression")
    else:
        noisy = (train.withColumn(true_label, F.col(label)).withColumn(IS_NOISY, F.lit(False))
                 .withColumn(NOISE_MODE, F.lit(None).cast("string")))
    fixed = {} if frac_issues is None else {"coarse_search_range": [float(frac_issues)], "fine_search_size": 0}
    learner = RegressionCleanLearning(estimator, n_folds=n_folds, n_boot=n_boot,
                                      include_aleatoric_uncertainty=include_aleatoric_uncertainty, seed=seed, **fixed)
    result = learner.find_label_issues(_vectorised(noisy, features), label_col=label, features_col=_EV_VECTOR,
                                       id_col=id_col)
    rows = materialised(result.rows.drop(_EV_VECTOR), scratch, f"regression_scored_{rate:g}")
    by_mode = regression_detection_metrics(rows)
    shown = by_mode[by_mode["mode"].isin(["all", *[m for m, r in rates.items() if r > 0]])]
    detection_rows = [{"noise_rate": rate, "detector": REGRESSION_DETECTOR, **rec} for rec in shown.to_dict("records")]
    flagged = int(result.num_flagged)
    timings[f"detect_{rate:g}"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    session = train.sparkSession
    fits = {"noisy": noisy, "pruned": rows.filter(~F.col("is_label_issue"))}

    def fit(name: str) -> dict[str, float]:
        activate(session)
        return fit_and_score(estimator, fits[name], test, label_col=label, features=features, true_label_col=true_label)

    scores = dict(zip(fits, parallel_map(fit, list(fits), parallelism)))
    scores["clean"] = clean
    train_rows = {"noisy": n_train, "pruned": n_train - flagged, "clean": n_train}
    impact_rows = [{"noise_rate": rate, "variant": v, "train_rows": train_rows[v],
                    "flagged": flagged if v == "pruned" else 0, "test_rows": n_test,
                    "r2": scores[v]["r2"], "rmse": scores[v]["rmse"], "mae": scores[v]["mae"]}
                   for v in REGRESSION_VARIANTS]
    timings[f"fits_{rate:g}"] = round(time.perf_counter() - t, 3)
    log.info("evaluate (regression): rate %.2f: k %g, flagged %d, R2 noisy %.4f pruned %.4f clean %.4f", rate,
             result.k, flagged, scores["noisy"]["r2"], scores["pruned"]["r2"], clean["r2"])
    return detection_rows, impact_rows, timings
