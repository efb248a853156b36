"""CROWDLAB on the long annotation table: consensus labels, their quality, annotation and annotator
quality, as ``cleanlab.multiannotator.get_label_quality_multiannotator`` (2.9.0) computes them.

Where it runs: every per-item step (majority vote, posterior, scores) is a native Spark expression
over the item's bundle (:mod:`sparknoise.multiannotator.expressions`), evaluated on executors. The
driver receives only summaries: the bundle checks (one row), the (annotator, label) grid (M x K),
each round's statistics grouped by consensus class (K rows), the temperature search's 33 sums, and
the final (annotator, label) statistics (M x K). Spark jobs: 3 for the bundle, 1 for calibration,
1 per consensus round (2 with ``best_quality``), 1 for the annotator statistics.

Float sums over items (the consensus likelihood, the calibration means, the annotator means) are
exact decimal sums, hence the same on every partitioning; cleanlab's numpy sums differ from the
exact value by a few ulps (far below the 1e-9 parity tolerance). Sums over an item's annotators
run in annotator order, exactly as cleanlab's loop does, so exact ties (which decide the
best-quality consensus) come out the same.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Sequence

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparknoise.errors import ConfigError
from sparknoise.multiannotator import expressions as X
from sparknoise.multiannotator import udfs as U
from sparknoise.multiannotator.bundle import (
    A,
    Bundle,
    Columns,
    Y,
    annotator_agreement,
    build,
    vote_agreement,
)
from sparknoise.multiannotator.calibration import best_temperature

log = logging.getLogger("sparknoise")

CONSENSUS_METHODS = ("best_quality", "majority_vote")
MULTI_QUALITY_METHODS = ("crowdlab", "agreement")
LABEL_QUALITY_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")


@dataclass
class Round:
    """One consensus round's statistics (driver-side scalars and the M annotator weights)."""

    cl: float | None = None
    mw: float | None = None
    aw: np.ndarray | None = None
    ties_left: int = 0


@dataclass
class MultiannotatorResult:
    """What :func:`multiannotator_quality` found. The DataFrames are lazy (each action recomputes
    from the inputs, or from the bundle table when ``scratch`` was given)."""

    items: DataFrame  # item, consensus_label, consensus_quality_score, annotator_agreement, num_annotations
    annotations: DataFrame  # item, annotator, label, label_quality
    annotators: DataFrame  # annotator, annotator_quality, agreement_with_consensus, worst_class, ...
    model_weight: float | None
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Counts, methods, weights, the temperature and consensus-quality statistics (a dict)."""
        return dict(self.info)


def check_options(consensus_method: str, quality_method: str, label_quality_method: str) -> None:
    # cleanlab's wording ("... is not a valid consensus method"), which its tests pin
    for name, value, allowed, what in (
            ("consensus_method", consensus_method, CONSENSUS_METHODS, "consensus method"),
            ("quality_method", quality_method, MULTI_QUALITY_METHODS, "quality method"),
            ("label_quality_method", label_quality_method, LABEL_QUALITY_METHODS, "label quality method")):
        if value not in allowed:
            raise ConfigError(f"{name}={value!r} is not a valid {what}; use one of {list(allowed)}")


def prepared(b: Bundle, *, use_probs: bool = True, temperature: float | None = None) -> DataFrame:
    """The bundle with ``probs`` (the probabilities CROWDLAB uses), the label counts ``cnt``, the
    majority vote ``mv`` (``mv_tied``: a tie no rule broke, given to the lowest class) and the
    model's ``argmax``: one Arrow UDF pass over the items."""
    prep = U.prepare_udf(b.K, b.freq, vote_agreement(b.grid), use_probs=use_probs, temperature=temperature)
    frame = b.frame.withColumn("__prep", prep(F.col("cells"), F.col("p")))
    return frame.select(*b.frame.columns, *[F.col(f"__prep.{k}").alias(v) for k, v in (
        ("P", "probs"), ("cnt", "cnt"), ("mv", "mv"), ("tied", "mv_tied"), ("argmax", "argmax"))])


def _agree(cons: Column) -> Column:
    return F.get(F.col("cnt"), cons).cast("double") / F.col("m").cast("double")


