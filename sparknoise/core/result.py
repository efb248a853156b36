"""LabelIssuesResult: the rows with their flags plus the K- and KxK-sized estimates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from sparknoise.core.agreement import flagged_with_agreement
from sparknoise.core.health import HealthSummary, health_summary
from sparknoise.errors import InputError


class Summary(dict):
    """The dict of :meth:`LabelIssuesResult.summary`; renders as a headline and table in notebooks."""

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>sparknoise</b>: {self['num_flagged']:,} of {self['n_rows']:,} rows flagged "
            f"({self['flagged_fraction']:.2%}) by <code>{self['filter_by']}</code>; "
            f"estimated label noise {self['estimated_noise_rate']:.2%}; {self['n_classes']} classes.</p>"
        )
        return head + self["per_class"].to_html(index=False)


def summary_counts(result: Any) -> dict[str, Any]:
    """The first entries of a result's ``summary()`` (driver, no Spark job): rows, classes, options,
    counts and the flagged fraction; shared by the multiclass and the multi-label results."""
    return {
        "n_rows": result.n_rows,
        "n_classes": result.num_classes,
        "classes": list(result.classes),
        "filter_by": result.filter_by,
        "rank_by": result.rank_by,
        "num_flagged": result.num_flagged,
        "num_label_issues": result.num_label_issues,
        "flagged_fraction": result.num_flagged / result.n_rows if result.n_rows else 0.0,
    }


@dataclass(frozen=True)
class LabelIssuesResult:
    """What :func:`sparknoise.find_label_issues` found.

    ``rows`` is lazy: every action on it re-reads the input (sparknoise never caches); write it to a
    table once if you query it repeatedly. The arrays are plain numpy, indexed by class index
    (``classes[i]`` is the label value of index i); matrices have the given label on rows, except
    ``noise_matrix`` = P(given | true) and ``inverse_noise_matrix`` = P(true | given), whose columns
    sum to 1 as in cleanlab.
    """

    rows: DataFrame
    classes: tuple
    label_counts: np.ndarray
    thresholds: np.ndarray
    confident_joint: np.ndarray
    joint: np.ndarray
    noise_matrix: np.ndarray
    inverse_noise_matrix: np.ndarray
    prior: np.ndarray
    num_label_issues: int
    num_flagged: int
    flagged_per_class: np.ndarray
    n_rows: int
    filter_by: str
    rank_by: str
    options: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per eager stage
    n_repaired: int = 0  # rows whose probabilities probs_repair="clip" repaired

    @property
    def num_classes(self) -> int:
        """K, the number of probability columns."""
        return len(self.classes)

    def issues(self) -> DataFrame:
        """Only the flagged rows, most suspicious first (``issue_rank`` ascending), with the agreement
        of the out-of-fold loss: ``loss_rank`` (the row's rank by log loss of its given label among all
        rows, 1 = highest) and ``confidence`` (``high`` when ``loss_rank <= num_flagged``, i.e. the row
        is also within the top p% by loss, p the fraction flagged; else ``medium``). Lazy."""
        o = self.options
        return flagged_with_agreement(self.rows, label_col=o["label_col"], probs_col=o["probs_col"],
                                      id_col=o["id_col"], classes=self.classes,
                                      num_flagged=self.num_flagged, rank_by=self.rank_by).orderBy("issue_rank")

    def class_table(self) -> pd.DataFrame:
        """One row per class: rows, flagged rows, threshold, estimated noise of its given labels."""
        diag = np.diagonal(self.confident_joint).astype(float)
        counts = self.label_counts.astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            label_noise = np.where(counts > 0, 1.0 - diag / counts, 0.0)
        return pd.DataFrame(
            {
                "class": list(self.classes),
                "rows": self.label_counts,
                "flagged": self.flagged_per_class,
                "threshold": self.thresholds,
                "estimated_label_noise": label_noise,
                "prior": self.prior,
            }
        )

    def summary(self) -> Summary:
        """A small dict for notebooks and logs (no Spark job runs); renders as a table in notebooks."""
        return Summary({
            **summary_counts(self),
            "estimated_noise_rate": float(1.0 - np.trace(self.joint)),
            "per_class": self.class_table(),
        })

    def health_summary(self, *, asymmetric: bool = False) -> HealthSummary:
        """cleanlab.dataset's health summary of this result (see :func:`sparknoise.health_summary`)."""
        return health_summary(self, asymmetric=asymmetric)

    def report(self, path: str, *, passthrough: Sequence[str] = (), top: int = 50) -> str:
        """Write the HTML label-health report to ``path``; runs two small Spark jobs. Returns the path.

        ``passthrough``: columns of the input shown beside the ``top`` most suspicious rows;
        InputError naming any that the rows do not have.
        """
        missing = [c for c in passthrough if c not in self.rows.columns]
        if missing:
            raise InputError(f"report passthrough column(s) {missing} are not in the result's rows; available: "
                             f"{self.rows.columns}", column=missing[0])
        # The one deliberate upward import: the report package renders a result, so it sits above
        # core; importing it lazily keeps matplotlib out of `import sparknoise`.
        from sparknoise.report.data import from_result
        from sparknoise.report.html import write_report

        return write_report(from_result(self, passthrough=passthrough, top=top), path)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
