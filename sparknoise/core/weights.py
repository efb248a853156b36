"""sample_weight policies for downstream training: a per-row Column expression (executors).

``prune``: 0 for flagged rows, else 1; ``downweight``: the flagged rows get ``detection.downweight``;
``quality``: the row's label_quality; ``cleanlab``: 1 / P(given = true) of the row's given class from
the noise-matrix diagonal (floored at 1e-3), 0 for flagged rows, as cleanlab's CleanLearning does.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

from sparknoise.core.constants import CLEANLAB_WEIGHT_DIAGONAL_FLOOR
from sparknoise.errors import ConfigError

POLICIES = ("prune", "downweight", "quality", "cleanlab")


def cleanlab_class_weights(noise_matrix: np.ndarray) -> np.ndarray:
    """1 / max(noise_matrix[k][k], 1e-3): cleanlab CleanLearning's weight of a kept row of class k."""
    return 1.0 / np.maximum(np.diagonal(noise_matrix), CLEANLAB_WEIGHT_DIAGONAL_FLOOR)


def sample_weight(
    policy: str,
    *,
    flag: Column,
    label_index: Column,
    label_quality: Column,
    noise_matrix: np.ndarray,
    downweight: float = 0.1,
) -> Column:
    """The sample_weight column for a policy: prune | downweight | quality | cleanlab."""
    if policy == "prune":
        return F.when(flag, F.lit(0.0)).otherwise(F.lit(1.0))
    if policy == "downweight":
        return F.when(flag, F.lit(float(downweight))).otherwise(F.lit(1.0))
    if policy == "quality":
        return label_quality.cast("double")
    if policy == "cleanlab":
        per_class = F.array(*[F.lit(float(w)) for w in cleanlab_class_weights(noise_matrix)])
        return F.when(flag, F.lit(0.0)).otherwise(F.element_at(per_class, label_index + 1))
    raise ConfigError(f"weights={policy!r} is not a sample-weight policy; use one of {list(POLICIES)}.")