def round_stats(b: Bundle, frame: DataFrame, cons: str, quality_method: str, a: np.ndarray | None) -> Round:
    """One Spark job grouped by consensus class (K rows): the round's consensus likelihood, most
    likely class error, model error, then the annotator and model weights (CROWDLAB)."""
    multi = F.col("m") >= 2
    rows = frame.groupBy(F.col(cons).alias("k")).agg(
        F.sum(multi.cast("long")).alias("multi"),
        X.exact_sum(F.when(multi, _agree(F.col(cons)))).alias("agree"),
        F.sum((multi & (F.col("argmax") != F.col(cons))).cast("long")).alias("model_errors"),
        F.sum(F.col("mv_tied").cast("long")).alias("ties"),
    ).collect()  # one row per consensus class: <= K rows
    ties = sum(int(r["ties"] or 0) for r in rows)
    if quality_method != "crowdlab":
        return Round(ties_left=ties)
    n2 = b.n_multi
    bincount = np.zeros(b.K, dtype=np.int64)
    for r in rows:
        bincount[r["k"]] = r["multi"]
    agree_total = sum((r["agree"] or Decimal(0) for r in rows), Decimal(0))
    cl = float(agree_total) / n2
    top = int(np.argmax(bincount))
    mlce = max((n2 - int(bincount[top])) / n2, X.CLIPPING_LOWER_BOUND)
    aw = np.clip(1 - ((1 - a) / mlce), X.CLIPPING_LOWER_BOUND, None)
    model_error = sum(int(r["model_errors"] or 0) for r in rows) / n2
    mw = float(np.max([(1 - (model_error / mlce)), X.CLIPPING_LOWER_BOUND]) * np.sqrt(b.n_annotations / b.n_items))
    return Round(cl=cl, mw=mw, aw=aw, ties_left=ties)


def consensus_round(b: Bundle, frame: DataFrame, cons: str, quality_method: str, a: np.ndarray | None,
                    label_quality_method: str) -> tuple[DataFrame, Round]:
    """The round's statistics (one job), then one Arrow UDF pass: ``post``, ``cqs``, the annotations'
    quality ``q``, the unique argmax ``best`` and ``aw_sum``; and ``agree`` natively."""
    r = round_stats(b, frame, cons, quality_method, a)
    ncl = ((1 - r.cl) / (b.K - 1) if b.K > 1 else float("nan")) if r.cl is not None else 0.0
    udf = U.round_udf(b.K, quality_method=quality_method, label_quality_method=label_quality_method, aw=r.aw,
                      cl=r.cl or 0.0, ncl=ncl, mw=r.mw or 0.0)
    keep = [c for c in frame.columns if c not in ROUND_COLUMNS]
    frame = frame.select(*keep).withColumn("__round", udf(F.col("cells"), F.col("probs"), F.col("cnt"), F.col("m"),
                                                          F.col(cons)))
    return frame.select(*keep, *[F.col(f"__round.{k}").alias(k) for k in ("post", "cqs", "q", "best", "aw_sum")],
                        _agree(F.col(cons)).alias("agree")), r


ROUND_COLUMNS = ("post", "cqs", "q", "best", "aw_sum", "agree")


