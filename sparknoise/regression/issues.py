"""find_regression_issues: cleanlab's regression flag rule on given (out-of-fold) predictions.

cleanlab 2.9.0's ``regression.learn.CleanLearning.find_label_issues``, given predictions p, labels y,
an uncertainty u (one number, or one per row) and the fraction k, computes:

* the residual ``r = p - y`` (predicted minus given);
* the adjusted residual ``a = |r / (u + 1e-100)|`` (``TINY_VALUE`` = 1e-100 keeps u = 0 finite);
* the scale ``m = max(median(a), 1e-100)``, the median over *all* N rows (numpy's: the middle value,
  or the mean ``(a_(N/2) + a_(N/2+1)) / 2`` of the two middle values when N is even);
* the label quality ``exp(-a / m)`` per row;
* the flags: the ``ceil(N k)`` rows with the lowest quality. cleanlab takes them from
  ``np.argsort(scores)`` (numpy's default quicksort, not stable): its order among equal scores is
  not defined. Spark rows have no order either, so sparknoise breaks ties by id: the flagged rows
  are the first ``ceil(N k)`` by (quality ascending, id ascending). Without exact ties in the
  quality the flags are cleanlab's.

``uncertainty=None`` means no uncertainty: the rule with u = 1.0, which (since 1 + 1e-100 == 1 in
float64) divides by exactly 1: the score is ``exp(-|r| / median|r|)``. A constant u scales every
adjusted residual and the median alike, so it changes the scores only by rounding.

Where it runs: the inputs' checks are one aggregation (two with an uncertainty column); the
median and the flag cutoff are exact order statistics found by counting passes on the executors
(``regression/selection.py``; the driver sees bucket counts and one row each); the scores, flags
and ``issue_rank`` (core ``ranking``: by quality, ties by id, a window within score buckets) are
per-row native expressions. Nothing row-level reaches the driver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparknoise.core.ranking import bucket_offsets, rank_bucket, with_issue_rank
from sparknoise.errors import InputError
from sparknoise.regression import inputs
from sparknoise.regression.result import RegressionIssuesResult
from sparknoise.regression.selection import nth_smallest

TINY_VALUE = 1e-100  # cleanlab.internal.constants.TINY_VALUE
UNCERTAINTY = "__rg_u"
_ADJUSTED = "__rg_a"
_SCORE = "label_quality"
OUTPUT_COLUMNS = ("is_label_issue", "label_quality", "given_label", "predicted_label", "residual", "uncertainty",
                  "issue_rank", "sample_weight")


# --- driver-side decisions: pure functions of a few numbers ----------------------------------------


def num_issues(n_rows: int, k: float) -> int:
    """cleanlab's count of flagged rows: ``math.ceil(len(y) * k)``."""
    return math.ceil(n_rows * k)


