"""Multi-label input: column checks on the driver, then one validating scan (pass 1) on the executors.

Preparation (driver, no job): the label column must be an array (of integers 0..K-1, or of any
values listed in ``classes``, mapped to their index by a native ``transform``); the probability
column ``array<double|float>`` or an ML vector, read as ``array<double>``. Two working columns hold
the class indices (``__ml_y``) and the probabilities (``__ml_p``).

Pass 1 (``mapInArrow`` on the executors, merged by a ``groupBy(kind, a, b).sum``) checks every row
and returns K-sized sums only: per class the rows carrying it and the exact fixed-point sums of
the binary self-confidences ``1 - p`` (rows without the tag) and ``p`` (rows with it), which give
cleanlab's per-class confident thresholds; plus a count per problem (null arrays, wrong length,
probabilities outside [0, 1] or NaN, labels outside the classes). The driver raises
:class:`InputError` naming the column and the fix on the first problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core import class_stats
from sparknoise.core.inputs import INTEGRAL_TYPES, probs_as_double_array, unfolded
from sparknoise.core.inputs import input_field as _field
from sparknoise.errors import InputError
from sparknoise.multilabel import kernels as mk

log = logging.getLogger("sparknoise")

LABELS = "__ml_y"  # array<long>: class indices, -1 for a value not in classes
PROBS = "__ml_p"  # array<double>
WORK = "__ml_py"  # array<double> of length 2K: probabilities then the 0/1 multi-hot labels
WORKING = (LABELS, PROBS, WORK)

# up to this many classes the multi-hot tags are one native expression per class (code generation);
# above, a ``transform`` lambda (one expression, interpreted per element) keeps the plan small
NATIVE_HOT_CLASSES = 64

# pass-1 rows (kind, a, b, v)
CLASS, PROBLEM, ROWS = 0, 1, 2
NULL_LABELS, NULL_LABEL_ENTRY, LABEL_OUT, NULL_PROBS, WRONG_LENGTH, NULL_PROB_ENTRY, NAN_PROB, NEG_PROB, BIG_PROB = range(9)


@dataclass(frozen=True)
class MultilabelInput:
    """The input with its working columns, and what the driver knows before any scan."""

    df: DataFrame
    label_col: str
    probs_col: str
    id_col: str
    label_type: T.DataType  # the element type of the label array
    id_type: T.DataType
    classes: tuple | None  # None: tags are the integers 0..K-1


@dataclass(frozen=True)
class MultilabelProfile:
    """Pass 1's K-sized result."""

    n_rows: int
    num_classes: int
    classes: tuple
    tag_counts: np.ndarray  # (K,) rows carrying each class
    sums: np.ndarray  # (K, 2) exact sums of the binary self-confidence: [1 - p over rows without, p over rows with]

    @property
    def binary_counts(self) -> np.ndarray:
        """(K, 2): rows without and with each class (the binary problems' label counts)."""
        return np.column_stack((self.n_rows - self.tag_counts, self.tag_counts))


def prepare(df: DataFrame, *, label_col: str, probs_col: str, id_col: str | None,
            classes: Sequence[Any] | None) -> MultilabelInput:
    """Check the columns' types (driver only, no job) and add the working columns.

    A frame built from local data gets a shuffle above its rows first (core ``unfolded``), so that
    the passes run on the executors as over a table.
    """
    label = _field(df, label_col, "label", "label_col")
    probs = _field(df, probs_col, "probability", "probs_col")
    id_type: T.DataType = T.LongType()
    if id_col is not None:
        id_type = _field(df, id_col, "id", "id_col").dataType
    if not isinstance(label.dataType, T.ArrayType):
        raise InputError(
            f"label column '{label_col}' has type {label.dataType.simpleString()}; multi-label tags must be an "
            "array column (one list of classes per row, [] for none). Split a delimited string with "
            f"F.split('{label_col}', ',') or collect the tags with F.collect_set.", column=label_col)
    element = label.dataType.elementType
    if classes is not None:
        classes = tuple(classes)
        if len(set(classes)) != len(classes):
            raise InputError(f"classes={list(classes)} has repeated values; give each class once, in the order "
                             f"of the entries of '{probs_col}'.", column=label_col)
        lookup = F.array(*[F.lit(c) for c in classes])
        indices = F.transform(F.col(label_col), lambda x: (F.array_position(lookup, x) - F.lit(1)).cast("long"))
    elif isinstance(element, INTEGRAL_TYPES):
        indices = F.col(label_col).cast(T.ArrayType(T.LongType()))
    else:
        raise InputError(
            f"label column '{label_col}' holds {element.simpleString()} values; without classes=[...] tags must "
            "be the integers 0..K-1. Pass classes=[...] (the class of each probability entry) to use other "
            "values.", column=label_col)
    out = unfolded(df).withColumn(LABELS, indices).withColumn(PROBS, probs_as_double_array(probs))
    return MultilabelInput(df=out, label_col=label_col, probs_col=probs_col, id_col=id_col or "",
                           label_type=element, id_type=id_type, classes=classes)


