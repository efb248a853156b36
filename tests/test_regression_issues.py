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
from sparknoise.regression import learn as rl
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
    got = nth_smallest(vdf, "v", "id", (250, 500), n_buckets=32, final_rows=8)
    assert [v for v, _ in got] == [order[249], order[499]]


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


# --- RegressionCleanLearning: the driver-side decisions against cleanlab's own code -------------------


def _table(seed, ties):
    def r2(k):
        v = np.random.default_rng([seed, int(round(float(k) * 1e9))]).uniform(-1, 1)
        return round(v, 1) if ties else v
    return r2


@pytest.mark.parametrize("coarse,fine,n_rows,seed,ties", [
    ([0.01, 0.05, 0.1, 0.15, 0.2], 3, 1000, 0, False),
    ([0.2, 0.01, 0.1], 2, 1000, 1, True),  # unsorted grid, tied R² values
    ([0.05, 0.1, 0.9, 0.95], 3, 40, 2, False),  # the large k leave < n_folds rows: -1e30
    ([0.01, 0.05, 0.1, 0.15, 0.2], 0, 1000, 3, True),
    ([0.1], 3, 1000, 4, False),
    ([0.0, 0.5, 1.0], 1, 30, 5, True),
])
def test_k_search_is_cleanlabs(monkeypatch, coarse, fine, n_rows, seed, ties):
    table = _table(seed, ties)
    cl = cl_learn.CleanLearning(cv_n_folds=5)
    cl._get_cv_predictions = lambda X, y, sorted_index=None, k=0, **kw: np.array([k])
    monkeypatch.setattr(cl_learn, "r2_score", lambda y, p: table(p[0]))
    expected = cl._find_best_k(None, np.zeros(n_rows), None, coarse_search_range=coarse, fine_search_size=fine)
    got = rl.find_best_k(coarse, fine, n_rows, 5, table)
    assert got == expected
    # the Gram route scores a round at once: the same decision, every scored k prepared first
    prepared, scored = [], []

    def r2_of(k):
        assert k in prepared
        scored.append(k)
        return table(k)

    assert rl.find_best_k(coarse, fine, n_rows, 5, r2_of, prepared.extend) == expected
    assert set(scored) <= set(prepared) and len(prepared) == len(set(prepared))
    for initial in (expected[1] - 0.5, expected[1], expected[1] + 0.5):
        assert rl.chosen_k(*got, initial) == (0 if initial >= expected[1] else expected[0])


def test_r2_from_sums_is_sklearns():
    from sklearn.metrics import r2_score
    rng = np.random.default_rng(0)
    y, p = rng.normal(size=50), rng.normal(size=50)
    assert rl.r2_from_sums(((y - p) ** 2).sum(), ((y - y.mean()) ** 2).sum()) == pytest.approx(r2_score(y, p), 1e-14)
    c = np.ones(5)
    assert rl.r2_from_sums(0.0, 0.0) == r2_score(c, c) == 1.0
    assert rl.r2_from_sums(1.0, 0.0) == r2_score(c, c + 1) == 0.0


def test_uncertainty_combination_is_cleanlabs(spark):
    # the same bootstrap-round predictions and residual predictions: cleanlab's epistemic (np.sqrt(np.var))
    # and aleatoric values equal the native per-row std and the var_pop aggregate
    from pyspark.sql import functions as F
    rng = np.random.default_rng(3)
    n, n_boot = 200, 5
    boots, pred, resid_pred = rng.normal(size=(n_boot, n)) * 10, rng.normal(size=n), rng.normal(size=n)
    rounds = iter(list(boots) + [resid_pred])
    cl = cl_learn.CleanLearning(n_boot=n_boot)
    cl._get_cv_predictions = lambda *a, **kw: next(rounds)
    epistemic = cl.get_epistemic_uncertainty(np.zeros((n, 1)), np.zeros(n), predictions=pred)
    aleatoric = cl.get_aleatoric_uncertainty(np.zeros((n, 1)), np.zeros(n))
    pdf = pd.DataFrame({f"b{i}": boots[i] for i in range(n_boot)} | {"p": pred, "rp": resid_pred, "i": range(n)})
    df = spark.createDataFrame(pdf)
    std = rl.population_std([F.col(f"b{i}") for i in range(n_boot)] + [F.col("p")])
    got = df.select("i", std.alias("s")).toPandas().sort_values("i")["s"].to_numpy()
    np.testing.assert_array_equal(got, epistemic)  # bitwise: numpy's summation order for <= 7 values
    assert df.agg(F.sqrt(F.var_pop("rp"))).collect()[0][0] == pytest.approx(aleatoric, rel=1e-13)


