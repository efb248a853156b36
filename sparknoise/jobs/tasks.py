"""Detection per task type (``detection.task``) for the detect job: the engine call, the scored rows,
the review queue and the runs fields of a multi-label or regression run.

The detect job (:mod:`sparknoise.jobs.detect`) owns reading, screening, writing and recording; the
multiclass engine (rounds, agreement with the loss ranking) stays there. This module adds the other
task types behind one shape, :class:`TaskDetection`, so every later step (writing ``scored`` and
``issues``, the runs row, review export/import, apply, the report) takes the task as a parameter:

* ``multilabel``: :func:`sparknoise.find_multilabel_issues` on ``input.probs_col`` (K independent
  per-class probabilities) and an array label column; ``suggested_label`` is the given tag set with
  each flagged class toggled; the runs row keeps the classes and per-class counts (metrics).
* ``regression``: the out-of-fold ``input.prediction_col`` (or a regressor fitted on the features,
  ``RegressionCleanLearning``) and cleanlab's regression flag rule; ``suggested_label`` is the
  out-of-fold prediction.

Everything here runs on the driver except the engines' passes (executors); no rows reach the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

TASKS = ("multiclass", "multilabel", "regression")


@dataclass(frozen=True)
class TaskDetection:
    """What one task's detection produced, in the detect job's terms.

    ``scored``: every input row plus the task's result columns (lazy); ``queue_columns``: the issues
    table's columns after run_id and the id (given_label, suggested_label, label_quality, issue_rank,
    reason, ...), as expressions over ``scored``; ``record``: the runs fields (n_rows, classes, counts);
    ``metrics``: added to the run's metrics JSON.
    """

    scored: DataFrame
    queue_columns: list[Column]
    record: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


def detect_multilabel(cfg: dict, scratch: str) -> Any:
    """The multi-label detection of ``cfg`` as a function of the screened input frame.

    With ``input.probs_col``: your per-class probabilities. Else one binary ``model.estimator`` per
    class per fold on the features (``cross_val_predict_proba(task="multilabel")``), the out-of-fold
    probabilities written once to the run's scratch location before detection reads them.
    """
    import json

    from sparknoise.jobs.tables import materialised
    from sparknoise.ml.cross_validation import cross_val_predict_proba
    from sparknoise.ml.estimators import make_estimator
    from sparknoise.multilabel.issues import find_multilabel_issues

    inp, det, model = cfg["input"], cfg["detection"], cfg["model"]

    def run(df: DataFrame) -> TaskDetection:
        probs_col = inp["probs_col"]
        classes = inp["classes"]
        if not probs_col:
            probs_col = "pred_probs"
            oof = cross_val_predict_proba(
                df, make_estimator(model["estimator"], model["params"]), label_col=inp["label_col"],
                features_col=inp["features_col"] or "features", id_col=inp["id_col"], n_folds=model["n_folds"],
                seed=model["seed"], probs_col=probs_col, parallelism=model["parallelism"], features=inp["features"],
                classes=inp["classes"], check_invalid=False, max_classes=det["max_classes"], task="multilabel")
            df = materialised(oof, scratch, "probabilities_round_1")
            if classes is None and not isinstance(df.schema[inp["label_col"]].dataType.elementType, T.IntegralType):
                # string tags (e.g. split by input.label_sep): the classes the folds found, in probability order
                classes = df.schema[probs_col].metadata["sparknoise"]["classes"]
        res = find_multilabel_issues(
            df, label_col=inp["label_col"], probs_col=probs_col, id_col=inp["id_col"],
            classes=classes, filter_by=det["filter_by"], frac_noise=det["frac_noise"],
            num_to_remove_per_class=det["num_to_remove_per_class"],
            min_examples_per_class=det["min_examples_per_class"], rank_by=det["rank_by"],
            # cleanlab's class weights come from a K x K noise matrix: a multi-label run prunes instead
            weights="prune" if det["weights"] == "cleanlab" else det["weights"],
            downweight=det["downweight"])
        scored = res.rows.withColumn("round", F.when(F.col("is_label_issue"), F.lit(1)))
        queue = [
            F.col(inp["label_col"]).alias("given_label"),
            F.col("suggested_labels").alias("suggested_label"),
            F.col("label_quality"),
            F.col("issue_rank"),
            F.lit(f"multi-label confident learning ({res.filter_by}): the suggested set toggles the flagged "
                  "tags").alias("reason"),
            F.col("round").cast("int").alias("round"),
            F.array_sort(F.filter(F.transform(F.col("is_label_issue_per_class"),
                                              lambda flag, i: F.when(flag, i)),
                                  lambda i: i.isNotNull())).alias("flagged_classes"),
        ]
        summary = res.summary()
        per_class = summary.pop("per_class")
        metrics = {"task": "multilabel", "per_class": json.loads(per_class.to_json(orient="records")),
                   "health_score": summary["health_score"]}
        record = {"n_rows": res.n_rows, "n_classes": res.num_classes,
                  "classes": json.dumps(list(res.classes), default=str), "num_flagged": res.num_flagged,
                  "num_label_issues": res.num_label_issues, "rounds": 1,
                  "thresholds": res.thresholds[:, 1].tolist()}
        return TaskDetection(scored=scored, queue_columns=queue, record=record, metrics=metrics)

    return run


def task_detection(cfg: dict, scratch: str) -> Any:
    """The detection of ``detection.task`` (multilabel | regression) as a function of the input frame;
    ``scratch``: the run's location for intermediate tables (out-of-fold probabilities)."""
    task = cfg["detection"]["task"]
    if task == "multilabel":
        return detect_multilabel(cfg, scratch)
    if task == "regression":
        return detect_regression(cfg)
    raise ValueError(f"no task detection for {task!r}")  # multiclass runs the detect job's own rounds


