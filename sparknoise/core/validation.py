"""The validation pass, which is also pass 1 of Confident Learning (one scan, K-sized result).

One scan checks every row-level input rule (nulls, NaNs, probability vector length and range, row
sums within 1e-3, labels within the classes) and returns the per-class counts and exact sums of
self-confidence that the thresholds need. On the native route (a table of at least
NATIVE_MIN_ROWS rows, decided by ``native_route`` without reading a column) it is one native
aggregation (native_stats.py) and the integer ids are proven unique by a second, cheap one over the
id column (runs of consecutive ids over disjoint ranges, as in a table written in id order).
Otherwise it is a ``mapInArrow`` scan (class_stats.py) that can also count the selection
histogram, with the ids riding along. When neither proves the ids unique (string or unordered
ids) an aggregation over the ids finds the duplicates.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core import class_stats, native_stats
from sparknoise.core.constants import ROW_SUM_TOLERANCE
from sparknoise.core.inputs import LABEL_INDEX, NAN_LABEL, NOT_A_CLASS, NOT_INTEGRAL, PROBS, PreparedInput
from sparknoise.core.selection import HistogramPlan
from sparknoise.errors import InputError

log = logging.getLogger("sparknoise")

# integer ids ride along in pass 1: when the tasks read runs of consecutive ids over disjoint
# ranges (tables written in id order), uniqueness is proven without the id aggregation
_INTEGRAL_IDS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


# From this many rows on every pass is a native expression and
# aggregation. Below, generating and compiling the per-class code (new literals every run) costs
# more than the native scans save: measured 4.2-5.2 s against 2.8-3.0 s per call at 3,000 rows x 5,
# while at 1M x 10 the native route is 1.6 s faster (10.6 s against 12.2 s) and at 10M x 10 14 s.
NATIVE_MIN_ROWS = 500_000
NATIVE_ROUTE_MAX_CLASSES = 64  # the native passes by default up to this K (see native_route)


def native_route(prepared: PreparedInput, K: int) -> bool:
    """Whether the passes over this input are native: at least NATIVE_MIN_ROWS rows and K at most
    NATIVE_ROUTE_MAX_CLASSES.

    The native passes can serve any K: above ``row_expressions.NATIVE_MAX_CLASSES`` the per-class
    rules are array functions over K-entry arrays (constant expression size), and the K x K per-cell
    state (quotas, cutoffs; K² float64s on the driver, as on the Arrow route) is sent to the executors
    as a K-row table, not as plan literals (at K = 10,000 several 0.8 GB K x K arrays bound both
    routes; detection.max_classes stops the jobs at 1,000 by default). They are not the default above
    NATIVE_ROUTE_MAX_CLASSES because Spark interprets those array functions instead of generating code
    for them: at 200,000 x 1000 (same flags as cleanlab on both routes) the native route took 296.5 s,
    pass 2 alone 162.8 s, against the Arrow passes' 203.8 s and 34.9 s (bench/RESULTS.md). Between 65
    and 1000 classes the crossing point is not measured, so the Arrow passes stay the default there.

    Decided on the driver before pass 1, without reading a column. Only an input that reads files
    (a table: ``inputFiles()`` is not empty, an analysis call) can take it; a frame built from local
    data or an RDD (pandas, a list: what notebooks and tests hold in the driver) is small by
    construction. For a table, a count of at most NATIVE_MIN_ROWS rows (one short job that reads no
    column; 0.4-0.7 s at 10M rows on Delta) tells.
    """
    if K > NATIVE_ROUTE_MAX_CLASSES:
        return False
    if NATIVE_MIN_ROWS <= 0:
        return True
    if prepared.local or not _reads_files(prepared.df):
        return False
    return prepared.df.limit(NATIVE_MIN_ROWS).count() >= NATIVE_MIN_ROWS


def _reads_files(df: DataFrame) -> bool:
    try:
        return bool(df.inputFiles())
    except Exception:  # noqa: BLE001 - a plan that cannot say: let the bounded count decide
        return True


@dataclass(frozen=True)
class InputProfile:
    """What the validation pass learned: K, the classes, per-class counts and self-confidence sums."""

    n_rows: int
    num_classes: int
    classes: tuple
    label_counts: np.ndarray  # (K,) int64
    self_confidence_sums: np.ndarray  # (K,) float64, each the correctly rounded exact sum
    histogram_entries: list = field(default_factory=list)  # (cell, bucket, count) when asked for


def _fail(message: str, column: str) -> None:
    raise InputError(message, column=column)


def num_classes_of(prepared: PreparedInput) -> int:
    """K: len(classes), else the length of the first non-null probability row (reads one row; from a
    local input's driver-held rows, which Spark reads on the driver without a job)."""
    if prepared.classes is not None:
        return len(prepared.classes)
    frame = prepared.local_df if prepared.local_df is not None else prepared.df
    first = frame.filter(F.col(PROBS).isNotNull()).select(F.size(PROBS).alias("k")).limit(1).collect()
    if first:
        return int(first[0]["k"])
    if not frame.limit(1).collect():
        _fail(f"the input is empty: no rows to check (label column '{prepared.label_col}'). Check input filters.",
              prepared.label_col)
    _fail(f"probability column '{prepared.probs_col}' is null in every row; compute the probabilities first.",
          prepared.probs_col)
    raise AssertionError("unreachable")


def profile_input(
    prepared: PreparedInput,
    *,
    check_unique_ids: bool = True,
    histogram: HistogramPlan | None = None,
    num_classes: int | None = None,
    row_sum_tolerance: float = ROW_SUM_TOLERANCE,
    native: bool | None = None,
    allow_one_class: bool = False,
) -> InputProfile:
    """Run the validation pass (pass 1); raise :class:`InputError` naming the column on the first problem.

    ``histogram`` also counts the selection keys in the same scan (see selection.HistogramPlan;
    Arrow pass only). ``native``: the native aggregation; None: as ``native_route`` decides.
    ``row_sum_tolerance``: how far a row's sum may be from 1 (``math.inf``: rows need not sum to 1,
    as cleanlab's label quality scores allow); ``allow_one_class``: labels of a single class pass
    (cleanlab's label quality scores need no confident joint).
    """
    started = time.perf_counter()
    K = num_classes if num_classes is not None else num_classes_of(prepared)
    integral_ids = check_unique_ids and isinstance(prepared.id_type, _INTEGRAL_IDS)
    if native is None:
        native = histogram is None and native_route(prepared, K)
    if native and histogram is not None:
        raise ValueError("the native pass 1 does not count the selection histogram; pass 2 does")
    entries: list = []
    if native:
        stats = native_stats.class_stats_native(prepared, K, row_sum_tolerance)
        counts, hi, lo, problems = stats.counts, stats.hi_sums, stats.lo_sums, stats.problems
        largest = stats.largest_label
    else:
        counts, hi, lo, problems, entries, id_runs, id_tasks, largest = _arrow_pass(
            prepared, K, histogram, row_sum_tolerance, with_ids=integral_ids
        )
    _raise_for_problems(prepared, problems, K, largest)
    if int(counts.sum()) == 0:
        _fail(f"the input is empty: no rows to check (label column '{prepared.label_col}'). Check input filters.",
              prepared.label_col)
    if K < 2:
        _fail(f"probability column '{prepared.probs_col}' has {K} entry per row; at least 2 classes are needed.",
              prepared.probs_col)
    if np.count_nonzero(counts) < 2 and not allow_one_class:
        _fail(
            f"label column '{prepared.label_col}' has a single distinct value; Confident Learning needs rows "
            "of at least 2 classes.",
            prepared.label_col,
        )
    if not integral_ids:
        n_runs = 0
    elif native:
        n_runs = _ids_proven_unique_natively(prepared)
    else:
        proven = class_stats.ids_proven_unique(id_runs, id_tasks[class_stats.ID_RUNS], id_tasks[class_stats.ID_UNSORTED])
        n_runs = len(id_runs) if proven else 0
    if n_runs:
        log.info("ids are unique: %d runs of consecutive ids over disjoint ranges", n_runs)
    elif check_unique_ids:
        checked = time.perf_counter()
        _check_ids(prepared)
        log.info("ids checked for nulls and duplicates in %.1fs", time.perf_counter() - checked)
    sums = np.array([class_stats.exact_sum_to_float(h, l_) for h, l_ in zip(hi, lo)], dtype=np.float64)
    classes = prepared.classes if prepared.classes is not None else tuple(range(K))
    log.info("validated input: %d rows, %d classes, in %.1fs", int(counts.sum()), K, time.perf_counter() - started)
    return InputProfile(
        n_rows=int(counts.sum()),
        num_classes=K,
        classes=classes,
        label_counts=counts,
        self_confidence_sums=sums,
        histogram_entries=entries,
    )


def _arrow_pass(prepared: PreparedInput, K: int, histogram: HistogramPlan | None, row_sum_tolerance: float,
                *, with_ids: bool):
    """Pass 1 as ``mapInArrow`` (class_stats.py): off the native route, optionally with the histogram."""
    columns = [LABEL_INDEX, PROBS] + ([prepared.id_col] if with_ids else [])
    fn = class_stats.class_stats_fn(
        K,
        histogram=histogram.indices if histogram else None,
        n_cells=histogram.n_cells if histogram else 0,
        n_buckets=histogram.n_buckets if histogram else 1,
        row_sum_tolerance=row_sum_tolerance,
        with_ids=with_ids,
    )
    merged = (
        prepared.df.select(*columns)
        .mapInArrow(fn, class_stats.SCHEMA)
        .groupBy("kind", "a", "b")
        .agg(F.sum("v").alias("v"))
        .collect()
    )  # 3K class sums + a few problem counts + a bounded histogram + one id run per task; never N-sized
    counts = np.zeros(K, dtype=np.int64)
    hi = np.zeros(K, dtype=object)
    lo = np.zeros(K, dtype=object)
    problems: dict[int, int] = {}
    entries = []
    id_runs: list[tuple[int, int]] = []
    id_tasks = {class_stats.ID_RUNS: 0, class_stats.ID_UNSORTED: 0}
    largest = -1  # the largest label >= K
    for r in merged:
        kind, a, b, v = r["kind"], r["a"], r["b"], int(r["v"])
        if kind == class_stats.CLASS:
            (counts, hi, lo)[b][a] += v
        elif kind == class_stats.PROBLEM:
            problems[a] = problems.get(a, 0) + v
            if a == class_stats.LABEL_TOO_LARGE:
                largest = max(largest, b)
        elif kind == class_stats.HISTOGRAM:
            entries.append((a, b, v))
        elif kind == class_stats.ID_RUN:
            id_runs.append((a, b))
        else:
            id_tasks[kind] += v
    return counts, hi, lo, problems, entries, id_runs, id_tasks, largest


MAX_ID_RUNS = 4096


def _ids_proven_unique_natively(prepared: PreparedInput) -> int:
    """How many runs of consecutive ids prove the integer ids unique; 0 when undecided.

    One aggregation over the id column alone (a cheap columnar read): rows are grouped by
    (partition, id - position within the partition). Inside one group the positions differ, so the
    ids do; groups whose id ranges are pairwise disjoint therefore share no id. A table written in
    id order has one group per file; ids in no useful order give more than MAX_ID_RUNS groups
    (or a null id), and the exact aggregation decides.
    """
    position = F.monotonically_increasing_id().bitwiseAND(F.lit((1 << 33) - 1))  # the low 33 bits
    ident = F.col(prepared.id_col).cast("long")
    runs = (
        prepared.df.select(ident.alias("i"), F.spark_partition_id().alias("p"), position.alias("pos"))
        .groupBy("p", F.try_subtract(F.col("i"), F.col("pos")).alias("shift"))
        .agg(F.min("i").alias("low"), F.max("i").alias("high"), F.count("i").alias("n_ids"),
             F.count(F.lit(1)).alias("n"))
        .limit(MAX_ID_RUNS + 1)
        .collect()
    )  # at most MAX_ID_RUNS + 1 rows
    if len(runs) > MAX_ID_RUNS or any(r["shift"] is None or r["n_ids"] != r["n"] for r in runs):
        return 0
    ranges = [(int(r["low"]), int(r["high"])) for r in runs]
    return len(ranges) if class_stats.ids_proven_unique(ranges, len(ranges), 0) else 0


def _raise_for_problems(prepared: PreparedInput, problems: dict[int, int], K: int, largest_label: int = -1) -> None:
    label, probs = prepared.label_col, prepared.probs_col
    n = problems.get
    if n(class_stats.NULL_LABEL):
        _fail(f"label column '{label}' has {n(class_stats.NULL_LABEL)} null value(s); drop or fix those rows "
              "(or label them) before finding label issues.", label)
    if n(NAN_LABEL):
        _fail(f"label column '{label}' has {n(NAN_LABEL)} NaN value(s); drop or fix those rows.", label)
    if n(NOT_INTEGRAL):
        _fail(f"label column '{label}' has {n(NOT_INTEGRAL)} non-integral value(s); without `classes`, labels "
              "must be the integers 0..K-1. Pass classes=[...] to map other values (a continuous target? regression "
              "targets are not supported by sparknoise yet).", label)
    if n(NOT_A_CLASS):
        where = (f"not in classes {list(prepared.classes)}" if prepared.classes is not None
                 else "negative or too large to be a class index")
        _fail(f"label column '{label}' has {n(NOT_A_CLASS)} value(s) {where}; fix those labels or pass the "
              "full list of label values as classes=[...].", label)
    if n(class_stats.NULL_PROBS):
        _fail(f"probability column '{probs}' is null in {n(class_stats.NULL_PROBS)} row(s); drop or recompute "
              "those rows.", probs)
    if n(class_stats.WRONG_LENGTH):
        want = f"{K} (one per class)" if prepared.classes is not None else f"{K}, the length of the first row"
        _fail(f"probability column '{probs}' has {n(class_stats.WRONG_LENGTH)} row(s) whose length is not "
              f"{want}. Recompute the probabilities with one entry per class.", probs)
    if n(class_stats.LABEL_TOO_LARGE):
        # cleanlab's rule and wording: the probabilities need a column for the largest label
        need = max(largest_label + 1, K + 1)
        _fail(f"label column '{label}' has {n(class_stats.LABEL_TOO_LARGE)} value(s) outside 0..{K - 1} (up to "
              f"{need - 1}): probability column '{probs}' must have at least {need} columns (one per class) but "
              f"has {K}. Fix those labels, recompute the probabilities over every class, or pass classes=[...].",
              label)
    if n(class_stats.NULL_ENTRY):
        _fail(f"probability column '{probs}' has null entries inside {n(class_stats.NULL_ENTRY)} row(s); every "
              "entry must be a number.", probs)
    if n(class_stats.NAN_PROB):
        _fail(f"probability column '{probs}' contains NaN in {n(class_stats.NAN_PROB)} row(s); drop or "
              "recompute those rows.", probs)
    if n(class_stats.NEGATIVE_PROB):
        _fail(f"probability column '{probs}' has negative values in {n(class_stats.NEGATIVE_PROB)} row(s); "
              "probabilities must be in [0, 1]." + _REPAIR_HINT, probs)
    if n(class_stats.PROB_ABOVE_ONE):
        _fail(f"probability column '{probs}' has values above 1 in {n(class_stats.PROB_ABOVE_ONE)} row(s); "
              "probabilities must be in [0, 1]." + _REPAIR_HINT, probs)
    if n(class_stats.ROW_SUM_OFF):
        _fail(f"probability column '{probs}' has {n(class_stats.ROW_SUM_OFF)} row(s) whose entries do not sum "
              f"to 1 (tolerance {ROW_SUM_TOLERANCE}); pass normalised probabilities (softmax output).", probs)


_REPAIR_HINT = (" Values a hair outside it (float32 rounding such as 1.00001) are repaired by probs_repair='clip' "
                "(in a job: input.probs_repair: clip).")


def _check_ids(prepared: PreparedInput) -> None:
    ident = prepared.id_col
    bad = (
        prepared.df.groupBy(F.col(ident)).count().filter((F.col("count") > 1) | F.col(ident).isNull()).limit(5).collect()
    )  # at most 5 example ids
    if any(r[ident] is None for r in bad):
        _fail(f"id column '{ident}' has null values; every row needs a unique non-null id.", ident)
    if bad:
        _fail(
            f"id column '{ident}' has duplicate values (for example {[r[ident] for r in bad]}); ids must be "
            "unique per row. Deduplicate the input or build a unique id.",
            ident,
        )
