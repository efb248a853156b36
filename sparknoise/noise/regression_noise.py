"""Corruption of numeric labels, for ``inject_label_noise(..., task="regression")``.

Which rows are hit is decided by the shared exact selection of ``injection.py`` (a hash of (id, seed)
ranked without a sort: exactly ``round(rate * N)`` rows per mode, the modes disjoint). This module
checks the regression arguments (driver), computes the label statistics (one aggregation whose
sums are exact, so they do not depend on the partitioning; at most one row per binary exponent of
the label reaches the driver, see :func:`label_stats`) and rewrites the selected rows' values
(executors, per row):

* ``shift``: ``y + s * shift_std * sd(y)``, the sign ``s`` = +1 or -1 drawn per row from a hash of
  (id, seed); ``sd`` is the population standard deviation (``ddof=0``, numpy's default) of the label
  over all N rows. A mis-scaled or mis-keyed value far from the truth.
* ``swap``: the label of another row (a value entered on the wrong record). Every row of the table
  is hashed into one of ``max(1, N // 16)`` donor slots; a swapped row hashes to a slot, lists the
  slot's rows whose value differs from its own (in the order of a second hash of (id, seed)) and
  takes the value at a position drawn from a third hash. When all of the slot's values equal its
  own (or the slot is empty), it takes the label's overall maximum, or its minimum when the
  maximum is its own value: the value then differs from its own whenever the label is not
  constant. The swapped value is thus another row's value, close to a draw from the label's
  distribution (without its own value). The slots are built by a
  ``groupBy`` and joined to the swapped rows on the executors; nothing row-level reaches the driver.
* ``unit``: ``y * factor`` or ``y / factor`` (a unit mix-up: cm for mm), the direction drawn per
  row from a hash of (id, seed).
* ``default``: the constant ``default_value`` (a form's default left in place).

A hit can leave the value unchanged in degenerate cases: ``default`` on a row already at the
default, ``unit`` on a zero, ``shift`` and ``swap`` on a constant label. ``noise_mode`` still records
the hit (its counts stay exact), but ``is_noisy`` is true only where the value changed.

Types: ``float`` and ``double`` labels keep their type; integral and decimal labels are cast to
``double`` (in the label column and in ``true_label``, so the two compare), because a shift, a
``/ factor`` or a fractional default are not integers. Doubles hold integers exactly up to 2^53.

Every draw (sign, direction, slot, position) is a hash of (id, seed) with its own salt: the same
(id, seed) gives the same noise on any partitioning and engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.core.inputs import NUMERIC_TYPES
from sparknoise.errors import ConfigError, InputError
from sparknoise.noise.segments import linear_bucket, uniform_hash

REGRESSION_MODES = ("shift", "swap", "unit", "default")
NOISE_MODE = "noise_mode"
SLOT_ROWS = 16  # rows per donor slot of ``swap``, on average
_SLOT = "__sn_swap_slot"
_DONORS = "__sn_swap_donors"
# Hash salts (the multiclass modes use 1 and 2; the evaluation's split uses 7).
_SALT_SIGN, _SALT_UNIT, _SALT_SLOT, _SALT_ORDER, _SALT_TARGET, _SALT_PICK = 11, 12, 13, 14, 15, 16


@dataclass(frozen=True)
class RegressionNoise:
    """Checked regression arguments: a rate per mode (in ``REGRESSION_MODES`` order) and the parameters."""

    rates: dict[str, float]
    shift_std: float
    factor: float
    default_value: float


@dataclass(frozen=True)
class LabelStats:
    """What the driver knows about the label: one aggregation's row."""

    n: int
    mean: float
    std: float
    min: float
    max: float


