"""Job configuration: documented defaults, a YAML file, and ``key.path=value`` overrides.

The keys are a public contract: new keys may be added, existing ones are never renamed. Values given on the command
line are parsed as YAML (``--set input.features=[a,b]`` gives a list). Unknown keys, wrong types
and impossible combinations raise :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any, Iterable

import yaml

from sparknoise.cleaning.apply import PROTECT_MODES, UNREVIEWED_POLICIES
from sparknoise.cleaning.data_issues import DROP_DUPLICATES, DROP_LEAKAGE
from sparknoise.core.flags import FILTERS
from sparknoise.core.inputs import PROBS_REPAIRS
from sparknoise.core.kernels import QUALITY_METHODS
from sparknoise.core.weights import POLICIES
from sparknoise.errors import ConfigError
from sparknoise.ml.estimators import ESTIMATORS
from sparknoise.multiannotator.crowdlab import CONSENSUS_METHODS as MA_CONSENSUS
from sparknoise.multiannotator.crowdlab import MULTI_QUALITY_METHODS as MA_QUALITY
from sparknoise.noise.injection import MODES
from sparknoise.noise.multilabel_noise import check_tag_noise_matrix
from sparknoise.noise.regression_noise import check_rate
from sparknoise.storage import is_path

DEFAULTS: dict[str, Any] = {
    "input": {
        "path": None,  # a path (Delta, or Parquet) ...
        "table": None,  # ... or a catalog table name
        "format": "delta",  # delta | parquet, for input.path
        "version": None,  # Delta time travel; default: the latest version, pinned for the run
        "id_col": "id",
        "label_col": "label",
        "features": None,  # list of numeric columns ...
        "features_col": None,  # ... or a vector column ...
        "probs_col": None,  # ... or your own out-of-fold probabilities (no model is fitted)
        "prediction_col": None,  # detection.task regression: your own out-of-fold predictions (no model is fitted)
        "uncertainty_col": None,  # regression with input.prediction_col: optional per-row uncertainty (a std. dev.)
        "classes": None,  # label value of each probability index (default: sorted labels)
        # detection.task multilabel: the label column is a string of tags joined by this separator (e.g. "|"),
        # split (literally) into an array; pieces are trimmed of spaces, empty ones dropped ("" = no tags)
        "label_sep": None,
        "where": None,  # optional SQL filter, e.g. "split = 'train'"
        # detect: the run id of an audit run whose flagged rows are left out (input.exclude_types says which)
        "exclude_run": None,
        "exclude_runs": None,  # the runs table holding input.exclude_run; default: output.runs
        # near_duplicate: the copies apply would drop (all but the first of each set and split, and the
        # train-side copy of each leakage pair); any other type: every row that type flagged
        "exclude_types": ["near_duplicate", "outlier", "null"],
        "passthrough": [],  # input columns copied into the issues table for annotators
        "drop": [],  # input columns left out right after reading (e.g. a previous run's result columns)
        "on_invalid": "error",  # rows with null/NaN labels, ids, features or probs: error | skip (counted in runs)
        "probs_repair": "none",  # none | clip: probabilities a hair outside [0, 1] clipped, rows renormalised
        "annotations": None,  # annotators job: the table (path or name) of item, annotator, label rows
        "annotator_col": "annotator",  # annotators job: the annotator id column of input.annotations
        "probs": None,  # annotators job: a table of item id, out-of-fold probabilities (input.probs_col) ...
        "items": None,  # ... or a table of item id and features: a model is fitted on the majority votes
    },
    "model": {
        "estimator": "logistic_regression",
        "params": {},
        "n_folds": 5,
        "seed": 0,
        "parallelism": 1,
    },
    "detection": {
        "task": "multiclass",  # multiclass | multilabel (array label, per-class probabilities) | regression
        "filter_by": "prune_by_noise_rate",
        "rank_by": "self_confidence",
        "frac_noise": 1.0,
        "num_to_remove_per_class": None,
        "min_examples_per_class": 1,
        "weights": "cleanlab",
        "downweight": 0.1,
        "iterations": 1,
        "min_new_issues": 1,
        "max_classes": 1000,  # without input.classes: more distinct labels than this stop the run up front
        # regression: the fraction flagged (cleanlab's k). With a model: null = cleanlab's search over
        # [0.01, 0.05, 0.1, 0.15, 0.2] by out-of-fold R^2; a number = the only candidate (0 if it lowers R^2)
        "frac_issues": None,
        "n_boot": 5,  # regression with a model: rounds of the epistemic uncertainty
        "include_aleatoric_uncertainty": True,  # regression with a model
        "scratch": None,  # Delta location for the out-of-fold probabilities and rounds; default beside output.scored
    },
    "output": {
        "scored": "sparknoise-output/scored",
        "issues": "sparknoise-output/issues",
        "runs": "sparknoise-output/runs",
        "mode": "replace_run",  # rows of this run id are replaced; other runs are kept
        "noisy": "sparknoise-output/noisy",  # inject: the noisy copy of the input
        "detection": "sparknoise-output/evaluation_detection",  # evaluate: detector precision/recall
        "impact": "sparknoise-output/evaluation_impact",  # evaluate: test accuracy per noise rate
        "plots": "sparknoise-output/plots",  # evaluate: a local folder for the PNG charts
        "reviews": "sparknoise-output/reviews",  # review import: reviewers' verdicts, appended
        "cleaned": "sparknoise-output/cleaned",  # apply: the rows downstream training reads
        "audit": "sparknoise-output/audit",  # apply: one row per removed, relabeled or down-weighted row
        "releases": "sparknoise-output/releases",  # publish: one row per named release of a cleaned dataset
        "consensus": "sparknoise-output/consensus",  # annotators: one row per item, consensus label and weight
        "annotator_stats": "sparknoise-output/annotator_stats",  # annotators: one row per annotator
        "annotation_quality": "sparknoise-output/annotation_quality",  # annotators: one row per annotation
        "data_issues": "sparknoise-output/data_issues",  # audit: one row per (row, issue type), long format
        "duplicate_sets": "sparknoise-output/duplicate_sets",  # audit: one row per set of exact / near duplicates
        "leakage": "sparknoise-output/leakage",  # audit: duplicate pairs whose split differs
    },
    "apply": {
        "unreviewed": "remove",  # flagged rows without a verdict: remove | downweight | relabel | keep
        "downweight": 0.1,  # sample_weight of down-weighted rows
        "relabel_only_high": False,  # unreviewed=relabel: relabel only high-confidence rows, remove the rest
        "protect_where": None,  # SQL over the scored columns: rows the policy never changes (e.g. "split = 'test'")
        "protect_mode": "all",  # all: protected rows never change | policy: only reviewers' verdicts change them
        "split_col": None,  # a scored column naming each row's split: counts per split in runs, report, releases
        "drop_duplicates": "keep_first",  # audit runs: keep_first (one row per duplicate set and split) | none
        "drop_leakage": "train",  # audit runs: train (remove the train-side copy of each leakage pair) | none
        "train_split": "train",  # audit runs: the split value whose copies drop_leakage removes
    },
    "inject": {
        # uniform | class_conditional | instance_dependent; detection.task regression: shift | swap | unit | default,
        # or a mapping mode -> rate for a mix ({shift: 0.05, unit: 0.02})
        "mode": "uniform",
        "noise_rate": 0.2,
        "noise_matrix": None,  # class_conditional: K x K, P(given=j | true=k) at [j][k]; multilabel: K x 2 x 2
        "frac_zero_noise_rates": 0.0,  # class_conditional without a matrix: zero off-diagonal rates
        "seed": 0,
        "shift_std": 3.0,  # regression shift: +- this many standard deviations of the label
        "factor": 10.0,  # regression unit: x or / this factor
        "default_value": 0.0,  # regression default: the value written
    },
    "evaluate": {
        "trusted_label_col": None,  # the trusted label; default: input.label_col
        "test_where": None,  # SQL condition selecting the test split; default: a hash split by id
        "test_fraction": 0.2,
        "noise_rates": [0.0, 0.05, 0.1, 0.2, 0.3],
        # uniform | class_conditional | instance_dependent; detection.task regression: shift | swap | unit | default,
        # or a mapping mode -> share (each rate split between the modes in proportion: {shift: 1, unit: 1})
        "noise_mode": "uniform",
        "detection_noise_rate": 0.2,  # every detector is scored at this rate
        "loss_top_fraction": None,  # top-p% log-loss detector; default: CL's estimated noise fraction
        "self_confidence_threshold": 0.1,
        "frac_zero_noise_rates": 0.0,  # class_conditional: fraction of zero off-diagonal noise rates
        "seed": 0,
        "parallelism": 2,  # rates, detectors and fits evaluated concurrently
        "scratch": None,  # Delta location for intermediate tables; default: _sparknoise_scratch beside output.detection
    },
    "annotators": {
        "consensus_method": "best_quality",  # best_quality | majority_vote
        "quality_method": "crowdlab",  # crowdlab | agreement
        "calibrate_probs": False,  # temperature-scale the probabilities to the annotators first
        "label_quality_method": "self_confidence",  # self_confidence | normalized_margin | confidence_weighted_entropy
        "scratch": None,  # Delta location for intermediate tables; default: _sparknoise_scratch beside output.consensus
    },
    "audit": {
        "issue_types": None,  # list of label | outlier | near_duplicate | class_imbalance | null | underperforming_group;
                              # null: every type the configured columns allow
        "features": None,  # numeric columns (a list) or one vector / numeric array column (a name); null: input.features
                           # or input.features_col
        "split_col": None,  # the train/test split column: duplicates across splits go to output.leakage
        "group_cols": None,  # the segments underperforming_group compares (needs input.label_col and input.probs_col)
        "k": 10,  # nearest neighbours per row (Datalab's default); must be below the number of rows
        "max_exact_rows": None,  # the largest input for the exact kNN search; null: find_data_issues' default
        "params": {},  # further keyword arguments of sn.find_data_issues (e.g. neighbour-search settings)
        "scratch": None,  # Delta location for intermediate tables (removed after the run); null: localCheckpoint
    },
    "tracking": {
        "mlflow": False,  # log detect, evaluate and apply runs to MLflow (pip install 'sparknoise[mlflow]')
        "uri": None,  # default: MLFLOW_TRACKING_URI (Databricks sets it), else sqlite:///<outputs>/mlruns.db
        "experiment": None,  # default: MLflow's active experiment (on Databricks a path like /Shared/sparknoise)
        "run_name": None,  # default: sparknoise-<job>-<run id>
    },
    "run": {"id": None},
}

JOBS = ("detect", "inject", "evaluate", "report", "review", "apply", "annotators", "publish", "releases", "audit")
# the tables each job of the cleaning loop reads or writes (all come from one config file)
_LOOP_TABLES = {"report": ("scored", "issues", "runs", "audit", "data_issues", "duplicate_sets", "leakage"), "review": ("scored", "issues", "runs", "reviews"),
                "apply": ("scored", "issues", "runs", "reviews", "cleaned", "audit"),
                "publish": ("runs", "cleaned", "audit", "releases"), "releases": ("releases",)}


def _set_path(cfg: dict, dotted: str, value: Any, *, source: str) -> None:
    keys = dotted.split(".")
    node = cfg
    for i, key in enumerate(keys):
        where = ".".join(keys[: i + 1])
        if not isinstance(node, dict) or key not in node:
            known = sorted(node) if isinstance(node, dict) else []
            raise ConfigError(f"unknown config key '{where}' (from {source}); known keys here: {known}")
        if i == len(keys) - 1:
            node[key] = value
        elif key == "params":  # model.params is free-form
            node[key] = {**(node[key] or {}), ".".join(keys[i + 1 :]): value}
            return
        else:
            node = node[key]


def _merge(cfg: dict, layer: dict, prefix: str, source: str) -> None:
    for key, value in (layer or {}).items():
        dotted = f"{prefix}{key}"
        if key not in cfg:
            raise ConfigError(f"unknown config key '{dotted}' (from {source}); known keys here: {sorted(cfg)}")
        if isinstance(cfg[key], dict) and dotted not in ("model.params", "audit.params"):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{dotted}' (from {source}) must be a mapping")
            _merge(cfg[key], value, f"{dotted}.", source)
        else:
            cfg[key] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` -> (key.path, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{key}': value {raw!r} is not valid YAML ({e})") from None
    return key.strip(), value


def load_config(path: str | None = None, overrides: Iterable[str] = (), job: str = "detect") -> dict:
    """Defaults, then the YAML file, then the overrides; validated for ``job`` (one of ``JOBS``)."""
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        try:
            with open(path) as f:
                layer = yaml.safe_load(f) or {}
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        if not isinstance(layer, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections (input, model, ...)")
        _merge(cfg, layer, "", path)
    for text in overrides:
        key, value = parse_override(text)
        _set_path(cfg, key, value, source="command line")
    validate(cfg, job)
    return cfg


def validate(cfg: dict, job: str = "detect") -> None:
    """Raise ConfigError on impossible or missing settings for ``job``."""
    if job not in JOBS:
        raise ConfigError(f"unknown job {job!r}; one of {list(JOBS)}")
    _validate_tracking(cfg["tracking"])
    if job in _LOOP_TABLES:  # reads (and writes) a detect run's outputs; the input is not needed
        for name in _LOOP_TABLES[job]:
            if not cfg["output"][name] or not isinstance(cfg["output"][name], str):
                raise ConfigError(f"'output.{name}' must be a path or a table name (the detect run's {name} table)")
            if not is_path(cfg["output"][name]):
                check_table_name(f"output.{name}", cfg["output"][name])
        names = _LOOP_TABLES[job]
        if len({_normal(cfg["output"][n]) for n in names}) != len(names):
            raise ConfigError(f"{', '.join(repr('output.' + n) for n in names)} must be different locations")
        if job == "apply":
            _validate_apply(cfg["apply"])
        return
    if job == "annotators":
        _validate_annotators(cfg)
        return
    inp = cfg["input"]
    if bool(inp["path"]) == bool(inp["table"]):
        raise ConfigError("set exactly one of 'input.path' and 'input.table'")
    if inp["table"]:
        check_table_name("input.table", inp["table"])
    if inp["on_invalid"] not in ("error", "skip"):
        raise ConfigError(f"'input.on_invalid' must be error or skip, not {inp['on_invalid']!r}")
    if inp["format"] not in ("delta", "parquet"):
        raise ConfigError(f"'input.format' must be delta or parquet, not {inp['format']!r}")
    if inp["probs_repair"] not in PROBS_REPAIRS:
        raise ConfigError(f"'input.probs_repair' must be one of {list(PROBS_REPAIRS)}, not {inp['probs_repair']!r}")
    if not isinstance(inp["drop"], list) or not all(isinstance(c, str) and c for c in inp["drop"]):
        raise ConfigError(f"'input.drop' must be a list of column names, not {inp['drop']!r}")
    _validate_label_sep(inp, cfg["detection"]["task"])
    _validate_exclude(inp, job)
    if job == "inject":
        _validate_inject(cfg)
    elif job == "audit":
        _validate_audit(cfg)
    elif job == "evaluate":
        _validate_evaluate(cfg)
    else:
        _validate_detect(cfg)


_IDENTIFIER = re.compile(r"^(?:[A-Za-z0-9_]+|`(?:[^`]|``)+`)$")


def check_table_name(key: str, name: str) -> None:
    """A catalog table name: one to three dot-separated identifiers (letters, digits, _ or `quoted`)."""
    if isinstance(name, str) and is_path(name):
        raise ConfigError(f"'{key}' {name!r} looks like a path, not a table name; "
                          + ("set 'input.path' instead" if key == "input.table" else "give a path or a table name"))
    parts = re.findall(r"`(?:[^`]|``)+`|[^.]+", name) if isinstance(name, str) else []
    if not 1 <= len(parts) <= 3 or ".".join(parts) != name or not all(_IDENTIFIER.match(p) for p in parts):
        raise ConfigError(
            f"'{key}' {name!r} is neither a path (it has no '/') nor a valid table name "
            "([catalog.][schema.]table of letters, digits and _, or `quoted` parts)"
        )


def _check_outputs(cfg: dict, names: tuple[str, ...]) -> None:
    out = cfg["output"]
    here = cfg["input"]["path"] or cfg["input"]["table"]
    for name in names:
        if not out[name] or not isinstance(out[name], str):
            raise ConfigError(f"'output.{name}' must be a path or a table name")
        if not is_path(out[name]):
            check_table_name(f"output.{name}", out[name])
        if _same_location(out[name], here):
            raise ConfigError(f"'output.{name}' is the input location {here!r}; the input is never written")
    if len({_normal(out[n]) for n in names}) != len(names):
        raise ConfigError(f"{', '.join(repr('output.' + n) for n in names)} must be different locations")


def _validate_annotators(cfg: dict) -> None:
    inp, an = cfg["input"], cfg["annotators"]
    if not inp["annotations"] or not isinstance(inp["annotations"], str):
        raise ConfigError("'input.annotations' must be the table of (item, annotator, label) rows: a path or a name")
    if bool(inp["probs"]) == bool(inp["items"]):
        raise ConfigError("set exactly one of 'input.probs' (a table of item ids and out-of-fold probabilities) and "
                          "'input.items' (a table of item ids and features; a model is fitted on the majority votes)")
    if inp["probs"] and not inp["probs_col"]:
        raise ConfigError("'input.probs' needs 'input.probs_col': the probability column of that table")
    if inp["items"] and bool(inp["features"]) == bool(inp["features_col"]):
        raise ConfigError("'input.items' needs exactly one of 'input.features' (numeric columns) and "
                          "'input.features_col' (a vector column)")
    for key in ("annotations", "probs", "items"):
        if inp[key] and not is_path(inp[key]):
            check_table_name(f"input.{key}", inp[key])
    for key, allowed in (("consensus_method", MA_CONSENSUS), ("quality_method", MA_QUALITY),
                         ("label_quality_method", QUALITY_METHODS)):
        if an[key] not in allowed:
            raise ConfigError(f"'annotators.{key}' {an[key]!r} is not a valid {key.replace('_', ' ')}; use one of "
                              f"{list(allowed)}")
    if not isinstance(an["calibrate_probs"], bool):
        raise ConfigError("'annotators.calibrate_probs' must be true or false")
    if inp["items"] and cfg["model"]["estimator"] not in ESTIMATORS:
        raise ConfigError(f"'model.estimator' {cfg['model']['estimator']!r} is unknown; use one of {sorted(ESTIMATORS)}")
    out = cfg["output"]
    names = ("consensus", "annotator_stats", "annotation_quality", "runs")
    for name in names:
        if not out[name] or not isinstance(out[name], str):
            raise ConfigError(f"'output.{name}' must be a path or a table name")
        if not is_path(out[name]):
            check_table_name(f"output.{name}", out[name])
        for key in ("annotations", "probs", "items"):
            if inp[key] and _same_location(out[name], inp[key]):
                raise ConfigError(f"'output.{name}' is the input location {inp[key]!r}; the input is never written")
    if len({_normal(out[n]) for n in names}) != len(names):
        raise ConfigError(f"{', '.join(repr('output.' + n) for n in names)} must be different locations")


def _validate_tracking(tr: dict) -> None:
    if not isinstance(tr["mlflow"], bool):
        raise ConfigError("'tracking.mlflow' must be true or false")
    for key in ("uri", "experiment", "run_name"):
        if tr[key] is not None and not (isinstance(tr[key], str) and tr[key].strip()):
            raise ConfigError(f"'tracking.{key}' must be a non-empty string or null")


def _validate_apply(ap: dict) -> None:
    if ap["unreviewed"] not in UNREVIEWED_POLICIES:
        raise ConfigError(f"'apply.unreviewed' {ap['unreviewed']!r} is unknown; use one of {list(UNREVIEWED_POLICIES)}")
    w = ap["downweight"]
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 1:
        raise ConfigError(f"'apply.downweight' must be a weight in (0, 1], not {w!r}")
    if not isinstance(ap["relabel_only_high"], bool):
        raise ConfigError("'apply.relabel_only_high' must be true or false")
    if ap["relabel_only_high"] and ap["unreviewed"] != "relabel":
        raise ConfigError("'apply.relabel_only_high' applies to 'apply.unreviewed: relabel'; set both or neither")
    if ap["protect_where"] is not None and not (isinstance(ap["protect_where"], str) and ap["protect_where"].strip()):
        raise ConfigError("'apply.protect_where' must be a SQL condition such as \"split = 'test'\"")
    if ap["protect_mode"] not in PROTECT_MODES:
        raise ConfigError(f"'apply.protect_mode' {ap['protect_mode']!r} is unknown; use one of {list(PROTECT_MODES)} "
                          "(all: protected rows never change; policy: only reviewers' verdicts change them)")
    if ap["split_col"] is not None and not (isinstance(ap["split_col"], str) and ap["split_col"].strip()):
        raise ConfigError("'apply.split_col' must be a column name of the scored table, such as split")
    if ap["drop_duplicates"] not in DROP_DUPLICATES:
        raise ConfigError(f"'apply.drop_duplicates' {ap['drop_duplicates']!r} is unknown; use one of "
                          f"{list(DROP_DUPLICATES)} (keep_first: one row of each duplicate set per split)")
    if ap["drop_leakage"] not in DROP_LEAKAGE:
        raise ConfigError(f"'apply.drop_leakage' {ap['drop_leakage']!r} is unknown; use one of {list(DROP_LEAKAGE)} "
                          "(train: remove the train-side copy of each leakage pair)")
    if not (isinstance(ap["train_split"], str) and ap["train_split"]):
        raise ConfigError(f"'apply.train_split' must be the split value of the training rows, not {ap['train_split']!r}")


def _validate_exclude(inp: dict, job: str) -> None:
    """``input.exclude_run`` / ``exclude_runs`` / ``exclude_types``: an audit run's flagged rows left out of detect."""
    from sparknoise.audit import ISSUE_TYPES

    run, types = inp["exclude_run"], inp["exclude_types"]
    if run is None:
        return
    if job != "detect":
        raise ConfigError(f"'input.exclude_run' leaves an audit run's flagged rows out of the detect job; the {job} "
                          "job does not take it: remove the key")
    if not (isinstance(run, str) and run.strip()):
        raise ConfigError(f"'input.exclude_run' must be the run id of an audit run, not {run!r}")
    if inp["exclude_runs"] is not None and not (isinstance(inp["exclude_runs"], str) and inp["exclude_runs"]):
        raise ConfigError("'input.exclude_runs' must be the runs table (path or name) holding input.exclude_run")
    allowed = [t for t in ISSUE_TYPES if t != "label"]
    if not (isinstance(types, list) and types and all(t in allowed for t in types)):
        raise ConfigError(f"'input.exclude_types' must be a non-empty list of audit issue types from {allowed}, "
                          f"not {types!r}")


