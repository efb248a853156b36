"""Multi-label tags on Spark Connect: the same answers as cleanlab 2.9.0 (issue 28)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from cleanlab.multilabel_classification import dataset as md
from cleanlab.multilabel_classification import filter as mf
from cleanlab.multilabel_classification import rank as mr
from multilabel_data import make_multilabel, to_frame

import sparknoise as sn


def test_multilabel_issues_match_cleanlab_on_connect(spark):
    labels, probs, _ = make_multilabel(300, 4, seed=0)
    frame = to_frame(spark, labels, probs, partitions=3)
    res = sn.find_multilabel_issues(frame)
    rows = sorted(res.rows.collect(), key=lambda r: r["id"])
    np.testing.assert_array_equal([r["is_label_issue"] for r in rows], mf.find_label_issues(labels, probs))
    np.testing.assert_array_equal([r["is_label_issue_per_class"] for r in rows],
                                  mf.find_multilabel_issues_per_class(labels, probs))
    np.testing.assert_allclose([r["label_quality"] for r in rows], mr.get_label_quality_scores(labels, probs),
                               rtol=0, atol=1e-9)
    flagged = sorted((r for r in rows if r["is_label_issue"]), key=lambda r: r["issue_rank"])
    assert [r["id"] for r in flagged] == list(
        mf.find_label_issues(labels, probs, return_indices_ranked_by="self_confidence"))
    pd.testing.assert_frame_equal(res.common_issues(), md.common_multilabel_issues(labels, probs))
    low = sn.find_multilabel_issues(frame, filter_by="low_self_confidence").rows.filter("is_label_issue")
    assert sorted(r["id"] for r in low.collect()) == list(
        np.flatnonzero(mf.find_label_issues(labels, probs, filter_by="low_self_confidence")))
