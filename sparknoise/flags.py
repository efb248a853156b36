"""The final row map: label quality, predicted label and the is_label_issue flag of every row.

Everything N-sized was reduced to broadcast state (thresholds, cutoffs) before this step, so the
flags are a pure map with no shuffle (reference note section 8, step 5): native Spark expressions
when the classes are few (:mod:`sparknoise.row_expressions`), else an Arrow UDF over batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.functions import arrow_udf

from sparknoise import kernels
from sparknoise import row_expressions as rx
from sparknoise.constants import CONFIDENT_SLACK
from sparknoise.selection import Cutoffs, SelectionProblem, candidates_of

FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
)
PRUNE_FILTERS = ("prune_by_noise_rate", "prune_by_class", "both")
LOW_SCORE_FILTERS = ("low_normalized_margin", "low_self_confidence")


@dataclass(frozen=True)
class FlagRule:
    """What the row map needs to decide each row's flag, for one ``filter_by`` method."""

    filter_by: str
    num_classes: int
    thresholds: np.ndarray
    selections: list[tuple[SelectionProblem, Cutoffs]] = field(default_factory=list)

    def flags(self, labels: np.ndarray, P: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The boolean is_label_issue of a batch."""
        n = len(labels)
        if self.filter_by == "confident_learning":
            guess = kernels.guessed_true_labels(P, self.thresholds - CONFIDENT_SLACK)
            flagged = (guess >= 0) & (guess != labels)
        elif self.filter_by == "predicted_neq_given":
            flagged = kernels.argmax_first(P) != labels
        else:
            flagged = np.ones(n, dtype=bool)
            for problem, cutoffs in self.selections:  # 'both' intersects two selections
                rows, cells, keys = candidates_of(problem, labels, P)
                chosen = cutoffs.selected(cells, keys, ids[rows]) if rows.size else np.zeros(0, dtype=bool)
                hit = np.zeros(n, dtype=bool)
                hit[rows[chosen]] = True
                flagged &= hit
        if self.filter_by not in LOW_SCORE_FILTERS:
            flagged &= ~kernels.keep_out(P, labels)
        return flagged

    def native(self, quality_method: str) -> bool:
        """Whether :meth:`flag_column` and the quality score have native Spark expressions."""
        return (
            self.num_classes <= rx.NATIVE_MAX_CLASSES
            and quality_method in rx.NATIVE_QUALITY_METHODS
            and all(p.kind in ("noise_rate", "class", "global_score") for p, _ in self.selections)
            and all(p.score_method in (None, *rx.NATIVE_QUALITY_METHODS) for p, _ in self.selections)
        )

    def flag_column(self, probs: Column, label: Column, ident: Column, id_type: T.DataType) -> Column:
        """is_label_issue as a native expression (same decisions as :meth:`flags`)."""
        K = self.num_classes
        if self.filter_by == "confident_learning":
            guess = rx.guessed_true_label(probs, self.thresholds - CONFIDENT_SLACK)
            flagged = (guess >= F.lit(0)) & (guess != label)
        elif self.filter_by == "predicted_neq_given":
            flagged = rx.argmax_first(probs) != label
        else:
            flagged = F.lit(True)
            for problem, cutoffs in self.selections:  # 'both' intersects two selections
                if problem.kind == "noise_rate":
                    hit = rx.noise_rate_selected(probs, label, ident, K, cutoffs.key_star, cutoffs.id_star, id_type)
                elif problem.kind == "class":
                    hit = rx.single_key_selected(-rx.self_confidence(probs, label), label, ident, cutoffs.key_star,
                                                 cutoffs.id_star, id_type)
                else:
                    score = rx.quality_score(probs, label, problem.score_method, K)
                    hit = rx.single_key_selected(-score, F.lit(0), ident, cutoffs.key_star, cutoffs.id_star, id_type)
                flagged = flagged & hit
        if self.filter_by not in LOW_SCORE_FILTERS:
            flagged = flagged & ~rx.keep_out(probs, label, K)
        return flagged


def annotate_udf(rule: FlagRule, quality_method: str):
    """Arrow UDF (label index, probs, id) -> struct(label_quality, predicted_index, is_label_issue)."""
    K = rule.num_classes

    @arrow_udf("label_quality double, predicted_index int, is_label_issue boolean")
    def annotate(labels: pa.Array, probs: pa.Array, ids: pa.Array) -> pa.Array:
        y = kernels.int_column(labels)
        P = kernels.probs_matrix(probs, K)
        return pa.StructArray.from_arrays(
            [
                pa.array(kernels.quality_scores(P, y, quality_method), pa.float64()),
                pa.array(kernels.argmax_first(P), pa.int32()),
                pa.array(rule.flags(y, P, kernels.id_column(ids))),
            ],
            names=["label_quality", "predicted_index", "is_label_issue"],
        )

    return annotate


def quality_udf(num_classes: int, method: str):
    """Arrow UDF (label index, probs) -> label quality score."""

    @arrow_udf("double")
    def quality(labels: pa.Array, probs: pa.Array) -> pa.Array:
        y = kernels.int_column(labels)
        return pa.array(kernels.quality_scores(kernels.probs_matrix(probs, num_classes), y, method), pa.float64())

    return quality