def _validate_label_sep(inp: dict, task: str) -> None:
    """``input.label_sep``: a non-empty separator, for detection.task multilabel only."""
    sep = inp["label_sep"]
    if sep is None:
        return
    if not isinstance(sep, str) or not sep or "\\E" in sep:
        raise ConfigError(f"'input.label_sep' must be a non-empty string such as '|' (the text between tags), not "
                          f"{sep!r}")
    if task != "multilabel":
        raise ConfigError(f"'input.label_sep' splits a string label into tags: it is for detection.task multilabel, "
                          f"not {task!r}; drop it or set detection.task: multilabel")


def _validate_inject(cfg: dict) -> None:

    inj = cfg["inject"]
    task = cfg["detection"]["task"]
    if task not in ("multiclass", "regression", "multilabel"):
        raise ConfigError(f"the inject job injects noise for detection.task multiclass, regression or multilabel, "
                          f"not {task!r}")
    if task == "multilabel":
        if inj["mode"] != "uniform":
            raise ConfigError(f"'inject.mode' {inj['mode']!r} is not used by detection.task multilabel: tags flip per "
                              "class; set 'inject.noise_rate' or 'inject.noise_matrix' (K x 2 x 2) and leave the mode")
        if inj["noise_matrix"] is not None:
            check_tag_noise_matrix(inj["noise_matrix"], None, name="'inject.noise_matrix'")
        else:
            check_rate(inj["noise_rate"], "'inject.noise_rate'")
        if inj["frac_zero_noise_rates"]:
            raise ConfigError("'inject.frac_zero_noise_rates' is for class_conditional multiclass noise, not for "
                              "detection.task multilabel")
        _check_outputs(cfg, ("noisy", "runs"))
        return
    if task == "regression":
        from sparknoise.noise.regression_noise import REGRESSION_MODES

        modes = list(inj["mode"]) if isinstance(inj["mode"], dict) else [inj["mode"]]
        if inj["mode"] == "uniform":  # the default of the multiclass modes: a regression run shifts
            inj["mode"] = "shift"
        elif any(m not in REGRESSION_MODES for m in modes):
            raise ConfigError(f"'inject.mode' {inj['mode']!r} is not a regression mode; use one of "
                              f"{list(REGRESSION_MODES)} or a mapping of them to rates")
        _check_outputs(cfg, ("noisy", "runs"))
        return
    if inj["mode"] not in MODES:
        raise ConfigError(f"'inject.mode' {inj['mode']!r} is unknown; use one of {list(MODES)}")
    if inj["mode"] == "instance_dependent" and not (cfg["input"]["features"] or cfg["input"]["features_col"]
                                                    or cfg["input"]["probs_col"]):
        raise ConfigError("'inject.mode' instance_dependent needs 'input.features', 'input.features_col' or "
                          "'input.probs_col' (how confusable each row is)")
    _check_outputs(cfg, ("noisy", "runs"))


