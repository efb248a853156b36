"""Pass 1 as a batch kernel: per-class counts, exact self-confidence sums and row checks.

Runs inside ``mapInArrow`` over (label index, probs) batches and emits one small partial summary
per task as rows ``(kind, a, b, v)``; a ``groupBy(kind, a, b).sum(v)`` merges them. Every
quantity is an integer sum, so the merged result does not depend on partitioning or order:

* kind 0 (CLASS): a = class, b = 0 row count, 1 and 2 the high and low halves of the
  fixed-point self-confidence sum (p = hi·2⁻³¹ + lo·2⁻⁶², exact for |p| < 2, then summed exactly);
* kind 1 (PROBLEM): a = problem code, v = rows with that problem (b = the largest label for
  LABEL_TOO_LARGE, else 0);
* kind 2 (HISTOGRAM): a = selection cell, b = key bucket, v = candidates (see selection.py);
* kinds 3-5, when integer ids ride along (see :func:`ids_proven_unique`): ID_RUN a = lowest and
  b = highest id of a run of consecutive ids a task read (a task reads a few: one per input file
  written in id order); ID_RUNS v = the number of runs; ID_UNSORTED v = tasks whose ids formed
  too many runs (or held a null).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa

from sparknoise.core import kernels
from sparknoise.core.constants import PROBABILITY_RANGE_SLACK, ROW_SUM_TOLERANCE

CLASS, PROBLEM, HISTOGRAM, ID_RUN, ID_RUNS, ID_UNSORTED = 0, 1, 2, 3, 4, 5
SCHEMA = "kind int, a long, b long, v long"

# problem codes (kind PROBLEM); label codes from inputs.py are negative and reported as is
NULL_LABEL = -100
NULL_PROBS = 1
NULL_ENTRY = 2
WRONG_LENGTH = 3
NAN_PROB = 4
NEGATIVE_PROB = 5
PROB_ABOVE_ONE = 6
ROW_SUM_OFF = 7
LABEL_TOO_LARGE = 8

_SCALE = 2.0**31


def exact_parts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each float64 in (-2, 2) into integers hi, lo with value = hi·2⁻³¹ + lo·2⁻⁶² (to 2⁻⁶³)."""
    scaled = values * _SCALE  # exact: a power-of-two scaling
    hi = np.floor(scaled)
    lo = np.rint((scaled - hi) * _SCALE)  # scaled - hi is exact (Sterbenz), in [0, 1)
    return hi.astype(np.int64), lo.astype(np.int64)


def exact_sum_to_float(hi_sum: int, lo_sum: int) -> float:
    """The correctly rounded float of hi_sum·2⁻³¹ + lo_sum·2⁻⁶²."""
    return float(Fraction(int(hi_sum) * (1 << 31) + int(lo_sum), 1 << 62))


def _rows(kind: int, a: np.ndarray, b: np.ndarray, v: np.ndarray) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(np.full(len(a), kind, dtype=np.int32)), pa.array(a, pa.int64()), pa.array(b, pa.int64()),
         pa.array(v, pa.int64())],
        names=["kind", "a", "b", "v"],
    )


