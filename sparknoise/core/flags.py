"""The flag rule of each filter_by method, and the Arrow UDFs of the row map (row_map.py).

Everything N-sized was reduced to broadcast state (thresholds, cutoffs) before this step, so the
flags are a pure map over Arrow batches with no shuffle; they run on the executors, per row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql.functions import arrow_udf

from sparknoise.core import kernels
from sparknoise.core.constants import CONFIDENT_SLACK
from sparknoise.core.selection import Cutoffs, SelectionProblem, candidates_of
from sparknoise.errors import ConfigError

log = logging.getLogger("sparknoise")

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


def check_filter_options(filter_by: str, frac_noise: float, num_to_remove_per_class: Any,
                         min_examples_per_class: int) -> None:
    """cleanlab's rules for the filter options, shared by the multiclass and the multi-label filters
    (driver): ConfigError on an unknown ``filter_by``, ``frac_noise`` outside [0, 1], a negative
    ``min_examples_per_class`` or ``num_to_remove_per_class`` with a filter that does not prune; a
    ``frac_noise`` other than 1 with such a filter is logged as ignored."""
    if filter_by not in FILTERS:
        raise ConfigError(f"filter_by={filter_by!r} is unknown; use one of {list(FILTERS)}.")
    if not 0.0 <= float(frac_noise) <= 1.0:
        raise ConfigError(f"frac_noise={frac_noise!r} must be within [0, 1].")
    if int(min_examples_per_class) < 0:
        raise ConfigError(f"min_examples_per_class={min_examples_per_class!r} must be >= 0.")
    if num_to_remove_per_class is not None and filter_by not in PRUNE_FILTERS:
        raise ConfigError(
            f"num_to_remove_per_class is not supported with filter_by={filter_by!r} (as in cleanlab); use "
            f"filter_by in {list(PRUNE_FILTERS)}, or leave num_to_remove_per_class unset."
        )
    if frac_noise != 1.0 and filter_by not in PRUNE_FILTERS:
        log.warning("frac_noise is ignored by filter_by=%r (only the prune methods use it)", filter_by)


@dataclass(frozen=True)
class FlagRule:
    """What the row map needs to decide each row's flag, for one ``filter_by`` method."""

    filter_by: str
    num_classes: int
    thresholds: np.ndarray
    selections: list[tuple[SelectionProblem, Cutoffs]] = field(default_factory=list)
    native: bool = False  # whether the row map may test the cutoffs as native expressions

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


# _single_evaluation: the row-map UDFs are deterministic, but are declared otherwise so that the
# optimizer never pushes a filter on their result (``is_label_issue``) below the projection that
# computes it. Pushed down, the filter gets its own copy of the UDF call and every row crosses into
# Python twice (measured: the 10M x 10 flag counts took 41 s instead of 5 s).


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

    return annotate.asNondeterministic()  # see _single_evaluation


def flag_udf(rule: FlagRule):
    """Arrow UDF (label index, probs, id) -> is_label_issue; a null probability row is not flagged.

    The native row map passes null for the rows its safeguard already keeps, so that only the
    remaining rows' probabilities cross into Python.
    """
    K = rule.num_classes

    @arrow_udf("boolean")
    def flag(labels: pa.Array, probs: pa.Array, ids: pa.Array) -> pa.Array:
        if isinstance(probs, pa.ChunkedArray):
            probs = probs.combine_chunks()
        present = probs.is_valid().to_numpy(zero_copy_only=False)
        out = np.zeros(len(probs), dtype=bool)
        if present.any():
            mask = pa.array(present)
            y = kernels.int_column(labels.filter(mask))
            P = kernels.probs_matrix(probs.filter(mask), K)
            out[present] = rule.flags(y, P, kernels.id_column(ids.filter(mask)))
        return pa.array(out)

    return flag.asNondeterministic()  # see _single_evaluation


def quality_udf(num_classes: int, method: str):
    """Arrow UDF (label index, probs) -> label quality score."""

    @arrow_udf("double")
    def quality(labels: pa.Array, probs: pa.Array) -> pa.Array:
        y = kernels.int_column(labels)
        return pa.array(kernels.quality_scores(kernels.probs_matrix(probs, num_classes), y, method), pa.float64())

    return quality