def audit_features(cfg: dict) -> tuple[list[str] | None, str | None]:
    """(features, features_col) of an audit run: ``audit.features`` (a list of numeric columns, or one vector /
    array column's name), else ``input.features`` / ``input.features_col``; (None, None) without features."""
    feats = cfg["audit"]["features"]
    if feats is None:
        return cfg["input"]["features"] or None, cfg["input"]["features_col"] or None
    return (None, feats) if isinstance(feats, str) else (list(feats), None)


# what each issue type needs from the configuration, and the keys that give it (audit job)
_AUDIT_NEEDS = {
    "label": "'input.label_col' and 'input.probs_col' (your out-of-fold probabilities)",
    "outlier": "feature columns ('audit.features' or 'input.features' / 'input.features_col'), or "
               "'input.label_col' with 'input.probs_col'",
    "near_duplicate": "feature columns: set 'audit.features' (numeric columns, or one vector column) or "
                      "'input.features' / 'input.features_col'",
    "null": "feature columns: set 'audit.features' (numeric columns, or one vector column) or "
            "'input.features' / 'input.features_col'",
    "class_imbalance": "'input.label_col'",
    "underperforming_group": "'input.label_col', 'input.probs_col' and 'audit.group_cols' (the segments to compare)",
}


def _validate_audit(cfg: dict) -> None:
    """The audit job: issue types, features, split and group columns, k, extra engine arguments, outputs."""
    import inspect

    from sparknoise.audit import ISSUE_TYPES, find_data_issues

    inp, au, out = cfg["input"], cfg["audit"], cfg["output"]
    types = au["issue_types"]
    if isinstance(types, str):
        types = au["issue_types"] = [types]
    if types is not None:
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise ConfigError(f"'audit.issue_types' must be a list of issue types (or null: every type the columns "
                              f"allow), not {types!r}; the issue types are {list(ISSUE_TYPES)}")
        unknown = [t for t in types if t not in ISSUE_TYPES]
        if unknown:
            raise ConfigError(f"'audit.issue_types': unknown issue type(s) {unknown}; the issue types are "
                              f"{list(ISSUE_TYPES)}")
    feats = au["features"]
    if feats is not None and not (isinstance(feats, str) and feats.strip()) and not (
            isinstance(feats, list) and feats and all(isinstance(c, str) and c for c in feats)):
        raise ConfigError(f"'audit.features' must be a non-empty list of numeric columns or the name of one vector / "
                          f"array column, not {feats!r}")
    if feats is None and inp["features"] and inp["features_col"]:
        raise ConfigError("set at most one of 'input.features' and 'input.features_col' (or 'audit.features')")
    if feats is None and inp["features"] is not None and not (isinstance(inp["features"], list) and inp["features"]):
        raise ConfigError("'input.features' must be a non-empty list of column names")
    features, features_col = audit_features(cfg)
    has_features, has_label, has_probs = bool(features or features_col), bool(inp["label_col"]), bool(inp["probs_col"])
    groups = au["group_cols"]
    if isinstance(groups, str):
        groups = au["group_cols"] = [groups]
    if groups is not None and not (isinstance(groups, list) and groups and all(isinstance(g, str) and g
                                                                              for g in groups)):
        raise ConfigError(f"'audit.group_cols' must be a list of column names (the segments), not {groups!r}")
    ok = {"label": has_label and has_probs, "outlier": has_features or (has_label and has_probs),
          "near_duplicate": has_features, "null": has_features, "class_imbalance": has_label,
          "underperforming_group": has_label and has_probs and bool(groups)}
    for t in types or []:
        if not ok[t]:
            raise ConfigError(f"'audit.issue_types': issue type '{t}' needs {_AUDIT_NEEDS[t]}")
    if types is None and not any(ok.values()):
        raise ConfigError("no issue type can run: set 'audit.features' (or 'input.features' / 'input.features_col') "
                          "for outlier, near_duplicate and null, or 'input.label_col' (class_imbalance)")
    split = au["split_col"]
    if split is not None and not (isinstance(split, str) and split.strip()):
        raise ConfigError(f"'audit.split_col' must be a column name (the train/test split), not {split!r}")
    k = au["k"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"'audit.k' must be a positive integer (neighbours per row; Datalab's default is 10), "
                          f"not {k!r}")
    m = au["max_exact_rows"]
    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
        raise ConfigError(f"'audit.max_exact_rows' must be a positive integer or null, not {m!r}")
    params = au["params"]
    if not isinstance(params, dict):
        raise ConfigError("'audit.params' must be a mapping of find_data_issues keyword arguments")
    accepted = set(inspect.signature(find_data_issues).parameters) - set(AUDIT_ARGUMENTS) - {"df"}
    for name in params:
        if name not in accepted:
            owner = AUDIT_ARGUMENTS.get(name)
            raise ConfigError(f"'audit.params.{name}' " + (f"is set by '{owner}'; set that key instead" if owner else
                                                           f"is not an argument of find_data_issues; it takes "
                                                           f"{sorted(accepted)}"))
    if out["mode"] != "replace_run":
        raise ConfigError("'output.mode' supports 'replace_run' (rows of the same run id are replaced)")
    _check_outputs(cfg, ("data_issues", "duplicate_sets", "leakage", "runs"))