def num_classes_of(inp: MultilabelInput) -> int:
    """K: len(classes), else the length of the first non-null probability row (reads one row)."""
    if inp.classes is not None:
        return len(inp.classes)
    first = inp.df.filter(F.col(PROBS).isNotNull()).select(F.size(PROBS).alias("k")).limit(1).collect()  # 1 row
    if not first:
        raise InputError(f"the input is empty or '{inp.probs_col}' is null in every row: nothing to check. "
                         "Check the input filters, or compute the probabilities first.", column=inp.probs_col)
    return int(first[0]["k"])


def _pass1_fn(K: int):
    def stats(batches):
        tags = np.zeros(K, dtype=np.int64)
        parts = np.zeros((K, 4), dtype=np.int64)  # hi/lo of sum(1 - p | no tag), hi/lo of sum(p | tag)
        problems = np.zeros(9, dtype=np.int64)
        n = 0
        for batch in batches:
            labels, probs = batch.column(0), batch.column(1)
            n += len(labels)
            lab_ok = labels.is_valid().to_numpy(zero_copy_only=False)
            prob_ok = probs.is_valid().to_numpy(zero_copy_only=False)
            problems[NULL_LABELS] += int((~lab_ok).sum())
            problems[NULL_PROBS] += int((~prob_ok).sum())
            lengths = probs.value_lengths().fill_null(K).to_numpy(zero_copy_only=False)
            wrong = prob_ok & (lengths != K)
            problems[WRONG_LENGTH] += int(wrong.sum())
            good = lab_ok & prob_ok & ~wrong
            if not good.any():
                continue
            mask = pa.array(good)
            lab, pr = labels.filter(mask), probs.filter(mask)
            flat_p = pr.flatten()
            if flat_p.null_count:
                problems[NULL_PROB_ENTRY] += int(pr.flatten().is_null().to_numpy(zero_copy_only=False).reshape(-1, K)
                                                 .any(axis=1).sum())
                continue
            flat_y = lab.flatten()
            if flat_y.null_count:
                problems[NULL_LABEL_ENTRY] += flat_y.null_count
                continue
            y = flat_y.to_numpy(zero_copy_only=False).astype(np.int64)
            out = (y < 0) | (y >= K)
            if out.any():
                problems[LABEL_OUT] += int(out.sum())
                continue
            P = np.asarray(flat_p.to_numpy(zero_copy_only=False), dtype=np.float64).reshape(len(pr), K)
            nan = np.isnan(P).any(axis=1)
            problems[NAN_PROB] += int(nan.sum())
            problems[NEG_PROB] += int((P < 0).any(axis=1).sum())
            problems[BIG_PROB] += int((P > 1).any(axis=1).sum())
            if nan.any() or problems[NEG_PROB] or problems[BIG_PROB]:
                continue
            Y = mk.multi_hot(lab, K)
            tags += Y.sum(axis=0)
            for c in range(K):
                with_tag = Y[:, c] == 1
                hi0, lo0 = class_stats.exact_parts(1 - P[~with_tag, c])
                hi1, lo1 = class_stats.exact_parts(P[with_tag, c])
                parts[c] += (hi0.sum(), lo0.sum(), hi1.sum(), lo1.sum())
        rows = [(CLASS, c, j, int(parts[c, j])) for c in range(K) for j in range(4)]
        rows += [(CLASS, c, 4, int(tags[c])) for c in range(K)]
        rows += [(PROBLEM, i, 0, int(v)) for i, v in enumerate(problems) if v]
        rows.append((ROWS, 0, 0, n))
        kind, a, b, v = zip(*rows)
        yield pa.RecordBatch.from_arrays(
            [pa.array(kind, pa.int32()), pa.array(a, pa.int64()), pa.array(b, pa.int64()), pa.array(v, pa.int64())],
            names=["kind", "a", "b", "v"])

    return stats