def detect_regression(cfg: dict) -> Any:
    """The regression detection of ``cfg`` as a function of the screened input frame.

    With ``input.prediction_col`` (your out-of-fold predictions, optionally ``input.uncertainty_col``),
    cleanlab's flag rule at ``detection.frac_issues``; else ``RegressionCleanLearning`` with
    ``model.estimator`` (a regressor) on ``input.features`` / ``input.features_col``: out-of-fold
    predictions on hash folds, the k search (unless ``detection.frac_issues`` fixes k), uncertainty, flags.
    """
    from sparknoise.ml.cross_validation import FEATURES_COL, features_vector
    from sparknoise.ml.estimators import make_estimator
    from sparknoise.regression.issues import find_regression_issues
    from sparknoise.regression.learn import RegressionCleanLearning

    inp, det, model = cfg["input"], cfg["detection"], cfg["model"]

    def run(df: DataFrame) -> TaskDetection:
        if inp["prediction_col"]:
            res = find_regression_issues(df, label_col=inp["label_col"], prediction_col=inp["prediction_col"],
                                         id_col=inp["id_col"], uncertainty=inp["uncertainty_col"],
                                         frac_issues=det["frac_issues"])
            how = (f"your out-of-fold predictions ({inp['prediction_col']}), the {det['frac_issues']:g} of rows "
                   "least consistent with them flagged")
        else:
            learner = RegressionCleanLearning(
                make_estimator(model["estimator"], model["params"], task="regression"), n_folds=model["n_folds"],
                n_boot=det["n_boot"], include_aleatoric_uncertainty=det["include_aleatoric_uncertainty"],
                seed=model["seed"], **({} if det["frac_issues"] is None else
                                       {"coarse_search_range": [det["frac_issues"]], "fine_search_size": 0}))
            res = learner.find_label_issues(features_vector(df, inp["features_col"], inp["features"]),
                                            label_col=inp["label_col"], features_col=FEATURES_COL,
                                            id_col=inp["id_col"])
            res = type(res)(**{**res.__dict__, "rows": res.rows.drop(FEATURES_COL)})
            how = (f"out-of-fold predictions of {model['estimator']} on {model['n_folds']} hash folds, k = "
                   f"{res.k:.4g} ({'searched by out-of-fold R2' if det['frac_issues'] is None else 'the only candidate'})")
        scored = res.rows.withColumn("round", F.when(F.col("is_label_issue"), F.lit(1)))
        queue = [
            F.col("given_label"),
            F.col("predicted_label").alias("suggested_label"),
            F.col("label_quality"),
            F.col("issue_rank"),
            F.lit("regression (cleanlab's rule): among the lowest exp(-|residual / uncertainty| / median) "
                  "scores").alias("reason"),
            F.col("round").cast("int").alias("round"),
            F.col("residual"),
        ]
        description = (f"{how}; uncertainty {res.uncertainty}; label_quality = exp(-|r/u| / median |r/u|), "
                       f"median {res.median_adjusted_residual:.6g}")
        metrics = {"task": "regression", "k": res.k, "uncertainty": res.uncertainty,
                   "median_adjusted_residual": res.median_adjusted_residual, "description": description,
                   **({"search": res.search} if res.search else {})}
        record = {"n_rows": res.n_rows, "num_flagged": res.num_flagged, "num_label_issues": res.num_flagged,
                  "rounds": 1}
        return TaskDetection(scored=scored, queue_columns=queue, record=record, metrics=metrics)

    return run
