"""What a label-health report shows (``ReportData``), gathered from a result or from DataFrames.

The jobs layer fills it from a run's Delta tables. Only summary-sized data reaches the driver: a label-quality histogram
(at most 2 x ``bins`` counts, aggregated by Spark) and the ``top`` most suspicious rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise._version import __version__
from sparknoise.core.health import HealthSummary, health_summary
from sparknoise.core.result import LabelIssuesResult

TOP_ROWS = 50
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class ReportData:
    """Everything the HTML report renders; every field is K- or KxK-sized or capped."""

    run: dict[str, Any]  # run_id, input_location, input_version, config, sparknoise_version, timings, ...
    classes: list[str]
    n_rows: int
    num_flagged: int
    num_label_issues: int
    confident_joint: np.ndarray | None  # multiclass: calibrated, given label on rows
    noise_matrix: np.ndarray | None  # multiclass: P(given | true), columns sum to 1
    health: HealthSummary | None  # multiclass
    quality_histogram: pd.DataFrame  # bin_start, bin_end, flagged, kept
    top_rows: pd.DataFrame  # id, given_label, suggested_label, label_quality, issue_rank, passthrough...
    passthrough: list[str] = field(default_factory=list)
    # the latest apply of this run: counts per action and source, reviewed rows (None: never applied)
    cleaning: dict[str, Any] | None = None
    task: str = "multiclass"  # multiclass | multilabel | regression: which sections the report has
    # multilabel: one row per class (rows with the tag, flagged with it given / missing, thresholds)
    per_class: pd.DataFrame | None = None
    # regression: what ran and small summaries (a sample of given vs predicted, a residual histogram)
    regression: dict[str, Any] | None = None
    # the job whose run this is: detect (label health; also an apply run's detect run) | audit (data issues)
    job: str = "detect"
    # audit: the per-type summary, the search, and capped tables (worst rows per type, duplicate sets,
    # leakage pairs, weakest groups); see sparknoise.jobs.report.audit_data
    audit: dict[str, Any] | None = None

    @property
    def estimated_noise_rate(self) -> float | None:
        """1 - trace(joint): the share of rows whose given label differs from the true one (multiclass)."""
        return None if self.health is None else float(1.0 - np.trace(self.health.joint))

    @property
    def health_score(self) -> float:
        """cleanlab's overall health score: multiclass from the joint; else 1 - flagged rows / rows."""
        if self.health is not None:
            return float(self.health.overall_label_health_score)
        return 1.0 - self.num_flagged / self.n_rows if self.n_rows else 1.0

    def headline(self) -> dict[str, Any]:
        """The report's headline numbers (also embedded as JSON in the HTML)."""
        if self.job == "audit":
            audit = self.audit or {}
            return {"run_id": self.run.get("run_id"), "job": "audit", "n_rows": int(self.n_rows),
                    "num_flagged": int(self.num_flagged), "summary": audit.get("summary") or [],
                    "num_duplicate_sets": audit.get("num_duplicate_sets"),
                    "num_leakage_pairs": audit.get("num_leakage_pairs"), "search": audit.get("search") or {}}
        return {
            "run_id": self.run.get("run_id"),
            "task": self.task,
            "n_rows": int(self.n_rows),
            "n_classes": len(self.classes),
            "num_flagged": int(self.num_flagged),
            "num_label_issues": int(self.num_label_issues),
            "estimated_noise_rate": self.estimated_noise_rate,
            "overall_label_health_score": self.health_score,
        }


def quality_histogram(rows: DataFrame, *, quality_col: str = "label_quality", flag_col: str = "is_label_issue",
                      bins: int = HISTOGRAM_BINS) -> pd.DataFrame:
    """Counts of flagged and kept rows per equal-width label-quality bin on [0, 1] (one Spark aggregation)."""
    bucket = F.least(F.greatest(F.floor(F.col(quality_col) * bins), F.lit(0)), F.lit(bins - 1)).cast("int")
    counts = (
        rows.where(F.col(quality_col).isNotNull())
        .groupBy(bucket.alias("b"), F.coalesce(F.col(flag_col), F.lit(False)).alias("f"))
        .count()
        .collect()
    )
    table = pd.DataFrame({"bin_start": np.arange(bins) / bins, "bin_end": np.arange(1, bins + 1) / bins,
                          "flagged": np.zeros(bins, dtype=np.int64), "kept": np.zeros(bins, dtype=np.int64)})
    for r in counts:
        table.loc[r["b"], "flagged" if r["f"] else "kept"] += r["count"]
    return table


def top_rows(issues: DataFrame, columns: Sequence[str], top: int) -> pd.DataFrame:
    rows = issues.orderBy(F.col("issue_rank").asc_nulls_last()).limit(top).select(*columns).collect()
    return pd.DataFrame([r.asDict() for r in rows], columns=list(columns))


def from_result(result: LabelIssuesResult, *, passthrough: Sequence[str] = (), top: int = TOP_ROWS) -> ReportData:
    """Report data of a :func:`sparknoise.find_label_issues` result (two small Spark jobs)."""
    opts = result.options
    issues = result.issues().select(
        F.col(opts.get("id_col", "id")).alias("id"), F.col(opts.get("label_col", "label")).alias("given_label"),
        F.col("predicted_label").alias("suggested_label"), "label_quality", "issue_rank", "confidence", *passthrough,
    )
    columns = ["id", "given_label", "suggested_label", "label_quality", "issue_rank", "confidence", *passthrough]
    run = {
        "run_id": None, "source": "sparknoise.find_label_issues", "sparknoise_version": __version__,
        "config": {"filter_by": result.filter_by, "rank_by": result.rank_by, **opts},
        "timings": dict(result.timings),
    }
    return ReportData(
        run=run, classes=[str(c) for c in result.classes], n_rows=result.n_rows, num_flagged=result.num_flagged,
        num_label_issues=result.num_label_issues, confident_joint=np.asarray(result.confident_joint),
        noise_matrix=np.asarray(result.noise_matrix), health=health_summary(result),
        quality_histogram=quality_histogram(result.rows), top_rows=top_rows(issues, columns, top),
        passthrough=list(passthrough),
    )
