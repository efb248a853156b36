"""Multi-annotator CROWDLAB parity with cleanlab 2.9.0 (the oracle), on the long table.

One dataset holds every shape the rules treat specially: items with one label, an annotator who
only labels singly-labelled items (NaN quality in cleanlab, sorted last), a class nobody uses.
Two calls here and the string-label test cover both consensus methods, both quality methods, calibration and the three
label-quality methods; one more runs string labels and ids on one partition against eight.
Consensus labels, worst classes and the annotator order are compared exactly, every float within
1e-9.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from cleanlab.multiannotator import (
    get_active_learning_scores,
    get_label_quality_multiannotator,
    get_majority_vote_label,
)
from multiannotator_data import make_annotations, wide

import sparknoise as sn
from sparknoise.errors import InputError

TOL = 1e-9
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [  # consensus, quality, calibrate, label quality
    ("majority_vote", "crowdlab", True, "confidence_weighted_entropy"),
    ("best_quality", "agreement", True, "normalized_margin"),
]


@pytest.fixture(scope="module")
def data(spark):
    long, p = make_annotations()
    probs = pd.DataFrame({"id": np.arange(len(p)), "pred_probs": list(p)})
    return long, p, spark.createDataFrame(long), spark.createDataFrame(probs)


def _oracle(long, p, consensus, quality, calibrate, method):
    return get_label_quality_multiannotator(
        wide(long), p, consensus_method=consensus, quality_method=quality, calibrate_probs=calibrate,
        label_quality_score_kwargs={"method": method}, return_weights=quality == "crowdlab", verbose=False)


def _assert_same(res, ref, classes=None, annotators=None):
    """res (sparknoise) against ref (cleanlab, integer classes and ids)."""
    decode = (lambda s: s.map(classes.index)) if classes else (lambda s: s)
    items = res.items.toPandas()
    if classes:
        items["id"] = items["id"].map(lambda s: int(s[1:]))
    items = items.sort_values("id").reset_index(drop=True)
    lq = ref["label_quality"]
    assert list(decode(items.consensus_label)) == list(lq.consensus_label)
    for col in ("consensus_quality_score", "annotator_agreement"):
        np.testing.assert_allclose(items[col], lq[col], rtol=0, atol=TOL)
    assert list(items.num_annotations) == list(lq.num_annotations)
    stats = res.annotators.toPandas()
    want = ref["annotator_stats"]
    ids = list(stats.annotator if annotators is None else stats.annotator.map(annotators.index))
    assert ids == list(want.index)  # cleanlab's order: quality, then agreement, NaN last
    assert list(decode(stats.worst_class)) == list(want.worst_class)
    assert list(stats.num_examples_labeled) == list(want.num_examples_labeled)
    for col in ("annotator_quality", "agreement_with_consensus"):
        np.testing.assert_allclose(stats[col], want[col], rtol=0, atol=TOL)
    assert np.isnan(stats.annotator_quality.iloc[-1])  # the annotator of single-label items only
    detailed = res.annotations.toPandas()
    if classes:
        detailed["id"] = detailed["id"].map(lambda s: int(s[1:]))
        detailed["annotator"] = detailed["annotator"].map(annotators.index)
    table = ref["detailed_label_quality"]
    expected = [table.at[r.id, f"quality_annotator_{r.annotator}"] for r in detailed.itertuples()]
    np.testing.assert_allclose(detailed.label_quality, expected, rtol=0, atol=TOL)
    assert len(detailed) == table.notna().sum().sum()
    if "model_weight" in ref:
        assert res.model_weight == pytest.approx(ref["model_weight"], abs=TOL)
        weights = dict(zip(ids, stats.annotator_weight))
        np.testing.assert_allclose([weights[j] for j in range(len(weights))], ref["annotator_weight"], rtol=0, atol=TOL)
    else:
        assert res.model_weight is None and stats.annotator_weight.isna().all()
    return items


@pytest.mark.parametrize("consensus,quality,calibrate,method", CASES)
def test_crowdlab_matches_cleanlab(data, consensus, quality, calibrate, method):
    long, p, ann, probs = data
    res = sn.multiannotator_quality(ann, probs, consensus_method=consensus, quality_method=quality,
                                    calibrate_probs=calibrate, label_quality_method=method)
    ref = _oracle(long, p, consensus, quality, calibrate, method)
    items = _assert_same(res, ref)
    summary = res.summary()
    assert summary["n_items"] == len(items) and summary["n_annotators"] == 10
    if calibrate:
        assert summary["temperature"] in (7.25, 5.75, 6.5, 5.0) or 0 < summary["temperature"] <= 7.25


def test_string_labels_and_ids_on_one_and_many_partitions(spark, data):
    long, p, _, _ = data
    classes = ["cat", "dog", "eel", "fox"]
    annotators = [f"ann{j:02d}" for j in range(10)]
    text = pd.DataFrame({"id": long.id.map(lambda i: f"i{i:04d}"), "annotator": long.annotator.map(annotators.__getitem__),
                         "label": long.label.map(classes.__getitem__)})
    probs = pd.DataFrame({"id": [f"i{i:04d}" for i in range(len(p))], "pred_probs": list(p)})
    ann, pp = spark.createDataFrame(text), spark.createDataFrame(probs)
    one = sn.multiannotator_quality(ann.coalesce(1), pp.coalesce(1), classes=classes)
    ref = _oracle(long, p, "best_quality", "crowdlab", False, "self_confidence")
    _assert_same(one, ref, classes, annotators)
    many = sn.multiannotator_quality(ann.repartition(8), pp.repartition(8), classes=classes)
    for attr, key in (("items", ["id"]), ("annotators", ["annotator"]), ("annotations", ["id", "annotator"])):
        a = getattr(one, attr).toPandas().sort_values(key).reset_index(drop=True)
        b = getattr(many, attr).toPandas().sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)  # bit-identical: sums are exact, per-item order is fixed


def test_majority_vote_and_active_learning_match_cleanlab(spark, data):
    long, p, ann, probs = data
    votes = sn.majority_vote(ann, probs).toPandas().sort_values("id")
    assert list(votes.majority_label) == list(get_majority_vote_label(wide(long), p, verbose=False))
    unlabelled = np.random.default_rng(7).dirichlet(np.ones(4), 20)
    pool = spark.createDataFrame(pd.DataFrame({"id": np.arange(5000, 5020), "pred_probs": list(unlabelled)}))
    scores = sn.active_learning_scores(ann, probs, pool).toPandas().sort_values("id")
    want, want_pool = get_active_learning_scores(wide(long), p, unlabelled)
    np.testing.assert_allclose(scores.active_learning_score, np.concatenate([want, want_pool]), rtol=0, atol=TOL)
    assert list(scores.num_annotations[-20:]) == [0] * 20
    # every item labelled once: cleanlab's single-label branch (no calibration, unit weights)
    single = long.groupby("id").head(1)
    scores = sn.active_learning_scores(spark.createDataFrame(single), probs, pool).toPandas().sort_values("id")
    want, want_pool = get_active_learning_scores(wide(single), p, unlabelled)
    np.testing.assert_allclose(scores.active_learning_score, np.concatenate([want, want_pool]), rtol=0, atol=TOL)


def test_majority_vote_tie_breaks_without_probabilities(spark):
    # item 0: a 1-1 tie between classes 0 and 1; class 1 is rarer overall, so it wins (cleanlab
    # keeps the least frequent class, contrary to its docstring); item 2: 0-2 tie, 2 is rarer
    long = pd.DataFrame({"id": [0, 0, 1, 1, 2, 2], "annotator": [0, 1, 0, 1, 2, 3], "label": [0, 1, 0, 0, 0, 2]})
    votes = sn.majority_vote(spark.createDataFrame(long)).toPandas().sort_values("id")
    assert list(votes.majority_label) == list(get_majority_vote_label(wide(long), verbose=False)) == [1, 0, 2]
    # items 0 and 1 tie 0-1 with equal class totals and equal annotator agreement: cleanlab draws
    # at random; sparknoise takes the lowest class
    long = pd.DataFrame({"id": [0, 0, 1, 1, 2, 2, 3, 3], "annotator": [0, 1, 0, 1, 2, 3, 2, 3],
                         "label": [0, 1, 1, 0, 0, 0, 1, 1]})
    votes = sn.majority_vote(spark.createDataFrame(long)).toPandas().sort_values("id")
    assert list(votes.majority_label) == [0, 0, 0, 1]


BAD = [
    ("twice", pd.DataFrame({"id": [0, 0, 1, 1], "annotator": [0, 0, 0, 1], "label": [0, 1, 1, 1]}), "annotator",
     "labelled the same item twice"),
    ("outside", pd.DataFrame({"id": [0, 0, 1, 1], "annotator": [0, 1, 0, 1], "label": [0, 7, 1, 1]}), "label",
     "only K = 3 classes .* must have at least 8 columns"),
    ("single", pd.DataFrame({"id": [0, 1, 2], "annotator": [0, 1, 0], "label": [0, 1, 1]}), "id",
     "every item has exactly one label"),
    ("no_probs", pd.DataFrame({"id": [0, 0, 9, 9], "annotator": [0, 1, 0, 1], "label": [0, 1, 1, 1]}), "pred_probs",
     "labels but no probabilities"),
    ("null_id", pd.DataFrame({"id": [0, 0, None, 1], "annotator": [0, 1, 0, 1], "label": [0, 1, 1, 1]}), "id",
     "null value"),
    ("every_label_null", pd.DataFrame({"id": [0, 0, 1, 2], "annotator": [0, 1, 0, 1], "label": [None, None, 1, 0]}),
     "label", "null .* in every annotation of an item: 1 item"),
]


@pytest.mark.parametrize("name,long,column,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_column(spark, name, long, column, message):
    probs = spark.createDataFrame(pd.DataFrame({"id": [0, 1, 2], "pred_probs": [[0.2, 0.3, 0.5]] * 3}))
    if name == "null_id":
        long = long.astype({"id": "Int64"})
    if name == "every_label_null":
        long = long.astype({"label": "Int64"})
    with pytest.raises(InputError, match=message) as err:
        sn.multiannotator_quality(spark.createDataFrame(long), probs)
    assert err.value.column == column


def test_active_learning_refuses_a_pool_of_another_width_up_front(spark, data):
    long, p, ann, probs = data
    with pytest.raises(ValueError):  # cleanlab refuses it too
        get_active_learning_scores(wide(long), p, np.full((2, 3), 1 / 3))
    pool = spark.createDataFrame(pd.DataFrame({"id": [5000, 5001], "pred_probs": [[0.5, 0.3, 0.2]] * 2}))
    with pytest.raises(InputError, match="rows of 3 entries but the labelled items' probabilities have 4") as err:
        sn.active_learning_scores(ann, probs, pool)  # before any result is collected
    assert err.value.column == "pred_probs"
    # every item labelled: the pool is the unlabelled rows of pred_probs, checked the same way
    extra = pd.DataFrame({"id": np.arange(len(p)), "pred_probs": list(p)})
    extra = pd.concat([extra, pd.DataFrame({"id": [9000], "pred_probs": [[0.5, 0.5]]})])
    with pytest.raises(InputError, match="rows of 2 to 4 entries"):
        sn.active_learning_scores(ann, spark.createDataFrame(extra))


def test_unknown_consensus_method_says_so_as_cleanlab_does(spark, data):
    from sparknoise.errors import ConfigError

    _, _, ann, probs = data
    with pytest.raises(ConfigError, match="'vote' is not a valid consensus method"):
        sn.multiannotator_quality(ann, probs, consensus_method="vote")


def _job_tables(spark, root, long, p):
    spark.createDataFrame(long).write.format("delta").save(str(root / "annotations"))
    items = pd.DataFrame({"id": np.arange(len(p)), "x1": p[:, 0] + p[:, 1], "x2": p[:, 2] - p[:, 0]})
    spark.createDataFrame(items).write.format("delta").save(str(root / "items"))
    probs = pd.DataFrame({"id": np.arange(len(p)), "pred_probs": list(p)})
    spark.createDataFrame(probs).write.format("delta").save(str(root / "probs"))


def test_annotators_job_end_to_end(spark, data, tmp_path, capsys):
    from sparknoise.cli import main as cli_main
    from sparknoise.jobs.config import load_config
    from sparknoise.jobs.report import run_report

    long, p, _, _ = data
    _job_tables(spark, tmp_path, long, p)
    out = {name: str(tmp_path / name) for name in ("consensus", "annotator_stats", "annotation_quality", "runs")}
    sets = [f"--set=output.{k}={v}" for k, v in out.items()]
    conf = os.path.join(ROOT, "conf", "annotators.yaml")
    # with the model's probabilities given
    args = ["annotators", "--config", conf, f"--set=input.annotations={tmp_path / 'annotations'}",
            f"--set=input.probs={tmp_path / 'probs'}", "--set=run.id=given", *sets]
    assert cli_main(args) == 0
    assert "items" in capsys.readouterr().out
    consensus = spark.read.format("delta").load(out["consensus"]).where("run_id = 'given'").toPandas()
    ref = _oracle(long, p, "best_quality", "crowdlab", False, "self_confidence")["label_quality"]
    consensus = consensus.sort_values("id")
    assert list(consensus.consensus_label) == list(ref.consensus_label)
    np.testing.assert_allclose(consensus.sample_weight, ref.consensus_quality_score, rtol=0, atol=TOL)
    stats = spark.read.format("delta").load(out["annotator_stats"]).where("run_id = 'given'").count()
    quality = spark.read.format("delta").load(out["annotation_quality"]).where("run_id = 'given'").count()
    assert (stats, quality) == (10, len(long))
    # with item features: a model fitted out of fold on the majority votes, then CROWDLAB
    args = ["annotators", "--config", conf, f"--set=input.annotations={tmp_path / 'annotations'}",
            f"--set=input.items={tmp_path / 'items'}", "--set=input.features=[x1,x2]", "--set=model.n_folds=2",
            "--set=run.id=fitted", *sets]
    assert cli_main(args) == 0
    fitted = spark.read.format("delta").load(out["consensus"]).where("run_id = 'fitted'")
    assert fitted.count() == len(consensus) and {"x1", "x2", "sample_weight"} <= set(fitted.columns)
    runs = spark.read.format("delta").load(out["runs"]).where("job = 'annotators'").count()
    assert runs == 2
    # the report of a multi-annotator run: annotators ranked, worst classes, consensus quality
    cfg = load_config(conf, [f"output.{k}={v}" for k, v in out.items()], job="report")
    html = open(run_report(spark, cfg, "given", str(tmp_path / "report.html"))).read()
    assert "Annotators" in html and "worst class" in html and "Consensus quality" in html
    # bad input: an annotator labelling an item twice -> exit 2 naming the column, nothing written
    twice = pd.concat([long, long.iloc[[0]].assign(label=(long.label.iloc[0] + 1) % 3)])
    spark.createDataFrame(twice).write.format("delta").save(str(tmp_path / "twice"))
    args = ["annotators", "--config", conf, f"--set=input.annotations={tmp_path / 'twice'}",
            f"--set=input.probs={tmp_path / 'probs'}", "--set=run.id=bad", *sets]
    assert cli_main(args) == 2
    assert "labelled the same item twice" in capsys.readouterr().err
    for name in ("consensus", "runs"):
        assert spark.read.format("delta").load(out[name]).where("run_id = 'bad'").count() == 0
