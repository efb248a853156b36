"""RegressionCleanLearning: cleanlab's regression CleanLearning with Spark ML regressors.

cleanlab 2.9.0's ``regression.learn.CleanLearning.find_label_issues`` does, and so does this (every
fit and prediction on Spark, every decision on the driver from a few numbers):

1. **Out-of-fold predictions** with ``n_folds`` folds (cleanlab: sklearn ``KFold`` with shuffle and
   a fresh random split per call; here: balanced folds dealt in the order of ``xxhash64(id, seed)``,
   ``ml/folds.py``, not stratified, the same folds for every call). r0 = prediction - label.
2. **The k search** (``_find_best_k``). For a candidate fraction k, the ``ceil(N k)`` rows with the
   largest ``|r0|`` (cleanlab: the tail of ``np.argsort(|r0|)``, quicksort order among ties; here
   ties by id ascending) are held out: the fold models are fitted on the other rows of the other
   folds; a kept row is predicted by its fold's model, a held-out row by the mean of the
   ``n_folds`` models' predictions. The score is R² = 1 - SS_res / SS_tot over all N rows
   (sklearn's ``r2_score``: 1.0 when both sums are 0, 0.0 when only SS_tot is). A candidate that
   leaves fewer than ``n_folds`` rows (``floor(N (1 - k)) < n_folds``) scores -1e30. The coarse
   grid is ``sorted(coarse_search_range)``; around its best (first argmax) ``fine_search_size``
   points are taken strictly inside each neighbouring interval (``np.linspace(.., size + 1,
   endpoint=False)[1:]``), below then above; the best fine point wins unless the coarse best is
   strictly greater. A single coarse value is used as is. Finally k = 0 when the initial R² (no
   row held out) is at least the best one.
3. **Predictions at k** (step 2's rule at the chosen k; at k = 0 the step-1 predictions),
   residual r = prediction - label.
4. **Uncertainty** (only when none is given): epistemic, per row, the population standard
   deviation (numpy's ``sqrt(var)``: mean, then mean squared deviation, summed left to right, which
   is numpy's order for up to 7 values) of ``n_boot`` 2-fold out-of-fold predictions plus the
   step-3 prediction (0 when ``n_boot`` = 0); cleanlab calls these rounds bootstrap but draws each
   as a random 2-fold split; here round b's halves come from ``xxhash64(id, seed + 1 + b)``, so
   the draws (and values) differ from numpy's, the rule does not. Aleatoric (with
   ``include_aleatoric_uncertainty``), one number: the population standard deviation over all rows
   of ``n_folds`` out-of-fold predictions of r from the features (a model fitted on the residuals).
   uncertainty = epistemic + aleatoric.
5. **Flags**: cleanlab's rule (``find_regression_issues``): quality ``exp(-a / max(median a,
   1e-100))`` with ``a = |r / (u + 1e-100)|``; the ``ceil(N k)`` lowest flagged, ties by id.

``fit`` fits the estimator on the rows that were not flagged and returns a
:class:`RegressionCleanLearningModel` (predicts like that model; ``save``/``load`` persist it with k
and the counts). ``given_label`` and ``predicted_label`` are doubles (cleanlab casts predictions to
int when the labels are ints).

Determinism: the folds and halves depend on the ids and the seed only. The fitted models are
Spark ML's: LinearRegression (normal solver) gives the same coefficients up to rounding on any
partitioning; estimators that sample (RandomForestRegressor's bootstrap, XGBoost) may fit different
models on a different partitioning of the same rows, and so predict and flag differently.

What reaches the driver: per candidate k one aggregate row (SS_res) and the selection's counts
and cutoff row; fold sizes; two aggregate rows for the aleatoric deviation and the label mean.

**Routes** (``route=``). "fits" runs the steps above with Spark ML fits: about ``n_folds`` x
(1 + candidates + 1) + 2 ``n_boot`` fits, each a few Spark jobs. "gram" (``gram.py``) runs them for
Spark ML ``LinearRegression`` fitting ordinary least squares (regParam 0, squared-error loss, no
weightCol; fitIntercept either way; any solver) with at most ``gram.MAX_FEATURES`` features:
every model of steps 1-4 is the OLS solution of its training rows, which is a function of their
Gram sums, so a few grouped aggregations replace all fits: one by (fold, half of each bootstrap
round) for step 1 and the bootstrap models, and one per search round by (fold, held out at each of
the round's candidates) for every candidate's fold models; each candidate's SS_res, the residuals'
Gram sums and the aleatoric deviation are quadratic forms of those groups' sums, computed on the
driver; predictions are native per-row expressions with the coefficients as literals. The decision
rules (search, k, flags) are the functions above, shared. The two routes agree to rounding (the
Gram route solves the centred normal equations with numpy, Spark ML its own normal equations, and
sums run in a different order): R² and scores to ~1e-9 and better; k and the flags differ only
when two candidates' R² (or two rows' scores at the cutoff) are within rounding of each other.
"auto" (default) takes "gram" when it applies and logs which route ran and why
(``result.search["route"]``).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Sequence

import numpy as np
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import vector_to_array
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from sparknoise.errors import ConfigError, InputError
from sparknoise.ml.clean_learning import FinalModelWriter, read_final_model
from sparknoise.ml.cross_validation import activate, check_engine
from sparknoise.ml.folds import assign_folds
from sparknoise.regression import gram, inputs
from sparknoise.regression.issues import OUTPUT_COLUMNS, check_constant_uncertainty, check_frac, flag
from sparknoise.regression.result import RegressionIssuesResult
from sparknoise.regression.selection import nth_smallest
from sparknoise.storage import materialised

log = logging.getLogger("sparknoise")

ROUTES = ("auto", "fits", "gram")
WORST_R2 = -1e30  # cleanlab's score of a candidate k that leaves too few rows to cross-validate
_ONE = "__rg_one"
_FOLD = "__rg_fold"
_KEY = "__rg_key"  # -|r0| + 0.0: the held-out rows are the smallest keys (ties by id)
_TARGET = "__rg_target"
_YC = "__rg_yc"  # the Gram route's working label: label - its mean
_PRED = "__rg_pred"


# --- driver-side decisions: pure functions of grid-sized numbers ------------------------------------


def r2_from_sums(ss_res: float, ss_tot: float) -> float:
    """sklearn's ``r2_score`` (force_finite) from its two sums."""
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