# the find_data_issues arguments the audit job sets from its own keys (never through audit.params)
AUDIT_ARGUMENTS = {"id_col": "input.id_col", "features": "audit.features", "features_col": "audit.features",
                   "label_col": "input.label_col", "probs_col": "input.probs_col", "split_col": "audit.split_col",
                   "group_cols": "audit.group_cols", "issue_types": "audit.issue_types", "k": "audit.k",
                   "max_exact_rows": "audit.max_exact_rows", "scratch": "audit.scratch"}


def _validate_evaluate(cfg: dict) -> None:

    inp, ev, det = cfg["input"], cfg["evaluate"], cfg["detection"]
    if inp["probs_col"] or not (inp["features"] or inp["features_col"]):
        raise ConfigError("evaluate trains models: set 'input.features' (numeric columns) or 'input.features_col' "
                          "(a vector column), not 'input.probs_col'")
    if det["task"] not in ("multiclass", "regression", "multilabel"):
        raise ConfigError(f"the evaluate job evaluates detection.task multiclass, multilabel or regression, not "
                          f"{det['task']!r}")
    regression = det["task"] == "regression"
    if regression:
        _validate_evaluate_regression(cfg)
    elif det["task"] == "multilabel" and (ev["noise_mode"] != "uniform" or ev["frac_zero_noise_rates"]):
        raise ConfigError("'evaluate.noise_mode' / 'evaluate.frac_zero_noise_rates' are not used by detection.task "
                          "multilabel: tags flip per class at each rate (leave noise_mode uniform)")
    elif cfg["model"]["estimator"] not in ESTIMATORS:
        raise ConfigError(f"'model.estimator' {cfg['model']['estimator']!r} is unknown; use one of {sorted(ESTIMATORS)}")
    rates = ev["noise_rates"]
    if not isinstance(rates, list) or not rates or not all(
            isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r < 1 for r in rates):
        raise ConfigError("'evaluate.noise_rates' must be a non-empty list of rates in [0, 1)")
    rate = ev["detection_noise_rate"]
    if not isinstance(rate, (int, float)) or not 0 < rate < 1:
        raise ConfigError("'evaluate.detection_noise_rate' must be a rate in (0, 1)")
    if not regression and ev["noise_mode"] not in MODES:
        raise ConfigError(f"'evaluate.noise_mode' {ev['noise_mode']!r} is unknown; use one of {list(MODES)}")
    if ev["test_where"] is None and not 0 < ev["test_fraction"] < 1:
        raise ConfigError("'evaluate.test_fraction' must be in (0, 1) (or set 'evaluate.test_where')")
    top = ev["loss_top_fraction"]
    if top is not None and not 0 < top < 1:
        raise ConfigError("'evaluate.loss_top_fraction' must be in (0, 1) or null")
    _check_outputs(cfg, ("detection", "impact", "runs"))


