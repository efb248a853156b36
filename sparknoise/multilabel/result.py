"""MultilabelIssuesResult: the rows with their per-class flags plus the K x 2 x 2 estimates.

Every table here is built on the driver from K x 2 counts that one aggregation already returned
(no Spark job runs), in cleanlab 2.9.0's ``multilabel_classification.dataset`` code order so that
the pandas frames (values, columns and row order) are the same.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from sparknoise.core.result import summary_counts


@dataclass(frozen=True)
class MultilabelIssuesResult:
    """What :func:`sparknoise.find_multilabel_issues` found.

    ``rows`` is lazy (every action re-reads the input; write it once if you query it repeatedly).
    Arrays are indexed by class index (``classes[c]`` is the class of probability entry c); the
    per-class binary problems have label 0 = tag absent, 1 = tag present.
    """

    rows: DataFrame
    classes: tuple
    class_names_given: bool
    n_rows: int
    tag_counts: np.ndarray  # (K,) rows carrying each class
    thresholds: np.ndarray  # (K, 2) per-class confident thresholds [absent, present]
    confident_joint: np.ndarray  # (K, 2, 2) calibrated, given on rows (cleanlab's multi_label format)
    num_label_issues: int  # rows flagged by confident_learning for some class (cleanlab's multi-label count)
    num_label_issues_per_class: np.ndarray  # (K,)
    num_flagged: int
    flagged_per_class: np.ndarray  # (K, 2): flagged with the tag given, flagged without it
    filter_by: str
    rank_by: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def issues(self) -> DataFrame:
        """Only the flagged rows, most suspicious first (``issue_rank`` ascending). Lazy."""
        return self.rows.filter("is_label_issue").orderBy("issue_rank")

    def common_issues(self) -> pd.DataFrame:
        """cleanlab's ``common_multilabel_issues``: per class, rows flagged for it with the tag given
        (should be absent) and without it (should be present), as counts and fractions of all rows.

        Equals cleanlab's on the same data when this result used cleanlab's defaults there
        (filter_by='prune_by_noise_rate'); otherwise it counts this result's per-class flags.
        """
        counts = defaultdict(list)
        names = self.classes if self.class_names_given else None
        for c in range(self.num_classes):
            for given, n in ((True, self.flagged_per_class[c, 0]), (False, self.flagged_per_class[c, 1])):
                if names is not None:
                    counts["Class Name"].append(names[c])
                counts["Class Index"].append(c)
                counts["In Given Label"].append(given)
                counts["In Suggested Label"].append(not given)
                counts["Num Examples"].append(np.int64(n))
                counts["Issue Probability"].append(np.int64(n) / self.n_rows)
        return (pd.DataFrame.from_dict(counts).sort_values(by=["Issue Probability"], ascending=False)
                .reset_index(drop=True))

    def class_ranking(self) -> pd.DataFrame:
        """cleanlab's ``rank_classes_by_multilabel_quality``: per class the rows wrongly given it
        (Label Issues, Label Noise), the rows missing it (Inverse ...), and 1 - Label Noise."""
        issues_df = self.common_issues()
        names = self.class_names_given
        num_examples = self.n_rows
        issues_dict: dict = defaultdict(defaultdict)
        columns = ["Class Name", "Class Index", "Label Issues", "Inverse Label Issues", "Label Noise",
                   "Inverse Label Noise", "Label Quality Score"]
        if not names:
            columns = columns[1:]
        for _, row in issues_df.iterrows():
            entry = issues_dict[row["Class Index"]]
            if names:
                entry["Class Name"] = row["Class Name"]
            if row["In Given Label"]:
                entry["Label Issues"] = int(row["Issue Probability"] * num_examples)
                entry["Label Noise"] = row["Issue Probability"]
                entry["Label Quality Score"] = 1 - entry["Label Noise"]
            else:
                entry["Inverse Label Issues"] = int(row["Issue Probability"] * num_examples)
                entry["Inverse Label Noise"] = row["Issue Probability"]
        table: dict = defaultdict(list)
        for i in issues_dict:
            table["Class Index"].append(i)
            for j in issues_dict[i]:
                table[j].append(issues_dict[i][j])
        return (pd.DataFrame.from_dict(table).sort_values(by="Label Quality Score", ascending=True)
                .reset_index(drop=True))[columns]

    def health_score(self) -> float:
        """cleanlab's ``overall_multilabel_health_score``: 1 - flagged rows / rows (equal to cleanlab's
        when this result used its default filter)."""
        return 1.0 - self.num_flagged / self.n_rows

    def summary(self) -> dict:
        """A small dict for notebooks and logs (no Spark job runs)."""
        per_class = pd.DataFrame({
            "class": list(self.classes),
            "rows_with_tag": self.tag_counts,
            "flagged_tag_given": self.flagged_per_class[:, 0],
            "flagged_tag_missing": self.flagged_per_class[:, 1],
            "threshold_absent": self.thresholds[:, 0],
            "threshold_present": self.thresholds[:, 1],
            "num_label_issues": self.num_label_issues_per_class,
        })
        return {
            **summary_counts(self),
            "health_score": self.health_score(),
            "per_class": per_class,
        }
