"""Inject known label noise into a table: ``sn.inject_label_noise``.

Three modes, all with exact realised counts and all deterministic for (id, seed), whatever the
partitioning or the engine:

* ``uniform``: exactly ``round(noise_rate * N)`` rows flip, each to another class chosen uniformly;
* ``class_conditional``: flips follow a K x K noise matrix P(given | true) (columns sum to 1), given
  or drawn from the trace ``K * (1 - noise_rate)`` like cleanlab's
  ``generate_noise_matrix_from_trace``. Per true class k, cell (j, k) gets exactly
  ``n_k * P(j | k)`` rows, rounded so the class total is kept;
* ``instance_dependent``: a row's chance to flip grows with the probability a model gives to its
  most likely *other* class, and it flips to that class. Exactly ``round(noise_rate * N)`` rows
  flip, drawn without replacement with weights (keys ``-ln(u) / w``, the Efraimidis-Spirakis scheme).

Which rows flip comes from a hash of (id, seed) ranked exactly per class (rank_segments.py): no
sort of the table, nothing row-level on the driver. The original label is kept in ``true_label``
and ``is_noisy`` marks the flipped rows.

``task="regression"`` corrupts a numeric label instead (``regression_noise.py``): ``mode`` is one of
``shift``, ``swap``, ``unit``, ``default`` with ``noise_rate``, or a dict mode -> rate for a mix. The
same exact selection as ``uniform`` picks the rows: ranked by the hash of (id, seed), the first
``round(rate_1 * N)`` get the first mode (in that fixed order), the next ``round(rate_2 * N)`` the
second, and so on; a ``noise_mode`` column names the mode that hit each row (null elsewhere). The
argument checks, the id checks, the selection and the output columns are shared by the tasks.

``task="multilabel"`` flips the presence of tags in an array label, class by class
(``multilabel_noise.py``): with ``noise_rate=r`` exactly ``round(r * n_c)`` of the rows carrying
class c lose it and ``round(r * (N - n_c))`` of the others gain it, or a 2 x 2 matrix per class
gives the counts. The same exact rank segments pick the rows, one group per (class, direction);
the output gets a ``flipped_classes`` column (the flipped class indices per row).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.estimates import round_preserving_sum
from sparknoise.core.inputs import unfolded
from sparknoise.errors import ConfigError, InputError
from sparknoise.ml.cross_validation import label_classes
from sparknoise.noise import multilabel_noise, regression_noise
from sparknoise.noise.matrices import check_noise_matrix, noise_matrix_from_trace
from sparknoise.noise.regression_noise import NOISE_MODE, check_rate
from sparknoise.noise.segments import SEGMENT, assign_segments, linear_bucket, log_bucket, uniform_hash

log = logging.getLogger("sparknoise")

MODES = ("uniform", "class_conditional", "instance_dependent")
TASKS = ("multiclass", "regression", "multilabel")
TRUE_LABEL = "true_label"
IS_NOISY = "is_noisy"
_INDEX = "__sn_true_index"
_PROBS = "__sn_noise_probs"
_NEW = "__sn_new_index"
_Y = "__sn_y"
_NEW_Y = "__sn_new_y"


def _resolve_classes(df: DataFrame, label_col: str, classes: Sequence[Any] | None) -> tuple:

    if classes is None:
        classes = label_classes(df, label_col)
    classes = tuple(classes)
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise InputError(f"classes {list(classes)} must list at least 2 distinct label values", column=label_col)
    return classes


def _class_index(label_col: str, classes: Sequence[Any], dtype) -> Column:
    values = F.array(*[F.lit(c).cast(dtype) for c in classes])
    return (F.array_position(values, F.col(label_col)) - F.lit(1)).cast("int")


def _label_value(index: Column, classes: Sequence[Any], dtype) -> Column:
    values = F.array(*[F.lit(c).cast(dtype) for c in classes])
    return F.element_at(values, index + F.lit(1))


def _check_args(mode: str, noise_rate, noise_matrix, probs_col, features_col) -> None:
    if isinstance(mode, Mapping):
        raise ConfigError("a dict mode (mode -> rate) is for task='regression'; for classes pass one mode name "
                          f"of {list(MODES)} with noise_rate")
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is unknown; use one of {list(MODES)}"
                          + (" (or task='regression' for it)" if mode in regression_noise.REGRESSION_MODES else ""))
    if noise_rate is not None:
        check_rate(noise_rate, "noise_rate")
    if mode == "class_conditional":
        if (noise_rate is None) == (noise_matrix is None):
            raise ConfigError("class_conditional noise needs exactly one of noise_matrix (K x K, P(given | true)) "
                              "and noise_rate (a random matrix with trace K * (1 - noise_rate))")
        return
    if noise_matrix is not None:
        raise ConfigError(f"noise_matrix is used by mode='class_conditional' only, not by mode={mode!r}")
    if noise_rate is None:
        raise ConfigError(f"mode={mode!r} needs noise_rate (a number in [0, 1))")
    if mode == "instance_dependent" and not (probs_col or features_col):
        raise ConfigError("instance_dependent noise needs probs_col (a model's probabilities per class) or "
                          "features_col (a vector column or a list of numeric columns; a logistic regression "
                          "is fitted to get them)")


def _profile(df: DataFrame, label_col: str, id_col: str, K: int, with_probs: bool) -> tuple[np.ndarray, int]:
    """Rows per class index (one aggregation); raises on null/unknown labels, null ids, bad probs."""
    aggs = [F.count(F.lit(1)).alias("n"), F.sum(F.col(id_col).isNull().cast("long")).alias("null_ids")]
    if with_probs:
        aggs.append(F.sum((F.size(F.col(_PROBS)) != F.lit(K)).cast("long")).alias("bad_probs"))
    per_class = df.groupBy(_INDEX, F.col(label_col).isNull().alias("null_label")).agg(*aggs).collect()  # <= K+2 rows
    counts = np.zeros(K, dtype=np.int64)
    for row in per_class:
        if row["null_label"]:
            raise InputError(f"label column '{label_col}' has {row['n']} null value(s); drop or fix those rows.",
                             column=label_col)
        if row[_INDEX] is None or row[_INDEX] < 0:
            raise InputError(f"label column '{label_col}' has {row['n']} value(s) outside classes; pass classes "
                             "listing every label value.", column=label_col)
        if row["null_ids"]:
            raise InputError(f"id column '{id_col}' has null values; every row needs a unique non-null id.",
                             column=id_col)
        if with_probs and row["bad_probs"]:
            raise InputError(f"probabilities have {row['bad_probs']} row(s) whose length is not {K} (one per class)",
                             column=_PROBS)
        counts[row[_INDEX]] = row["n"]
    if counts.sum() == 0:
        raise InputError("the input has no rows; there is nothing to add noise to.", column=label_col)
    _check_unique_ids(df, id_col)
    return counts, int(counts.sum())


def _check_unique_ids(df: DataFrame, id_col: str) -> None:
    """Raises when an id repeats (one aggregation, at most 3 example ids reach the driver)."""
    dup = df.groupBy(id_col).count().filter(F.col("count") > 1).limit(3).collect()  # at most 3 example ids
    if dup:
        raise InputError(f"id column '{id_col}' has duplicate values (for example {[r[0] for r in dup]}); the "
                         "noise is drawn per id, so ids must be unique.", column=id_col)


def _exact_selection(work: DataFrame, id_col: str, seed: int, n: int, quotas: Sequence[int]) -> DataFrame:
    """``work`` plus ``__sn_segment``: ranked by a hash of (id, seed), the first ``quotas[0]`` rows get
    segment 0, the next ``quotas[1]`` segment 1, ...; the rest ``len(quotas)``. Exact, no sort."""
    u = uniform_hash(id_col, seed, 1)
    nb = _buckets(n)
    bounds = [int(b) for b in np.cumsum([int(q) for q in quotas])]
    return assign_segments(work, group=F.lit(0), score=u, bucket=linear_bucket(u, nb), id_col=id_col,
                           bounds=[bounds], n_buckets=nb)


def _buckets(n_rows_per_group: int) -> int:
    return int(min(1 << 16, max(16, n_rows_per_group // 256)))


def _model_probabilities(df: DataFrame, label_col: str, features_col, classes, label_type) -> DataFrame:
    """In-sample probabilities of a logistic regression on the true labels (for instance_dependent)."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.functions import vector_to_array

    work = df
    column = features_col
    if isinstance(features_col, (list, tuple)):
        column = "__sn_noise_features"
        work = VectorAssembler(inputCols=list(features_col), outputCol=column, handleInvalid="error").transform(work)
    elif isinstance(df.schema[features_col].dataType, T.ArrayType):
        from pyspark.ml.functions import array_to_vector

        column = "__sn_noise_features"
        work = work.withColumn(column, array_to_vector(F.col(features_col)))
    work = work.withColumn("__sn_noise_label", _class_index(label_col, classes, label_type).cast("double"))
    model = LogisticRegression(featuresCol=column, labelCol="__sn_noise_label", maxIter=50,
                               probabilityCol="__sn_noise_probability", predictionCol="__sn_noise_prediction",
                               rawPredictionCol="__sn_noise_raw").fit(work)
    out = model.transform(work).withColumn(_PROBS, vector_to_array(F.col("__sn_noise_probability"), "float64"))
    drop = ["__sn_noise_label", "__sn_noise_probability", "__sn_noise_prediction", "__sn_noise_raw"]
    if column != features_col:
        drop.append(column)
    return out.drop(*drop)