def _validate_evaluate_regression(cfg: dict) -> None:
    """detection.task: regression in the evaluate job: a regressor, regression noise modes, the k and n_boot."""
    from sparknoise.ml.estimators import REGRESSORS
    from sparknoise.noise.regression_evaluation import mode_rates

    inp, ev, det = cfg["input"], cfg["evaluate"], cfg["detection"]
    if cfg["model"]["estimator"] not in REGRESSORS:
        raise ConfigError(f"'model.estimator' {cfg['model']['estimator']!r} is not a regressor; for detection.task: "
                          f"regression use one of {sorted(REGRESSORS)}")
    if inp["classes"] is not None:
        raise ConfigError("'input.classes' is for class labels; a regression target has none")
    if ev["noise_mode"] == "uniform":  # the default of the multiclass modes: a regression run shifts
        ev["noise_mode"] = "shift"
    try:
        mode_rates(ev["noise_mode"], 0.1)
    except ConfigError as e:
        raise ConfigError(f"'evaluate.noise_mode': {e}") from None
    k = det["frac_issues"]
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 <= k <= 1):
        raise ConfigError(f"'detection.frac_issues' must be a fraction in [0, 1], not {k!r}")
    if not isinstance(det["n_boot"], int) or isinstance(det["n_boot"], bool) or det["n_boot"] < 0:
        raise ConfigError("'detection.n_boot' must be an integer >= 0")
    if ev["frac_zero_noise_rates"]:
        raise ConfigError("'evaluate.frac_zero_noise_rates' is for class-conditional noise of class labels; drop it "
                          "for detection.task: regression")


