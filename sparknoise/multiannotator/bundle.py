"""The long annotation table as one *bundle* per item, checked, plus its per-annotator summary.

``annotations`` has one row per (item, annotator, label); ``pred_probs`` one row per item. The
bundle has one row per labelled item: ``cells`` (the item's annotations as
``array<struct<a, y>>`` sorted by annotator position ``a``: the rank of the annotator id in
ascending order, cleanlab's column order of the wide matrix), ``m`` (their number) and ``p`` (the
probabilities as ``array<double>``). The items x annotators matrix is never built.

Spark jobs (executors; the driver receives only the sizes noted):
1. the distinct annotator ids, sorted (M values): they become positions through a broadcast join;
2. one aggregation over the bundle joined to the probabilities (one row to the driver): every
   bad-input rule below, N, the number of annotations and of items with two or more;
3. one aggregation of the exploded cells by (annotator, label) (at most M x K rows): label counts,
   the annotator-agreement sums and the majority-vote agreement counts CROWDLAB needs.
With ``scratch`` the bundle is written once to ``scratch/multiannotator_bundle`` and every later
pass reads it; without it, it is ``localCheckpoint``-ed once (executor storage; classic and Spark
Connect), and only where the engine refuses checkpoints does each pass recompute it (with a warning).

Bad input raises :class:`InputError` naming the column: null item or annotator ids, an item whose
every label is null (or NaN), null labels or labels outside the classes, an annotator labelling one
item twice, labelled items without probabilities (or with two probability rows), probabilities of
the wrong length, null, NaN or outside [0, 1] (1e-6 tolerance, cleanlab's), one annotator only, or every item with one label
(unless ``allow_single``). Probability rows of items nobody labelled are ignored (cleanlab's wide
input cannot hold them; they are the unlabelled pool of active learning) and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.inputs import input_field, label_index, probs_as_double_array, unfolded
from sparknoise.errors import InputError
from sparknoise.multiannotator.expressions import EXACT
from sparknoise.multiannotator.udfs import counts_udf
from sparknoise.storage import materialised

log = logging.getLogger("sparknoise")

A, Y = "a", "y"
PROBABILITY_TOLERANCE = 1e-6
_IDS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.StringType)


@dataclass(frozen=True)
class Columns:
    """The user's column names."""

    item: str
    annotator: str
    label: str
    probs: str


@dataclass(frozen=True)
class Bundle:
    """The checked bundle and what the driver knows about it (K-, M- and M x K-sized only)."""

    frame: DataFrame  # item, cells, m, p
    cols: Columns
    item_field: T.StructField
    annotator_field: T.StructField
    label_field: T.StructField
    classes: tuple[Any, ...] | None
    K: int
    annotators: list  # annotator ids in position order
    positions: DataFrame  # annotator id -> position a
    n_items: int
    n_annotations: int
    n_multi: int
    grid: dict  # name -> M x K numpy array (count, agree, weight, value, g_hits, g_count)

    @property
    def M(self) -> int:
        return len(self.annotators)

    @property
    def freq(self) -> np.ndarray:
        """Annotations per class over the whole table."""
        return self.grid["count"].sum(axis=0)

    def label_values(self, index: Column) -> Column:
        """Label indices as the user's label values (the indices themselves without ``classes``)."""
        if self.classes is None:
            return index.cast("long")
        return F.get(F.array(*[F.lit(c).cast(self.label_field.dataType) for c in self.classes]), index)

    def label_value(self, index: int) -> Any:
        return int(index) if self.classes is None else self.classes[index]


def _field(df: DataFrame, name: str, role: str, frame: str) -> T.StructField:
    return input_field(df, name, role, f"{role}_col", frame)


def _id_field(df: DataFrame, name: str, role: str, frame: str) -> T.StructField:
    field = _field(df, name, role, frame)
    if not isinstance(field.dataType, _IDS):
        raise InputError(f"{role} column '{name}' has type {field.dataType.simpleString()}; {role} ids must be "
                         "an integer or string column. Cast it.", column=name)
    return field


