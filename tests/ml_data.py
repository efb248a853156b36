"""Small labelled feature tables for the cross-validation and CleanLearning tests."""

from __future__ import annotations

import numpy as np


def classification(n: int = 1500, num_classes: int = 3, n_features: int = 8, seed: int = 0, noise_rate: float = 0.0,
                   test: int = 0):
    """(train, test) pandas frames: id, label, true_label, f0..f{d-1}; labels flipped in train only."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n + test, n_features=n_features, n_informative=min(n_features, 6),
                               n_redundant=0, n_classes=num_classes, n_clusters_per_class=1, class_sep=1.2,
                               random_state=seed)
    rng = np.random.default_rng(seed)
    given = y.copy()
    flip = rng.random(len(y)) < noise_rate
    flip[n:] = False
    given[flip] = (y[flip] + rng.integers(1, num_classes, flip.sum())) % num_classes
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(n_features)])
    frame.insert(0, "true_label", y.astype(np.int64))
    frame.insert(0, "label", given.astype(np.int64))
    frame.insert(0, "id", np.arange(len(y), dtype=np.int64))
    return frame.iloc[:n].reset_index(drop=True), frame.iloc[n:].reset_index(drop=True)


def to_spark(spark, frame, partitions: int = 3):
    from pyspark.ml.feature import VectorAssembler

    feats = [c for c in frame.columns if c.startswith("f")]
    df = spark.createDataFrame(frame).repartition(partitions)
    return VectorAssembler(inputCols=feats, outputCol="features").transform(df)