def fine_grid(coarse: Sequence[float], best: int, fine_search_size: int) -> np.ndarray:
    """cleanlab's fine search points around ``coarse[best]`` (coarse sorted)."""
    grid = np.array([])
    if best != 0:
        grid = np.append(np.linspace(coarse[best - 1], coarse[best], fine_search_size + 1, endpoint=False)[1:], grid)
    if best != len(coarse) - 1:
        grid = np.append(grid, np.linspace(coarse[best], coarse[best + 1], fine_search_size + 1, endpoint=False)[1:])
    return grid


def find_best_k(coarse_search_range: Sequence[float], fine_search_size: int, n_rows: int, n_folds: int,
                r2_of: Callable[[float], float],
                prepare: Callable[[list[float]], None] | None = None) -> tuple[float, float]:
    """cleanlab's ``_find_best_k`` with the R² of a candidate k given by ``r2_of(k)``: (best k, its R²).

    ``prepare``, when given, is called once per round (the coarse grid, then the fine one) with the
    round's candidates that will be scored, before ``r2_of`` is called on them (a route that scores a
    whole round in one pass); it changes no decision.
    """
    if len(coarse_search_range) == 0:
        raise ConfigError("coarse_search_range must have at least 1 value of k.")

    def valid(k: float) -> bool:
        return math.floor(n_rows * (1 - k)) >= n_folds

    def score(k: float) -> float:
        return WORST_R2 if not valid(k) else r2_of(k)

    def round_of(ks: Sequence[float]) -> None:
        if prepare is not None:
            prepare([float(k) for k in ks if valid(k)])

    if len(coarse_search_range) == 1:
        k = coarse_search_range[0]
        if math.floor(n_rows * (1 - k)) < n_folds:
            raise InputError(f"too few rows ({n_rows}) for {n_folds}-fold cross-validation after holding out "
                             f"k={k}: use fewer folds or a smaller k.", column="coarse_search_range")
        round_of([k])
        return k, r2_of(k)
    coarse = sorted(coarse_search_range)
    round_of(coarse)
    r2_coarse = np.array([score(k) for k in coarse])
    best = int(np.argmax(r2_coarse))
    if fine_search_size < 0:
        raise ConfigError("fine_search_size must be at least 0.")
    if fine_search_size == 0:
        return coarse[best], float(np.max(r2_coarse))
    fine = fine_grid(coarse, best, fine_search_size)
    round_of(list(fine))
    r2_fine = np.array([score(float(k)) for k in fine])
    if max(r2_coarse) > max(r2_fine):
        return coarse[best], float(np.max(r2_coarse))
    return fine[int(np.argmax(r2_fine))], float(np.max(r2_fine))


