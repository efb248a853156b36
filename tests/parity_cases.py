"""Synthetic datasets and the cleanlab-oracle comparison shared by the classic and Connect suites."""

from __future__ import annotations

import numpy as np
import pandas as pd

import sparknoise as sn
from sparknoise.noise.synthetic import NoisyProbabilities, noisy_probabilities

FILTERS = [
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_normalized_margin",
    "low_self_confidence",
]
RANKS = ["self_confidence", "normalized_margin", "confidence_weighted_entropy"]


def _with_missing_class(d: NoisyProbabilities, missing: int) -> NoisyProbabilities:
    labels = d.labels.copy()
    labels[labels == missing] = (missing + 1) % d.pred_probs.shape[1]
    return NoisyProbabilities(labels=labels, true_labels=d.true_labels, pred_probs=d.pred_probs)


def _with_one_row_class(d: NoisyProbabilities, lonely: int) -> NoisyProbabilities:
    labels = d.labels.copy()
    rows = np.flatnonzero(labels == lonely)
    labels[rows[1:]] = (lonely + 1) % d.pred_probs.shape[1]
    return NoisyProbabilities(labels=labels, true_labels=d.true_labels, pred_probs=d.pred_probs)


def dataset(name: str) -> NoisyProbabilities:
    """The named parity dataset."""
    if name == "k2":
        return noisy_probabilities(3000, 2, noise_rate=0.15, seed=1, separation=1.5)
    if name == "k3":
        return noisy_probabilities(3000, 3, noise_rate=0.2, seed=2)
    if name == "k10":
        return noisy_probabilities(6000, 10, noise_rate=0.2, seed=3, separation=2.5)
    if name == "k25":
        return noisy_probabilities(8000, 25, noise_rate=0.25, seed=4, separation=3.0)
    if name == "k5_imbalanced":
        return noisy_probabilities(5000, 5, noise_rate=0.2, seed=5, prior=[0.6, 0.2, 0.1, 0.07, 0.03])
    if name == "k4_missing_class":
        return _with_missing_class(noisy_probabilities(3000, 4, noise_rate=0.2, seed=6), missing=2)
    if name == "k1000":  # K-sized expressions must stay shallow (a K-deep chain overflowed the JVM stack)
        return noisy_probabilities(2000, 1000, noise_rate=0.2, seed=8, separation=4.0)
    if name == "k4_one_row_class":
        return _with_one_row_class(noisy_probabilities(3000, 4, noise_rate=0.2, seed=7), lonely=1)
    raise KeyError(name)


DATASETS = ["k2", "k3", "k10", "k25", "k5_imbalanced", "k4_missing_class", "k4_one_row_class"]


def to_frame(spark, d: NoisyProbabilities, partitions: int = 3):
    """The dataset as a Spark DataFrame (id, label, true_label, pred_probs array<double>)."""
    return spark.createDataFrame(d.to_pandas()).repartition(partitions)


def ours(res: sn.LabelIssuesResult) -> pd.DataFrame:
    """The result rows on the driver, ordered by id (test-only collect)."""
    cols = ["id", "label_quality", "predicted_label", "is_label_issue", "issue_rank", "sample_weight"]
    return res.rows.select(*cols).toPandas().sort_values("id").reset_index(drop=True)


def assert_parity(res: sn.LabelIssuesResult, d: NoisyProbabilities, filter_by: str, rank_by: str = "self_confidence",
                  *, thresholds_rtol: float = 1e-15, **kwargs) -> pd.DataFrame:
    """Assert flags, ranks, scores and every matrix equal cleanlab's on the same probabilities.

    ``thresholds_rtol``: how far numpy's (pairwise, rounded) class means may be from sparknoise's exactly
    summed ones; a few ulps on means of tiny probabilities (K = 1000)."""
    import cleanlab.count as cc
    import cleanlab.filter as cf
    import cleanlab.rank as cr

    y, P = d.labels, d.pred_probs
    got = ours(res)
    mask = cf.find_label_issues(y, P, filter_by=filter_by, **kwargs)
    flagged = np.flatnonzero(got["is_label_issue"].to_numpy())
    np.testing.assert_array_equal(flagged, np.flatnonzero(mask), err_msg=f"flags differ for {filter_by}")
    assert res.num_flagged == int(mask.sum())

    # label quality = cleanlab's score for rank_by, bit for bit
    scores = cr.get_label_quality_scores(y, P, method=rank_by)
    np.testing.assert_array_equal(got["label_quality"].to_numpy(), scores)

    # ranks: cleanlab's order (ties tolerated only among equal scores; we break them by id)
    if mask.any():
        ranked = cf.find_label_issues(y, P, filter_by=filter_by, return_indices_ranked_by=rank_by, **kwargs)
        by_rank = got[got["is_label_issue"]].sort_values("issue_rank")
        assert by_rank["issue_rank"].tolist() == list(range(1, len(ranked) + 1))
        np.testing.assert_array_equal(scores[by_rank["id"].to_numpy()], scores[ranked])
        expected = sorted(flagged, key=lambda i: (scores[i], i))
        assert by_rank["id"].tolist() == expected
    assert got.loc[~got["is_label_issue"], "issue_rank"].isna().all()

    # the K and KxK estimates
    # thresholds: sparknoise sums exactly (order-free, so partitioning cannot change them); numpy's
    # pairwise sum can be an ulp away. The flags and the confident joint above/below are exact.
    np.testing.assert_allclose(res.thresholds, cc.get_confident_thresholds(y, P), rtol=thresholds_rtol, atol=0)
    cj = cc.compute_confident_joint(y, P)
    np.testing.assert_array_equal(res.confident_joint, cj)
    py, nm, inv = cc.estimate_latent(cj, y)
    np.testing.assert_allclose(res.noise_matrix, nm, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.inverse_noise_matrix, inv, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.prior, py, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.joint, cc.estimate_joint(y, P), rtol=0, atol=1e-15)
    assert res.num_label_issues == cc.num_label_issues(y, P)
    np.testing.assert_array_equal(got["predicted_label"].to_numpy(), P.argmax(axis=1))
    return got
