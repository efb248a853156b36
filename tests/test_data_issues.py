"""sn.find_data_issues against cleanlab 2.9.0's Datalab (the oracle): flags, scores, the summary,
duplicate sets, leakage pairs and bad input (issue 30 items 1 and 5)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from audit_data import make_audit_data
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

import sparknoise as sn
from sparknoise.errors import ConfigError, InputError

TYPES = ["label", "outlier", "near_duplicate", "class_imbalance", "null", "underperforming_group"]


def _datalab(data: dict, *, features=None, pred_probs=None, issue_types: dict):
    from cleanlab import Datalab

    lab = Datalab({"label": data["y"]}, label_name="label", verbosity=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab.find_issues(features=features, pred_probs=pred_probs, issue_types=issue_types)
    return lab


@pytest.fixture(scope="module")
def data():
    return make_audit_data()


@pytest.fixture(scope="module")
def lab(data):
    return _datalab(data, features=data["X"], pred_probs=data["P"], issue_types={
        "label": {}, "outlier": {}, "near_duplicate": {}, "class_imbalance": {}, "null": {},
        "underperforming_group": {"cluster_ids": data["cluster_ids"]}})


@pytest.fixture(scope="module")
def result(spark, data):
    frame = spark.createDataFrame(data["pdf"]).repartition(3)
    return sn.find_data_issues(frame, features=data["cols"], label_col="label", probs_col="pred_probs",
                               split_col="split", group_cols=["segment"])


@pytest.fixture(scope="module")
def rows(result, data):
    return result.rows.toPandas().set_index("id").loc[data["ids"]]


def test_one_partition_gives_the_same_answers_for_every_type(spark, data, result, rows):
    """Issue 30 item 1: the six types on 1 partition equal the 3-partition run the Datalab parity checks."""
    one = sn.find_data_issues(spark.createDataFrame(data["pdf"]).coalesce(1), features=data["cols"],
                              label_col="label", probs_col="pred_probs", split_col="split", group_cols=["segment"])
    pd.testing.assert_frame_equal(one.rows.toPandas().set_index("id").loc[data["ids"]], rows, check_exact=True)
    pd.testing.assert_frame_equal(one.summary(), result.summary(), check_exact=True)
    assert sorted(map(tuple, one.leakage().toPandas().to_numpy().tolist())) == sorted(
        map(tuple, result.leakage().toPandas().to_numpy().tolist()))


@pytest.mark.parametrize("issue_type", TYPES)
def test_flags_and_scores_match_datalab(rows, lab, issue_type):
    expected = lab.get_issues(issue_type)
    np.testing.assert_array_equal(rows[f"is_{issue_type}_issue"].to_numpy(),
                                  expected[f"is_{issue_type}_issue"].to_numpy())
    np.testing.assert_allclose(rows[f"{issue_type}_score"].to_numpy(), expected[f"{issue_type}_score"].to_numpy(),
                               rtol=0, atol=1e-9)
    assert rows[f"is_{issue_type}_issue"].any() or issue_type == "null"  # every planted issue is found


def test_summary_matches_datalab(result, lab):
    ours = result.summary().set_index("issue_type")
    theirs = lab.get_issue_summary().set_index("issue_type")
    assert set(ours.index) == set(TYPES) == set(theirs.index)
    for t in TYPES:
        assert ours.loc[t, "num_issues"] == theirs.loc[t, "num_issues"], t
        assert abs(ours.loc[t, "score"] - theirs.loc[t, "score"]) <= 1e-9, t
    assert result.search == {"kind": "exact", "metric": "cosine", "k": 10, "n_rows": 400, "dim": 6}


def test_nearest_distance_and_duplicate_sets(result, rows, lab, data):
    info = lab.get_info("near_duplicate")
    np.testing.assert_allclose(rows["distance_to_nearest_neighbor"].to_numpy(), info["distance_to_nearest_neighbor"],
                               rtol=0, atol=1e-9)
    # the sets are the connected components of Datalab's near_duplicate_sets, named by their smallest id
    sets = info["near_duplicate_sets"]
    src = [i for i, s in enumerate(sets) for _ in s]
    dst = [j for s in sets for j in s]
    n = len(sets)
    _, comp = connected_components(coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)), directed=False)
    ids = data["ids"]
    flagged = np.array([len(s) > 0 for s in sets])
    expected = {i: min(ids[comp == comp[i]]) for i in np.flatnonzero(flagged)}
    got = rows["near_duplicate_set_id"]
    assert got.notna().to_numpy().tolist() == flagged.tolist()
    assert {i: got.iloc[i] for i in np.flatnonzero(flagged)} == expected
    dup = {r["near_duplicate_set_id"]: r for r in result.duplicate_sets().collect()}
    assert dup["r0010"]["members"] == ["r0010", "r0011", "r0012"] and dup["r0010"]["exact"]
    assert dup["r0100"]["members"] == ["r0100", "r0101"] and dup["r0100"]["exact"]
    assert dup["r0020"]["members"] == ["r0020", "r0021"] and not dup["r0020"]["exact"]
    assert sum(r["num_members"] for r in dup.values()) == int(flagged.sum())


def test_leakage_pairs(result, rows):
    leak = result.leakage().toPandas()
    assert list(leak.columns) == ["id", "other_id", "split", "other_split", "distance"]
    pairs = {(r.id, r.other_id): (r.split, r.other_split, r.distance) for r in leak.itertuples()}
    # r0010 (train), r0011 (test), r0012 (train): two pairs straddle the split, r0010-r0012 does not
    assert pairs[("r0010", "r0011")] == ("train", "test", 0.0)
    assert pairs[("r0011", "r0012")] == ("test", "train", 0.0)
    assert ("r0010", "r0012") not in pairs
    assert pairs[("r0020", "r0021")][:2] == ("train", "test") and 0 < pairs[("r0020", "r0021")][2] < 1e-6
    assert ("r0100", "r0101") in pairs
    assert all(s != o for s, o, _ in pairs.values())
    members = set(rows.index[rows["is_near_duplicate_issue"]])
    assert {i for p in pairs for i in p} <= members


def test_outlier_from_probabilities_only(spark, data):
    """Datalab's OutOfDistribution score on pred_probs when there are no features."""
    lab = _datalab(data, pred_probs=data["P"], issue_types={"outlier": {}})
    res = sn.find_data_issues(spark.createDataFrame(data["pdf"]), label_col="label", probs_col="pred_probs",
                              issue_types=["outlier"])
    got = res.rows.toPandas().set_index("id").loc[data["ids"]]
    expected = lab.get_issues("outlier")
    np.testing.assert_array_equal(got["is_outlier_issue"].to_numpy(), expected["is_outlier_issue"].to_numpy())
    np.testing.assert_allclose(got["outlier_score"].to_numpy(), expected["outlier_score"].to_numpy(), rtol=0,
                               atol=1e-9)
    assert abs(res.summary()["score"][0] - lab.get_issue_summary()["score"][0]) <= 1e-9
    assert res.search == {"kind": "none"}


