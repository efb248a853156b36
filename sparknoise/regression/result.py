"""RegressionIssuesResult: the rows with their flags plus the few numbers that decided them.

Built on the driver from aggregates the flag rule already returned (no Spark job runs here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame


@dataclass(frozen=True)
class RegressionIssuesResult:
    """What :func:`sparknoise.find_regression_issues` (or ``RegressionCleanLearning``) found.

    ``rows`` is lazy (every action re-reads the input; write it once if you query it repeatedly):
    every input row once with ``is_label_issue``, ``label_quality``, ``given_label``,
    ``predicted_label``, ``residual`` (predicted - given, cleanlab's sign), ``uncertainty`` (when
    one was given or estimated), ``issue_rank`` (1 = lowest quality; null when not flagged) and
    ``sample_weight`` (0.0 flagged, 1.0 kept).
    """

    rows: DataFrame
    n_rows: int
    k: float  # the fraction flagged: ceil(n_rows * k) rows
    num_flagged: int
    median_adjusted_residual: float  # max(median |r / (u + 1e-100)|, 1e-100): the score's scale
    uncertainty: str  # "none", "constant", "column" or "estimated"
    options: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)  # RegressionCleanLearning: the k search's R² values

    def issues(self) -> DataFrame:
        """Only the flagged rows, most suspicious first (``issue_rank`` ascending). Lazy."""
        return self.rows.filter("is_label_issue").orderBy("issue_rank")

    def summary(self) -> dict:
        """A small dict for notebooks and logs (no Spark job runs)."""
        out = {
            "n_rows": self.n_rows,
            "k": self.k,
            "num_flagged": self.num_flagged,
            "flagged_fraction": self.num_flagged / self.n_rows if self.n_rows else 0.0,
            "median_adjusted_residual": self.median_adjusted_residual,
            "uncertainty": self.uncertainty,
        }
        out.update({f"search_{k}": v for k, v in self.search.items()})
        return out
