"""Out-of-fold per-class probabilities for multi-label tags: one binary model per class per fold.

``cross_val_predict_proba(..., task="multilabel")`` lands here. The label column is an array of
tags per row (integers 0..K-1, or any values listed in ``classes``). Every row gets a fold from the
same hash of (id, seed) as the multiclass folds (not stratified: a row has several tags). For each
fold f and class c, a binary copy of the estimator is fitted on the rows outside f with label
``1.0`` when the row carries tag c, else ``0.0``, and predicts P(tag c) for the rows of f: entry c of
the output ``array<double>`` of K independent probabilities (they do not sum to one), the input
``find_multilabel_issues`` reads. This is cleanlab's recipe (a one-vs-rest classifier inside
``cross_val_predict``) on Spark.

A class that is absent from (or on every row of) a fold's training rows cannot be fitted: its
probability for that fold's rows is the constant 0.0 (or 1.0), as a one-vs-rest model with one
label value predicts. Where it runs: the K x n_folds fits on Spark (``parallelism`` of them at
once), one aggregation (n_folds x K tag counts) and, without ``classes`` for non-integer tags, the
distinct tags (at most ``max_classes + 1``) reach the driver.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from pyspark.ml import Estimator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.inputs import INTEGRAL_TYPES, METADATA_KEY
from sparknoise.errors import InputError
from sparknoise.ml.folds import assign_folds

log = logging.getLogger("sparknoise")

_TAGS = "__sn_tag_index"  # array<int>: the row's tags as class indices (-1: not a class)
_ZERO = "__sn_no_strata"


def tag_classes(df: DataFrame, label_col: str, classes: Sequence[Any] | None, max_classes: int) -> tuple:
    """The classes of a tag column: ``classes``, else 0..max tag for integer tags, else the sorted
    distinct tags (at most ``max_classes``)."""
    field = df.schema[label_col]
    if not isinstance(field.dataType, T.ArrayType):
        raise InputError(f"label column '{label_col}' has type {field.dataType.simpleString()}; task='multilabel' "
                         "needs an array of tags per row ([] for none).", column=label_col)
    if classes is not None:
        return tuple(classes)
    if isinstance(field.dataType.elementType, INTEGRAL_TYPES):
        top = df.agg(F.max(F.array_max(F.col(label_col)))).collect()[0][0]  # one aggregate row
        if top is None:
            raise InputError(f"label column '{label_col}' has no tags at all; nothing to learn.", column=label_col)
        if top >= max_classes:
            raise InputError(f"label column '{label_col}' has tag {top}, more classes than max_classes="
                             f"{max_classes}; pass classes=[...] or raise max_classes.", column=label_col)
        return tuple(range(int(top) + 1))
    tags = (df.select(F.explode(F.col(label_col)).alias("t")).where(F.col("t").isNotNull()).distinct()
            .limit(max_classes + 1).collect())  # at most max_classes + 1 tags
    if len(tags) > max_classes:
        raise InputError(f"label column '{label_col}' has more than max_classes={max_classes} distinct tags; pass "
                         "classes=[...] or raise max_classes.", column=label_col)
    return tuple(sorted(r["t"] for r in tags))


def multilabel_oof(data: DataFrame, est: Estimator, *, keep: Sequence[str], label_col: str, id_col: str,
                   classes: tuple, n_folds: int, seed: int, fold_col: str | None, probs_col: str,
                   parallelism: int, prob_col: str, label_index_col: str,
                   activate: Callable[[Any], None] = lambda session: None) -> DataFrame:
    """The out-of-fold frame: ``keep`` columns, ``fold`` and ``probs_col`` (K per-class probabilities).

    ``data`` carries the features vector; ``est`` is the estimator already configured to read the
    features and ``label_index_col`` and write ``prob_col`` (the multiclass CV's conventions);
    ``activate(session)`` runs in each fitting thread (Spark Connect keeps the active session per thread).
    """
    started = time.perf_counter()
    K = len(classes)
    lookup = F.array(*[F.lit(c) for c in classes])
    data = data.withColumn(_TAGS, F.transform(F.col(label_col), lambda t: (F.array_position(lookup, t) - 1)
                                              .cast("int")))
    unknown = data.filter(F.exists(F.col(_TAGS), lambda i: i < 0)).limit(1).collect()  # at most one row
    if unknown:
        raise InputError(f"label column '{label_col}' has tags {unknown[0][label_col]!r} not all in classes "
                         f"{list(classes)}.", column=label_col)
    if fold_col is None:
        data = assign_folds(data.withColumn(_ZERO, F.lit(0)), label_col=_ZERO, id_col=id_col, n_folds=n_folds,
                            seed=seed).drop(_ZERO)
    else:
        data = data.withColumn("fold", F.col(fold_col).cast("int"))
    has = [F.array_contains(F.col(_TAGS), F.lit(c)) for c in range(K)]
    counts = {r["fold"]: r for r in data.groupBy("fold").agg(
        F.count(F.lit(1)).alias("n"), *[F.sum(h.cast("long")).alias(f"c{c}") for c, h in enumerate(has)]
    ).collect()}  # n_folds rows of K + 1 counts
    total_n = sum(r["n"] for r in counts.values())
    totals = [sum(r[f"c{c}"] for r in counts.values()) for c in range(K)]
    session = data.sparkSession
    tasks = []
    constant: dict[tuple[int, int], float] = {}
    for fold in range(n_folds):
        train_n = total_n - counts[fold]["n"] if fold in counts else total_n
        for c in range(K):
            pos = totals[c] - (counts[fold][f"c{c}"] if fold in counts else 0)
            if pos == 0 or pos == train_n:
                constant[(fold, c)] = 0.0 if pos == 0 else 1.0
            else:
                tasks.append((fold, c))

    def fit(task: tuple[int, int]):
        activate(session)
        fold, c = task
        train = data.filter(F.col("fold") != fold).withColumn(label_index_col, has[c].cast("double").alias(
            label_index_col, metadata={"ml_attr": {"type": "nominal", "num_vals": 2, "name": label_index_col}}))
        return est.fit(train)

    if parallelism <= 1:
        models = [fit(t) for t in tasks]
    else:
        with ThreadPoolExecutor(max_workers=int(parallelism)) as pool:
            models = list(pool.map(fit, tasks))
    fitted = dict(zip(tasks, models))
    log.info("cross_val_predict_proba (multilabel): %d binary models (%d classes x %d folds, %d constant) fitted "
             "in %.1fs", len(models), K, n_folds, len(constant), time.perf_counter() - started)
    meta = {METADATA_KEY: {"classes": list(classes), "n_folds": n_folds, "seed": seed, "task": "multilabel"}}
    parts = []
    for fold in range(n_folds):
        part = data.filter(F.col("fold") == fold)
        for c in range(K):
            column = f"__sn_p{c}"
            if (fold, c) in constant:
                part = part.withColumn(column, F.lit(constant[(fold, c)]))
                continue
            scored = fitted[(fold, c)].transform(part)
            part = scored.withColumn(column, F.get(vector_to_array(F.col(prob_col), "float64"), 1)).select(
                *part.columns, column)
        parts.append(part.withColumn(probs_col, F.array(*[F.col(f"__sn_p{c}") for c in range(K)])))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    out = out.select(*keep, "fold", F.col(probs_col).alias(probs_col, metadata=meta))
    out.fold_models = models  # keeps server-side (Connect) models alive while the frame is in use
    return out


def tag_indicator(label_col: str, classes: Sequence[Any], c: int) -> Any:
    """Per row: does the tag array ``label_col`` carry ``classes[c]`` (boolean)."""
    return F.array_contains(F.col(label_col), F.element_at(F.array(*[F.lit(v) for v in classes]), c + 1))


def fit_one_vs_rest(train: DataFrame, est: Estimator, *, label_col: str, classes: Sequence[Any],
                    label_index_col: str, activate: Callable[[Any], None] = lambda session: None,
                    ) -> tuple[list, list]:
    """(models, constants): one binary copy of ``est`` per class fitted on all of ``train`` (label
    1.0 where the row carries the class), as the folds above. A class on no row (every row) gets no
    model and the constant 0.0 (1.0). ``est`` is configured like :func:`multilabel_oof`'s. One
    aggregation (K + 1 counts) reaches the driver; the K fits run on Spark, one after another."""
    K = len(classes)
    has = [tag_indicator(label_col, classes, c) for c in range(K)]
    row = train.agg(F.count(F.lit(1)).alias("n"),
                    *[F.sum(h.cast("long")).alias(f"c{c}") for c, h in enumerate(has)]).first()  # K + 1 counts
    n = int(row["n"])
    activate(train.sparkSession)
    models: list = []
    constants: list = []
    for c in range(K):
        pos = int(row[f"c{c}"] or 0)
        if pos == 0 or pos == n:
            models.append(None)
            constants.append(0.0 if pos == 0 else 1.0)
            continue
        target = has[c].cast("double").alias(
            label_index_col, metadata={"ml_attr": {"type": "nominal", "num_vals": 2, "name": label_index_col}})
        models.append(est.fit(train.withColumn(label_index_col, target)))
        constants.append(None)
    return models, constants


def one_vs_rest_probabilities(frame: DataFrame, models: Sequence[Any], constants: Sequence[float | None], *,
                              prob_col: str, out_col: str) -> DataFrame:
    """``frame`` plus ``out_col``: array<double> of the K models' P(class present) per row (executors);
    a class without a model gets its constant. The models read the features column they were fitted
    on and write ``prob_col`` (dropped again)."""
    names = []
    for c, (model, constant) in enumerate(zip(models, constants)):
        name = f"__sn_ovr_p{c}"
        if model is None:
            frame = frame.withColumn(name, F.lit(float(constant)))
        else:
            inner = frame.columns
            frame = model.transform(frame).withColumn(name, F.get(vector_to_array(F.col(prob_col), "float64"), 1))
            frame = frame.select(*inner, name)
        names.append(name)
    return frame.withColumn(out_col, F.array(*[F.col(n) for n in names])).drop(*names)
