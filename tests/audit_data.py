"""Planted data for the data-issue tests (shared by the classic and the Spark Connect suites)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_audit_data(n: int = 400, d: int = 6, k_classes: int = 4, seed: int = 0) -> dict:
    """Features with planted exact duplicates, near duplicates and outliers; labels with a rare class
    (5 rows); probabilities; six segments, one of which the model gets badly wrong; a train/test split."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k_classes - 1, n)
    y[np.linspace(50, n - 1, 5).astype(int)] = k_classes - 1  # the rare class
    centers = rng.normal(0, 3, (k_classes, d))
    X = centers[y] + rng.normal(0, 1, (n, d))
    X[11] = X[10]
    X[12] = X[10]  # an exact-duplicate set of three
    X[101] = X[100]  # an exact pair
    X[21] = X[20] + 1e-4  # near duplicates
    X[31] = X[30] * 1.0001
    X[40:43] = rng.normal(0, 30, (3, d))  # outliers
    groups = rng.integers(0, 6, n)
    logits = rng.normal(0, 1, (n, k_classes)) + 2.5 * np.eye(k_classes)[y]
    bad = groups == 5
    logits[bad] = rng.normal(0, 1, (bad.sum(), k_classes)) - 8 * np.eye(k_classes)[y[bad]]
    P = np.exp(logits)
    P /= P.sum(1, keepdims=True)
    ids = np.array([f"r{i:04d}" for i in range(n)])
    split = np.where(np.arange(n) % 2 == 0, "train", "test")
    cols = [f"f{j}" for j in range(d)]
    pdf = pd.DataFrame(X, columns=cols)
    pdf.insert(0, "id", ids)
    pdf["label"] = y
    pdf["segment"] = np.array(["north", "south", "east", "west", "mid", "far"])[groups]
    pdf["split"] = split
    pdf["pred_probs"] = list(P)
    # the segments in Datalab's cluster_ids form: dense ids of the sorted segment names
    names = sorted(set(pdf["segment"]))
    cluster_ids = np.array([names.index(s) for s in pdf["segment"]])
    return {"pdf": pdf, "X": X, "y": y, "P": P, "ids": ids, "cols": cols, "cluster_ids": cluster_ids}