def _check_task(task: str, *, noise_matrix, classes, probs_col, features_col, frac_zero_noise_rates,
                shift_std, factor, default_value) -> None:
    """No argument of one task is given to the other (driver)."""
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is unknown; use 'multiclass' (class labels), 'regression' (numbers) or "
                          "'multilabel' (an array of tags per row)")
    if task == "multilabel":
        given = {"probs_col": probs_col is not None, "features_col": features_col is not None,
                 "frac_zero_noise_rates": bool(frac_zero_noise_rates), "shift_std": shift_std is not None,
                 "factor": factor is not None, "default_value": default_value is not None}
        fix = "drop it (tags flip per class with noise_rate or a per-class noise_matrix)"
    elif task == "regression":
        given = {"noise_matrix": noise_matrix is not None, "classes": classes is not None,
                 "probs_col": probs_col is not None, "features_col": features_col is not None,
                 "frac_zero_noise_rates": bool(frac_zero_noise_rates)}
        fix = "drop it (the regression modes are shift, swap, unit and default), or use task='multiclass'"
    else:
        given = {"shift_std": shift_std is not None, "factor": factor is not None,
                 "default_value": default_value is not None}
        fix = "drop it, or pass task='regression' for a numeric label"
    for name, present in given.items():
        if present:
            raise ConfigError(f"{name} is not used by task={task!r}: {fix}")