def chosen_k(best_k: float, best_r2: float, initial_r2: float) -> float:
    """cleanlab: no row is held out (k = 0) when the initial R² is at least the search's best."""
    return 0 if initial_r2 >= best_r2 else best_k


def population_std(columns: Sequence[Column]) -> Column:
    """Per row ``np.sqrt(np.var([c0, c1, ...]))`` as a native expression, in numpy's summation order
    (left to right; numpy's own order for up to 7 values)."""
    n = F.lit(float(len(columns)))
    total = columns[0]
    for c in columns[1:]:
        total = total + c
    mean = total / n
    squares = [(c - mean) * (c - mean) for c in columns]
    acc = squares[0]
    for s in squares[1:]:
        acc = acc + s
    return F.sqrt(acc / n)


# --- executors: fits and predictions ---------------------------------------------------------------


def _configured(estimator: Estimator, features_col: str, label: str) -> Estimator:
    params = {estimator.getParam("featuresCol"): features_col, estimator.getParam("labelCol"): label,
              estimator.getParam("predictionCol"): _PRED}
    return estimator.copy(params)


def _predicting(model: Model, column: str) -> Model:
    return model.copy({model.getParam("predictionCol"): column})


class _CV:
    """Out-of-fold predictions of one target over one fold assignment (models fitted on Spark)."""

    def __init__(self, estimator: Estimator, features_col: str, session: SparkSession) -> None:
        self.estimator = estimator
        self.features_col = features_col
        self.session = session

    def predictions(self, data: DataFrame, *, target: str, fold: str, n_folds: int, out: str,
                    held_out: Column | None = None) -> DataFrame:
        """``data`` plus ``out``: each kept row predicted by the model of the other folds' kept rows,
        each ``held_out`` row by the mean of the ``n_folds`` models (cleanlab's _get_cv_predictions)."""
        activate(self.session)
        est = _configured(self.estimator, self.features_col, target)
        kept = F.lit(True) if held_out is None else ~held_out
        models = [est.fit(data.filter((F.col(fold) != F.lit(f)) & kept)) for f in range(n_folds)]
        names = [f"{out}_{f}" for f in range(n_folds)]
        frame = data
        for model, name in zip(models, names):
            frame = _predicting(model, name).transform(frame)
        own = F.element_at(F.array(*[F.col(c) for c in names]), F.col(fold) + F.lit(1))
        if held_out is None:
            pred = own
        else:
            total = F.col(names[0])
            for c in names[1:]:
                total = total + F.col(c)
            pred = F.when(held_out, total / F.lit(float(n_folds))).otherwise(own)
        return frame.withColumn(out, pred).drop(*names)


def _sums(frame: DataFrame, pred: str, mean: float) -> tuple[float, float]:
    row = frame.agg(
        F.sum((F.col(inputs.LABEL) - F.col(pred)) * (F.col(inputs.LABEL) - F.col(pred))).alias("res"),
        F.sum((F.col(inputs.LABEL) - F.lit(mean)) * (F.col(inputs.LABEL) - F.lit(mean))).alias("tot"),
    ).collect()[0]  # one aggregate row
    return float(row["res"]), float(row["tot"])


class _HeldOut:
    """The held-out rows at k (a filter Column, cached per k): the ``ceil(N k)`` smallest ``_KEY`` values of
    ``frame``, ties by id (None: none held out; lit(True): all)."""

    def __init__(self, frame: DataFrame, n: int, id_col: str) -> None:
        self.frame, self.n, self.id_col = frame, n, id_col
        self.held: dict[float, Column | None] = {}

    def prepare(self, ks: list[float]) -> None:
        """Select the cutoffs of several k at once (their selections share the first passes)."""
        todo = sorted({float(k) for k in ks if float(k) not in self.held})
        drops = sorted({math.ceil(self.n * k) for k in todo} - {d for d in range(-1, 1)})
        drops = [d for d in drops if d < self.n]
        if len(drops) > 1:
            cut = dict(zip(drops, nth_smallest(self.frame, _KEY, self.id_col, tuple(drops), n_rows=self.n)))
            for k in todo:
                if math.ceil(self.n * k) in cut:
                    v, ident = cut[math.ceil(self.n * k)]
                    self.held[k] = self._below(v, ident)
        for k in todo:
            self(k)

    def _below(self, v: float, ident: object) -> Column:
        return (F.col(_KEY) < F.lit(v)) | ((F.col(_KEY) == F.lit(v)) & (F.col(self.id_col) <= F.lit(ident)))

    def __call__(self, k: float) -> Column | None:
        k = float(k)
        if k not in self.held:
            drop = math.ceil(self.n * k)
            if drop <= 0:
                self.held[k] = None
            elif drop >= self.n:
                self.held[k] = F.lit(True)
            else:
                (v, ident), = nth_smallest(self.frame, _KEY, self.id_col, (drop,), n_rows=self.n)
                self.held[k] = self._below(v, ident)
        return self.held[k]