def median_ranks(n_rows: int) -> tuple[int, ...]:
    """The 1-based ranks whose values numpy's median averages: the middle one, or the middle two."""
    return ((n_rows + 1) // 2,) if n_rows % 2 else (n_rows // 2, n_rows // 2 + 1)


def median_of(values: tuple[float, ...]) -> float:
    """numpy's median from the middle value(s): the value, or ``(a + b) / 2`` (np.mean of two)."""
    return float(values[0]) if len(values) == 1 else (float(values[0]) + float(values[1])) / 2


def score_scale(median: float) -> float:
    """cleanlab's ``max(np.median(residual_adjusted), TINY_VALUE)`` (keeps a zero median usable)."""
    return max(median, TINY_VALUE)


def check_frac(frac_issues: float, arg: str = "frac_issues") -> float:
    """k must be a number in [0, 1]."""
    if isinstance(frac_issues, bool) or not isinstance(frac_issues, (int, float)) or not 0 <= frac_issues <= 1:
        raise InputError(f"{arg}={frac_issues!r} must be a number in [0, 1]: the fraction of rows to flag "
                         "(cleanlab's k).", column=arg)
    return float(frac_issues)


def check_constant_uncertainty(uncertainty: float) -> float:
    """A constant uncertainty must be a non-negative, non-NaN number."""
    if isinstance(uncertainty, bool) or not isinstance(uncertainty, (int, float)) or math.isnan(uncertainty) \
            or uncertainty < 0:
        raise InputError(f"uncertainty={uncertainty!r} must be a non-negative number (a standard deviation), a "
                         "column name holding one per row, or None.", column="uncertainty")
    return float(uncertainty)


# --- executors ------------------------------------------------------------------------------------


def _check_uncertainty_column(df: DataFrame, name: str) -> Column:
    u = inputs.numeric_column(df, name, "uncertainty", "uncertainty")
    row = df.agg(
        F.sum(u.isNull().cast("long")).alias("null"),
        F.sum((u.isNotNull() & F.isnan(u)).cast("long")).alias("nan"),
        F.sum((u < F.lit(0.0)).cast("long")).alias("negative"),
    ).collect()[0]  # one aggregate row
    for what in ("null", "nan", "negative"):
        if row[what]:
            raise InputError(
                f"uncertainty column '{name}' has {row[what]} {what.upper() if what == 'nan' else what} value(s); "
                "every row needs a non-negative uncertainty (a standard deviation). Fill or fix those rows, or "
                "pass one number as uncertainty=...", column=name)
    return u


@dataclass(frozen=True)
class Flagged:
    """The rule's output before it becomes a result."""

    rows: DataFrame
    n_rows: int
    k: float
    num_flagged: int
    median_adjusted_residual: float


def flag(work: DataFrame, *, n_rows: int, id_col: str, k: float, uncertainty: Column | None) -> Flagged:
    """cleanlab's rule on ``work`` (which holds ``__rg_y`` and ``__rg_p``, checked): adds the output columns.

    ``uncertainty`` is a per-row double expression (or a literal), or None for u = 1.0.
    """
    u = F.lit(1.0) if uncertainty is None else uncertainty
    residual = F.col(inputs.PREDICTION) - F.col(inputs.LABEL)
    scored = (work.withColumn("residual", residual).withColumn(UNCERTAINTY, u)
              .withColumn(_ADJUSTED, F.abs(F.col("residual") / (F.col(UNCERTAINTY) + F.lit(TINY_VALUE)))))
    try:
        middle = tuple(v for v, _ in nth_smallest(scored, _ADJUSTED, id_col, median_ranks(n_rows), n_rows=n_rows))
    except ValueError as e:
        raise InputError("the adjusted residual |residual / (uncertainty + 1e-100)| overflows for some rows (an "
                         "uncertainty of 0 with a huge residual); give those rows a positive uncertainty.",
                         column="uncertainty") from e
    scale = score_scale(median_of(middle))
    scored = scored.withColumn(_SCORE, F.exp(-F.col(_ADJUSTED) / F.lit(scale)))
    m = num_issues(n_rows, k)
    if m <= 0:
        flagged = F.lit(False)
    elif m >= n_rows:
        flagged = F.lit(True)
    else:
        (s_star, id_star), = nth_smallest(scored, _SCORE, id_col, (m,), n_rows=n_rows)
        flagged = (F.col(_SCORE) < F.lit(s_star)) | ((F.col(_SCORE) == F.lit(s_star)) & (F.col(id_col) <= F.lit(id_star)))
    annotated = (scored.withColumn("is_label_issue", flagged)
                 .withColumn("given_label", F.col(inputs.LABEL))
                 .withColumn("predicted_label", F.col(inputs.PREDICTION))
                 .withColumn("uncertainty", F.col(UNCERTAINTY))
                 .withColumn("sample_weight", F.when(F.col("is_label_issue"), F.lit(0.0)).otherwise(F.lit(1.0))))
    only = annotated.filter(F.col("is_label_issue"))
    counts = {r["b"]: int(r["count"]) for r in
              only.groupBy(rank_bucket(F.col(_SCORE)).alias("b")).count().collect()}  # <= RANK_BUCKETS rows
    ranked = with_issue_rank(annotated, only, flag_col="is_label_issue", score_col=_SCORE, id_col=id_col,
                             offsets=bucket_offsets(counts))
    ranked = ranked.drop(_ADJUSTED, UNCERTAINTY, *inputs.WORKING)
    return Flagged(rows=ranked, n_rows=n_rows, k=k, num_flagged=sum(counts.values()),
                   median_adjusted_residual=scale)


def find_regression_issues(
    df: DataFrame,
    *,
    label_col: str = "label",
    prediction_col: str = "prediction",
    id_col: str = "id",
    uncertainty: float | str | None = None,
    frac_issues: float,
) -> RegressionIssuesResult:
    """Flag the ``ceil(N * frac_issues)`` rows whose given number is least consistent with its prediction.

    Args:
        df: one row per example with a numeric label, a numeric (out-of-fold) prediction and a unique
            integer or string id.
        uncertainty: None (no uncertainty), one non-negative number for every row, or the name of a
            numeric column with one non-negative uncertainty (a standard deviation) per row.
        frac_issues: cleanlab's k, in [0, 1].

    Returns:
        a :class:`RegressionIssuesResult`; ``rows`` has every input row once plus ``is_label_issue``,
        ``label_quality`` (exp(-|r/u| / median)), ``given_label``, ``predicted_label``, ``residual``
        (prediction - label), ``uncertainty`` (the u used; 1.0 with None), ``issue_rank`` and
        ``sample_weight``. See the module docstring for the rule and its tie-break.
    """
    k = check_frac(frac_issues)
    own = {label_col, prediction_col} | ({uncertainty} if isinstance(uncertainty, str) else set())
    clash = sorted(set(OUTPUT_COLUMNS) & set(df.columns) - own)
    if clash:
        raise InputError(f"the input already has output column(s) {clash}; drop or rename them.", column=clash[0])
    if id_col is None:
        raise InputError("id_col is required: ids break ties between equal scores and join results back.",
                         column="id_col")
    u: Column | None
    if uncertainty is None:
        u, kind = None, "none"
    elif isinstance(uncertainty, str):
        u, kind = _check_uncertainty_column(df, uncertainty), "column"
    else:
        u, kind = F.lit(check_constant_uncertainty(uncertainty)), "constant"
    inp = inputs.prepare(df, label_col=label_col, prediction_col=prediction_col, id_col=id_col)
    n = inputs.check_values(inp)
    if u is not None and kind == "column":
        u = F.col(uncertainty).cast("double")
    out = flag(inp.df, n_rows=n, id_col=id_col, k=k, uncertainty=u)
    rows = out.rows if kind != "none" else out.rows.drop("uncertainty")
    return RegressionIssuesResult(rows=rows, n_rows=n, k=k, num_flagged=out.num_flagged,
                                  median_adjusted_residual=out.median_adjusted_residual, uncertainty=kind,
                                  options={"label_col": label_col, "prediction_col": prediction_col,
                                           "id_col": id_col, "uncertainty": uncertainty})
