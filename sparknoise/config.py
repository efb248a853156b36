"""Job configuration: documented defaults, a YAML file, and ``key.path=value`` overrides.

Keys follow DESIGN.md section 4 (a contract: add keys, never rename). Values given on the command
line are parsed as YAML (``--set input.features=[a,b]`` gives a list). Unknown keys, wrong types
and impossible combinations raise :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Iterable

import yaml

from sparknoise.errors import ConfigError

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
        "classes": None,  # label value of each probability index (default: sorted labels)
        "where": None,  # optional SQL filter, e.g. "split = 'train'"
        "passthrough": [],  # input columns copied into the issues table for annotators
    },
    "model": {
        "estimator": "logistic_regression",
        "params": {},
        "n_folds": 5,
        "seed": 0,
        "parallelism": 1,
    },
    "detection": {
        "filter_by": "prune_by_noise_rate",
        "rank_by": "self_confidence",
        "frac_noise": 1.0,
        "num_to_remove_per_class": None,
        "min_examples_per_class": 1,
        "weights": "cleanlab",
        "downweight": 0.1,
        "iterations": 1,
        "min_new_issues": 1,
    },
    "output": {
        "scored": "sparknoise-output/scored",
        "issues": "sparknoise-output/issues",
        "runs": "sparknoise-output/runs",
        "mode": "replace_run",  # rows of this run id are replaced; other runs are kept
    },
    "run": {"id": None},
}


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
        if isinstance(cfg[key], dict) and dotted != "model.params":
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


def load_config(path: str | None = None, overrides: Iterable[str] = ()) -> dict:
    """Defaults, then the YAML file, then the overrides; validated."""
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
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    """Raise ConfigError on impossible or missing settings."""
    from sparknoise.estimators import ESTIMATORS
    from sparknoise.flags import FILTERS
    from sparknoise.kernels import QUALITY_METHODS
    from sparknoise.weights import POLICIES

    inp, model, det, out = cfg["input"], cfg["model"], cfg["detection"], cfg["output"]
    if bool(inp["path"]) == bool(inp["table"]):
        raise ConfigError("set exactly one of 'input.path' and 'input.table'")
    sources = [k for k in ("features", "features_col", "probs_col") if inp[k]]
    if len(sources) != 1:
        raise ConfigError(
            "set exactly one of 'input.features' (numeric columns), 'input.features_col' (a vector column) "
            f"and 'input.probs_col' (your out-of-fold probabilities); got {sources or 'none'}"
        )
    if inp["features"] is not None and not (isinstance(inp["features"], list) and inp["features"]):
        raise ConfigError("'input.features' must be a non-empty list of column names")
    if inp["format"] not in ("delta", "parquet"):
        raise ConfigError(f"'input.format' must be delta or parquet, not {inp['format']!r}")
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
    if det["iterations"] > 1 and inp["probs_col"]:
        raise ConfigError("'detection.iterations' > 1 needs a model (input.features or input.features_col)")
    if out["mode"] != "replace_run":
        raise ConfigError("'output.mode' supports 'replace_run' (rows of the same run id are replaced)")
    here = inp["path"] or inp["table"]
    for name in ("scored", "issues", "runs"):
        if not out[name]:
            raise ConfigError(f"'output.{name}' must be a path or a table name")
        if _same_location(out[name], here):
            raise ConfigError(f"'output.{name}' is the input location {here!r}; the input is never written")
    if len({_normal(out[n]) for n in ("scored", "issues", "runs")}) != 3:
        raise ConfigError("'output.scored', 'output.issues' and 'output.runs' must be three different locations")


def _normal(location: str) -> str:
    import os

    return os.path.abspath(location) if is_path(location) else location.lower()


def _same_location(a: str, b: str) -> bool:
    return _normal(a) == _normal(b)


def is_path(location: str) -> bool:
    """DESIGN.md section 4: a string with a '/' or a scheme is a path, else a catalog table name."""
    return "/" in location or "://" in location


def config_hash(cfg: dict) -> str:
    """SHA-256 of the canonical JSON of the configuration."""
    return hashlib.sha256(canonical_json(cfg).encode()).hexdigest()


def canonical_json(cfg: dict) -> str:
    """The configuration as sorted, compact JSON."""
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
