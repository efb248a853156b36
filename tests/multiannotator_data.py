"""Synthetic multi-annotator tables (long form) and cleanlab as the oracle on their wide form.

``make_annotations`` draws items with 1..max labels from annotators of varied skill, with the
shapes the parity tests need: items with one label, an annotator who only labels singly-labelled
items (the last one) and a class nobody uses (the last one). ``wide`` is cleanlab's
``convert_long_to_wide_dataset`` (items and annotators in ascending id order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_annotations(n: int = 240, M: int = 10, K: int = 4, max_labels: int = 4, seed: int = 0):
    """(long annotations: id, annotator, label; probabilities (n, K) rounded to 3 decimals)."""
    rng = np.random.default_rng(seed)
    used = K - 1  # class K-1 is in the probabilities but nobody labels it
    truth = rng.integers(0, used, n)
    skill = rng.uniform(0.35, 0.95, M)
    rows = []
    for i in range(n):
        for a in rng.choice(M - 1, size=rng.integers(1, max_labels + 1), replace=False):
            label = truth[i] if rng.random() < skill[a] else rng.integers(0, used)
            rows.append((i, int(a), int(label)))
    for t in range(3):  # annotator M-1 labels three items nobody else labels
        rows.append((n + t, M - 1, int(rng.integers(0, used))))
    truth = np.append(truth, [0, 1, 2][:3])
    logits = rng.normal(0, 1, (n + 3, K))
    logits[np.arange(n + 3), truth] += 1.5
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    p = np.round(p, 3)
    p[:, -1] = 1 - p[:, :-1].sum(1)
    return pd.DataFrame(rows, columns=["id", "annotator", "label"]), np.clip(p, 0, 1)


def wide(long: pd.DataFrame) -> pd.DataFrame:
    frame = long.pivot(index="id", columns="annotator", values="label")
    frame.index.name = None
    frame.columns.name = None
    return frame