def profile(inp: MultilabelInput, K: int, *, check_unique_ids: bool) -> MultilabelProfile:
    """Pass 1: validate every row and sum the per-class statistics; raise InputError on a problem."""
    merged = (
        inp.df.select(LABELS, PROBS)
        .mapInArrow(_pass1_fn(K), class_stats.SCHEMA)
        .groupBy("kind", "a", "b")
        .agg(F.sum("v").alias("v"))
        .collect()
    )  # 5K class sums + <= 9 problem counts + 1 row count
    parts = np.zeros((K, 5), dtype=object)
    problems: dict[int, int] = {}
    n_rows = 0
    for r in merged:
        if r["kind"] == CLASS:
            parts[r["a"], r["b"]] = int(r["v"])
        elif r["kind"] == PROBLEM:
            problems[int(r["a"])] = int(r["v"])
        else:
            n_rows = int(r["v"])
    _raise_for(inp, problems, K)
    if n_rows == 0:
        raise InputError(f"the input is empty: no rows to check (label column '{inp.label_col}'). Check the input "
                         "filters.", column=inp.label_col)
    if K < 2:
        raise InputError(f"probability column '{inp.probs_col}' has {K} entry per row; multi-label Confident "
                         "Learning needs at least 2 classes.", column=inp.probs_col)
    if check_unique_ids:
        check_ids(inp)
    sums = np.array([[class_stats.exact_sum_to_float(parts[c, 0], parts[c, 1]),
                      class_stats.exact_sum_to_float(parts[c, 2], parts[c, 3])] for c in range(K)], dtype=np.float64)
    classes = inp.classes if inp.classes is not None else tuple(range(K))
    return MultilabelProfile(n_rows=n_rows, num_classes=K, classes=classes,
                             tag_counts=parts[:, 4].astype(np.int64), sums=sums)


def _raise_for(inp: MultilabelInput, problems: dict[int, int], K: int) -> None:
    label, probs = inp.label_col, inp.probs_col
    def n(code: int) -> int:
        return problems.get(code, 0)

    if n(NULL_LABELS):
        raise InputError(f"label column '{label}' is null in {n(NULL_LABELS)} row(s); a row without tags is an empty "
                         "array []. Fill them, e.g. F.coalesce(F.col('labels'), F.array()), or drop those rows.",
                         column=label)
    if n(NULL_PROBS):
        raise InputError(f"probability column '{probs}' is null in {n(NULL_PROBS)} row(s); drop or recompute those "
                         "rows.", column=probs)
    if n(WRONG_LENGTH):
        want = f"{K} (one per class in classes)" if inp.classes is not None else f"{K}, the length of the first row"
        raise InputError(f"probability column '{probs}' has {n(WRONG_LENGTH)} row(s) whose length is not {want}. "
                         "Recompute the probabilities with one entry per class.", column=probs)
    if n(NULL_PROB_ENTRY):
        raise InputError(f"probability column '{probs}' has null entries in {n(NULL_PROB_ENTRY)} row(s); every entry "
                         "must be a number in [0, 1].", column=probs)
    if n(NULL_LABEL_ENTRY):
        raise InputError(f"label column '{label}' has {n(NULL_LABEL_ENTRY)} null tag(s) inside its arrays; remove "
                         "them (F.array_compact) or fix those rows.", column=label)
    if n(LABEL_OUT):
        where = (f"not in classes {list(inp.classes)}" if inp.classes is not None
                 else f"outside 0..{K - 1} (the probability rows have {K} entries)")
        raise InputError(f"label column '{label}' has {n(LABEL_OUT)} tag(s) {where}; fix those tags or pass the full "
                         "list of classes as classes=[...] in the order of the probability entries.", column=label)
    if n(NAN_PROB):
        raise InputError(f"probability column '{probs}' contains NaN in {n(NAN_PROB)} row(s); drop or recompute "
                         "those rows.", column=probs)
    if n(NEG_PROB) or n(BIG_PROB):
        raise InputError(f"probability column '{probs}' has values outside [0, 1] in {n(NEG_PROB) + n(BIG_PROB)} "
                         "row(s); multi-label probabilities are K independent per-class probabilities, each in "
                         "[0, 1] (a sigmoid per class, not a softmax). Recompute them.", column=probs)


def check_ids(inp: MultilabelInput) -> None:
    """One aggregation over the id column: null or duplicate ids raise (at most 5 examples collected)."""
    ident = inp.id_col
    bad = (inp.df.groupBy(F.col(ident)).count().filter((F.col("count") > 1) | F.col(ident).isNull())
           .limit(5).collect())  # at most 5 example ids
    if any(r[ident] is None for r in bad):
        raise InputError(f"id column '{ident}' has null values; every row needs a unique non-null id.", column=ident)
    if bad:
        raise InputError(f"id column '{ident}' has duplicate values (for example {[r[ident] for r in bad]}); ids must "
                         "be unique per row. Deduplicate the input or build a unique id.", column=ident)


def with_work_column(inp: MultilabelInput, K: int) -> DataFrame:
    """The validated input plus ``__ml_py``: the K probabilities then the K 0/1 tags (for the batch kernels)."""
    if K <= NATIVE_HOT_CLASSES:  # one generated expression per class (higher-order lambdas are interpreted)
        hot = F.array(*[F.array_contains(F.col(LABELS), F.lit(c).cast("long")).cast("double") for c in range(K)])
    else:
        hot = F.transform(F.sequence(F.lit(0), F.lit(K - 1)),
                          lambda c: F.array_contains(F.col(LABELS), c.cast("long")).cast("double"))
    return inp.df.withColumn(WORK, F.concat(F.col(PROBS), hot))