def _validate_detect(cfg: dict) -> None:

    inp, model, det, out = cfg["input"], cfg["model"], cfg["detection"], cfg["output"]
    _validate_task(inp, det)
    if det["task"] == "regression":
        return _validate_regression(cfg)
    sources = [k for k in ("features", "features_col", "probs_col") if inp[k]]
    if len(sources) != 1:
        raise ConfigError(
            "set exactly one of 'input.features' (numeric columns), 'input.features_col' (a vector column) "
            f"and 'input.probs_col' (your out-of-fold probabilities); got {sources or 'none'}"
        )
    if inp["features"] is not None and not (isinstance(inp["features"], list) and inp["features"]):
        raise ConfigError("'input.features' must be a non-empty list of column names")
    if not inp["probs_col"] and model["estimator"] not in ESTIMATORS:
        raise ConfigError(f"'model.estimator' {model['estimator']!r} is unknown; use one of {sorted(ESTIMATORS)}")
    if not isinstance(model["params"], dict):
        raise ConfigError("'model.params' must be a mapping of estimator parameters")
    for key, low in (("n_folds", 2), ("parallelism", 1)):
        if not isinstance(model[key], int) or model[key] < low:
            raise ConfigError(f"'model.{key}' must be an integer >= {low}")
    if det["filter_by"] not in FILTERS:
        raise ConfigError(f"'detection.filter_by' {det['filter_by']!r} is unknown; use one of {list(FILTERS)}")
    if det["rank_by"] not in QUALITY_METHODS:
        raise ConfigError(f"'detection.rank_by' {det['rank_by']!r} is unknown; use one of {list(QUALITY_METHODS)}")
    if det["weights"] not in POLICIES:
        raise ConfigError(f"'detection.weights' {det['weights']!r} is unknown; use one of {list(POLICIES)}")
    if not isinstance(det["iterations"], int) or det["iterations"] < 1:
        raise ConfigError("'detection.iterations' must be an integer >= 1")
    if not isinstance(det["max_classes"], int) or isinstance(det["max_classes"], bool) or det["max_classes"] < 2:
        raise ConfigError("'detection.max_classes' must be an integer >= 2")
    if det["iterations"] > 1 and inp["probs_col"]:
        raise ConfigError("'detection.iterations' > 1 needs a model (input.features or input.features_col)")
    if out["mode"] != "replace_run":
        raise ConfigError("'output.mode' supports 'replace_run' (rows of the same run id are replaced)")
    _check_outputs(cfg, ("scored", "issues", "runs"))