def annotator_positions(annotations: DataFrame, field: T.StructField) -> tuple[list, DataFrame]:
    """The sorted distinct annotator ids (M values to the driver) and a small id -> position frame."""
    name = field.name
    ids = [r[0] for r in annotations.select(name).where(F.col(name).isNotNull()).distinct().orderBy(name).collect()]
    schema = T.StructType([T.StructField(name, field.dataType), T.StructField(A, T.IntegerType())])
    positions = annotations.sparkSession.createDataFrame([(v, i) for i, v in enumerate(ids)], schema)
    return ids, positions


def _problem(name: str, cond: Column, example: Column) -> list[Column]:
    return [F.sum(cond.cast("long")).alias(f"n_{name}"), F.min(F.when(cond, example)).alias(f"ex_{name}")]


def build(annotations: DataFrame, pred_probs: DataFrame | None, cols: Columns, *,
          classes: Sequence[Any] | None = None, scratch: str | None = None, allow_single: bool = False) -> Bundle:
    """Check the inputs and build the bundle (three Spark jobs, summaries only to the driver)."""
    annotations = unfolded(annotations)
    item_field = _id_field(annotations, cols.item, "item", "the annotations")
    annotator_field = _id_field(annotations, cols.annotator, "annotator", "the annotations")
    label_field = _field(annotations, cols.label, "label", "the annotations")
    if classes is not None:
        classes = tuple(classes)
        if len(set(classes)) != len(classes) or len(classes) < 1:
            raise InputError(f"classes {list(classes)} must list each label value once.")
    annotators, positions = annotator_positions(annotations, annotator_field)
    if len(annotators) < 2 and not allow_single:
        raise InputError(f"annotator column '{cols.annotator}' has {len(annotators)} distinct annotator(s); "
                         "multi-annotator quality needs at least 2 (with one label per item, use "
                         "find_label_issues or label_quality_scores).", column=cols.annotator)
    y = label_index(label_field, classes)
    raw = F.col(cols.label)
    missing = raw.isNull() | (F.isnan(raw) if isinstance(label_field.dataType, (T.FloatType, T.DoubleType))
                              else F.lit(False))
    cells = (annotations.select(cols.item, cols.annotator, y.alias(Y), missing.alias("__missing"))
             .join(F.broadcast(positions), cols.annotator, "left"))
    bad_label = F.col(Y).isNull() | (F.col(Y) < 0)
    missing_label = F.col("__missing")
    grouped = cells.groupBy(cols.item).agg(
        F.sort_array(F.collect_list(F.struct(F.col(A), F.col(Y)))).alias("cells"),
        F.count(F.lit(1)).alias("m"),
        F.sum(F.col(A).isNull().cast("int")).alias("null_annotators"),
        F.sum(bad_label.cast("int")).alias("bad_labels"),
        F.sum(missing_label.cast("int")).alias("missing_labels"),
        F.max(Y).alias("max_y"),
        F.size(F.array_distinct(F.collect_list(A))).alias("distinct_annotators"),
    ).withColumn("has_labels", F.lit(True))
    if pred_probs is None:
        joined = grouped.withColumn("p", F.lit(None).cast("array<double>")).withColumn("probs_rows", F.lit(1))
    else:
        pred_probs = unfolded(pred_probs)
        p_item = _id_field(pred_probs, cols.item, "item", "pred_probs")
        if p_item.dataType != item_field.dataType:
            raise InputError(f"item column '{cols.item}' is {item_field.dataType.simpleString()} in the annotations "
                             f"but {p_item.dataType.simpleString()} in pred_probs; cast one of them.", column=cols.item)
        probs = probs_as_double_array(_field(pred_probs, cols.probs, "probs", "pred_probs"))
        probs = pred_probs.select(cols.item, probs.alias("p")).groupBy(cols.item).agg(
            F.first("p").alias("p"), F.count(F.lit(1)).alias("probs_rows"))
        joined = grouped.join(probs, cols.item, "full_outer")
    joined = joined.withColumn("has_labels", F.coalesce(F.col("has_labels"), F.lit(False)))
    joined = materialised(joined, scratch, "multiannotator_bundle")
    item = F.col(cols.item)
    labelled = F.col("has_labels") & item.isNotNull()
    size = F.size("p")
    bad_p = F.exists("p", lambda x: x.isNull() | F.isnan(x) | (x < -PROBABILITY_TOLERANCE)
                     | (x > 1 + PROBABILITY_TOLERANCE))
    row = joined.agg(
        F.sum(F.when(labelled, 1).otherwise(0)).alias("n_items"),
        F.sum(F.when(labelled, F.col("m")).otherwise(0)).alias("n_annotations"),
        F.sum(F.when(labelled & (F.col("m") >= 2), 1).otherwise(0)).alias("n_multi"),
        F.sum(F.when(item.isNull(), F.coalesce(F.col("m"), F.col("probs_rows"))).otherwise(0)).alias("n_null_items"),
        F.max(F.when(labelled, F.col("max_y"))).alias("max_y"),
        F.min(F.when(labelled, size)).alias("min_size"), F.max(F.when(labelled, size)).alias("max_size"),
        F.sum(F.when(~F.col("has_labels") & item.isNotNull(), 1).otherwise(0)).alias("n_unlabelled"),
        *_problem("null_annotators", labelled & (F.col("null_annotators") > 0), item),
        *_problem("no_label", labelled & (F.col("missing_labels") == F.col("m")), item),
        *_problem("bad_labels", labelled & (F.col("bad_labels") > 0), item),
        *_problem("twice", labelled & (F.col("distinct_annotators") < F.col("m") - F.col("null_annotators")), item),
        *_problem("no_probs", labelled & F.col("p").isNull(), item) if pred_probs is not None else [],
        *_problem("probs_twice", labelled & (F.col("probs_rows") > 1), item),
        *_problem("bad_probs", labelled & F.coalesce(bad_p, F.lit(False)), item),
    ).first()
    K = _check(row, cols, classes, pred_probs is not None, allow_single)
    n_unlabelled = int(row["n_unlabelled"] or 0)
    if n_unlabelled:
        log.info("multiannotator: %d probability row(s) of items without annotations ignored", n_unlabelled)
    bundle = joined.where(labelled).select(cols.item, "cells", "m", "p")
    grid = _annotator_grid(bundle, K, len(annotators))
    log.info("multiannotator: %d items, %d annotators, %d annotations, %d classes", row["n_items"],
             len(annotators), row["n_annotations"], K)
    return Bundle(frame=bundle, cols=cols, item_field=item_field, annotator_field=annotator_field,
                  label_field=label_field, classes=classes, K=K, annotators=annotators, positions=positions,
                  n_items=int(row["n_items"]), n_annotations=int(row["n_annotations"]),
                  n_multi=int(row["n_multi"]), grid=grid)