def check_rate(value, name: str) -> float:
    """``value`` as a float in [0, 1); raises :class:`ConfigError` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _finite(value, name: str, default: float, rule: str = "a finite number") -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be {rule}, got {value!r}")
    return float(value)


def regression_config(mode, noise_rate, *, shift_std, factor, default_value) -> RegressionNoise:
    """Check the regression arguments (driver only). ``mode`` is one mode (with ``noise_rate``) or a
    dict mode -> rate (without it)."""
    if isinstance(mode, Mapping):
        if noise_rate is not None:
            raise ConfigError("with a dict mode (mode -> rate) the rates are in the dict: drop noise_rate, or pass "
                              "a single mode name with noise_rate")
        given = dict(mode)
    else:
        if mode is None:
            mode = "shift"
        if not isinstance(mode, str):
            raise ConfigError(f"mode must be a mode name or a dict mode -> rate, got {mode!r}")
        if noise_rate is None:
            raise ConfigError(f"mode={mode!r} needs noise_rate (a number in [0, 1)), or pass a dict mode -> rate")
        given = {mode: noise_rate}
    unknown = [m for m in given if m not in REGRESSION_MODES]
    if unknown:
        hint = (" (it is a class-label mode: pass task='multiclass')"
                if unknown[0] in ("uniform", "class_conditional", "instance_dependent") else "")
        raise ConfigError(f"mode {unknown[0]!r} is unknown for task='regression'; use one of {list(REGRESSION_MODES)} "
                          f"(or a dict of them -> rate){hint}")
    if not given:
        raise ConfigError(f"mode is an empty dict; give at least one of {list(REGRESSION_MODES)} with a rate")
    as_dict = isinstance(mode, Mapping)
    rates = {m: check_rate(given[m], f"the rate of mode {m!r}" if as_dict else "noise_rate")
             for m in REGRESSION_MODES if m in given}  # the fixed mode order, whatever the dict's order
    if sum(rates.values()) >= 1.0:
        raise ConfigError(f"the mode rates {rates} sum to {sum(rates.values()):g}; they must sum to less than 1 "
                          "(the modes hit disjoint rows)")
    shift = _finite(shift_std, "shift_std", 3.0)
    if shift <= 0:
        raise ConfigError(f"shift_std must be a positive number of standard deviations, got {shift_std!r}")
    fac = _finite(factor, "factor", 10.0)
    if fac <= 0 or fac == 1.0:
        raise ConfigError(f"factor must be a positive number other than 1 (the unit mix-up, e.g. 10), got {factor!r}")
    return RegressionNoise(rates=rates, shift_std=shift, factor=fac,
                           default_value=_finite(default_value, "default_value", 0.0))


def label_as_double(df: DataFrame, label_col: str) -> Column:
    """The label as ``double``; raises :class:`InputError` when it is not numeric (driver, no job)."""
    dtype = df.schema[label_col].dataType
    if not isinstance(dtype, NUMERIC_TYPES):
        raise InputError(f"label column '{label_col}' has type {dtype.simpleString()}; task='regression' needs a "
                         f"numeric label (int, long, float, double or decimal). Cast it "
                         f"(F.col('{label_col}').cast('double')), or use task='multiclass' for class labels.",
                         column=label_col)
    return F.col(label_col).cast("double")


def output_type(dtype: T.DataType) -> T.DataType:
    """The noisy label's type: ``float``/``double`` kept, integral and decimal labels as ``double``."""
    return dtype if isinstance(dtype, (T.FloatType, T.DoubleType)) else T.DoubleType()


def label_stats(df: DataFrame, y_col: str, label_col: str, id_col: str) -> LabelStats:
    """N, mean, population sd, min and max of the double label ``y_col``; raises :class:`InputError` on
    null/NaN/infinite labels, null ids or an empty input.

    One aggregation, grouped by the binary exponent ``e = floor(log2 |y|)`` of the label (at most
    ~2,100 groups reach the driver: the exponent range of a double, zeros, bad values). The sums are
    exact, so the statistics do not depend on the partitioning (a double ``sum``/``stddev`` does, in
    its last bits, through the order of the additions, and the shift would too): per group,
    ``y / 2^e`` (exact in doubles) and its square are summed as ``decimal(38, 27)`` (decimal sums are
    exact); the driver adds the groups with Python fractions and takes ``var = S2 / N - (S1 / N)^2``.
    """
    y = F.col(y_col)
    bad = y.isNull() | F.isnan(y) | (F.abs(y) == F.lit(float("inf")))
    exponent = F.when(~bad & (y != F.lit(0.0)), F.floor(F.log2(F.abs(y))).cast("int"))
    scaled = y / F.pow(F.lit(2.0), exponent)
    dec = "decimal(38,27)"
    groups = df.groupBy(exponent.alias("e"), bad.alias("bad")).agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.col(id_col).isNull().cast("long")).alias("null_ids"),
        F.try_sum(scaled.cast(dec)).alias("s1"), F.try_sum((scaled * scaled).cast(dec)).alias("s2"),
        F.min(y).alias("min"), F.max(y).alias("max"),
    ).collect()  # <= ~2,100 rows: one per binary exponent
    n = sum(int(g["n"]) for g in groups)
    if n == 0:
        raise InputError("the input has no rows; there is nothing to add noise to.", column=label_col)
    n_bad = sum(int(g["n"]) for g in groups if g["bad"])
    if n_bad:
        raise InputError(f"label column '{label_col}' has {n_bad} null, NaN or infinite value(s); drop or fix "
                         "those rows before injecting noise.", column=label_col)
    if any(g["null_ids"] for g in groups):
        raise InputError(f"id column '{id_col}' has null values; every row needs a unique non-null id.",
                         column=id_col)
    s1 = s2 = Fraction(0)
    for g in groups:
        if g["e"] is None:  # zeros
            continue
        if g["s1"] is None or g["s2"] is None:
            raise InputError(f"label column '{label_col}': {g['n']} values share one binary exponent, too many for "
                             "the exact sums (decimal(38, 27)); the table is too large for regression noise.",
                             column=label_col)
        scale = Fraction(2) ** int(g["e"])
        s1 += Fraction(g["s1"]) * scale
        s2 += Fraction(g["s2"]) * scale * scale
    mean = s1 / n
    lo, hi = float(min(g["min"] for g in groups)), float(max(g["max"] for g in groups))
    var = max(s2 / n - mean * mean, Fraction(0)) if hi > lo else Fraction(0)  # a constant label: sd exactly 0
    return LabelStats(n=n, mean=float(mean), std=math.sqrt(float(var)), min=lo, max=hi)


