"""Batch kernels and driver maths against cleanlab directly (no Spark)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from parity_cases import DATASETS, dataset

from sparknoise.core import class_stats, kernels
from sparknoise.core.confident_joint import calibrate_confident_joint, clip_diagonal, confident_joint_fn
from sparknoise.core.estimates import confident_thresholds, estimate_latent, prune_count_matrix


def _batch(y: np.ndarray, P: np.ndarray) -> pa.RecordBatch:
    n, K = P.shape
    probs = pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * K, K, dtype=np.int32)), pa.array(P.ravel()))
    return pa.RecordBatch.from_arrays([pa.array(y.astype(np.int32)), probs], names=["y", "p"])


def _merge(batches):
    out = {}
    for b in batches:
        for kind, a, bb, v in zip(*(b.column(i).to_pylist() for i in range(4))):
            out[(kind, a, bb)] = out.get((kind, a, bb), 0) + v
    return out


def test_exact_parts_reconstruct_every_value():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.random(10_000), [0.0, 1.0, 1.000001, -1e-6, 5e-324, 0.1, 1 - 2**-53]])
    hi, lo = class_stats.exact_parts(v)
    for x, h, lo_ in zip(v[:200].tolist() + v[-7:].tolist(), np.r_[hi[:200], hi[-7:]], np.r_[lo[:200], lo[-7:]]):
        assert abs(Fraction(int(h) * 2**31 + int(lo_), 2**62) - Fraction(x)) <= Fraction(1, 2**63)


@pytest.mark.parametrize("name", DATASETS)
def test_pass1_and_pass2_kernels_match_cleanlab(name):
    import cleanlab.count as cc

    d = dataset(name)
    y, P = d.labels, d.pred_probs
    K = P.shape[1]
    # pass 1 over three uneven batches, merged as Spark would
    cuts = [0, 7, len(y) // 2, len(y)]
    merged = _merge(class_stats.class_stats_fn(K)(_batch(y[a:b], P[a:b]) for a, b in zip(cuts, cuts[1:])))
    counts = np.array([merged.get((0, k, 0), 0) for k in range(K)])
    sums = [class_stats.exact_sum_to_float(merged.get((0, k, 1), 0), merged.get((0, k, 2), 0)) for k in range(K)]
    np.testing.assert_array_equal(counts, np.bincount(y, minlength=K))
    t = confident_thresholds(counts, sums)
    np.testing.assert_allclose(t, cc.get_confident_thresholds(y, P), rtol=1e-15, atol=0)
    # pass 2
    rows = list(confident_joint_fn(t, K)(_batch(y[a:b], P[a:b]) for a, b in zip(cuts, cuts[1:])))
    cj = np.zeros((K, K), dtype=np.int64)
    issues = 0
    for b in rows:
        for g, h, n, i in zip(*(b.column(j).to_pylist() for j in range(4))):
            cj[g, h] += n
            issues += i
    expected = cc.compute_confident_joint(y, P, calibrate=False)
    np.testing.assert_array_equal(clip_diagonal(cj), expected)
    assert issues == cc.num_label_issues(y, P)
    calibrated = calibrate_confident_joint(clip_diagonal(cj), counts)
    np.testing.assert_array_equal(calibrated, cc.compute_confident_joint(y, P))
    py, nm, inv = cc.estimate_latent(calibrated, y)
    latent = estimate_latent(calibrated, counts)
    np.testing.assert_array_equal(latent.noise_matrix, nm)
    np.testing.assert_array_equal(latent.inverse_noise_matrix, inv)
    np.testing.assert_array_equal(latent.prior, py)


def test_class_stats_reports_every_row_problem():
    K = 2
    good = np.array([[0.9, 0.1], [0.2, 0.8]])
    probs = pa.array([[0.9, 0.1], None, [0.5, None], [0.5, 0.2, 0.3], [float("nan"), 0.5], [-0.5, 1.5], [0.6, 0.6]],
                     pa.list_(pa.float64()))
    labels = pa.array([0, 0, 0, 0, 0, 0, 0], pa.int32())
    merged = _merge(class_stats.class_stats_fn(K)(iter([pa.RecordBatch.from_arrays([labels, probs], ["y", "p"])])))
    problems = {a: v for (kind, a, _), v in merged.items() if kind == class_stats.PROBLEM}
    assert problems == {class_stats.NULL_PROBS: 1, class_stats.WRONG_LENGTH: 1}  # batch skipped after these
    merged = _merge(class_stats.class_stats_fn(K)(iter([_batch(np.array([0, 1]), good)])))
    assert {a for (kind, a, _), _v in merged.items() if kind == class_stats.PROBLEM} == set()


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin", "confidence_weighted_entropy"])
def test_quality_scores_are_bit_identical(method):
    import cleanlab.rank as cr

    d = dataset("k10")
    np.testing.assert_array_equal(
        kernels.quality_scores(d.pred_probs, d.labels, method),
        cr.get_label_quality_scores(d.labels, d.pred_probs, method=method),
    )


@pytest.mark.parametrize("options", [{}, {"min_examples_per_class": 10}, {"frac_noise": 0.5},
                                     {"num_to_remove_per_class": [3, 9, 1, 4, 7]}])
def test_prune_count_matrix_matches_cleanlab(options):
    import cleanlab.count as cc
    import cleanlab.filter as cf
    from cleanlab.internal.util import round_preserving_row_totals

    d = dataset("k5_imbalanced")
    y, P = d.labels, d.pred_probs
    cj = cc.compute_confident_joint(y, P)
    counts = np.bincount(y, minlength=5)
    expected = cf._keep_at_least_n_per_class(
        cj.T, options.get("min_examples_per_class", 1), frac_noise=options.get("frac_noise", 1.0)
    )
    if "num_to_remove_per_class" in options:
        r = options["num_to_remove_per_class"]
        psy = expected / np.sum(expected, axis=1)
        noise = psy.sum(axis=1) - psy.diagonal()
        tmp = (psy.T * r / noise).T
        np.fill_diagonal(tmp, counts - r)
        expected = round_preserving_row_totals(tmp)
    np.testing.assert_array_equal(prune_count_matrix(cj, counts, **options), expected)