def test_euclidean_exact_duplicates_same_on_one_and_many_partitions(spark, caplog):
    """Three features -> euclidean; the answers do not depend on the partitioning."""
    from cleanlab import Datalab

    rng = np.random.default_rng(3)
    X = rng.normal(0, 1, (150, 3))
    X[5:17] = X[4]  # an exact-duplicate set larger than k + 1
    X[60] = X[61] + 1e-5
    pdf = pd.DataFrame(X, columns=["a", "b", "c"]).assign(id=np.arange(150) * 7)
    lab = Datalab({"y": np.zeros(150, dtype=int)}, label_name="y", verbosity=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab.find_issues(features=X, issue_types={"near_duplicate": {}, "outlier": {}})
    answers = []
    for parts, types in ((1, ["near_duplicate", "outlier"]), (5, ["near_duplicate"])):
        frame = spark.createDataFrame(pdf).repartition(parts)
        with caplog.at_level(logging.INFO, logger="sparknoise"):
            res = sn.find_data_issues(frame, features=["a", "b", "c"], issue_types=types)
        got = res.rows.toPandas().sort_values("id")
        answers.append((got[["id", "is_near_duplicate_issue", "near_duplicate_score", "near_duplicate_set_id"]]
                        .reset_index(drop=True),
                        res.duplicate_sets().toPandas().sort_values("near_duplicate_set_id").reset_index(drop=True)))
        for t in types:
            np.testing.assert_array_equal(got[f"is_{t}_issue"].to_numpy(), lab.get_issues(t)[f"is_{t}_issue"].to_numpy())
            np.testing.assert_allclose(got[f"{t}_score"].to_numpy(), lab.get_issues(t)[f"{t}_score"].to_numpy(),
                                       rtol=0, atol=1e-9)
    assert "exact 10-nearest-neighbour search, euclidean distance" in caplog.text
    pd.testing.assert_frame_equal(answers[0][0], answers[1][0])
    pd.testing.assert_frame_equal(answers[0][1], answers[1][1])
    big = answers[0][1].set_index("near_duplicate_set_id").loc[28]
    assert big["num_members"] == 13 and big["exact"] and list(big["members"]) == list(range(28, 17 * 7, 7))


def test_null_rows_match_datalab(spark):
    from cleanlab import Datalab

    X = np.arange(24, dtype=float).reshape(8, 3)
    X[1, 0] = np.nan
    X[2] = np.nan
    X[5, 1:] = np.nan
    pdf = pd.DataFrame(X, columns=["a", "b", "c"]).assign(id=np.arange(8))
    pdf.loc[3, "b"] = None
    frame = spark.createDataFrame(pdf)
    res = sn.find_data_issues(frame, features=["a", "b", "c"], issue_types=["null"])
    X[3, 1] = np.nan
    lab = Datalab({"y": np.zeros(8, dtype=int)}, label_name="y", verbosity=0)
    lab.find_issues(features=X, issue_types={"null": {}})
    got = res.rows.toPandas().sort_values("id")
    assert got["is_null_issue"].tolist() == lab.get_issues("null")["is_null_issue"].tolist()
    np.testing.assert_allclose(got["null_score"], lab.get_issues("null")["null_score"], rtol=0, atol=1e-12)
    assert res.summary()["score"][0] == pytest.approx(lab.get_issue_summary()["score"][0], abs=1e-12)
    with pytest.raises(InputError, match="feature column 'a' has 2 row.*'null' issue type") as err:
        sn.find_data_issues(frame, features=["a", "b", "c"], issue_types=["outlier"], k=3)
    assert err.value.column == "a"
    # a Spark ML vector column with a null vector: the null type scores it 0, a kNN type names the column
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("id", T.LongType()), T.StructField("v", VectorUDT())])
    vectors = spark.createDataFrame([(0, None), (1, Vectors.dense([1.0, 2.0])), (2, Vectors.dense([3.0, 4.0]))], schema)
    with pytest.raises(InputError, match="feature column 'v' has 1 row"):
        sn.find_data_issues(vectors, features_col="v", issue_types=["near_duplicate"], k=1)