def _check(row, cols: Columns, classes, with_probs: bool, allow_single: bool) -> int:
    def fail(name: str, column: str, what: str, fix: str) -> None:
        n = int(row[f"n_{name}"] or 0)
        if n:
            raise InputError(f"{what}: {n} item(s), e.g. item {row[f'ex_{name}']!r} ({cols.item}). {fix}",
                             column=column)

    if row["n_null_items"]:
        raise InputError(f"item column '{cols.item}' has {row['n_null_items']} null value(s); every annotation and "
                         "probability row needs its item id. Drop or fill them.", column=cols.item)
    if not row["n_items"]:
        raise InputError("the annotations table has no rows.", column=cols.item)
    fail("null_annotators", cols.annotator, f"annotator column '{cols.annotator}' is null",
         "Every annotation needs its annotator id; drop or fill them.")
    fail("no_label", cols.label, f"label column '{cols.label}' is null (or NaN) in every annotation of an item",
         "Each item needs at least one label (as in cleanlab); drop those rows (items nobody labelled belong in "
         "the unlabelled pool of active_learning_scores).")
    fail("bad_labels", cols.label, f"label column '{cols.label}' has null labels or labels outside the classes",
         "Labels must be the integers 0..K-1, or values listed in classes=[...].")
    fail("twice", cols.annotator, f"an annotator ('{cols.annotator}') labelled the same item twice",
         "Keep one label per (item, annotator), e.g. the latest.")
    if with_probs:
        fail("no_probs", cols.probs, f"items with labels but no probabilities in '{cols.probs}'",
             "Give pred_probs a row for every labelled item (out-of-fold predictions).")
        fail("probs_twice", cols.item, "items with more than one pred_probs row", "Keep one row per item.")
        fail("bad_probs", cols.probs, f"probabilities in '{cols.probs}' that are null, NaN or outside [0, 1]",
             "Fix or drop those rows.")
    if classes is not None:
        K = len(classes)
    elif with_probs:
        K = int(row["max_size"])
    else:
        K = int(row["max_y"]) + 1
    if with_probs and (row["min_size"] != K or row["max_size"] != K):
        raise InputError(f"probability column '{cols.probs}' has rows of {row['min_size']}..{row['max_size']} "
                         f"entries; every row needs exactly K = {K} (one per class).", column=cols.probs)
    if row["max_y"] is not None and int(row["max_y"]) >= K:
        raise InputError(f"label column '{cols.label}' has label {row['max_y']} but there are only K = {K} classes "
                         f"(the probability rows' length): the probabilities in '{cols.probs}' must have at least "
                         f"{int(row['max_y']) + 1} columns. Labels must be 0..K-1.", column=cols.label)
    if not allow_single and not row["n_multi"]:
        raise InputError(f"every item has exactly one label (column '{cols.item}'); multi-annotator quality needs "
                         "items with two or more. With one label per item use find_label_issues or "
                         "label_quality_scores.", column=cols.item)
    return K