def _validate_task(inp: dict, det: dict) -> None:
    from sparknoise.jobs.tasks import TASKS

    if det["task"] not in TASKS:
        raise ConfigError(f"'detection.task' {det['task']!r} is unknown; use one of {list(TASKS)}")
    if det["task"] != "regression" and inp["prediction_col"]:
        raise ConfigError("'input.prediction_col' is for detection.task: regression (out-of-fold predictions of a "
                          f"number); a {det['task']} run reads probabilities from 'input.probs_col'")
    if det["task"] == "multilabel":
        if det["iterations"] != 1:
            raise ConfigError("'detection.iterations' > 1 is for detection.task: multiclass")


def _validate_regression(cfg: dict) -> None:
    """detection.task: regression: predictions given (then frac_issues) or a regressor on the features."""
    from sparknoise.ml.estimators import REGRESSORS

    inp, model, det, out = cfg["input"], cfg["model"], cfg["detection"], cfg["output"]
    sources = [k for k in ("features", "features_col", "prediction_col") if inp[k]]
    if len(sources) != 1:
        raise ConfigError("detection.task: regression needs exactly one of 'input.features' (numeric columns), "
                          "'input.features_col' (a vector column) and 'input.prediction_col' (your out-of-fold "
                          f"predictions); got {sources or 'none'}")
    if inp["probs_col"]:
        raise ConfigError("'input.probs_col' is for class labels; a regression run reads 'input.prediction_col'")
    if inp["classes"] is not None:
        raise ConfigError("'input.classes' is for class labels; a regression target has none")
    k = det["frac_issues"]
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 <= k <= 1):
        raise ConfigError(f"'detection.frac_issues' must be a fraction in [0, 1], not {k!r}")
    if inp["prediction_col"] and k is None:
        raise ConfigError("detection.task: regression with 'input.prediction_col' needs 'detection.frac_issues' "
                          "(the fraction of rows to flag, cleanlab's k, e.g. 0.05); with a model instead of "
                          "predictions the job searches for it")
    if inp["uncertainty_col"] and not inp["prediction_col"]:
        raise ConfigError("'input.uncertainty_col' goes with 'input.prediction_col'; with a model the job estimates "
                          "the uncertainty")
    if not inp["prediction_col"] and model["estimator"] not in REGRESSORS:
        raise ConfigError(f"'model.estimator' {model['estimator']!r} is not a regressor; for detection.task: "
                          f"regression use one of {sorted(REGRESSORS)}")
    if not isinstance(det["n_boot"], int) or isinstance(det["n_boot"], bool) or det["n_boot"] < 0:
        raise ConfigError("'detection.n_boot' must be an integer >= 0")
    if det["iterations"] != 1:
        raise ConfigError("'detection.iterations' > 1 is for detection.task: multiclass")
    if out["mode"] != "replace_run":
        raise ConfigError("'output.mode' supports 'replace_run' (rows of the same run id are replaced)")
    _check_outputs(cfg, ("scored", "issues", "runs"))


