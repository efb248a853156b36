"""Data issues on Spark Connect: the same answers as cleanlab 2.9.0's Datalab for every issue type, the
leakage pairs, and apply_cleaning given the audit (issue 30)."""

from __future__ import annotations

import warnings

import numpy as np
from audit_data import make_audit_data

import sparknoise as sn


def test_data_issues_match_datalab_on_connect(spark):
    from cleanlab import Datalab

    data = make_audit_data(n=150, seed=1)
    pdf = data["pdf"].assign(pred_probs=[list(map(float, p)) for p in data["P"]])
    frame = spark.createDataFrame(pdf)
    res = sn.find_data_issues(frame, features=data["cols"], label_col="label", probs_col="pred_probs",
                              split_col="split", group_cols=["segment"])
    types = ["label", "outlier", "near_duplicate", "class_imbalance", "null", "underperforming_group"]
    assert list(res.summary()["issue_type"]) == types
    lab = Datalab({"label": data["y"]}, label_name="label", verbosity=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lab.find_issues(features=data["X"], pred_probs=data["P"], issue_types={
            "label": {}, "outlier": {}, "near_duplicate": {}, "class_imbalance": {}, "null": {},
            "underperforming_group": {"cluster_ids": data["cluster_ids"]}})
    rows = res.rows.toPandas().set_index("id").loc[data["ids"]]
    for t in types:
        expected = lab.get_issues(t)
        np.testing.assert_array_equal(rows[f"is_{t}_issue"].to_numpy(), expected[f"is_{t}_issue"].to_numpy(), err_msg=t)
        np.testing.assert_allclose(rows[f"{t}_score"].to_numpy(), expected[f"{t}_score"].to_numpy(), rtol=0, atol=1e-9)
    summary = res.summary().set_index("issue_type")["score"]
    for r in lab.get_issue_summary().itertuples():
        assert abs(summary[r.issue_type] - r.score) <= 1e-9
    sets = {r["near_duplicate_set_id"]: r["members"] for r in res.duplicate_sets().collect()}
    assert sets["r0010"] == ["r0010", "r0011", "r0012"]
    leak = res.leakage().toPandas()
    assert len(leak) and (leak["split"] != leak["other_split"]).all()
    removed = set(sn.apply_cleaning(frame, data_issues=res).audit.toPandas()["id"])
    assert {r.id if r.split == "train" else r.other_id for r in leak.itertuples()} <= removed
