"""Regression flag rule and RegressionCleanLearning (issue 29 items 2-3): cleanlab 2.9.0 as the oracle.

cleanlab's ``regression.learn.CleanLearning`` is called with its cross-validation replaced by given
arrays (``_get_cv_predictions`` / ``_find_best_k`` patched on the instance), so its own code computes
the scores, flags, k choice and uncertainty combination that sparknoise is compared with.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from cleanlab.regression import learn as cl_learn

import sparknoise as sn
from sparknoise.errors import InputError
from sparknoise.regression.selection import nth_smallest

N = 400


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    y = rng.normal(size=N) * 3
    p = y + rng.normal(size=N) * 0.5
    bad = rng.choice(N, 30, replace=False)
    y[bad] += rng.choice([-1, 1], 30) * rng.uniform(3, 8, 30)
    u = rng.uniform(0.2, 2.0, size=N)
    return y, p, u, bad


def _cleanlab_rule(y, p, uncertainty, k):
    """cleanlab's find_label_issues with its cross-validation replaced by the given predictions."""
    cl = cl_learn.CleanLearning()
    cl._get_cv_predictions = lambda *a, **kw: p
    cl._find_best_k = lambda *a, **kw: (k, np.inf)  # initial r2 < inf: k is kept
    return cl.find_label_issues(np.zeros((len(y), 1)), y, uncertainty=uncertainty)


def _frame(spark, y, p, u, ids, partitions):
    pdf = pd.DataFrame({"id": ids, "label": y, "prediction": p, "u": u})
    return spark.createDataFrame(pdf).repartition(partitions)


@pytest.mark.parametrize("uncertainty,k,string_ids,partitions", [
    (None, 0.05, False, 1),
    ("float", 0.1, True, 3),
    ("column", 0.075, False, 4),
    ("float", 1.0, False, 2),
])
def test_rule_matches_cleanlab(spark, arrays, uncertainty, k, string_ids, partitions):
    y, p, u, _ = arrays
    ids = [f"r{i:04d}" for i in range(N)] if string_ids else list(range(N))
    df = _frame(spark, y, p, u, ids, partitions)
    arg = {None: None, "float": 0.7, "column": "u"}[uncertainty]
    oracle_u = {None: 1.0, "float": 0.7, "column": u}[uncertainty]
    expected = _cleanlab_rule(y, p, oracle_u, k)
    res = sn.find_regression_issues(df, uncertainty=arg, frac_issues=k)
    got = res.rows.toPandas()
    got["pos"] = [ids.index(i) for i in got["id"]] if string_ids else got["id"]
    got = got.sort_values("pos").reset_index(drop=True)
    np.testing.assert_allclose(got["label_quality"], expected["label_quality"], rtol=1e-13, atol=1e-300)
    np.testing.assert_array_equal(got["is_label_issue"], expected["is_label_issue"])
    np.testing.assert_array_equal(got["given_label"], expected["given_label"])
    np.testing.assert_array_equal(got["predicted_label"], expected["predicted_label"])
    np.testing.assert_allclose(got["residual"], p - y, rtol=0, atol=0)
    assert res.num_flagged == math.ceil(N * k) == int(got["is_label_issue"].sum())
    assert ("uncertainty" in got.columns) == (uncertainty is not None)
    flagged = got[got["is_label_issue"]].sort_values(["label_quality", "id"])
    assert list(flagged["issue_rank"]) == list(range(1, len(flagged) + 1))
    assert got.loc[~got["is_label_issue"], "issue_rank"].isna().all()
    assert (got["sample_weight"] == np.where(got["is_label_issue"], 0.0, 1.0)).all()
    assert res.issues().count() == res.num_flagged and res.summary()["num_flagged"] == res.num_flagged


def test_ties_broken_by_id_and_exact_selection_passes(spark):
    # many equal residuals: the flags take the lowest ids among the tied; the selection's counting
    # passes (forced with final_rows=8, 4 buckets) find the same order statistics as numpy
    y = np.zeros(60)
    p = np.repeat([0.0, 1.0, 2.0, 5.0], 15)
    ids = list(range(100, 160))
    df = _frame(spark, y, p, np.ones(60), ids, 3)
    res = sn.find_regression_issues(df, frac_issues=0.2)  # 12 of the 15 rows with residual 5
    got = res.rows.filter("is_label_issue").select("id").toPandas()["id"]
    assert sorted(got) == list(range(145, 157))
    vals = np.random.default_rng(1).standard_normal(500) ** 3
    vdf = spark.createDataFrame(pd.DataFrame({"v": vals, "id": np.arange(500)[::-1]}))
    order = np.sort(vals)
    got = nth_smallest(vdf, "v", "id", (1, 250, 500), n_buckets=16, final_rows=8)
    assert [v for v, _ in got] == [order[0], order[249], order[499]]


def test_bad_inputs(spark, arrays):
    y, p, u, _ = arrays
    df = _frame(spark, y[:20], p[:20], u[:20], list(range(20)), 1)
    with pytest.raises(InputError, match="frac_issues"):
        sn.find_regression_issues(df, frac_issues=1.5)
    with pytest.raises(InputError, match="frac_issues"):
        sn.find_regression_issues(df, frac_issues=-0.1)
    with pytest.raises(InputError, match="uncertainty=-1"):
        sn.find_regression_issues(df, uncertainty=-1.0, frac_issues=0.1)
    with pytest.raises(InputError, match="uncertainty=nan"):
        sn.find_regression_issues(df, uncertainty=float("nan"), frac_issues=0.1)
    for value, word in ((-0.5, "negative"), (None, "null"), (float("nan"), "NAN")):
        bad = df.withColumn("u", __import__("pyspark.sql.functions", fromlist=["when"]).when(
            df.id == 3, value).otherwise(df.u).cast("double"))
        with pytest.raises(InputError, match=f"uncertainty column 'u' has 1 {word}"):
            sn.find_regression_issues(bad, uncertainty="u", frac_issues=0.1)
    with pytest.raises(InputError, match="'nope'"):
        sn.find_regression_issues(df, uncertainty="nope", frac_issues=0.1)
