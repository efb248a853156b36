"""The row map: every row's label_quality, predicted_label, is_label_issue and sample_weight.

Everything N-sized was reduced to broadcast state (thresholds, cutoffs) before this step, so the
annotation is a pure per-row map on the executors, with no shuffle. It runs in two forms:

* ``rows``: every row, annotated;
* ``flagged``: only the flagged rows, annotated (the flag counts and the issue rank need these).

With a native score (self_confidence, normalized_margin) on the native route (and at K <= 64 for
confident_learning and predicted_neq_given at any size) everything is native: the per-cell cutoff
test is one term per class up to 64 classes and array functions over the K slots above, against a
K-row cutoff table joined by broadcast (native_selection.py), after two constant-size tests
that clear most rows (the safeguard: a row whose given label, nudged up by 1e-6, is its argmax is
never flagged; and the row's largest margin must reach its label's lowest cutoff). ``cleared`` and
``candidates`` split the rows by those tests so that the issue rank never filters on the flag.
A frame built from local data (a pandas frame: driver-sized) always takes the one Arrow UDF below.
Off the native route above 64 classes only the flag of the prune methods needs Python, and only for rows the safeguard
does not keep: ``flagged`` filters those rows out in the JVM before the Arrow UDF, and ``rows``
sends the UDF a null probability row for them. For the entropy score (and the low_* filters above
64 classes) one Arrow UDF computes the whole annotation, as the kernels do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sparknoise.core import native_selection, row_expressions
from sparknoise.core.constants import CONFIDENT_SLACK
from sparknoise.core.flags import LOW_SCORE_FILTERS, PRUNE_FILTERS, FlagRule, annotate_udf, flag_udf
from sparknoise.core.inputs import LABEL_INDEX, PROBS, PreparedInput
from sparknoise.core.weights import sample_weight

_ANNOTATION = "__sn_annotation"
_STATE = "__sn_cutoffs"


@dataclass(frozen=True)
class Annotated:
    """The annotated rows (lazy): all of them, and the flagged ones alone.

    ``native``: every column is a JVM expression, so the flag counts aggregate ``rows`` directly
    (a projection and a hash count; a filter on the flag would put the per-class test in the
    Filter's generated code, measured 1.5x slower at 10M x 10).
    """

    rows: DataFrame
    flagged: DataFrame
    native: bool = False
    # native per-cell flags: the rows a cheap constant-size test clears (flag false, no per-cell
    # test), and the other rows annotated with the full test; rows = their union
    cleared: DataFrame | None = None
    candidates: DataFrame | None = None


@dataclass(frozen=True)
class _Weights:
    policy: str
    noise_matrix: np.ndarray
    downweight: float


def uses_native_row_map(rule: FlagRule, rank_by: str) -> bool:
    """Whether the score, prediction and safeguard are native expressions for this run."""
    return (
        rule.num_classes <= row_expressions.ROW_MAP_NATIVE_MAX_CLASSES
        and rank_by in row_expressions.NATIVE_QUALITY_METHODS
        and (rule.filter_by not in LOW_SCORE_FILTERS or native_flags(rule))
        # confident_learning's guess: unrolled up to NATIVE_MAX_CLASSES; above, array functions on the
        # native route, else the Arrow row map (interpreting the array functions costs more than
        # Arrow on small inputs: 5,000 x 1000 measured 58 s with the unrolled form, 18 s with Arrow)
        and (rule.filter_by != "confident_learning" or rule.num_classes <= row_expressions.NATIVE_MAX_CLASSES
             or rule.native)
    )


def native_flags(rule: FlagRule) -> bool:
    """Whether the per-cell cutoff test is a native expression (the native route, native candidates;
    above NATIVE_MAX_CLASSES a problem with one candidate per class must have array-function slots)."""
    problems = [p for p, _ in rule.selections]
    return (
        rule.native
        and rule.filter_by in (*PRUNE_FILTERS, *LOW_SCORE_FILTERS)
        and bool(problems)
        and native_selection.supported(problems)
        and (rule.num_classes <= row_expressions.NATIVE_MAX_CLASSES
             or all(native_selection.uses_slots(p) or p.n_cells <= rule.num_classes for p in problems))
    )


def annotate(
    prepared: PreparedInput,
    rule: FlagRule,
    rank_by: str,
    classes: tuple,
    *,
    weights: str,
    noise_matrix: np.ndarray,
    downweight: float,
) -> Annotated:
    """Annotate every row (see the module docstring for which parts run where)."""
    policy = _Weights(weights, noise_matrix, downweight)
    # a frame built from local data (driver-sized) takes the one Arrow UDF: building the per-class
    # expressions costs the driver ~0.3 s of Python-to-JVM calls at K = 5, more than the UDF's work
    if prepared.local or not uses_native_row_map(rule, rank_by):
        rows = _annotate_in_python(prepared, rule, rank_by, classes, policy)
        return Annotated(rows=rows, flagged=rows.filter(F.col("is_label_issue")))
    K = rule.num_classes
    probs, label, ident = F.col(PROBS), F.col(LABEL_INDEX), F.col(prepared.id_col)
    kept_by_safeguard = row_expressions.keep_out(probs, label, K)
    score = row_expressions.quality_score(probs, label, rank_by, K)
    predicted = row_expressions.argmax_first(probs)

    def finish(df: DataFrame, flag: Column) -> DataFrame:
        out = (
            df.withColumn("label_quality", score)
            .withColumn("predicted_label", _predicted_label(prepared, classes, predicted))
            .withColumn("is_label_issue", flag)
        )
        return _with_weight(out, policy)

    if rule.filter_by in ("confident_learning", "predicted_neq_given"):
        if rule.filter_by == "confident_learning":
            guess = row_expressions.guessed_true_label(probs, np.asarray(rule.thresholds) - CONFIDENT_SLACK)
            disagrees = (guess >= F.lit(0)) & (guess != label)
        else:
            disagrees = predicted != label
        rows = finish(prepared.df, disagrees & ~kept_by_safeguard)
        return Annotated(rows=rows, flagged=rows.filter(F.col("is_label_issue")), native=True)

    if native_flags(rule):
        # cheap tests first: Spark evaluates AND/OR left to right and stops early, and a filter on
        # the flag (the issue rank's two branches) has no common-subexpression elimination
        possible = F.lit(True) if rule.filter_by in LOW_SCORE_FILTERS else ~kept_by_safeguard
        flag = F.lit(True)
        tables = []  # K-slot problems: their cutoffs as K-row tables, joined by broadcast on the label
        for n, (problem, cutoffs) in enumerate(rule.selections):  # 'both' intersects two selections
            possible = possible & native_selection.could_select(problem, cutoffs, probs, label)
            state = None
            if native_selection.uses_slots(problem):
                index_col, state_col = f"{_STATE}_index_{n}", f"{_STATE}_{n}"
                table = native_selection.slot_state(problem, cutoffs, prepared.df.sparkSession, prepared.id_type,
                                                    index_col, state_col)
                tables.append((problem.native_slots.index(label), table, index_col, state_col))
                state = F.col(state_col)
            flag = flag & native_selection.selected(problem, cutoffs, probs, label, ident, prepared.id_type, state)

        def with_state(df: DataFrame) -> DataFrame:
            for index, table, index_col, _ in tables:
                df = df.join(F.broadcast(table), index == F.col(index_col), "left").drop(index_col)
            return df

        def flagged_by_cutoffs(df: DataFrame, flag: Column) -> DataFrame:
            return finish(with_state(df), flag).drop(*[t[3] for t in tables])

        rows = flagged_by_cutoffs(prepared.df, possible & flag)
        # The issue rank splits the rows by a cheap test instead of filtering on the flag: a Filter
        # gets the per-cell terms without common-subexpression elimination (measured 4x slower).
        cleared = finish(prepared.df.filter(~possible), F.lit(False))
        candidates = flagged_by_cutoffs(prepared.df.filter(possible), flag)
        return Annotated(rows=rows, flagged=rows.filter(F.col("is_label_issue")), native=True, cleared=cleared,
                         candidates=candidates)

    flag = flag_udf(rule)  # the prune methods: per-cell cutoffs, in Python
    rows = finish(prepared.df, flag(label, F.when(~kept_by_safeguard, probs), ident))
    candidates = prepared.df.filter(~kept_by_safeguard)
    flagged = finish(candidates, flag(label, probs, ident)).filter(F.col("is_label_issue"))
    return Annotated(rows=rows, flagged=flagged)


def _predicted_label(prepared: PreparedInput, classes: tuple, index: Column) -> Column:
    if prepared.classes is None:
        return index.cast(prepared.label_type)
    values = F.array(*[F.lit(c).cast(prepared.label_type) for c in classes])
    return F.element_at(values, index + 1)


def _with_weight(df: DataFrame, policy: _Weights) -> DataFrame:
    return df.withColumn(
        "sample_weight",
        sample_weight(
            policy.policy,
            flag=F.col("is_label_issue"),
            label_index=F.col(LABEL_INDEX),
            label_quality=F.col("label_quality"),
            noise_matrix=policy.noise_matrix,
            downweight=policy.downweight,
        ),
    )


def _annotate_in_python(
    prepared: PreparedInput, rule: FlagRule, rank_by: str, classes: tuple, policy: _Weights
) -> DataFrame:
    udf = annotate_udf(rule, rank_by)
    a = F.col(_ANNOTATION)
    out = prepared.df.withColumn(_ANNOTATION, udf(F.col(LABEL_INDEX), F.col(PROBS), F.col(prepared.id_col)))
    out = out.withColumns({  # one projection, one analysis
        "label_quality": a["label_quality"],
        "predicted_label": _predicted_label(prepared, classes, a["predicted_index"]),
        "is_label_issue": a["is_label_issue"],
    })
    return _with_weight(out, policy).drop(_ANNOTATION)

