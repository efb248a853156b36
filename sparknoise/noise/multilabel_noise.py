"""Flipping multi-label tags, for ``inject_label_noise(..., task="multilabel")``.

The label column is an array of tags per row: integers 0..K-1, or any values listed in ``classes``
(``[]`` = no tags). Noise flips the *presence* of a tag, class by class, as cleanlab's multi-label
tools see a K-class tag problem: K independent binary problems (tag c absent = 0, present = 1).

Exact counts per class c with ``n_c`` rows carrying c out of N rows (driver, K-sized):

* ``noise_rate=r``: exactly ``round(r * n_c)`` of the rows carrying c lose it and exactly
  ``round(r * (N - n_c))`` of the rows without c gain it (Python's round, half to even, the rule of
  the multiclass ``uniform`` mode). Every tag bit flips at the same rate, so a rare class gains
  many false tags at a high rate; give a ``noise_matrix`` for an asymmetric rule.
* ``noise_matrix``: K per-class 2 x 2 matrices ``[[P(given 0|true 0), P(given 0|true 1)],
  [P(given 1|true 0), P(given 1|true 1)]]`` (columns sum to 1, cleanlab's noise-matrix layout
  P(given | true) for the binary problem of class c). Column ``t`` of class c, times the rows with
  true bit ``t``, is rounded to integers that keep the column's total (``round_preserving_sum``,
  as the multiclass ``class_conditional`` mode): the off-diagonal cell is the number of flips.

Which rows flip (executors): every (row, class) pair is one element of group ``2c`` (rows without
c: the candidates to gain it) or ``2c + 1`` (rows with c: the candidates to lose it); inside a
group, pairs are ranked by a hash of (id, seed, class) and the first ``count`` flip, through the
shared exact rank segments (segments.py: no sort, (group, bucket) counts on the driver). A row's
flipped classes are gathered by a ``groupBy`` on the id and joined back to the row. The choice
depends only on (id, seed, class): the same for any partitioning or engine, and independent
across classes.

Output (per row, executors): the noisy tags (the symmetric difference of the row's tag set and
its flipped classes) as values of the label's element type, sorted in class order and without
duplicates; ``flipped_classes`` (``array<int>`` of the flipped class indices, sorted, ``[]`` for
none). The caller keeps the original array as given in ``true_label`` and sets ``is_noisy`` where
``flipped_classes`` is not empty; a row given unsorted or with duplicate tags therefore comes back
sorted and deduplicated even when no tag flipped (``is_noisy`` compares tag sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.estimates import round_preserving_sum
from sparknoise.errors import ConfigError, InputError
from sparknoise.ml.multilabel_folds import tag_classes
from sparknoise.noise.regression_noise import check_rate
from sparknoise.noise.segments import SEGMENT, assign_segments, linear_bucket

FLIPPED_CLASSES = "flipped_classes"
MAX_TAG_CLASSES = 1000  # without classes=: more distinct tags than this stop the call up front
TAGS = "__sn_tags"  # array<int>: the row's distinct tags as class indices (-1: not a class or null)
_CLASS = "__sn_tag_class"
_FLIPS = "__sn_flips"
_SALT_FLIP = 21  # hash salt (multiclass modes 1, 2; evaluation 7; regression 11-16)
_ROW, _BAD = -2, -1  # profile markers: one per row, and one per row with a tag outside the classes
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TagNoise:
    """Checked multi-label arguments: a rate, or a (K, 2, 2) matrix P(given | true) per class."""

    noise_rate: float | None
    noise_matrix: np.ndarray | None


def check_tag_noise_matrix(noise_matrix, num_classes: int | None, name: str = "noise_matrix") -> np.ndarray:
    """``noise_matrix`` as a float64 (K, 2, 2) array; raises :class:`ConfigError` naming ``name`` when it
    is not K column-stochastic 2 x 2 matrices (``num_classes=None``: any K >= 1). Driver only."""
    layout = "[[P(given 0|true 0), P(given 0|true 1)], [P(given 1|true 0), P(given 1|true 1)]]"
    try:
        m = np.asarray(noise_matrix, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a list of K 2 x 2 matrices (one per class) {layout}") from None
    if m.ndim != 3 or m.shape[1:] != (2, 2) or m.shape[0] < 1 or (num_classes is not None and m.shape[0] != num_classes):
        k = "K" if num_classes is None else str(num_classes)
        raise ConfigError(f"{name} has shape {m.shape}; task='multilabel' needs {k} x 2 x 2: one 2 x 2 matrix per "
                          f"class {layout}")
    if not np.all(np.isfinite(m)) or (m < 0).any() or (m > 1).any():
        raise ConfigError(f"{name} entries must be probabilities in [0, 1]")
    sums = m.sum(axis=1)  # (K, 2): the column sums of every class's matrix
    bad = np.argwhere(np.abs(sums - 1.0) > _TOLERANCE)
    if bad.size:
        c, t = (int(x) for x in bad[0])
        raise ConfigError(f"{name} columns must sum to 1 (column t is P(given | true=t)); class {c}'s column {t} "
                          f"sums to {sums[c, t]:.6g}")
    return m


def multilabel_config(mode, noise_rate, noise_matrix) -> TagNoise:
    """Check the multi-label arguments (driver only): the flip mode only, exactly one of a rate in
    [0, 1) and a (K, 2, 2) matrix (K is checked against the classes later)."""
    if mode is not None and mode != "uniform":
        raise ConfigError(f"mode {mode!r} is not used by task='multilabel': tags flip per class (mode=None or "
                          "'uniform') with noise_rate or a per-class noise_matrix")
    if (noise_rate is None) == (noise_matrix is None):
        raise ConfigError("task='multilabel' needs exactly one of noise_rate (every tag's presence flips at this "
                          "rate) and noise_matrix (K x 2 x 2: P(given | true) per class)")
    if noise_rate is not None:
        return TagNoise(noise_rate=check_rate(noise_rate, "noise_rate"), noise_matrix=None)
    return TagNoise(noise_rate=None, noise_matrix=check_tag_noise_matrix(noise_matrix, None))


def resolve_tag_classes(df: DataFrame, label_col: str, classes: Sequence[Any] | None) -> tuple:
    """The classes: ``classes``, else 0..max tag for integer tags, else the sorted distinct tags (at
    most ``MAX_TAG_CLASSES``; one aggregation). Raises :class:`InputError` for a non-array label."""
    found = tag_classes(df, label_col, classes, MAX_TAG_CLASSES)
    if len(set(found)) != len(found) or not found:
        raise InputError(f"classes {list(found)} must list at least 1 distinct tag value, each once", column=label_col)
    return found


def _values(classes: Sequence[Any], dtype: T.DataType) -> Column:
    return F.array(*[F.lit(c).cast(dtype) for c in classes])


def tag_indices(label_col: str, classes: Sequence[Any], dtype: T.DataType) -> Column:
    """The row's distinct tags as class indices (``array<int>``; -1 for a null or unknown tag; null for a
    null array). Per row, native."""
    values = _values(classes, dtype)
    index = F.transform(F.col(label_col),
                        lambda x: F.coalesce(F.array_position(values, x) - F.lit(1), F.lit(_BAD)).cast("int"))
    return F.array_distinct(index)


def tag_profile(work: DataFrame, label_col: str, id_col: str, K: int) -> tuple[np.ndarray, int]:
    """Rows carrying each class and N (one aggregation, <= K + 2 rows reach the driver); raises
    :class:`InputError` on null arrays, tags outside the classes, null ids or an empty input."""
    marks = F.concat(F.array(F.lit(_ROW)), F.coalesce(F.col(TAGS), F.array().cast("array<int>")))
    rows = (work.select(F.explode(marks).alias("t"), F.col(id_col).isNull().alias("null_id"),
                        F.col(label_col).isNull().alias("null_label"))
            .groupBy("t").agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("null_id").cast("long")).alias("null_ids"),
                              F.sum(F.col("null_label").cast("long")).alias("null_labels"))
            .collect())  # <= K + 2 rows
    counts = np.zeros(K, dtype=np.int64)
    n = 0
    for row in rows:
        t = int(row["t"])
        if t == _ROW:
            n = int(row["n"])
            if row["null_labels"]:
                raise InputError(f"label column '{label_col}' has {row['null_labels']} null array(s); use [] for a "
                                 "row without tags.", column=label_col)
            if row["null_ids"]:
                raise InputError(f"id column '{id_col}' has null values; every row needs a unique non-null id.",
                                 column=id_col)
        elif t == _BAD:
            raise InputError(f"label column '{label_col}' has {row['n']} row(s) with a null tag or a tag outside "
                             "classes; pass classes listing every tag value.", column=label_col)
        else:
            counts[t] = int(row["n"])
    if n == 0:
        raise InputError("the input has no rows; there is nothing to add noise to.", column=label_col)
    return counts, n


def flip_counts(cfg: TagNoise, tag_counts: np.ndarray, n: int) -> np.ndarray:
    """(K, 2) exact flips per class: ``[:, 0]`` rows without the tag that gain it, ``[:, 1]`` rows with
    it that lose it (driver, K-sized; the rules are in the module docstring)."""
    K = len(tag_counts)
    without = n - tag_counts
    out = np.zeros((K, 2), dtype=np.int64)
    if cfg.noise_rate is not None:
        r = cfg.noise_rate
        out[:, 0] = [int(round(r * int(m))) for m in without]
        out[:, 1] = [int(round(r * int(m))) for m in tag_counts]
        return out
    m = check_tag_noise_matrix(cfg.noise_matrix, K)
    for c in range(K):
        out[c, 0] = round_preserving_sum(without[c] * m[c, :, 0])[1]  # true 0, given 1
        out[c, 1] = round_preserving_sum(tag_counts[c] * m[c, :, 1])[0]  # true 1, given 0
    return out


def _flip_hash(id_col: str, seed: int) -> Column:
    """A value in (0, 1) from (id, seed, class): 53 bits of xxhash64, centred."""
    h = F.xxhash64(F.col(id_col), F.lit(int(seed)), F.lit(_SALT_FLIP), F.col(_CLASS)).bitwiseAND(F.lit((1 << 53) - 1))
    return (h.cast("double") + F.lit(0.5)) / F.lit(float(1 << 53))


def flip_tags(work: DataFrame, id_col: str, seed: int, flips: np.ndarray, n_buckets: int) -> DataFrame:
    """``work`` plus ``__sn_flips``: the row's flipped class indices (sorted ``array<int>``, null for
    none). ``flips`` is :func:`flip_counts`; the selection is described in the module docstring."""
    K = len(flips)
    pairs = work.select(F.col(id_col), F.explode(F.sequence(F.lit(0), F.lit(K - 1))).alias(_CLASS), F.col(TAGS))
    has = F.array_contains(F.col(TAGS), F.col(_CLASS)).cast("int")
    score = _flip_hash(id_col, seed)
    bounds = [[int(flips[c, t])] for c in range(K) for t in (0, 1)]  # group 2c + t: true bit t of class c
    selected = assign_segments(pairs, group=F.col(_CLASS) * F.lit(2) + has, score=score,
                               bucket=linear_bucket(score, n_buckets), id_col=id_col, bounds=bounds,
                               n_buckets=n_buckets)
    flipped = (selected.filter(F.col(SEGMENT) == F.lit(0)).groupBy(id_col)
               .agg(F.array_sort(F.collect_list(F.col(_CLASS))).alias(_FLIPS)))
    return work.join(flipped, id_col, "left")


def noisy_tags(classes: Sequence[Any], dtype: T.DataType) -> tuple[Column, Column]:
    """(the noisy tag array, ``flipped_classes``) over ``flip_tags``'s output. Per row, native."""
    flips = F.coalesce(F.col(_FLIPS), F.array().cast("array<int>"))
    tags = F.col(TAGS)
    new = F.array_sort(F.array_union(F.array_except(tags, flips), F.array_except(flips, tags)))
    values = _values(classes, dtype)
    return F.transform(new, lambda i: F.element_at(values, i + F.lit(1))), flips
