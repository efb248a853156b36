"""find_data_issues beyond exact neighbours (issue 30 item 2, and underperforming_group without
group_cols): the approximate (IVF) search's self-tuned probes reaching recall@10 >= 0.95 against exact
kNN on a small weakly clustered case, the planted near duplicates it finds, the probe choice from a
rank histogram (cap included), and KMeans feature clusters flagging a planted weak cluster."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import sparknoise as sn
from sparknoise.audit import approximate
from sparknoise.audit.inputs import ID
from sparknoise.errors import ConfigError


def _clustered(n: int, d: int, seed: int = 0, centres: int = 12, spread: float = 0.5):
    rng = np.random.default_rng(seed)
    C = rng.normal(0, 1, (centres, d))
    feats = C[rng.integers(0, centres, n)] + rng.normal(0, spread, (n, d))
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
    # weakly clustered: 200 overlapping clusters (spread 1.0) in 8 dimensions, where a fixed small probe
    # count misses (measured while building: 4 probes of these 64 cells gave recall@10 0.83)
    return _clustered(2000, 8, centres=200, spread=1.0)


def test_choose_probes_lower_bound_and_cap():
    # 100 queries, k = 2: 180 neighbours in the nearest cell, 10 in the 2nd, 10 in the 5th (one per query,
    # each the query's 2nd neighbour: weight 2j - 1 = 3)
    hist = {0: (180, 80 * 4 + 20 * 1), 1: (10, 30), 4: (10, 30)}
    got = approximate.choose_probes(hist, 8, 2, 0.9, 8)
    assert got == {"n_probe": 2, "needed": 2, "estimated_recall": 0.95, "recall_sample": 100}
    got = approximate.choose_probes(hist, 8, 2, 0.99, 3)  # 1.0 needs 5 probes: the cap binds
    assert got == {"n_probe": 3, "needed": 5, "estimated_recall": 0.95, "recall_sample": 100}
    with pytest.raises(ConfigError, match="recall_target=1.5 must be a number in"):
        approximate.knn(None, k=2, metric="cosine", n_rows=10, recall_target=1.5)


def test_approximate_search_recall_and_planted_duplicates(spark, planted, caplog):
    feats, copies, sources = planted
    n, k = len(feats), 10
    cols = [f"f{j}" for j in range(feats.shape[1])]
    pdf = pd.DataFrame(feats, columns=cols).assign(id=np.arange(n))
    frame = spark.createDataFrame(pdf).repartition(3)
    with caplog.at_level(logging.INFO, logger="sparknoise"):
        res = sn.find_data_issues(frame, features=cols, issue_types=["near_duplicate"], neighbors="approximate",
                                  n_cells=64)
    search = res.search
    assert search["kind"] == "approximate" and search["n_cells"] == 64 and search["recall_target"] == 0.95
    assert search["n_probe_from"] == "tuned to recall@10 >= 0.95 on a sample"
    assert 0.95 <= search["estimated_recall"] and 900 <= search["recall_sample"] <= 1100, search
    assert 4 < search["n_probe"] < search["probe_cap"] == 16, search
    assert (f"approximate 10-nearest-neighbour search (IVF: 64 KMeans cells, {search['n_probe']} probed per row)"
            in caplog.text)
    assert f"{search['n_probe']} of 64 cells probed per row, estimated recall@10 " in caplog.text
    assert res.summary().attrs["search"] == res.search
    got = res.rows.toPandas().set_index("id").sort_index()
    assert got.loc[copies, "is_near_duplicate_issue"].all() and got.loc[sources, "is_near_duplicate_issue"].all()
    assert (got.loc[copies, "near_duplicate_set_id"].to_numpy()
            == np.minimum(copies, sources)).all()

    # recall@10 of the search's lists against exact cosine kNN (numpy brute force)
    approx = res._knn.toPandas().set_index(ID).sort_index()
    exact = _exact_cosine(feats, k)
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(approx["nn_ids"], exact)])
    assert recall >= 0.95 and abs(recall - search["estimated_recall"]) < 0.02, (recall, search)
    assert all(len(v) == k for v in approx["nn_ids"])
    assert all(np.all(np.diff(v) >= 0) for v in approx["nn_dists"])


def test_exact_duplicates_on_the_approximate_path(spark):
    """Identical rows under neighbors="approximate": a group of 13 (more than k + 1: beyond any one kNN list)
    is one exact set, every member flagged at distance 0; its cross-split pairs are all in leakage()."""
    feats, _, _ = _clustered(600, 6, seed=3)
    group = np.arange(100, 113)
    feats[group] = feats[99]
    cols = [f"f{j}" for j in range(feats.shape[1])]
    split = np.where(np.arange(600) % 3 == 0, "test", "train")
    pdf = pd.DataFrame(feats, columns=cols).assign(id=np.arange(600), split=split)
    res = sn.find_data_issues(spark.createDataFrame(pdf).repartition(2), features=cols, split_col="split",
                              issue_types=["near_duplicate"], neighbors="approximate", n_cells=16, n_probe=2)
    assert res.search["kind"] == "approximate" and res.search["n_probe"] == 2
    members = [99, *group]
    sets = {r["near_duplicate_set_id"]: r for r in res.duplicate_sets().collect()}
    assert sets[99]["members"] == members and sets[99]["exact"] and sets[99]["num_members"] == 14
    got = res.rows.toPandas().set_index("id").loc[members]
    assert got["is_near_duplicate_issue"].all() and (got["distance_to_nearest_neighbor"] == 0).all()
    assert (got["near_duplicate_set_id"] == 99).all()
    leak = {(r["id"], r["other_id"]) for r in res.leakage().filter("distance = 0").collect()}
    assert leak == {(a, b) for a in members for b in members if a < b and split[a] != split[b]}


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
