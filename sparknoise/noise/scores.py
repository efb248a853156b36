"""Precision, recall and F1 of a detector from three counts (driver, pure Python).

Shared by the multiclass evaluation (``evaluation.py``) and the regression one
(``regression_evaluation.py``): precision = true positives / flagged rows, recall = true positives /
noisy rows (None when the denominator is 0), F1 their harmonic mean (0.0 when rows were flagged but
none was noisy, None when nothing was flagged).
"""

from __future__ import annotations

from typing import Any


def detection_scores(flagged: int, true_positives: int, noisy: int) -> dict[str, Any]:
    """``{flagged, true_positives, noisy, precision, recall, f1}`` from the three counts."""
    precision = true_positives / flagged if flagged else None
    recall = true_positives / noisy if noisy else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (0.0 if flagged else None)
    return {"flagged": flagged, "true_positives": true_positives, "noisy": noisy, "precision": precision,
            "recall": recall, "f1": f1}