def _check_columns(df: DataFrame, label_col: str, id_col: str, added: Sequence[str]) -> None:
    for name, column in (("label_col", label_col), ("id_col", id_col)):
        if column not in df.columns:
            raise InputError(f"{name} '{column}' is not a column of the input; available: {df.columns}", column=column)
    for column in added:
        if column in df.columns:
            raise InputError(f"the input already has a '{column}' column; drop or rename it before injecting noise "
                             f"(in a job, set input.drop: [{column}])",
                             column=column)


def _output(out: DataFrame, columns: Sequence[str], label_col: str, noisy: Column, true_label: Column,
            is_noisy: Column, *extra: Column) -> DataFrame:
    """The input's columns (``label_col`` replaced by ``noisy``), ``true_label``, ``is_noisy`` (true where
    the value changed), then ``extra``."""
    selected = [noisy.alias(label_col) if c == label_col else F.col(c) for c in columns]
    return out.select(*selected, true_label.alias(TRUE_LABEL), is_noisy.alias(IS_NOISY), *extra)


def _inject_regression(df: DataFrame, label_col: str, id_col: str, seed: int,
                       cfg: regression_noise.RegressionNoise) -> DataFrame:
    """Numeric labels: label statistics (one aggregation), the id check, the shared exact selection
    (one quota per mode), then the per-row corruption of ``regression_noise``."""
    label_type = df.schema[label_col].dataType
    work = df.withColumn(_Y, regression_noise.label_as_double(df, label_col))
    stats = regression_noise.label_stats(work, _Y, label_col, id_col)
    _check_unique_ids(work, id_col)
    quotas = [int(round(rate * stats.n)) for rate in cfg.rates.values()]
    out = _exact_selection(work, id_col, seed, stats.n, quotas)
    out = regression_noise.corrupt(out, mode_index=F.col(SEGMENT), y_col=_Y, new_col=_NEW_Y, id_col=id_col,
                                   seed=seed, cfg=cfg, stats=stats)
    log.info("inject_label_noise: regression, modes %s, %d rows (mean %g, sd %g), seed %d", cfg.rates, stats.n,
             stats.mean, stats.std, seed)
    out_type = regression_noise.output_type(label_type)
    noisy, true = F.col(_NEW_Y).cast(out_type), F.col(_Y).cast(out_type)
    return _output(out, df.columns, label_col, noisy, true, noisy != true, F.col(NOISE_MODE))


