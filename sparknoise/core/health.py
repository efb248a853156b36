"""The dataset health summary: cleanlab.dataset's class and pair tables and the health score.

Driver maths on K- and KxK-sized arrays only, in cleanlab 2.9.0's
operation order so the numbers match ``cleanlab.dataset.health_summary`` exactly:

* ``classes_by_label_quality`` and ``overlapping_classes`` come from the joint (the calibrated
  confident joint normalised to sum to 1) and the number of rows;
* ``overall_label_health_score`` is ``1 - num_label_issues / n_rows`` with cleanlab's
  ``num_label_issues`` (the off-diagonal count), as cleanlab computes it when it has the labels and
  probabilities. It is a different estimator from ``trace(joint)``: the two do not agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import pandas as pd

EPSILON = 1e-6  # cleanlab.internal.constants.EPSILON: the floor of a class's probability mass


def joint_from_confident_joint(calibrated_cj: np.ndarray) -> np.ndarray:
    """cleanlab's ``estimate_joint`` from an already calibrated confident joint (sums to 1)."""
    cj = np.asarray(calibrated_cj, dtype=np.float64)
    return cj / max(float(np.sum(cj)), 1e-100)


def rank_classes_by_label_quality(
    joint: np.ndarray, num_examples: int, class_names: Sequence | None = None
) -> pd.DataFrame:
    """One row per class, worst label quality first (``cleanlab.dataset.rank_classes_by_label_quality``)."""
    joint = np.asarray(joint, dtype=np.float64)
    given_label_noise = joint.sum(axis=1) - joint.diagonal()
    true_label_noise = joint.sum(axis=0) - joint.diagonal()
    given_conditional_noise = given_label_noise / np.clip(joint.sum(axis=1), a_min=EPSILON, a_max=None)
    true_conditional_noise = true_label_noise / np.clip(joint.sum(axis=0), a_min=EPSILON, a_max=None)
    df = pd.DataFrame(
        {
            "Class Index": np.arange(len(joint)),
            "Label Issues": (given_label_noise * num_examples).round().astype(int),
            "Inverse Label Issues": (true_label_noise * num_examples).round().astype(int),
            "Label Noise": given_conditional_noise,
            "Inverse Label Noise": true_conditional_noise,
            "Label Quality Score": 1 - given_conditional_noise,
        }
    )
    if class_names is not None:
        df.insert(loc=0, column="Class Name", value=list(class_names))
    return df.sort_values(by="Label Quality Score", ascending=True).reset_index(drop=True)


def find_overlapping_classes(
    joint: np.ndarray, num_examples: int, class_names: Sequence | None = None, *, asymmetric: bool = False
) -> pd.DataFrame:
    """Class pairs by how much they are confused (``cleanlab.dataset.find_overlapping_classes``).

    Symmetric (default): one row per pair a < b with ``J[a, b] + J[b, a]``; asymmetric: one row per
    ordered pair a != b with ``J[a, b]`` (given a, true b). Most overlapping first.
    """
    joint = np.asarray(joint, dtype=np.float64)
    if asymmetric:
        rcv = [(*i, v) for i, v in np.ndenumerate(joint) if i[0] != i[1]]
    else:
        sym = np.triu(joint) + np.tril(joint).T
        rcv = [(*i, v) for i, v in np.ndenumerate(sym) if i[0] < i[1]]
    df = pd.DataFrame(rcv, columns=["Class Index A", "Class Index B", "Joint Probability"])
    df.insert(loc=2, column="Num Overlapping Examples", value=(df["Joint Probability"] * num_examples).round()
              .astype(int))
    if class_names is not None:
        names = list(class_names)
        df.insert(loc=0, column="Class Name A", value=df["Class Index A"].apply(lambda x: names[x]))
        df.insert(loc=1, column="Class Name B", value=df["Class Index B"].apply(lambda x: names[x]))
    return df.sort_values(by="Joint Probability", ascending=False).reset_index(drop=True)


class _Estimates(Protocol):
    """What the health summary reads of a result (a LabelIssuesResult has all four)."""

    classes: tuple
    joint: np.ndarray
    n_rows: int
    num_label_issues: int


@dataclass(frozen=True)
class HealthSummary:
    """cleanlab's ``health_summary`` dict as an object; renders as tables in notebooks.

    ``overall_label_health_score`` is the share of rows whose label looks right; ``joint`` the
    estimated P(given, true) (given label on rows); ``classes_by_label_quality`` and
    ``overlapping_classes`` the two pandas tables, with cleanlab's column names.
    """

    overall_label_health_score: float
    joint: np.ndarray
    classes_by_label_quality: pd.DataFrame
    overlapping_classes: pd.DataFrame
    n_rows: int
    num_label_issues: int

    def as_dict(self) -> dict:
        """The same four keys as ``cleanlab.dataset.health_summary`` returns."""
        return {
            "overall_label_health_score": self.overall_label_health_score,
            "joint": self.joint,
            "classes_by_label_quality": self.classes_by_label_quality,
            "overlapping_classes": self.overlapping_classes,
        }

    def _repr_html_(self) -> str:
        score = self.overall_label_health_score
        return (
            f"<p><b>Label health score {score:.3f}</b>: about {1 - score:.1%} "
            f"({self.num_label_issues:,} of {self.n_rows:,}) labels look wrong.</p>"
            "<p>Classes by label quality (worst first)</p>"
            + self.classes_by_label_quality.to_html(index=False, float_format=lambda v: f"{v:.4f}")
            + "<p>Overlapping classes (most confused first)</p>"
            + self.overlapping_classes.head(20).to_html(index=False, float_format=lambda v: f"{v:.5f}")
        )


def _summary(joint: np.ndarray, n_rows: int, num_label_issues: int, class_names: Sequence | None,
             asymmetric: bool) -> HealthSummary:
    return HealthSummary(
        overall_label_health_score=1 - num_label_issues / n_rows if n_rows else float("nan"),
        joint=joint,
        classes_by_label_quality=rank_classes_by_label_quality(joint, n_rows, class_names),
        overlapping_classes=find_overlapping_classes(joint, n_rows, class_names, asymmetric=asymmetric),
        n_rows=int(n_rows),
        num_label_issues=int(num_label_issues),
    )


def summarize_health(
    calibrated_confident_joint: np.ndarray,
    n_rows: int,
    num_label_issues: int,
    class_names: Sequence | None = None,
    *,
    asymmetric: bool = False,
) -> HealthSummary:
    """The health summary from the K x K numbers a run keeps (its ``runs`` row has all of them)."""
    joint = joint_from_confident_joint(calibrated_confident_joint)
    return _summary(joint, n_rows, num_label_issues, class_names, asymmetric)


def health_summary(
    result: _Estimates, *, class_names: Sequence | None | bool = None, asymmetric: bool = False
) -> HealthSummary:
    """``cleanlab.dataset.health_summary`` for a :func:`sparknoise.find_label_issues` result.

    No Spark job runs and nothing is printed. ``class_names`` defaults to the result's classes (the
    label values, in class-index order); pass ``class_names=False`` to leave the name columns out,
    as cleanlab does without names.
    """
    if class_names is None:
        class_names = [str(c) for c in result.classes]
    elif class_names is False:
        class_names = None
    return _summary(result.joint, result.n_rows, result.num_label_issues, class_names, asymmetric)