# The input keys only the annotators job reads (its tables of annotations, probabilities or items).
ANNOTATOR_INPUT = ("annotations", "annotator_col", "probs", "items")
# The input keys of the jobs that read one labelled table (detect, inject, evaluate).
TABLE_INPUT = tuple(k for k in DEFAULTS["input"] if k not in ANNOTATOR_INPUT)

# The config sections each job reads (and records in the runs table, lists in --help and logs to MLflow):
# a detect run's config carries no inject, evaluate or annotator keys it never used.
JOB_SECTIONS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "detect": {"input": TABLE_INPUT, "model": None, "detection": None,
               "output": ("scored", "issues", "runs", "mode"), "tracking": None, "run": None},
    "inject": {"input": TABLE_INPUT, "inject": None, "detection": ("task",), "output": ("noisy", "runs"),
               "run": None},
    "evaluate": {"input": TABLE_INPUT, "model": None,
                 "detection": ("task", "filter_by", "downweight", "frac_issues", "n_boot",
                               "include_aleatoric_uncertainty"), "evaluate": None,
                 "output": ("detection", "impact", "plots", "runs"), "tracking": None, "run": None},
    "report": {"output": _LOOP_TABLES["report"]},
    "audit": {"input": ("path", "table", "format", "version", "id_col", "label_col", "features", "features_col",
                        "probs_col", "where", "drop"), "audit": None,
              "output": ("data_issues", "duplicate_sets", "leakage", "runs", "mode"), "run": None},
    "review": {"output": _LOOP_TABLES["review"], "run": None},
    "apply": {"apply": None, "output": _LOOP_TABLES["apply"], "tracking": None, "run": None},
    "publish": {"output": _LOOP_TABLES["publish"]},
    "releases": {"output": _LOOP_TABLES["releases"]},
    "annotators": {"input": ("annotations", "probs", "items", "format", "id_col", "annotator_col", "label_col",
                             "probs_col", "features", "features_col", "classes"),
                   "model": None, "annotators": None,
                   "output": ("consensus", "annotator_stats", "annotation_quality", "runs"), "run": None},
}


def job_view(cfg: dict, job: str) -> dict:
    """The part of ``cfg`` that ``job`` reads: what its runs row records and hashes."""
    view: dict[str, Any] = {}
    for section, keys in JOB_SECTIONS[job].items():
        value = cfg.get(section, {})
        view[section] = copy.deepcopy(value if keys is None else {k: value.get(k) for k in keys})
    return view


def job_keys(job: str) -> list[str]:
    """Every config key ``job`` reads, as dotted names (for --help)."""
    keys = []
    for section, names in JOB_SECTIONS[job].items():
        for name in names if names is not None else DEFAULTS[section]:
            keys.append(f"{section}.{name}")
    return keys


def _normal(location: str) -> str:
    import os

    return os.path.abspath(location) if is_path(location) else location.lower()


def _same_location(a: str, b: str) -> bool:
    return _normal(a) == _normal(b)


def config_hash(cfg: dict) -> str:
    """SHA-256 of the canonical JSON of the configuration."""
    return hashlib.sha256(canonical_json(cfg).encode()).hexdigest()


def canonical_json(cfg: dict) -> str:
    """The configuration as sorted, compact JSON."""
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
