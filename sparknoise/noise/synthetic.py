"""Synthetic noisy-label datasets with out-of-fold-like probabilities (for the demo, tests, benchmarks).

``noisy_probabilities`` draws true labels from a prior, probabilities that favour the true class,
and given labels flipped by a noise matrix P(given | true), all from one seeded numpy generator.
Large tables are produced partition by partition on the executors by ``probabilities_table``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NoisyProbabilities:
    """Given labels, true labels and (N, K) float64 probabilities, rows in id order 0..N-1."""

    labels: np.ndarray
    true_labels: np.ndarray
    pred_probs: np.ndarray

    def to_pandas(self, probs_dtype: str = "float64"):
        """A pandas frame with columns id, label, true_label, pred_probs (one array per row)."""
        import pandas as pd

        probs = self.pred_probs.astype(probs_dtype)
        return pd.DataFrame(
            {
                "id": np.arange(len(self.labels), dtype=np.int64),
                "label": self.labels.astype(np.int64),
                "true_label": self.true_labels.astype(np.int64),
                "pred_probs": list(probs),
            }
        )


def uniform_noise_matrix(num_classes: int, noise_rate: float) -> np.ndarray:
    """P(given | true) with 1 - noise_rate on the diagonal and the rest spread evenly."""
    off = noise_rate / (num_classes - 1)
    m = np.full((num_classes, num_classes), off)
    np.fill_diagonal(m, 1.0 - noise_rate)
    return m


def noisy_probabilities(
    n: int,
    num_classes: int,
    *,
    noise_rate: float = 0.2,
    prior: np.ndarray | None = None,
    noise_matrix: np.ndarray | None = None,
    separation: float = 2.0,
    seed: int = 0,
) -> NoisyProbabilities:
    """Draw a dataset: true labels ~ prior, softmax(logits + separation on the true class), noise."""
    rng = np.random.default_rng(seed)
    K = num_classes
    py = np.full(K, 1.0 / K) if prior is None else np.asarray(prior, dtype=float) / np.sum(prior)
    true = rng.choice(K, size=n, p=py)
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), true] += separation
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    nm = uniform_noise_matrix(K, noise_rate) if noise_matrix is None else np.asarray(noise_matrix, dtype=float)
    u = rng.random(n)
    cdf = np.cumsum(nm[:, true].T, axis=1)  # row i: cumulative P(given | true_i)
    given = np.minimum((u[:, None] > cdf).sum(axis=1), K - 1)
    return NoisyProbabilities(labels=given, true_labels=true, pred_probs=probs)


def probabilities_table(spark, n: int, num_classes: int, *, noise_rate: float = 0.2, seed: int = 0,
                        rows_per_partition: int = 1_000_000, probs_type: str = "double", separation: float = 2.0):
    """A Spark DataFrame (id, label, true_label, pred_probs) generated on the executors.

    Each partition draws its rows from a generator seeded by (seed, partition), so the table is
    the same on every run; nothing row-level is built on the driver.
    """
    import pyarrow as pa

    parts = max(1, -(-n // rows_per_partition))
    K = num_classes
    value_type = pa.float32() if probs_type == "float" else pa.float64()

    def gen(batches):
        for batch in batches:
            for start in batch.column(0).to_numpy():
                start = int(start)
                count = min(rows_per_partition, n - start)
                part = start // rows_per_partition
                for off in range(0, count, 100_000):
                    m = min(100_000, count - off)
                    d = noisy_probabilities(m, K, noise_rate=noise_rate, separation=separation,
                                            seed=seed * 1_000_003 + part * 1009 + off)
                    flat = pa.array(d.pred_probs.astype(value_type.to_pandas_dtype()).ravel(), value_type)
                    offsets = pa.array(np.arange(0, (m + 1) * K, K, dtype=np.int32))
                    yield pa.RecordBatch.from_arrays(
                        [
                            pa.array(np.arange(start + off, start + off + m, dtype=np.int64)),
                            pa.array(d.labels.astype(np.int64)),
                            pa.array(d.true_labels.astype(np.int64)),
                            pa.ListArray.from_arrays(offsets, flat),
                        ],
                        names=["id", "label", "true_label", "pred_probs"],
                    )

    starts = spark.range(0, n, rows_per_partition, numPartitions=parts).toDF("start")
    return starts.mapInArrow(gen, f"id long, label long, true_label long, pred_probs array<{probs_type}>")


def features_table(spark, n: int, num_classes: int, *, n_features: int = 10, noise_rate: float = 0.15,
                   seed: int = 0, rows_per_partition: int = 50_000, separation: float = 1.5):
    """A Spark DataFrame (id, label, true_label, x0..x{d-1}) of Gaussian classes with flipped labels.

    Class means come from a generator seeded by ``seed`` (the same on every executor); each
    partition draws its rows from a generator seeded by (seed, partition). ``label`` is
    ``true_label`` flipped to another class, uniformly, with probability ``noise_rate``.
    """
    import pyarrow as pa

    parts = max(1, -(-n // rows_per_partition))
    K, D = num_classes, n_features
    means = np.random.default_rng(seed).normal(scale=separation, size=(K, D))

    def gen(batches):
        for batch in batches:
            for start in batch.column(0).to_numpy():
                start = int(start)
                m = min(rows_per_partition, n - start)
                rng = np.random.default_rng([seed, start // rows_per_partition])
                true = rng.integers(0, K, m)
                X = means[true] + rng.normal(size=(m, D))
                flip = rng.random(m) < noise_rate
                given = np.where(flip, (true + rng.integers(1, K, m)) % K, true)
                cols = [pa.array(np.arange(start, start + m, dtype=np.int64)), pa.array(given.astype(np.int64)),
                        pa.array(true.astype(np.int64))] + [pa.array(X[:, j]) for j in range(D)]
                yield pa.RecordBatch.from_arrays(cols, names=["id", "label", "true_label"] + [f"x{j}" for j in range(D)])

    schema = "id long, label long, true_label long, " + ", ".join(f"x{j} double" for j in range(D))
    return spark.range(0, n, rows_per_partition, numPartitions=parts).toDF("start").mapInArrow(gen, schema)
