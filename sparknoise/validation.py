"""The validation pass, which is also pass 1 of Confident Learning (one aggregation, K rows out).

One ``groupBy(label index)`` over the input checks every row-level rule of DESIGN.md section 6
that native expressions can check, and returns the per-class counts and exact sums of
self-confidence that the thresholds need. Duplicate ids need their own (shuffle) aggregation.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
from pyspark.sql import functions as F

from sparknoise.constants import PROBABILITY_RANGE_SLACK
from sparknoise.errors import InputError
from sparknoise.inputs import LABEL_INDEX, NAN_LABEL, NOT_A_CLASS, NOT_INTEGRAL, PROBS, PreparedInput

log = logging.getLogger("sparknoise")

# Self-confidence is summed as DECIMAL(38, 28): exact and so independent of partitioning and
# summation order (a double sum differs by an ulp between partitionings). 10 integer digits.
_EXACT_SUM = "decimal(38,28)"


@dataclass(frozen=True)
class InputProfile:
    """What the validation pass learned: K, the classes, per-class counts and self-confidence sums."""

    n_rows: int
    num_classes: int
    classes: tuple
    label_counts: np.ndarray  # (K,) int64
    self_confidence_sums: np.ndarray  # (K,) float64, each the correctly rounded exact sum


def _fail(message: str, column: str) -> None:
    raise InputError(message, column=column)


def profile_input(prepared: PreparedInput, *, check_unique_ids: bool = True) -> InputProfile:
    """Run the validation pass; raise :class:`InputError` naming the column on the first problem."""
    started = time.perf_counter()
    p = F.col(PROBS)
    y = F.col(LABEL_INDEX)
    size = F.size(p)
    stats = (
        prepared.df.groupBy(y.alias("y"))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.when(y >= 0, F.try_element_at(p, y + 1)).cast(_EXACT_SUM)).alias("sc_sum"),
            F.sum(F.when(p.isNull(), 1).otherwise(0)).alias("null_probs"),
            F.sum(F.when(F.size(F.array_compact(p)) != size, 1).otherwise(0)).alias("null_elements"),
            F.min(size).alias("min_len"),
            F.max(size).alias("max_len"),
            F.min(F.array_min(p)).alias("p_min"),
            F.max(F.array_max(p)).alias("p_max"),
            F.sum(F.when(F.col(prepared.id_col).isNull(), 1).otherwise(0)).alias("null_ids"),
        )
        .collect()  # one row per label index: K rows plus at most four error codes
    )
    label, probs, ident = prepared.label_col, prepared.probs_col, prepared.id_col
    if not stats:
        _fail(f"the input is empty: no rows to check (label column '{label}'). Check input filters.", label)
    by_code = {r["y"]: r for r in stats}
    n_rows = sum(r["n"] for r in stats)
    if None in by_code and by_code[None]["n"] > 0:
        _fail(
            f"label column '{label}' has {by_code[None]['n']} null value(s); drop or fix those rows "
            "(or label them) before finding label issues.",
            label,
        )
    if NAN_LABEL in by_code:
        _fail(f"label column '{label}' has {by_code[NAN_LABEL]['n']} NaN value(s); drop or fix those rows.", label)
    if NOT_INTEGRAL in by_code:
        _fail(
            f"label column '{label}' has {by_code[NOT_INTEGRAL]['n']} non-integral value(s); without "
            "`classes`, labels must be the integers 0..K-1. Pass classes=[...] to map other values.",
            label,
        )
    if NOT_A_CLASS in by_code:
        where = (
            f"not in classes {list(prepared.classes)}"
            if prepared.classes is not None
            else "negative or too large to be a class index"
        )
        _fail(
            f"label column '{label}' has {by_code[NOT_A_CLASS]['n']} value(s) {where}; fix those labels "
            "or pass the full list of label values as classes=[...].",
            label,
        )
    null_ids = sum(r["null_ids"] for r in stats)
    if null_ids:
        _fail(f"id column '{ident}' has {null_ids} null value(s); every row needs a unique non-null id.", ident)
    null_probs = sum(r["null_probs"] for r in stats)
    if null_probs:
        _fail(f"probability column '{probs}' is null in {null_probs} row(s); drop or recompute those rows.", probs)
    null_elements = sum(r["null_elements"] or 0 for r in stats)
    if null_elements:
        _fail(
            f"probability column '{probs}' has null entries inside {null_elements} row(s); every "
            "entry must be a number.",
            probs,
        )
    min_len = min(r["min_len"] for r in stats)
    max_len = max(r["max_len"] for r in stats)
    expected = len(prepared.classes) if prepared.classes is not None else None
    if min_len != max_len or (expected is not None and min_len != expected):
        want = f"{expected} (one per class)" if expected is not None else "the same length in every row"
        _fail(
            f"probability column '{probs}' has rows of length {min_len}..{max_len}; expected {want}. "
            "Recompute the probabilities with one entry per class.",
            probs,
        )
    num_classes = max_len
    p_min = min(r["p_min"] for r in stats)
    p_max = max(r["p_max"] for r in stats)
    if math.isnan(p_max) or math.isnan(p_min):
        _fail(f"probability column '{probs}' contains NaN; drop or recompute those rows.", probs)
    if p_min < -PROBABILITY_RANGE_SLACK:
        _fail(f"probability column '{probs}' has negative values (min {p_min!r}); probabilities must be in [0, 1].", probs)
    if p_max > 1 + PROBABILITY_RANGE_SLACK:
        _fail(f"probability column '{probs}' has values above 1 (max {p_max!r}); probabilities must be in [0, 1].", probs)
    if num_classes < 2:
        _fail(f"probability column '{probs}' has {num_classes} entry per row; at least 2 classes are needed.", probs)
    too_big = [code for code in by_code if code is not None and code >= num_classes]
    if too_big:
        _fail(
            f"label column '{label}' has values up to {max(too_big)} but the probability rows have "
            f"{num_classes} entries; labels must be 0..{num_classes - 1}, or pass classes=[...].",
            label,
        )
    counts = np.zeros(num_classes, dtype=np.int64)
    sums = np.zeros(num_classes, dtype=np.float64)
    for code, r in by_code.items():
        counts[code] = r["n"]
        sums[code] = float(r["sc_sum"])
    if np.count_nonzero(counts) < 2:
        _fail(
            f"label column '{label}' has a single distinct value; Confident Learning needs rows "
            "of at least 2 classes.",
            label,
        )
    if check_unique_ids:
        dupes = (
            prepared.df.groupBy(F.col(ident)).count().filter(F.col("count") > 1).limit(5).collect()
        )  # at most 5 example ids
        if dupes:
            examples = [r[ident] for r in dupes]
            _fail(
                f"id column '{ident}' has duplicate values (for example {examples}); ids must be "
                "unique per row. Deduplicate the input or build a unique id.",
                ident,
            )
    classes = prepared.classes if prepared.classes is not None else tuple(range(num_classes))
    log.info(
        "validated input: %d rows, %d classes, in %.1fs", n_rows, num_classes, time.perf_counter() - started
    )
    return InputProfile(
        n_rows=n_rows,
        num_classes=num_classes,
        classes=classes,
        label_counts=counts,
        self_confidence_sums=sums,
    )