def _swap_donors(df: DataFrame, y_col: str, id_col: str, seed: int, slots: int) -> DataFrame:
    """One row per donor slot: its rows' (order hash, id, value), sorted (executors)."""
    entry = F.struct(uniform_hash(id_col, seed, _SALT_ORDER).alias("h"), F.col(id_col).alias("id"),
                     F.col(y_col).alias("y"))
    return (df.select(linear_bucket(uniform_hash(id_col, seed, _SALT_SLOT), slots).alias(_SLOT), entry.alias("d"))
            .groupBy(_SLOT).agg(F.array_sort(F.collect_list("d")).alias(_DONORS)))


def corrupt(df: DataFrame, *, mode_index: Column, y_col: str, new_col: str, id_col: str, seed: int,
            cfg: RegressionNoise, stats: LabelStats) -> DataFrame:
    """``df`` plus ``new_col`` (the noisy label, double) and ``noise_mode`` (string, null for rows not hit).

    ``mode_index`` is the row's position in ``cfg.rates`` (the shared exact selection), or any larger
    value for a row that is not hit. Per row on the executors; ``swap`` rows are joined to their
    donor slot (the other rows skip the join).
    """
    modes = list(cfg.rates)
    name = F.lit(None).cast("string")
    for i, m in enumerate(modes):
        name = F.when(mode_index == F.lit(i), F.lit(m)).otherwise(name)
    work = df.withColumn(NOISE_MODE, name)
    y = F.col(y_col)
    sign = F.when(uniform_hash(id_col, seed, _SALT_SIGN) < F.lit(0.5), F.lit(1.0)).otherwise(F.lit(-1.0))
    up = uniform_hash(id_col, seed, _SALT_UNIT) < F.lit(0.5)
    by_mode = {
        "shift": y + sign * F.lit(cfg.shift_std * stats.std),
        "unit": F.when(up, y * F.lit(cfg.factor)).otherwise(y / F.lit(cfg.factor)),
        "default": F.lit(cfg.default_value),
        "swap": F.col("__sn_swapped"),
    }
    if "swap" in cfg.rates and cfg.rates["swap"] > 0:
        slots = max(1, stats.n // SLOT_ROWS)
        is_swap = F.col(NOISE_MODE) == F.lit("swap")
        donors = _swap_donors(df, y_col, id_col, seed, slots)
        target = linear_bucket(uniform_hash(id_col, seed, _SALT_TARGET), slots).alias(_SLOT)
        swapped = work.filter(is_swap).withColumn(_SLOT, target).join(donors, _SLOT, "left")
        other = F.filter(F.col(_DONORS), lambda d: d["y"] != y)  # null for an empty slot
        pick = F.floor(uniform_hash(id_col, seed, _SALT_PICK) * F.size(other)).cast("int") + F.lit(1)
        fallback = F.when(y != F.lit(stats.max), F.lit(stats.max)).otherwise(F.lit(stats.min))
        swapped = swapped.withColumn("__sn_swapped", F.coalesce(F.try_element_at(other, pick)["y"], fallback))
        swapped = swapped.drop(_SLOT, _DONORS)
        rest = work.filter(~is_swap | F.col(NOISE_MODE).isNull()).withColumn("__sn_swapped", F.lit(None).cast("double"))
        work = rest.unionByName(swapped)
    else:
        work = work.withColumn("__sn_swapped", F.lit(None).cast("double"))
    new = y
    for m in modes:
        new = F.when(F.col(NOISE_MODE) == F.lit(m), by_mode[m]).otherwise(new)
    return work.withColumn(new_col, new.cast("double")).drop("__sn_swapped")