def _regression_frame(spark, n, seed=0):
    from pyspark.ml.feature import VectorAssembler
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = 3 * x[:, 0] - 2 * x[:, 1] + 1 + rng.normal(size=n) * 0.3
    bad = rng.choice(n, n // 12, replace=False)
    y[bad] += rng.choice([-1, 1], len(bad)) * rng.uniform(4, 8, len(bad))
    pdf = pd.DataFrame({"id": np.arange(n), "x0": x[:, 0], "x1": x[:, 1], "label": y})
    df = VectorAssembler(inputCols=["x0", "x1"], outputCol="features").transform(spark.createDataFrame(pdf))
    return df.repartition(3), set(bad.tolist())


def _check_cross_validation_against_sklearn(spark, df, got, res, fit_intercept=True):
    """The same folds in sklearn: the initial and per-k R² and the predictions at k are cleanlab's
    _get_cv_predictions rule (kept rows by their fold's model, held-out rows by the fold models' mean)."""
    from pyspark.sql import functions as F
    from sklearn.linear_model import LinearRegression as SkLinearRegression
    from sklearn.metrics import r2_score

    from sparknoise.ml.folds import assign_folds
    folds = (assign_folds(df.select("id").withColumn("one", F.lit(0)), label_col="one", id_col="id", n_folds=2,
                          seed=0).toPandas().sort_values("id")["fold"].to_numpy())
    X, y, ids = got[["x0", "x1"]].to_numpy(), got["label"].to_numpy(), got["id"].to_numpy()

    def cv(held):
        models = [SkLinearRegression(fit_intercept=fit_intercept).fit(X[(folds != f) & ~held], y[(folds != f) & ~held])
                  for f in range(2)]
        preds = np.stack([m.predict(X) for m in models])
        return np.where(held, preds.mean(axis=0), preds[folds, np.arange(len(y))])

    p0 = cv(np.zeros(len(y), bool))
    assert res.search["initial_r2"] == pytest.approx(r2_score(y, p0), rel=1e-9)
    order = np.lexsort((ids, -np.abs(p0 - y)))  # largest |residual| first, ties by id
    for k, r2 in res.search["r2_by_k"].items():
        held = np.zeros(len(y), bool)
        held[order[:math.ceil(len(y) * k)]] = True
        pk = cv(held)
        assert r2 == pytest.approx(r2_score(y, pk), rel=1e-9)
        if k == res.k:
            np.testing.assert_allclose(got["predicted_label"], pk, rtol=1e-9, atol=1e-9)


def test_clean_learning_end_to_end(spark, tmp_path):
    from pyspark.ml.regression import LinearRegression
    df, bad = _regression_frame(spark, 600, seed=4)  # a seed where holding rows out raises the R² clearly
    # the fine search and larger grids are covered by test_k_search_is_cleanlabs, without fits
    rcl = sn.RegressionCleanLearning(LinearRegression(solver="normal"), n_folds=2, n_boot=1,
                                     coarse_search_range=[0.1, 0.05], fine_search_size=0, seed=0, route="fits")
    model = rcl.fit(df)
    res = model.result
    assert res.search["route"] == "fits"
    assert res.k > 0 and res.k == rcl.k and res.num_flagged == math.ceil(600 * res.k)
    assert not [c for c in res.rows.columns if c.startswith("__")]
    got = (res.rows.select("id", "x0", "x1", "label", "is_label_issue", "uncertainty", "sample_weight",
                           "predicted_label").toPandas().sort_values("id").reset_index(drop=True))
    _check_cross_validation_against_sklearn(spark, df, got, res)
    flagged = set(got.loc[got["is_label_issue"], "id"])
    assert len(flagged & bad) >= 0.9 * len(bad)
    assert (got["uncertainty"] > 0).all() and set(got["sample_weight"]) == {0.0, 1.0}
    assert set(res.search["r2_by_k"]) >= {0.05, 0.1} and res.search["best_r2"] > res.search["initial_r2"]
    # the final model, trained without the flagged rows, recovers the clean coefficients; save/load round-trips
    coef = model.finalModel.coefficients.toArray()
    np.testing.assert_allclose(coef, [3, -2], atol=0.1)
    model.write().overwrite().save(str(tmp_path / "m"))
    loaded = sn.RegressionCleanLearningModel.load(str(tmp_path / "m"))
    assert (loaded.k, loaded.numFlagged, loaded.nRows) == (model.k, model.numFlagged, 600)
    a = model.transform(df).select("id", "prediction").toPandas().sort_values("id")
    b = loaded.transform(df).select("id", "prediction").toPandas().sort_values("id")
    np.testing.assert_array_equal(a["prediction"], b["prediction"])
    # the Gram route (the default for OLS): the same sklearn checks, and the fits route's k, flags and scores
    gres = sn.RegressionCleanLearning(LinearRegression(solver="normal"), n_folds=2, n_boot=1,
                                      coarse_search_range=[0.1, 0.05], fine_search_size=0, seed=0).find_label_issues(df)
    assert gres.search["route"] == "gram"
    _check_routes_agree(spark, df, res, gres)


def _check_routes_agree(spark, df, res, gres, fit_intercept=True):
    cols = ["id", "x0", "x1", "label", "is_label_issue", "label_quality", "uncertainty", "predicted_label", "residual",
            "issue_rank"]
    a = res.rows.select(*cols).toPandas().sort_values("id").reset_index(drop=True)
    b = gres.rows.select(*cols).toPandas().sort_values("id").reset_index(drop=True)
    _check_cross_validation_against_sklearn(spark, df, b, gres, fit_intercept)
    assert (gres.k, gres.num_flagged) == (res.k, res.num_flagged)
    assert set(gres.search["r2_by_k"]) == set(res.search["r2_by_k"])
    for k, r2 in res.search["r2_by_k"].items():
        assert gres.search["r2_by_k"][k] == pytest.approx(r2, rel=1e-9, abs=1e-12)
    assert gres.search["aleatoric_uncertainty"] == pytest.approx(res.search["aleatoric_uncertainty"], rel=1e-6)
    assert a["is_label_issue"].tolist() == b["is_label_issue"].tolist()
    assert a["issue_rank"].fillna(0).tolist() == b["issue_rank"].fillna(0).tolist()
    for c in ("label_quality", "uncertainty", "predicted_label", "residual"):
        np.testing.assert_allclose(b[c], a[c], rtol=1e-6, atol=1e-9)


def test_gram_route_without_intercept(spark):
    # no intercept and a feature far from 0: the Gram route's cross-validation (R² per k, predictions at k) is
    # sklearn's LinearRegression(fit_intercept=False) on the same folds (the fits route: the end-to-end test)
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression
    rng = np.random.default_rng(5)
    n = 400
    x = np.column_stack([rng.normal(size=n) + 50.0, rng.normal(size=n)])
    y = 0.2 * x[:, 0] - 2 * x[:, 1] + rng.normal(size=n) * 0.3
    bad = rng.choice(n, 30, replace=False)
    y[bad] += rng.choice([-1, 1], 30) * rng.uniform(3, 6, 30)
    pdf = pd.DataFrame({"id": np.arange(n), "x0": x[:, 0], "x1": x[:, 1], "label": y})
    df = VectorAssembler(inputCols=["x0", "x1"], outputCol="features").transform(spark.createDataFrame(pdf))
    res = sn.RegressionCleanLearning(LinearRegression(fitIntercept=False), n_folds=2, n_boot=1,
                                     coarse_search_range=[0.05, 0.1], fine_search_size=0).find_label_issues(df)
    assert res.k > 0 and res.search["route"] == "gram" and res.num_flagged == math.ceil(n * res.k)
    got = res.rows.select("id", "x0", "x1", "label", "predicted_label").toPandas().sort_values("id")
    _check_cross_validation_against_sklearn(spark, df, got.reset_index(drop=True), res, fit_intercept=False)


def test_gram_solve_is_least_squares():
    from sklearn.linear_model import LinearRegression as SkLinearRegression

    from sparknoise.regression import gram

    def sums(x, y):
        w = np.column_stack([np.ones(len(y)), x, y])
        return w.T @ w

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)) * [1, 1e3, 1e-3, 10] + [0, 5e3, 0, -7]
    y = x @ [1.0, 2e-3, 300.0, 0.5] + rng.normal(size=300)
    for fit_intercept in (True, False):
        # numpy's least squares on the design matrix (sklearn's fit_intercept=False truncates this one: cond ~1e7)
        design = np.column_stack([np.ones(300), x]) if fit_intercept else x
        ref = np.linalg.lstsq(design, y, rcond=None)[0]
        ref = ref if fit_intercept else np.concatenate([[0.0], ref])
        coef = gram.solve(sums(x, y), fit_intercept)
        np.testing.assert_allclose(coef, ref, rtol=1e-7)
        assert gram.sum_of_squares(sums(x, y), coef) == pytest.approx(((design @ ref[-design.shape[1]:] - y) ** 2).sum(),
                                                                      rel=1e-8)
    # a constant feature: coefficient 0 (sklearn's centred column is 0); a duplicated feature: the minimum-norm
    # solution, the same fitted values as sklearn's
    xc = np.column_stack([x[:, 0], np.full(300, 4.0), x[:, 0], x[:, 3]])
    sk = SkLinearRegression().fit(xc, y)
    coef = gram.solve(sums(xc, y), True)
    assert coef[2] == 0.0 and coef[1] == pytest.approx(coef[3], rel=1e-9)
    np.testing.assert_allclose(coef[0] + xc @ coef[1:], sk.predict(xc), rtol=1e-9)
    # the residual Gram and the prediction moments are those of the explicit vectors
    coef = gram.solve(sums(x, y), True)
    r = coef[0] + x @ coef[1:] - y
    np.testing.assert_allclose(gram.residual_gram(sums(x, y), coef), sums(x, r), rtol=1e-9, atol=1e-6)
    pred = coef[0] + x @ coef[1:]
    np.testing.assert_allclose(gram.prediction_moments(sums(x, y), coef), (pred.sum(), (pred ** 2).sum()), rtol=1e-9)