def _inject_multilabel(df: DataFrame, label_col: str, id_col: str, seed: int, classes: Sequence[Any] | None,
                       cfg: multilabel_noise.TagNoise) -> DataFrame:
    """Array-of-tags labels: the classes, the tag counts (one aggregation), the id check, the exact
    selection per (class, direction), then the per-row tag flips of ``multilabel_noise``."""
    classes = multilabel_noise.resolve_tag_classes(df, label_col, classes)
    K = len(classes)
    element_type = df.schema[label_col].dataType.elementType
    work = df.withColumn(multilabel_noise.TAGS, multilabel_noise.tag_indices(label_col, classes, element_type))
    tag_counts, n = multilabel_noise.tag_profile(work, label_col, id_col, K)
    flips = multilabel_noise.flip_counts(cfg, tag_counts, n)
    _check_unique_ids(work, id_col)
    nb = int(min(_buckets(n), max(16, (1 << 16) // (2 * K))))  # <= 2^16 (group, bucket) counts for K <= 2048
    out = multilabel_noise.flip_tags(work, id_col, seed, flips, nb)
    noisy, flipped = multilabel_noise.noisy_tags(classes, element_type)
    log.info("inject_label_noise: multilabel, %d rows, %d classes, %d tags gained, %d lost, seed %d", n, K,
             int(flips[:, 0].sum()), int(flips[:, 1].sum()), seed)
    return _output(out, df.columns, label_col, noisy, F.col(label_col), F.size(flipped) > F.lit(0),
                   flipped.alias(multilabel_noise.FLIPPED_CLASSES))


def inject_label_noise(df: DataFrame, label_col: str, *, noise_rate: float | None = None, noise_matrix=None,
                       mode: str | Mapping[str, float] | None = None, seed: int = 0, id_col: str = "id",
                       classes: Sequence[Any] | None = None, probs_col: str | None = None,
                       features_col: str | Sequence[str] | None = None,
                       frac_zero_noise_rates: float = 0.0, task: str = "multiclass",
                       shift_std: float | None = None, factor: float | None = None,
                       default_value: float | None = None) -> DataFrame:
    """A copy of ``df`` with noisy labels in ``label_col``, the original in ``true_label``, ``is_noisy``.

    Args:
        df: the table; ``id_col`` must be unique and non-null (the noise is drawn per id).
        label_col: the trusted labels (any type; mapped through ``classes``, default the sorted values;
            numeric for ``task="regression"``; for ``task="multilabel"`` an array of tags per row,
            integers 0..K-1 or values listed in ``classes``, ``[]`` for none).
        noise_rate: fraction of rows to flip, in [0, 1) (for ``class_conditional``: the average
            rate of a random matrix with trace ``K * (1 - noise_rate)``, drawn for the data's prior;
            for ``task="multilabel"``: per class, exactly ``round(r * n_c)`` of the ``n_c`` rows
            carrying class c lose it and ``round(r * (N - n_c))`` of the others gain it).
        noise_matrix: ``class_conditional`` only: K x K, ``[j][k] = P(given=j | true=k)``; for
            ``task="multilabel"``: K matrices 2 x 2, ``[[P(given 0|true 0), P(given 0|true 1)],
            [P(given 1|true 0), P(given 1|true 1)]]`` per class (columns sum to 1), rounded to exact
            flip counts per class and direction.
        mode: ``uniform`` (the default) | ``class_conditional`` | ``instance_dependent``; for
            ``task="regression"``: ``shift`` (the default) | ``swap`` | ``unit`` | ``default`` with
            ``noise_rate``, or a dict mode -> rate (rates summing below 1) for a mix of disjoint rows.
        seed: the same (id, seed) always gives the same noise.
        probs_col / features_col: ``instance_dependent`` only: a model's probabilities per class
            (array or vector), or features (a vector column or numeric columns) to fit one on.
        frac_zero_noise_rates: for a generated matrix, the fraction of zero off-diagonal rates.
        task: ``"multiclass"`` (class labels), ``"regression"`` (a numeric label: the output gets a
            ``noise_mode`` column too, the mode that hit each row, null for the others) or
            ``"multilabel"`` (an array of tags; ``mode`` None or ``uniform`` only, the output's label
            is the noisy tag set sorted in class order, and a ``flipped_classes`` column lists the
            class indices flipped per row, ``[]`` for none; ``is_noisy`` is true where one flipped).
        shift_std: regression ``shift``: the shift in standard deviations of the label (default 3).
        factor: regression ``unit``: the value is multiplied or divided by it (default 10).
        default_value: regression ``default``: the value written (default 0.0).

    Exactly ``round(rate * N)`` rows are hit per mode, the same rows for the same (id, seed) whatever
    the partitioning. ``is_noisy`` is true where the value changed (for regression a hit can leave it
    unchanged: ``default`` on a row at the default, ``unit`` on a zero, a constant label). For
    regression, ``float`` and ``double`` labels keep their type; integral and decimal labels come out
    as ``double`` (in ``label_col`` and ``true_label``).

    Raises :class:`ConfigError` on bad arguments and :class:`InputError` on bad input.
    """
    _check_task(task, noise_matrix=noise_matrix, classes=classes, probs_col=probs_col, features_col=features_col,
                frac_zero_noise_rates=frac_zero_noise_rates, shift_std=shift_std, factor=factor,
                default_value=default_value)
    if task == "regression":
        cfg = regression_noise.regression_config(mode, noise_rate, shift_std=shift_std, factor=factor,
                                                 default_value=default_value)
        df = unfolded(df)
        _check_columns(df, label_col, id_col, (TRUE_LABEL, IS_NOISY, NOISE_MODE))
        return _inject_regression(df, label_col, id_col, seed, cfg)
    if task == "multilabel":
        tag_cfg = multilabel_noise.multilabel_config(mode, noise_rate, noise_matrix)
        df = unfolded(df)
        _check_columns(df, label_col, id_col, (TRUE_LABEL, IS_NOISY, multilabel_noise.FLIPPED_CLASSES))
        return _inject_multilabel(df, label_col, id_col, seed, classes, tag_cfg)
    mode = "uniform" if mode is None else mode
    _check_args(mode, noise_rate, noise_matrix, probs_col, features_col)
    df = unfolded(df)
    _check_columns(df, label_col, id_col, (TRUE_LABEL, IS_NOISY))
    if probs_col and probs_col not in df.columns:
        raise InputError(f"probs_col '{probs_col}' is not a column of the input", column=probs_col)
    label_type = df.schema[label_col].dataType
    classes = _resolve_classes(df, label_col, classes)
    K = len(classes)
    work = df.withColumn(_INDEX, _class_index(label_col, classes, label_type))
    if mode == "instance_dependent":
        if probs_col:
            from sparknoise.core.inputs import probs_as_double_array

            work = work.withColumn(_PROBS, probs_as_double_array(df.schema[probs_col]))
        else:
            work = _model_probabilities(work, label_col, features_col, classes, label_type)
    counts, n = _profile(work, label_col, id_col, K, with_probs=mode == "instance_dependent")
    u = uniform_hash(id_col, seed, 1)
    if mode == "uniform":
        out = _exact_selection(work, id_col, seed, n, [int(round(noise_rate * n))])
        step = F.floor(uniform_hash(id_col, seed, 2) * F.lit(float(K - 1))).cast("int") + F.lit(1)
        new = F.when(F.col(SEGMENT) == 0, (F.col(_INDEX) + step) % F.lit(K)).otherwise(F.col(_INDEX))
    elif mode == "class_conditional":
        if noise_matrix is None:
            noise_matrix = noise_matrix_from_trace(K, K * (1.0 - noise_rate), py=counts / n,
                                                   frac_zero_noise_rates=frac_zero_noise_rates, seed=seed)
        nm = check_noise_matrix(noise_matrix, K)
        bounds = []
        for k in range(K):
            cells = round_preserving_sum(counts[k] * nm[:, k])
            off = np.delete(cells, k)  # targets j != k, in index order
            bounds.append([int(b) for b in np.cumsum(off)])
        nb = _buckets(max(1, n // K))
        nb = int(min(nb, max(16, (1 << 16) // K)))  # <= 2^16 (class, bucket) counts for K <= 4096
        out = assign_segments(work, group=F.col(_INDEX), score=u, bucket=linear_bucket(u, nb), id_col=id_col,
                              bounds=bounds, n_buckets=nb)
        seg = F.col(SEGMENT)
        target = seg + F.when(seg >= F.col(_INDEX), F.lit(1)).otherwise(F.lit(0))
        new = F.when(seg < F.lit(K - 1), target).otherwise(F.col(_INDEX))
    else:
        n_flip = int(round(noise_rate * n))
        masked = F.transform(F.col(_PROBS), lambda x, i: F.when(i == F.col(_INDEX), F.lit(-1.0)).otherwise(x))
        work = work.withColumn("__sn_other_p", F.array_max(masked)).withColumn(
            "__sn_other", (F.array_position(masked, F.col("__sn_other_p")) - F.lit(1)).cast("int"))
        w = F.col("__sn_other_p")
        score = F.when(w > 0, -F.log(u) / w).otherwise(F.lit(float("inf")))
        nb = 2048
        out = assign_segments(work, group=F.lit(0), score=score, bucket=log_bucket(score, nb), id_col=id_col,
                              bounds=[[n_flip]], n_buckets=nb)
        new = F.when(F.col(SEGMENT) == 0, F.col("__sn_other")).otherwise(F.col(_INDEX))
    out = out.withColumn(_NEW, new)
    log.info("inject_label_noise: mode %s, %d rows, %d classes, seed %d", mode, n, K, seed)
    return _output(out, df.columns, label_col, _label_value(F.col(_NEW), classes, label_type), F.col(label_col),
                   F.col(_NEW) != F.col(_INDEX))
