"""find_data_issues beyond exact neighbours (issue 30 item 2, and underperforming_group without
group_cols): the approximate (IVF) search's recall@10 against exact kNN on a small forced case, the
planted near duplicates it finds, and KMeans feature clusters flagging a planted weak cluster."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import sparknoise as sn
from sparknoise.audit.inputs import ID


def _clustered(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    C = rng.normal(0, 1, (12, d))
    feats = C[rng.integers(0, 12, n)] + rng.normal(0, 0.5, (n, d))
    planted = rng.choice(n, 20, replace=False)
    sources = rng.choice(np.setdiff1d(np.arange(n), planted), 20, replace=False)
    feats[planted] = feats[sources] + rng.normal(0, 1e-4, (20, d))
    return feats, planted, sources


def _exact_cosine(feats: np.ndarray, k: int) -> np.ndarray:
    xn = feats / np.linalg.norm(feats, axis=1)[:, None]
    D = np.clip(1 - xn @ xn.T, 0, 2)
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def planted():
    return _clustered(2000, 8)


def test_approximate_search_recall_and_planted_duplicates(spark, planted, caplog):
    feats, copies, sources = planted
    n, k = len(feats), 10
    cols = [f"f{j}" for j in range(feats.shape[1])]
    pdf = pd.DataFrame(feats, columns=cols).assign(id=np.arange(n))
    frame = spark.createDataFrame(pdf).repartition(3)
    with caplog.at_level(logging.INFO, logger="sparknoise"):
        res = sn.find_data_issues(frame, features=cols, issue_types=["near_duplicate"], neighbors="approximate",
                                  n_cells=16, n_probe=3)
    assert "approximate 10-nearest-neighbour search (IVF: 16 KMeans cells, 3 probed per row)" in caplog.text
    assert res.search["kind"] == "approximate" and res.search["n_cells"] == 16 and res.search["n_probe"] == 3
    assert res.summary().attrs["search"] == res.search
    got = res.rows.toPandas().set_index("id").sort_index()
    assert got.loc[copies, "is_near_duplicate_issue"].all() and got.loc[sources, "is_near_duplicate_issue"].all()
    assert (got.loc[copies, "near_duplicate_set_id"].to_numpy()
            == np.minimum(copies, sources)).all()

    # recall@10 of the search's lists against exact cosine kNN (numpy brute force)
    approx = res._knn.toPandas().set_index(ID).sort_index()
    exact = _exact_cosine(feats, k)
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(approx["nn_ids"], exact)])
    assert recall >= 0.9, recall
    assert all(len(v) == k for v in approx["nn_ids"])
    assert all(np.all(np.diff(v) >= 0) for v in approx["nn_dists"])


def test_underperforming_group_from_feature_clusters(spark):
    rng = np.random.default_rng(4)
    blobs = np.array([[0, 0], [20, 0], [0, 20], [20, 20], [40, 40]], dtype=float)
    which = np.repeat(np.arange(5), 60)
    feats = blobs[which] + rng.normal(0, 1, (300, 2))
    y = rng.integers(0, 3, 300)
    logits = 4 * np.eye(3)[y] + rng.normal(0, 0.3, (300, 3))
    weak = which == 4
    logits[weak] = -6 * np.eye(3)[y[weak]] + rng.normal(0, 0.3, (weak.sum(), 3))
    P = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pdf = pd.DataFrame({"id": np.arange(300), "a": feats[:, 0], "b": feats[:, 1], "label": y, "p": list(P)})
    res = sn.find_data_issues(spark.createDataFrame(pdf), features=["a", "b"], label_col="label", probs_col="p",
                              issue_types=["underperforming_group"], n_clusters=5)
    got = res.rows.toPandas().set_index("id").sort_index()
    np.testing.assert_array_equal(got["is_underperforming_group_issue"].to_numpy(), weak)
    assert got.loc[weak, "group_id"].nunique() == 1 and got.loc[~weak, "group_id"].nunique() == 4
    assert res.summary()["score"][0] < 0.1
    assert res.info["underperforming_group"]["groups_from"].startswith("Spark ML KMeans, 5 clusters")
