"""A tiny multi-label generator for the parity tests: true tag sets, flipped tags, per-class probabilities."""

from __future__ import annotations

import numpy as np


def make_multilabel(n: int = 300, k: int = 4, *, flip: float = 0.1, seed: int = 0):
    """(labels: list of sorted tag lists, pred_probs (n, k) float64, true (n, k) 0/1).

    Each class is truly present with probability 0.15-0.45; each tag is flipped (added or forgotten)
    with probability ``flip``; probabilities lean towards the true tags with noise, so some given tags
    are confidently wrong. No class is in every row, and some rows carry no tag.
    """
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.15, 0.45, size=k)
    true = (rng.random((n, k)) < rates).astype(int)
    flipped = rng.random((n, k)) < flip
    given = np.where(flipped, 1 - true, true)
    centre = np.where(true == 1, 0.72, 0.25)
    probs = np.clip(centre + rng.normal(0, 0.18, size=(n, k)), 0.0, 1.0)
    labels = [sorted(int(c) for c in np.flatnonzero(row)) for row in given]
    return labels, probs, true


def to_frame(spark, labels, probs, *, classes=None, ids=None, partitions=None):
    """A Spark frame (id long, labels array<int|string>, pred_probs array<double>)."""
    ids = list(range(len(labels))) if ids is None else ids
    if classes is not None:
        labels = [[classes[c] for c in row] for row in labels]
        schema = "id long, labels array<string>, pred_probs array<double>"
    else:
        schema = "id long, labels array<int>, pred_probs array<double>"
    rows = [(int(i), list(lab), [float(x) for x in p]) for i, lab, p in zip(ids, labels, probs)]
    df = spark.createDataFrame(rows, schema)
    return df.repartition(partitions) if partitions else df