def test_clean_learning_bad_config(spark):
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression

    from sparknoise.errors import ConfigError
    for kwargs, word in (({"n_folds": 1}, "n_folds"), ({"n_boot": -1}, "n_boot"),
                         ({"fine_search_size": -1}, "fine_search_size"), ({"coarse_search_range": []}, "coarse"),
                         ({"coarse_search_range": [0.1, 1.5]}, "coarse_search_range")):
        with pytest.raises((ConfigError, InputError), match=word):
            sn.RegressionCleanLearning(LinearRegression(), **kwargs)
    with pytest.raises(ConfigError, match="regressor"):
        sn.RegressionCleanLearning(VectorAssembler())
    with pytest.raises(ConfigError, match="route"):
        sn.RegressionCleanLearning(LinearRegression(), route="fast")
    with pytest.raises(ConfigError, match="regParam"):
        sn.RegressionCleanLearning(LinearRegression(regParam=0.1), route="gram")
    with pytest.raises(ConfigError, match="loss"):
        sn.RegressionCleanLearning(LinearRegression(loss="huber"), route="gram")
    df, _ = _regression_frame(spark, 40)
    rcl = sn.RegressionCleanLearning(LinearRegression())
    with pytest.raises(InputError, match="'feats'"):
        rcl.find_label_issues(df, features_col="feats")
    with pytest.raises(InputError, match="uncertainty"):
        rcl.find_label_issues(df, uncertainty=-2.0)


# RandomForestRegressor and GBTRegressor are Spark ML JavaPredictors wired exactly like the LinearRegression of
# the end-to-end tests; XGBoost's regressor trains through barrier stages: the one smoke case, for the budget
@pytest.mark.parametrize("name", ["SparkXGBRegressor"])
def test_clean_learning_with_tree_regressors(spark, name):
    # a smoke test on tiny data: the estimator's params are wired (folds, held-out rows, predictions)
    from pyspark.ml import regression

    if name == "SparkXGBRegressor":
        xgb_spark = pytest.importorskip("xgboost.spark")
        estimator = xgb_spark.SparkXGBRegressor(n_estimators=5, max_depth=2, num_workers=1)
    else:
        estimator = regression.RandomForestRegressor(numTrees=5, maxDepth=3, seed=1)
    df, bad = _regression_frame(spark, 96, seed=2)
    res = sn.RegressionCleanLearning(estimator, n_folds=2, coarse_search_range=[0.1]).find_label_issues(
        df, uncertainty=1.0)
    flagged = {r["id"] for r in res.issues().select("id").collect()}
    assert res.k in (0, 0.1) and len(flagged) == math.ceil(96 * res.k)
    assert res.k == 0 or len(flagged & bad) >= len(bad) // 2