def _annotator_grid(bundle: DataFrame, K: int, M: int) -> dict:
    """One aggregation of the cells by (annotator, label); M x K numpy arrays on the driver.

    count: annotations; agree: sum over the annotator's items of (annotators agreeing with it - 1);
    weight: sum of (m - 1); value: sum of ((c - 1) / (m - 1)) * (m - 1) as cleanlab forms it (equal
    to ``agree`` for m <= 22; exact decimal sum otherwise); g_hits / g_count: the annotator's labels
    on items whose vote is untied, and how many equal the vote (majority-vote tie-break 3).
    """
    counted = bundle.withColumn("__cm", counts_udf(K)(F.col("cells")))
    exploded = counted.select(F.col("m"), F.col("__cm.cnt").alias("cnt"),
                              F.when(F.col("__cm.mode") >= 0, F.col("__cm.mode")).alias("mode"),
                              F.explode("cells").alias("c"))
    c = F.get(F.col("cnt"), F.col("c")[Y])
    m = F.col("m")
    value = F.when(m >= 2, ((c - 1).cast("double") / (m - 1).cast("double")) * (m - 1).cast("double")).otherwise(0.0)
    rows = exploded.groupBy(F.col("c")[A].alias(A), F.col("c")[Y].alias(Y)).agg(
        F.count(F.lit(1)).alias("count"),
        F.sum(F.when(m >= 2, c - 1).otherwise(0)).alias("agree"),
        F.sum(m - 1).alias("weight"),
        F.sum(value.cast(EXACT)).alias("value"),
        F.sum((F.col("mode") == F.col("c")[Y]).cast("int")).alias("g_hits"),
        F.sum(F.col("mode").isNotNull().cast("int")).alias("g_count"),
    ).collect()
    grid = {name: np.zeros((M, K), dtype=object if name == "value" else np.int64)
            for name in ("count", "agree", "weight", "value", "g_hits", "g_count")}
    grid["value"][:] = Decimal(0)
    for r in rows:
        for name in grid:
            grid[name][r[A], r[Y]] = r[name] if r[name] is not None else 0
    return grid


def impute_mean(values: np.ndarray) -> np.ndarray:
    """NaN entries replaced by the (numpy, pairwise) mean of the others, as cleanlab imputes."""
    out = np.array(values, dtype=np.float64)
    missing = np.isnan(out)
    if missing.any() and not missing.all():
        out[missing] = np.mean(out[~missing])
    return out


def annotator_agreement(grid: dict) -> np.ndarray:
    """a_j: the share of j's co-annotators (on items with 2+ labels) agreeing with j, imputed."""
    weight = grid["weight"].sum(axis=1).astype(np.float64)
    value = np.array([float(sum(row, Decimal(0))) for row in grid["value"]])
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(weight > 0, value / np.where(weight > 0, weight, 1), np.nan)
    return impute_mean(a)


def vote_agreement(grid: dict) -> np.ndarray:
    """g_j: j's agreement with the untied majority votes (NaN imputed), majority-vote tie-break 3."""
    hits = grid["g_hits"].sum(axis=1).astype(np.float64)
    count = grid["g_count"].sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.where(count > 0, hits / np.where(count > 0, count, 1), np.nan)
    return impute_mean(g)