def annotator_rows(b: Bundle, frame: DataFrame, cons: str, quality_method: str, r: Round) -> list[dict]:
    """One job grouping the cells by (annotator, given label): at most M x K rows to the driver,
    turned into cleanlab's annotator statistics, sorted as cleanlab sorts them."""
    cells = frame.select(F.col(cons).alias("cons"), "cqs", "m", F.explode(F.arrays_zip(
        F.col("cells").alias("c"), F.col("q").alias("q"))).alias("z"))
    y = F.col("z.c")[Y]
    hit = y == F.col("cons")
    multi = F.col("m") >= 2
    grid = cells.groupBy(F.col("z.c")[A].alias(A), y.alias(Y)).agg(
        F.count(F.lit(1)).alias("n"), F.sum(hit.cast("long")).alias("hits"),
        F.sum(multi.cast("long")).alias("n2"), F.sum((hit & multi).cast("long")).alias("hits2"),
        X.exact_sum(F.col("z.q")).alias("q"), X.exact_sum(F.col("cqs")).alias("cqs")).collect()  # <= M x K rows
    per: dict[int, dict[int, Any]] = {}
    for g in grid:
        per.setdefault(g[A], {})[g[Y]] = g
    frac = (b.n_annotations / b.n_items) / b.M
    if quality_method == "crowdlab":
        awa = np.sum(r.aw * frac)
        w = r.mw / (r.mw + awa)
    out = []
    for j, ident in enumerate(b.annotators):
        classes = per.get(j, {})
        n = sum(g["n"] for g in classes.values())
        n2 = sum(g["n2"] for g in classes.values())
        agree2 = sum(g["hits2"] for g in classes.values()) / n2 if n2 else float("nan")
        if quality_method == "crowdlab":
            lqs = float(sum((g["q"] for g in classes.values()), Decimal(0))) / n
            quality = w * lqs + (1 - w) * agree2
        else:
            quality = agree2

        worst = min(classes, key=lambda k, cs=classes: _worst_key(cs[k], k))
        out.append({"position": j, "annotator": ident, "annotator_quality": float(quality),
                    "agreement_with_consensus": sum(g["hits"] for g in classes.values()) / n,
                    "worst_class": worst, "num_examples_labeled": n,
                    "annotator_weight": float(r.aw[j]) if r.aw is not None else None})

    def order(row: dict) -> tuple:
        qv, av = row["annotator_quality"], row["agreement_with_consensus"]
        return (math.isnan(qv), 0.0 if math.isnan(qv) else qv, math.isnan(av), 0.0 if math.isnan(av) else av,
                row["position"])

    return sorted(out, key=order)


def _worst_key(g: Any, k: int) -> tuple:
    """cleanlab's worst class: lowest accuracy, then most labels, then highest mean consensus quality
    (exact decimal means), then the lowest class."""
    return (g["hits"] / g["n"], -g["n"], -(g["cqs"] / g["n"]), k)


def run_crowdlab(b: Bundle, *, consensus_method: str, quality_method: str, calibrate_probs: bool,
                 label_quality_method: str, temperature: float | None = None) -> tuple[DataFrame, Round, dict]:
    """The consensus rounds: returns the item frame (with ``cons``, ``cqs``, ``agree``, ``post``, ``q``),
    the main round and run information. ``temperature`` rescales the probabilities first (active learning)."""
    info: dict[str, Any] = {}
    if calibrate_probs:
        temperature = best_temperature(b)
        info["temperature"] = temperature
    frame = prepared(b, temperature=temperature)
    a = annotator_agreement(b.grid) if quality_method == "crowdlab" else None
    frame, r = consensus_round(b, frame, "mv", quality_method, a, label_quality_method)
    info["ties_broken_by_lowest_class"] = r.ties_left
    if r.ties_left:
        log.warning("multiannotator: %d item(s) had a majority-vote tie that no rule broke; cleanlab draws at "
                    "random, sparknoise takes the lowest class index", r.ties_left)
    if consensus_method == "best_quality":
        frame = frame.withColumn("cons", F.when(F.col("best") >= 0, F.col("best")).otherwise(F.col("mv")))
        frame, r2 = consensus_round(b, frame, "cons", quality_method, a, label_quality_method)
        r = Round(cl=r2.cl, mw=r2.mw, aw=r2.aw, ties_left=r.ties_left)
    else:
        frame = frame.withColumn("cons", F.col("mv"))
    return frame, r, info


def _annotator_frame(b: Bundle, rows: list[dict]) -> DataFrame:
    schema = T.StructType([
        T.StructField(b.cols.annotator, b.annotator_field.dataType),
        T.StructField("annotator_quality", T.DoubleType()),
        T.StructField("agreement_with_consensus", T.DoubleType()),
        T.StructField("worst_class", b.label_field.dataType if b.classes is not None else T.LongType()),
        T.StructField("num_examples_labeled", T.LongType()),
        T.StructField("annotator_weight", T.DoubleType()),
    ])
    data = [(r["annotator"], r["annotator_quality"], r["agreement_with_consensus"], b.label_value(r["worst_class"]),
             r["num_examples_labeled"], r["annotator_weight"]) for r in rows]
    return b.frame.sparkSession.createDataFrame(data, schema)