@pytest.fixture(scope="module")
def small(spark):
    pdf = pd.DataFrame({"id": range(6), "x": [0.0, 1, 2, 3, 4, 5], "y": [0.5, 1, 2, 3, 4, 6], "s": list("abcdef"),
                        "label": [0, 1, 0, 1, 0, 1]})
    return spark.createDataFrame(pdf)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"issue_types": ["outlier"]}, ConfigError, "'outlier' needs features="),
    ({"issue_types": ["near_duplicate"], "label_col": "label"}, ConfigError, "'near_duplicate' needs features="),
    ({"features": ["x", "s"]}, InputError, "feature column 's' has type string"),
    ({"features": ["x", "nope"]}, InputError, "feature column 'nope' is not in the input"),
    ({"features": ["x"], "issue_types": ["duplicates"]}, ConfigError, r"unknown issue type\(s\) \['duplicates'\]"),
    ({"issue_types": ["underperforming_group"], "label_col": "label", "probs_col": "p"},
     ConfigError, "needs label_col=, probs_col= and group_cols=.*or features="),
    ({"features": ["x", "y"], "k": 6}, ConfigError, r"k=6 must be below the number of rows \(6\)"),
    ({"features": ["x", "y"], "k": 2, "max_exact_rows": 5, "neighbors": "exact"}, ConfigError,
     "above max_exact_rows=5.*raise max_exact_rows.*neighbors='approximate'"),
    ({"features": ["x", "y"], "k": 2, "neighbors": "fast"}, ConfigError, "neighbors='fast' is not a nearest-neighbour"),
    ({"features": ["x", "y"], "k": 2, "neighbors": "approximate", "n_cells": 0}, ConfigError,
     "n_cells=0 must be a positive integer"),
])
def test_bad_input_is_refused_with_a_message(small, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        sn.find_data_issues(small, **kwargs)


def _train_side(leak: pd.DataFrame) -> set:
    return {r.id if r.split == "train" else r.other_id for r in leak.itertuples() if "train" in (r.split, r.other_split)}


def test_apply_drops_duplicates_within_a_split_and_train_side_leakage(spark, result, data):
    """Issue 30 item 4: keep the first member of each duplicate set per split, drop the train copy of each
    leakage pair; one audit row per removed row with every reason."""
    frame = spark.createDataFrame(data["pdf"].drop(columns=["pred_probs"]))
    sets = result.duplicate_sets()
    leak = result.leakage().toPandas()
    applied = sn.apply_data_issues(frame, duplicate_sets=sets, leakage=result.leakage(), split_col="split")
    audit = applied.audit.toPandas().set_index("id")
    split = dict(zip(data["pdf"]["id"], data["pdf"]["split"]))
    dup = {m for r in sets.collect() for m in r["members"]
           if m != min(x for x in r["members"] if split[x] == split[m])}
    assert set(audit.index) == _train_side(leak) | dup
    # r0010 (train), r0011 (test), r0012 (train): both train copies of the test row go, the test row stays
    assert audit.loc["r0012", "issue_type"] == "duplicate,leakage"
    assert audit.loc["r0010", "issue_type"] == "leakage" and "r0011" not in audit.index
    assert "exact duplicate of id r0010 (set r0010, split train)" in audit.loc["r0012", "reason"]
    assert "train-side copy of id r0011 in split test" in audit.loc["r0010", "reason"]
    assert (audit["action"] == "removed").all() and (audit["source"] == "policy").all()
    assert applied.cleaned.count() == len(data["pdf"]) - len(audit)
    assert applied.summary()["removed"] == len(audit)
    # the same through apply_cleaning given the audit result (split column and sets taken from it)
    via = sn.apply_cleaning(frame, data_issues=result).audit.toPandas()
    assert set(via["id"]) == set(audit.index) and set(via["issue_type"]) == set(audit["issue_type"])
    with pytest.raises(ConfigError, match="two calls"):
        sn.apply_cleaning(frame, frame, data_issues=result)
    # duplicates left alone: only the train-side leakage copies go
    only_leak = sn.apply_data_issues(frame, duplicate_sets=sets, leakage=result.leakage(), split_col="split",
                                     drop_duplicates="none").audit.toPandas()
    assert set(only_leak["id"]) == _train_side(leak) and set(only_leak["issue_type"]) == {"leakage"}
    # without a split: the first member of each set is kept, leakage left alone
    plain = sn.apply_data_issues(frame, duplicate_sets=sets, drop_leakage="none").audit.toPandas()
    assert set(plain["id"]) == {m for r in sets.collect() for m in r["members"][1:]}
    with pytest.raises(ConfigError, match="drop_leakage 'test' is unknown"):
        sn.apply_data_issues(frame, leakage=result.leakage(), drop_leakage="test")


def test_exact_quantiles_equal_numpy_with_ties_and_a_missed_bracket(spark, monkeypatch):
    """The bounded-memory quantiles give numpy's bits: ties (many zeros, as exact duplicates' distances),
    odd and even counts, and a first bracket that misses its rank (widened and retried)."""
    from pyspark.sql import functions as F

    from sparknoise.audit import quantiles

    rng = np.random.default_rng(3)
    values = np.concatenate([np.zeros(400), rng.gamma(2.0, 0.3, 1601), np.full(50, 0.25)])
    values = rng.permutation(values)
    qs = [0.25, 0.75, "median", 0.0, 1.0, 0.1]
    for v in (values, values[1:]):  # odd, then even count
        frame = spark.createDataFrame(pd.DataFrame({"v": v})).repartition(3)
        got = quantiles.numpy_quantiles(frame, F.col("v"), qs, len(v))
        expected = [float(np.median(v)) if q == "median" else float(np.percentile(v, 100 * q)) for q in qs]
        assert got == expected
    real = quantiles._brackets
    calls = []

    def narrow_first(df, ranks, n, eps):  # a bracket that cannot hold the rank, the first time only
        calls.append(eps)
        return [(5.0, 6.0)] * len(ranks) if len(calls) == 1 else real(df, ranks, n, eps)

    monkeypatch.setattr(quantiles, "_brackets", narrow_first)
    assert quantiles.numpy_quantiles(frame, F.col("v"), [0.75], len(v)) == [float(np.percentile(v, 75))]
    assert calls == [1 / quantiles.ACCURACY, quantiles.WIDEN / quantiles.ACCURACY]
