"""The confident joint: pass 2 (a row map and a KxK aggregation) and its calibration (driver).

``cj[a][b]`` counts the rows with given label ``a`` that are confidently guessed to belong to
class ``b`` (reference note section 1.2). The same pass counts cleanlab's ``num_label_issues``
(off-diagonal confident rows that survive the safeguard) and rows whose probabilities do not sum
to 1, so the table is read once for all three.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import functions as F
from pyspark.sql.functions import arrow_udf

from sparknoise import kernels
from sparknoise.constants import CONFIDENT_SLACK, ROW_SUM_TOLERANCE, TINY_VALUE
from sparknoise.errors import InputError
from sparknoise.inputs import LABEL_INDEX, PROBS, PreparedInput
from sparknoise.rounding import round_preserving_row_totals

log = logging.getLogger("sparknoise")


@dataclass(frozen=True)
class ConfidentJointCounts:
    """Raw pass-2 counts: the confident joint before the diagonal clip, and two row counts."""

    confident_joint: np.ndarray  # (K, K) int64, given label on rows, no clip, no calibration
    num_label_issues: int  # cleanlab's num_label_issues(estimation_method='off_diagonal')
    rows_not_summing_to_one: int


def confident_guess_udf(thresholds: np.ndarray, num_classes: int, row_sum_tolerance: float):
    """An Arrow UDF (label index, probs) -> struct(guess, keep_out, bad_sum) per row."""
    shifted = np.asarray(thresholds, dtype=np.float64) - CONFIDENT_SLACK

    @arrow_udf("guess int, keep_out boolean, bad_sum boolean")
    def confident_guess(labels: pa.Array, probs: pa.Array) -> pa.Array:
        y = kernels.int_column(labels)
        P = kernels.probs_matrix(probs, num_classes)
        guess = kernels.guessed_true_labels(P, shifted)
        return pa.StructArray.from_arrays(
            [
                pa.array(guess, pa.int32()),
                pa.array(kernels.keep_out(P, y)),
                pa.array(kernels.row_sum_off(P, row_sum_tolerance)),
            ],
            names=["guess", "keep_out", "bad_sum"],
        )

    return confident_guess


def count_confident_joint(
    prepared: PreparedInput,
    thresholds: np.ndarray,
    num_classes: int,
    *,
    row_sum_tolerance: float = ROW_SUM_TOLERANCE,
) -> ConfidentJointCounts:
    """Pass 2 over the table: at most 4·K² grouped counts reach the driver."""
    started = time.perf_counter()
    udf = confident_guess_udf(thresholds, num_classes, row_sum_tolerance)
    g = prepared.df.select(F.col(LABEL_INDEX).alias("y"), udf(F.col(LABEL_INDEX), F.col(PROBS)).alias("r"))
    rows = (
        g.groupBy("y", "r.guess", "r.keep_out", "r.bad_sum").count().collect()
    )  # <= 4 K^2 rows: (given, guess, keep_out, bad_sum) -> count
    cj = np.zeros((num_classes, num_classes), dtype=np.int64)
    issues = 0
    bad = 0
    for r in rows:
        y, guess, kept, bad_sum, n = r[0], r[1], r[2], r[3], r[4]
        if bad_sum:
            bad += n
        if guess < 0:
            continue
        cj[y, guess] += n
        if guess != y and not kept:
            issues += n
    log.info("confident joint counted in %.1fs", time.perf_counter() - started)
    return ConfidentJointCounts(confident_joint=cj, num_label_issues=issues, rows_not_summing_to_one=bad)


def check_row_sums(counts: ConfidentJointCounts, probs_col: str, tolerance: float = ROW_SUM_TOLERANCE) -> None:
    """Raise if any probability row does not sum to 1 within the tolerance."""
    if counts.rows_not_summing_to_one:
        raise InputError(
            f"probability column '{probs_col}' has {counts.rows_not_summing_to_one} row(s) whose entries "
            f"do not sum to 1 (tolerance {tolerance}); pass normalised probabilities (softmax output).",
            column=probs_col,
        )


def clip_diagonal(cj: np.ndarray) -> np.ndarray:
    """cj[k][k] = max(cj[k][k], 1), as cleanlab does before calibrating (its issue #158)."""
    out = np.array(cj, dtype=np.int64, copy=True)
    np.fill_diagonal(out, out.diagonal().clip(min=1))
    return out


def calibrate_confident_joint(cj: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Rescale rows to the label counts and the total to N, then round preserving row totals."""
    counts = np.asarray(label_counts)
    calibrated = (cj.T / np.clip(cj.sum(axis=1), a_min=TINY_VALUE, a_max=None) * counts).T
    calibrated = calibrated / np.clip(np.sum(calibrated), a_min=TINY_VALUE, a_max=None) * sum(counts)
    return round_preserving_row_totals(calibrated)