def multiannotator_quality(
    annotations: DataFrame,
    pred_probs: DataFrame,
    *,
    item_col: str = "id",
    annotator_col: str = "annotator",
    label_col: str = "label",
    probs_col: str = "pred_probs",
    classes: Sequence[Any] | None = None,
    consensus_method: str = "best_quality",
    quality_method: str = "crowdlab",
    calibrate_probs: bool = False,
    label_quality_method: str = "self_confidence",
    scratch: str | None = None,
) -> MultiannotatorResult:
    """Consensus labels, consensus quality, per-annotation and per-annotator quality (CROWDLAB).

    ``annotations`` has one row per (item, annotator, label); ``pred_probs`` one row per item with
    the model's out-of-fold probabilities (``array<double>``, ``array<float>`` or an ML vector).
    Labels are 0..K-1, or any values listed in ``classes`` (one per probability index). Returns
    what ``cleanlab.multiannotator.get_label_quality_multiannotator`` returns on the same data in
    wide form (items and annotators in ascending id order): identical consensus labels and worst
    classes, every score and weight within 1e-9. ``consensus_method`` is ``best_quality`` (the
    default, as in cleanlab) or ``majority_vote``; ``quality_method`` ``crowdlab`` or ``agreement``;
    ``calibrate_probs`` runs cleanlab's temperature search first; ``label_quality_method`` scores
    each label against the posterior. ``scratch`` (a Delta location) materialises the bundle once,
    which every later pass then reads. Where cleanlab breaks a tie at random, sparknoise takes the
    lowest class index (``summary()['ties_broken_by_lowest_class']`` counts them).
    """
    check_options(consensus_method, quality_method, label_quality_method)
    cols = Columns(item=item_col, annotator=annotator_col, label=label_col, probs=probs_col)
    b = build(annotations, pred_probs, cols, classes=classes, scratch=scratch)
    frame, r, info = run_crowdlab(b, consensus_method=consensus_method, quality_method=quality_method,
                                  calibrate_probs=calibrate_probs, label_quality_method=label_quality_method)
    rows = annotator_rows(b, frame, "cons", quality_method, r)
    items = frame.select(
        F.col(item_col), b.label_values(F.col("cons")).alias("consensus_label"),
        F.col("cqs").alias("consensus_quality_score"), F.col("agree").alias("annotator_agreement"),
        F.col("m").cast("long").alias("num_annotations"))
    cells = frame.select(F.col(item_col), F.explode(F.arrays_zip(F.col("cells").alias("c"), F.col("q").alias("q")))
                         .alias("z"))
    detailed = cells.select(F.col(item_col), F.col("z.c")[A].alias(A), b.label_values(F.col("z.c")[Y]).alias(label_col),
                            F.col("z.q").alias("label_quality"))
    detailed = detailed.join(F.broadcast(b.positions), A).select(item_col, annotator_col, label_col, "label_quality")
    info.update(n_items=b.n_items, n_annotators=b.M, n_annotations=b.n_annotations, n_multi_annotated=b.n_multi,
                num_classes=b.K, consensus_method=consensus_method, quality_method=quality_method,
                calibrate_probs=calibrate_probs, label_quality_method=label_quality_method, model_weight=r.mw)
    return MultiannotatorResult(items=items, annotations=detailed, annotators=_annotator_frame(b, rows),
                                model_weight=r.mw, info=info)


def majority_vote(
    annotations: DataFrame,
    pred_probs: DataFrame | None = None,
    *,
    item_col: str = "id",
    annotator_col: str = "annotator",
    label_col: str = "label",
    probs_col: str = "pred_probs",
    classes: Sequence[Any] | None = None,
    scratch: str | None = None,
) -> DataFrame:
    """Each item's majority-vote label (item, ``majority_label``), with cleanlab's tie-breaks.

    Ties between the most frequent labels go to the class with the highest probability (with
    ``pred_probs``), then to the class annotated least often in the whole table, then to the class
    whose annotators agree most with the untied votes; a tie left after that goes to the lowest
    class (cleanlab draws at random). Without ``pred_probs`` K is the largest label + 1 (or
    ``len(classes)``). Items with one label, and a single annotator, are allowed.
    """
    cols = Columns(item=item_col, annotator=annotator_col, label=label_col, probs=probs_col)
    b = build(annotations, pred_probs, cols, classes=classes, scratch=scratch, allow_single=True)
    frame = prepared(b, use_probs=pred_probs is not None)
    return frame.select(F.col(item_col), b.label_values(F.col("mv")).alias("majority_label"))