def class_stats_fn(
    num_classes: int,
    histogram: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    n_cells: int = 0,
    n_buckets: int = 1,
    row_sum_tolerance: float = ROW_SUM_TOLERANCE,
    with_ids: bool = False,
):
    """The mapInArrow function of pass 1, over (label index, probs[, integer id]) batches.

    ``histogram(labels, P)`` (optional) returns the flat histogram index (cell x n_buckets +
    bucket) of every selection candidate of a batch; pass 1 counts them so that the selection
    needs no histogram scan of its own. ``with_ids``: a third column holds integer ids, and the
    task reports whether they are strictly increasing, and their range.
    """
    K = num_classes
    histogram_size = n_cells * n_buckets if histogram is not None else 0

    def class_stats(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        counts = np.zeros(K, dtype=np.int64)
        hi_sums = np.zeros(K, dtype=np.int64)
        lo_sums = np.zeros(K, dtype=np.int64)
        problems: dict[int, int] = {}
        hist = np.zeros(histogram_size, dtype=np.int64) if histogram is not None else None
        pending: list[np.ndarray] = []  # histogram indices, counted in chunks of ~4M
        pending_size = 0

        ids = _IdRun()
        largest = -1  # the largest label >= K (the width the probabilities would need)

        def note(code: int, n: int) -> None:
            if n:
                problems[code] = problems.get(code, 0) + int(n)

        for batch in batches:
            if with_ids:
                ids.add(batch.column(2))
            labels_arr, probs_arr = batch.column(0), batch.column(1)
            if isinstance(probs_arr, pa.ChunkedArray):
                probs_arr = probs_arr.combine_chunks()
            ok = np.ones(batch.num_rows, dtype=bool)
            label_null = labels_arr.is_null().to_numpy(zero_copy_only=False)
            note(NULL_LABEL, label_null.sum())
            y = labels_arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            for code in np.unique(y[(y < 0) & ~label_null]):
                note(int(code), np.sum((y == code) & ~label_null))
            y_bad = label_null | (y < 0)
            too_large = ~y_bad & (y >= K)
            note(LABEL_TOO_LARGE, too_large.sum())
            if too_large.any():
                largest = max(largest, int(y[too_large].max()))
            ok &= ~(y_bad | too_large)
            probs_null = probs_arr.is_null().to_numpy(zero_copy_only=False)
            note(NULL_PROBS, probs_null.sum())
            offsets = probs_arr.offsets.to_numpy()
            lengths = np.diff(offsets)
            wrong = ~probs_null & (lengths != K)
            note(WRONG_LENGTH, wrong.sum())
            if wrong.any() or probs_null.any():
                continue  # the run will fail; skip the numbers of this batch
            values = probs_arr.flatten()
            if values.null_count:
                nulls = np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))
                note(NULL_ENTRY, len(np.unique(np.searchsorted(offsets[1:], nulls, side="right"))))
                continue
            P = kernels.probs_matrix(probs_arr, K)
            nan = np.isnan(P).any(axis=1)
            note(NAN_PROB, nan.sum())
            note(NEGATIVE_PROB, (P < -PROBABILITY_RANGE_SLACK).any(axis=1).sum())
            note(PROB_ABOVE_ONE, (P > 1 + PROBABILITY_RANGE_SLACK).any(axis=1).sum())
            note(ROW_SUM_OFF, (~nan & kernels.row_sum_off(P, row_sum_tolerance)).sum())
            ok &= ~nan
            if not ok.all():
                y, P = y[ok], P[ok]
            sc = P[np.arange(len(y)), y]
            hi, lo = exact_parts(sc)
            counts += np.bincount(y, minlength=K)
            hi_sums += _bincount_int(y, hi, K)
            lo_sums += _bincount_int(y, lo, K)
            if hist is not None:
                pending.append(histogram(y, P))
                pending_size += len(pending[-1])
                if pending_size > 1 << 22:
                    hist += np.bincount(np.concatenate(pending), minlength=histogram_size)
                    pending, pending_size = [], 0

        if hist is not None and pending:
            hist += np.bincount(np.concatenate(pending), minlength=histogram_size)
        yield _rows(CLASS, np.repeat(np.arange(K), 3), np.tile(np.arange(3), K),
                    np.stack([counts, hi_sums, lo_sums], axis=1).ravel())
        if problems:
            codes = np.array(sorted(problems), dtype=np.int64)
            widths = np.where(codes == LABEL_TOO_LARGE, largest, 0).astype(np.int64)  # b: the largest such label
            yield _rows(PROBLEM, codes, widths, np.array([problems[c] for c in codes]))
        if hist is not None:
            nz = np.flatnonzero(hist)
            if nz.size:
                yield _rows(HISTOGRAM, nz // n_buckets, nz % n_buckets, hist[nz])
        if with_ids:
            yield from ids.summary()

    return class_stats


MAX_ID_RUNS_PER_TASK = 16


class _IdRun:
    """One task's integer ids as runs of consecutive ids (one per input file, typically).

    A task may read several files, in any order; each file written with consecutive ids in order
    (``spark.range``, ``row_number``, ``monotonically_increasing_id`` within a partition) is one
    run. Any split into runs is sound; splitting at every step other than +1 keeps each run's range
    exactly its ids. More than MAX_ID_RUNS_PER_TASK runs (ids in no useful order, or sparse) or a
    null id gives up: the exact aggregation decides.
    """

    def __init__(self) -> None:
        self.runs: list[list[int]] = []  # [low, high]
        self.given_up = False

    def add(self, column: pa.Array) -> None:
        if len(column) == 0 or self.given_up:
            return
        if column.null_count:
            self.given_up = True  # the exact check reports the nulls
            return
        v = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)
        step_breaks = (v[1:] <= v[:-1]) | (v[1:] - v[:-1] != 1)  # the first test guards wrap-around
        starts = np.r_[0, np.flatnonzero(step_breaks) + 1]
        if len(starts) + len(self.runs) > MAX_ID_RUNS_PER_TASK + 1:
            self.given_up = True
            return
        ends = np.r_[starts[1:], len(v)] - 1
        for low, high in zip(v[starts].tolist(), v[ends].tolist()):
            if self.runs and self.runs[-1][1] < low and low - self.runs[-1][1] == 1:
                self.runs[-1][1] = high  # continues the previous batch's run
            else:
                self.runs.append([low, high])
        if len(self.runs) > MAX_ID_RUNS_PER_TASK:
            self.given_up = True

    def summary(self) -> Iterator[pa.RecordBatch]:
        zero = np.zeros(1, dtype=np.int64)
        if self.given_up:
            yield _rows(ID_UNSORTED, zero, zero, np.ones(1, dtype=np.int64))
        elif self.runs:
            n = len(self.runs)
            lows, highs = (np.array(x, dtype=np.int64) for x in zip(*self.runs))
            yield _rows(ID_RUN, lows, highs, np.ones(n, dtype=np.int64))
            yield _rows(ID_RUNS, zero, zero, np.array([n], dtype=np.int64))


def ids_proven_unique(runs: list[tuple[int, int]], n_runs: int, unsorted: int) -> bool:
    """True when the tasks' id runs prove every id unique; False when undecided (check exactly).

    Each run is strictly increasing, so ids repeat only across runs; runs whose ranges are
    disjoint share no id. Two runs with the same range merged into one ``(low, high)`` group, which
    shows as fewer groups than runs (and they share ``low``: a duplicate).
    """
    if unsorted or len(runs) != n_runs:
        return False
    ordered = sorted(runs)
    return all(nxt[0] > cur[1] for cur, nxt in zip(ordered, ordered[1:]))


def _bincount_int(y: np.ndarray, values: np.ndarray, K: int) -> np.ndarray:
    """Exact integer per-class sums of values below 2**32 in magnitude.

    bincount sums in float64, exact while every partial sum stays below 2**53: true for batches of
    up to 2**20 rows; larger batches take the slower exact path.
    """
    if len(y) <= 1 << 20:
        return np.rint(np.bincount(y, weights=values, minlength=K)).astype(np.int64)
    out = np.zeros(K, dtype=np.int64)
    np.add.at(out, y, values)
    return out
