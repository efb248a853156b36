"""Precision, recall and F1 of a detector from three counts (driver, pure Python), and the impact
rows of the training-label variants.

Shared by the multiclass evaluation (``evaluation.py``), the regression one
(``regression_evaluation.py``) and the multi-label one (``multilabel_evaluation.py``): precision =
true positives / flagged rows, recall = true positives / noisy rows (None when the denominator is
0), F1 their harmonic mean (0.0 when rows were flagged but none was noisy, None when nothing was
flagged). The multiclass and multi-label evaluations also share :func:`fit_variants` and
:func:`variant_impact_rows`.
"""

from __future__ import annotations

from typing import Any, Callable

from sparknoise.ml.cross_validation import activate


def detection_scores(flagged: int, true_positives: int, noisy: int) -> dict[str, Any]:
    """``{flagged, true_positives, noisy, precision, recall, f1}`` from the three counts."""
    precision = true_positives / flagged if flagged else None
    recall = true_positives / noisy if noisy else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (0.0 if flagged else None)
    return {"flagged": flagged, "true_positives": true_positives, "noisy": noisy, "precision": precision,
            "recall": recall, "f1": f1}


VARIANTS = ("noisy", "pruned", "downweighted", "clean")


def fit_variants(fits: dict[str, Callable[[], Any]], *, session: Any, parallelism: int,
                 parallel_map: Callable[[Callable, list, int], list]) -> dict[str, Any]:
    """``{name: fits[name]()}``: the training-label variants' fits and scores (noisy, pruned,
    down-weighted), up to ``parallelism`` at once, each thread with ``session`` active (driver
    orchestration; the fits run on Spark)."""
    def fit(name: str) -> Any:
        activate(session)
        return fits[name]()

    return dict(zip(fits, parallel_map(fit, list(fits), parallelism)))


def variant_impact_rows(rate: float, scores: dict[str, Any], *, n_train: int, n_test: int, flagged: int,
                columns: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """One impact row per variant of :data:`VARIANTS`: its training rows (the pruned fit drops the
    ``flagged`` rows), flagged count, test rows and ``columns(score)`` (the score is None for a
    variant that was not fitted, e.g. down-weighting a classifier without a weightCol)."""
    train_rows = {"noisy": n_train, "pruned": n_train - flagged, "downweighted": n_train, "clean": n_train}
    return [{"noise_rate": rate, "variant": v, "train_rows": train_rows[v],
             "flagged": flagged if v in ("pruned", "downweighted") else 0, "test_rows": n_test,
             **columns(scores.get(v))} for v in VARIANTS]