class RegressionCleanLearning:
    """Find wrong numbers with any Spark ML regressor, and train on the rest (cleanlab's regression
    CleanLearning; see the module docstring for every step).

    ``route``: "auto" (default) computes OLS ``LinearRegression`` models (regParam 0, squared error, no
    weightCol, at most ``gram.MAX_FEATURES`` features) from Gram sums and fits any other estimator with
    Spark ML; "fits" always fits with Spark ML; "gram" requires the Gram route (ConfigError otherwise).

    >>> rcl = RegressionCleanLearning(LinearRegression(), n_folds=5, seed=0)
    >>> result = rcl.find_label_issues(df, label_col="price", features_col="features", id_col="id")
    >>> model = rcl.fit(df, label_col="price", features_col="features", id_col="id")
    """

    def __init__(self, estimator: Estimator, *, n_folds: int = 5, n_boot: int = 5,
                 include_aleatoric_uncertainty: bool = True,
                 coarse_search_range: Sequence[float] = (0.01, 0.05, 0.1, 0.15, 0.2), fine_search_size: int = 3,
                 seed: int = 0, route: str = "auto") -> None:
        if estimator is None or not all(estimator.hasParam(p) for p in ("featuresCol", "labelCol", "predictionCol")):
            raise ConfigError("estimator must be a Spark ML regressor (LinearRegression, RandomForestRegressor, "
                              "GBTRegressor, SparkXGBRegressor, ...) with featuresCol, labelCol and predictionCol.")
        if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
            raise ConfigError(f"n_folds={n_folds!r} must be an integer >= 2.")
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
            raise ConfigError(f"n_boot={n_boot!r} must be an integer >= 0 (0 skips the epistemic uncertainty).")
        if isinstance(fine_search_size, bool) or not isinstance(fine_search_size, int) or fine_search_size < 0:
            raise ConfigError(f"fine_search_size={fine_search_size!r} must be an integer >= 0.")
        coarse = list(coarse_search_range)
        if not coarse:
            raise ConfigError("coarse_search_range must have at least 1 value of k.")
        for k in coarse:
            check_frac(k, "coarse_search_range")
        if route not in ROUTES:
            raise ConfigError(f"route={route!r} must be one of {ROUTES}: 'auto' takes the Gram route when it applies, "
                              "'fits' always fits Spark ML models, 'gram' requires the Gram route.")
        if route == "gram" and gram.ineligible(estimator) is not None:
            raise ConfigError(f"route='gram' cannot run: {gram.ineligible(estimator)}; use route='auto' (or 'fits').")
        self.route = route
        self.estimator = estimator
        self.n_folds = n_folds
        self.n_boot = n_boot
        self.include_aleatoric_uncertainty = bool(include_aleatoric_uncertainty)
        self.coarse_search_range = coarse
        self.fine_search_size = fine_search_size
        self.seed = int(seed)
        self.k: float | None = None
        self.result: RegressionIssuesResult | None = None

    # -- detection -------------------------------------------------------------------------------

    def find_label_issues(self, df: DataFrame, *, label_col: str = "label", features_col: str = "features",
                          id_col: str = "id", uncertainty: float | None = None) -> RegressionIssuesResult:
        """Steps 1-5 of the module docstring; ``uncertainty`` (one non-negative number) skips step 4.

        Returns a :class:`RegressionIssuesResult` (``.rows``, ``.k``, ``.search`` with the R² values).
        """
        check_engine(self.estimator, df.sparkSession)
        if uncertainty is not None:
            uncertainty = check_constant_uncertainty(uncertainty)
        if features_col not in df.columns:
            raise InputError(f"features column '{features_col}' is not in the input; pass features_col= (a vector "
                             "column, e.g. from VectorAssembler).", column=features_col)
        clash = sorted(set(OUTPUT_COLUMNS) & set(df.columns) - {label_col})
        if clash:
            raise InputError(f"the input already has output column(s) {clash}; drop or rename them.", column=clash[0])
        inp = inputs.prepare(df, label_col=label_col, prediction_col=label_col, id_col=id_col)
        n = inputs.check_values(inp)
        if n < 2 * self.n_folds:
            raise InputError(f"{n} rows are too few for {self.n_folds}-fold cross-validation.", column=label_col)
        data = assign_folds(inp.df.withColumn(_ONE, F.lit(0)), label_col=_ONE, id_col=id_col, n_folds=self.n_folds,
                            seed=self.seed, fold_col=_FOLD).drop(_ONE)
        why = "route='fits' was asked for" if self.route == "fits" else gram.ineligible(self.estimator)
        stats = [F.avg(F.col(inputs.LABEL)).alias("mean")]
        if why is None:  # the features' size (null vectors count as -1)
            size = F.when(F.col(features_col).isNull(), F.lit(-1)).otherwise(
                F.size(vector_to_array(F.col(features_col), "float64")))
            stats += [F.min(size).alias("p_lo"), F.max(size).alias("p_hi")]
        row = data.agg(*stats).collect()[0]  # one aggregate row
        mean = float(row["mean"])
        if why is None:
            if row["p_lo"] < 0 or row["p_lo"] != row["p_hi"]:
                raise InputError(f"features column '{features_col}' has null vectors or vectors of different sizes "
                                 f"({row['p_lo']}..{row['p_hi']}; -1 = null); every row needs a vector of the same "
                                 "size.", column=features_col)
            if row["p_hi"] > gram.MAX_FEATURES:
                why = f"{row['p_hi']} features > gram.MAX_FEATURES = {gram.MAX_FEATURES}"
        if self.route == "gram" and why is not None:
            raise ConfigError(f"route='gram' cannot run: {why}; use route='auto' (or 'fits').")
        route = "gram" if why is None else "fits"
        log.info("regression CleanLearning: the %s route (%s)", route,
                 "OLS models from Gram sums" if why is None else f"Spark ML fits: {why}")
        if route == "gram":
            final, k, best_k, best_r2, initial_r2, r2_by_k, aleatoric = self._gram_route(
                data, n, mean, int(row["p_hi"]), features_col, id_col, uncertainty is None)
        else:
            final, k, best_k, best_r2, initial_r2, r2_by_k, aleatoric = self._fits_route(
                data, n, mean, features_col, id_col, uncertainty is None)
        kind = "constant" if uncertainty is not None else "estimated"
        u: Column = F.lit(uncertainty) if uncertainty is not None else F.col("__rg_u")
        out = flag(final, n_rows=n, id_col=id_col, k=k, uncertainty=u)
        rows = out.rows.drop(*[c for c in out.rows.columns if c.startswith("__rg_")])
        search = {"initial_r2": initial_r2, "best_k": float(best_k), "best_r2": best_r2, "r2_by_k": r2_by_k,
                  "route": route}
        if aleatoric is not None:
            search["aleatoric_uncertainty"] = aleatoric
        self.k = k
        self.result = RegressionIssuesResult(
            rows=rows, n_rows=n, k=k, num_flagged=out.num_flagged,
            median_adjusted_residual=out.median_adjusted_residual, uncertainty=kind,
            options={"label_col": label_col, "features_col": features_col, "id_col": id_col,
                     "n_folds": self.n_folds, "n_boot": self.n_boot, "seed": self.seed,
                     "include_aleatoric_uncertainty": self.include_aleatoric_uncertainty,
                     "coarse_search_range": self.coarse_search_range, "fine_search_size": self.fine_search_size,
                     "route": self.route},
            search=search)
        log.info("regression CleanLearning: k=%s, %d of %d rows flagged", k, out.num_flagged, n)
        return self.result

    def _fits_route(self, data: DataFrame, n: int, mean: float, features_col: str, id_col: str,
                    estimate_u: bool) -> tuple:
        """Steps 1-4 with Spark ML fits: (frame with the prediction [and __rg_u], k, best k, best R², initial
        R², R² by k, aleatoric or None)."""
        cv = _CV(self.estimator, features_col, data.sparkSession)
        # step 1: out-of-fold predictions, the residual's key
        base = cv.predictions(data, target=inputs.LABEL, fold=_FOLD, n_folds=self.n_folds, out="__rg_p0")
        base = materialised(base.withColumn(_KEY, -F.abs(F.col("__rg_p0") - F.col(inputs.LABEL)) + F.lit(0.0)),
                            None, "regression_initial_predictions")
        initial_r2 = r2_from_sums(*_sums(base, "__rg_p0", mean))
        held_out = _HeldOut(base, n, id_col)
        r2_by_k: dict[float, float] = {}
        frames: dict[float, DataFrame] = {}  # the candidates' predictions (their fold models stay fitted)

        def r2_of(k: float) -> float:
            frames[float(k)] = cv.predictions(base, target=inputs.LABEL, fold=_FOLD, n_folds=self.n_folds, out=_PRED,
                                              held_out=held_out(k))
            r2_by_k[float(k)] = r2_from_sums(*_sums(frames[float(k)], _PRED, mean))
            return r2_by_k[float(k)]

        best_k, best_r2 = find_best_k(self.coarse_search_range, self.fine_search_size, n, self.n_folds, r2_of,
                                      held_out.prepare)
        k = float(chosen_k(best_k, best_r2, initial_r2))
        # step 3: the predictions at k
        if k == 0:
            final = base.withColumn(inputs.PREDICTION, F.col("__rg_p0"))
        elif k in frames:  # the search's models at k: no refit
            final = frames[k].withColumn(inputs.PREDICTION, F.col(_PRED)).drop(_PRED)
        else:
            final = cv.predictions(base, target=inputs.LABEL, fold=_FOLD, n_folds=self.n_folds,
                                   out=inputs.PREDICTION, held_out=held_out(k))
        final = materialised(final.drop(_KEY, "__rg_p0"), None, "regression_predictions")
        # step 4: uncertainty
        aleatoric = None
        if estimate_u:
            final, epistemic = self._epistemic(final, cv, id_col)
            aleatoric = 0.0
            if self.include_aleatoric_uncertainty:
                aleatoric = self._aleatoric(final, cv)
            final = materialised(final.withColumn("__rg_u", epistemic + F.lit(aleatoric)), None,
                                 "regression_uncertainty")
        return final, k, best_k, best_r2, initial_r2, r2_by_k, aleatoric

    def _gram_route(self, data: DataFrame, n: int, mean: float, p: int, features_col: str, id_col: str,
                    estimate_u: bool) -> tuple:
        """Steps 1-4 for OLS from Gram sums (``gram.py``), same return as :meth:`_fits_route`.

        Working coordinates: the label minus its mean and, with an intercept, each feature minus its
        mean (one aggregation), so the Gram sums are well conditioned; every coefficient table below
        predicts the centred label. Spark passes: the feature means; the working frame (materialised,
        with the n_boot halves); one Gram aggregation by (fold, halves) giving the step-1 models, the
        initial R² and the bootstrap models; per search round the selections of the held-out cutoffs
        and one Gram aggregation by (fold, held out at each candidate) giving every candidate's fold
        models and SS_res (a quadratic form per group); the aleatoric model and deviation from the
        same groups (no pass); the per-row predictions and uncertainty as native expressions, once.
        """
        fit_intercept = bool(self.estimator.getOrDefault("fitIntercept"))
        xs = [f"__rg_x{i}" for i in range(p)]
        frame = data.withColumn("__rg_arr", vector_to_array(F.col(features_col), "float64"))
        shift = [0.0] * p
        if fit_intercept and p:
            means = frame.agg(*[F.avg(F.col("__rg_arr")[i]) for i in range(p)]).collect()[0]  # one aggregate row
            shift = [float(v) for v in means]
        frame = frame.select("*", *[(F.col("__rg_arr")[i] - F.lit(shift[i])).alias(x) for i, x in enumerate(xs)],
                             (F.col(inputs.LABEL) - F.lit(mean)).alias(_YC)).drop("__rg_arr")
        n_boot = self.n_boot if estimate_u else 0
        halves = [f"__rg_half{b}" for b in range(n_boot)]
        for b, half in enumerate(halves):
            frame = assign_folds(frame.withColumn(_ONE, F.lit(0)), label_col=_ONE, id_col=id_col, n_folds=2,
                                 seed=self.seed + 1 + b, fold_col=half).drop(_ONE)
        work = materialised(frame, None, "regression_linear_working")
        folds = range(self.n_folds)
        d = p + 2

        def fit(grams: list[np.ndarray], what: str) -> np.ndarray:
            if not grams or sum(g[0, 0] for g in grams) == 0:
                raise InputError(f"{what} has no training rows: use fewer folds or a smaller k.",
                                 column=features_col)
            s = gram.total(grams)
            if fit_intercept:
                return gram.solve(s, True)
            t = np.eye(d)
            t[d - 1, 0] = mean  # y = (y - mean) + mean * 1
            coef = gram.solve(t @ s @ t.T, False)
            coef[0] -= mean  # predicts the centred label
            return coef

        # step 1 (and the bootstrap rounds' halves): Gram sums by (fold, half of each round)
        fold_s = {f: np.zeros((d, d)) for f in folds}
        half_s = {(b, h): np.zeros((d, d)) for b in range(n_boot) for h in (0, 1)}
        per_pass = max(int(math.log2(max(gram.MAX_GROUPS // self.n_folds, 1))), 1)
        chunks = [list(range(n_boot))[i:i + per_pass] for i in range(0, n_boot, per_pass)] or [[]]
        for c, rounds in enumerate(chunks):
            keys = ([F.col(_FOLD)] if c == 0 else [F.lit(0)]) + [F.col(halves[b]) for b in rounds]
            for key, s in gram.gram_sums(work, keys, xs, _YC).items():
                if c == 0:
                    fold_s[key[0]] = fold_s[key[0]] + s
                for b, h in zip(rounds, key[1:]):
                    half_s[(b, h)] = half_s[(b, h)] + s
        fold_coef = np.stack([fit([fold_s[g] for g in folds if g != f], f"fold {f}") for f in folds])
        ss_tot = float(gram.total(fold_s.values())[d - 1, d - 1])
        initial_r2 = r2_from_sums(sum(gram.sum_of_squares(fold_s[f], fold_coef[f]) for f in folds), ss_tot)
        p0 = gram.linear_prediction(fold_coef, F.col(_FOLD), xs)
        keyed = work.withColumn(_KEY, -F.abs(p0 - F.col(_YC)) + F.lit(0.0))
        held_out = _HeldOut(keyed, n, id_col)
        # the k search: per round, Gram sums by (fold, held out at each candidate); the held-out sets are nested
        cells_by_k: dict[float, tuple[np.ndarray, Column | None, list]] = {}
        r2_by_k: dict[float, float] = {}

        def prepare(ks: list[float]) -> None:
            todo = sorted({float(k) for k in ks} - set(cells_by_k))
            if not todo:
                return
            held_out.prepare(todo)
            helds = [held_out(k) for k in todo]
            keys = [F.col(_FOLD)] + [F.lit(False) if h is None else h for h in helds]
            groups = gram.gram_sums(keyed, keys, xs, _YC)
            for j, (k, h) in enumerate(zip(todo, helds)):
                cells = [(key[0], bool(key[1 + j]), s) for key, s in groups.items()]
                coefs = np.stack([fit([s for g, out, s in cells if g != f and not out], f"fold {f} at k={k}")
                                  for f in folds])
                table = np.vstack([coefs, coefs.mean(axis=0)])  # row n_folds: the held-out rows' mean model
                ss = sum(gram.sum_of_squares(s, table[self.n_folds if out else g]) for g, out, s in cells)
                cells_by_k[k] = (table, h, cells)
                r2_by_k[k] = r2_from_sums(ss, ss_tot)

        def r2_of(k: float) -> float:
            prepare([k])
            return r2_by_k[float(k)]

        best_k, best_r2 = find_best_k(self.coarse_search_range, self.fine_search_size, n, self.n_folds, r2_of,
                                      prepare)
        k = float(chosen_k(best_k, best_r2, initial_r2))
        # step 3: the predictions at k
        if k == 0:
            table, index = np.vstack([fold_coef, fold_coef.mean(axis=0)]), F.col(_FOLD)
            cells = [(f, False, fold_s[f]) for f in folds]
        else:
            prepare([k])
            table, h, cells = cells_by_k[k]
            index = F.col(_FOLD) if h is None else F.when(h, F.lit(self.n_folds)).otherwise(F.col(_FOLD))
        pred = gram.linear_prediction(table, index, xs)
        out_cols = [F.col(c) for c in data.columns if c != inputs.PREDICTION] + [(pred + F.lit(mean)).alias(
            inputs.PREDICTION)]
        # step 4: uncertainty
        aleatoric = None
        if estimate_u:
            boots = []
            for b in range(n_boot):
                # the model of half h was fitted on the other half's rows
                boot = np.stack([fit([half_s[(b, 1 - h)]], f"bootstrap round {b}, half {h}") for h in (0, 1)])
                boots.append(gram.linear_prediction(boot, F.col(halves[b]), xs))
            epistemic = population_std(boots + [pred]) if n_boot else F.lit(0.0)
            aleatoric = 0.0
            if self.include_aleatoric_uncertainty:
                resid = {f: np.zeros((d, d)) for f in folds}  # per fold: the Gram of (1, x, prediction - label)
                for g, out, s in cells:
                    resid[g] = resid[g] + gram.residual_gram(s, table[self.n_folds if out else g])
                total_p = total_p2 = 0.0
                for f in folds:
                    rcoef = gram.solve(gram.total([resid[g] for g in folds if g != f]), fit_intercept)
                    s1, s2 = gram.prediction_moments(fold_s[f], rcoef)
                    total_p, total_p2 = total_p + s1, total_p2 + s2
                aleatoric = math.sqrt(max(total_p2 / n - (total_p / n) ** 2, 0.0))
            out_cols.append((epistemic + F.lit(aleatoric)).alias("__rg_u"))
        final = materialised(keyed.select(*out_cols), None,
                             "regression_uncertainty" if estimate_u else "regression_predictions")
        return final, k, best_k, best_r2, initial_r2, r2_by_k, aleatoric

    def _epistemic(self, frame: DataFrame, cv: _CV, id_col: str) -> tuple[DataFrame, Column]:
        """n_boot 2-fold out-of-fold predictions (hash halves per round) and their std with the prediction."""
        if self.n_boot == 0:
            return frame, F.lit(0.0)
        names = []
        for b in range(self.n_boot):
            half = f"__rg_half{b}"
            frame = assign_folds(frame.withColumn(_ONE, F.lit(0)), label_col=_ONE, id_col=id_col, n_folds=2,
                                 seed=self.seed + 1 + b, fold_col=half).drop(_ONE)
            frame = cv.predictions(frame, target=inputs.LABEL, fold=half, n_folds=2, out=f"__rg_boot{b}").drop(half)
            names.append(f"__rg_boot{b}")
        frame = materialised(frame, None, "regression_bootstrap_predictions")
        return frame, population_std([F.col(c) for c in names] + [F.col(inputs.PREDICTION)])

    def _aleatoric(self, frame: DataFrame, cv: _CV) -> float:
        """sqrt(var_pop) over all rows of the out-of-fold predictions of the residual from the features."""
        target = frame.withColumn(_TARGET, F.col(inputs.PREDICTION) - F.col(inputs.LABEL))
        pred = cv.predictions(target, target=_TARGET, fold=_FOLD, n_folds=self.n_folds, out="__rg_rp")
        return float(pred.agg(F.sqrt(F.var_pop("__rg_rp"))).collect()[0][0])  # one aggregate row

    # -- training ----------------------------------------------------------------------------------

    def fit(self, df: DataFrame, *, label_col: str = "label", features_col: str = "features", id_col: str = "id",
            label_issues: RegressionIssuesResult | None = None) -> RegressionCleanLearningModel:
        """Find the issues (or use ``label_issues``), then fit the estimator on the rows not flagged.

        Returns a :class:`RegressionCleanLearningModel` that predicts into ``prediction`` like the
        estimator's model; ``.result`` holds the detection (transient, not persisted).
        """
        result = label_issues or self.find_label_issues(df, label_col=label_col, features_col=features_col,
                                                        id_col=id_col)
        train = result.rows.filter(~F.col("is_label_issue")).withColumn(label_col, F.col(label_col).cast("double"))
        est = self.estimator.copy({self.estimator.getParam("featuresCol"): features_col,
                                   self.estimator.getParam("labelCol"): label_col})
        activate(df.sparkSession)
        final_model = est.fit(train)
        model = RegressionCleanLearningModel(final_model=final_model, k=result.k, num_flagged=result.num_flagged,
                                             n_rows=result.n_rows)
        model.result = result
        return model


class RegressionCleanLearningModel(Model, MLWritable, MLReadable):
    """The regressor fitted on the rows that were not flagged, with k and the counts of its training data."""

    def __init__(self, final_model: Model | None = None, k: float = 0.0, num_flagged: int = 0,
                 n_rows: int = 0) -> None:
        super().__init__()
        self.finalModel = final_model
        self.k = float(k)
        self.numFlagged = int(num_flagged)
        self.nRows = int(n_rows)
        self.result: RegressionIssuesResult | None = None

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return self.finalModel.transform(dataset)

    def write(self) -> MLWriter:
        return FinalModelWriter(self, _metadata)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader()


def _metadata(m: RegressionCleanLearningModel) -> dict[str, Any]:
    return {"class": "sparknoise.RegressionCleanLearningModel", "k": m.k, "num_flagged": m.numFlagged,
            "n_rows": m.nRows}


class _ModelReader(MLReader):
    def load(self, path: str) -> RegressionCleanLearningModel:
        meta, final_model = read_final_model(path)
        return RegressionCleanLearningModel(final_model=final_model, k=meta["k"], num_flagged=meta["num_flagged"],
                                            n_rows=meta["n_rows"])
