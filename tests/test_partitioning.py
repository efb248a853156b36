"""The same answers whatever the partitioning (DESIGN.md section 2, rule 3)."""

from __future__ import annotations

import numpy as np
import pytest
from parity_cases import dataset, ours

import sparknoise as sn


# 6,000 rows over 10 classes in 16 partitions: about 375 rows each, so classes have few rows per partition; a
# prune method and a score filter on the Arrow passes, both prune methods on the native route (taken from
# 500,000 rows on)
@pytest.mark.parametrize("filter_by, many, native", [("prune_by_noise_rate", 16, False),
                                                     ("low_self_confidence", 16, False), ("both", 16, True)])
def test_one_and_many_partitions_give_identical_results(spark, monkeypatch, filter_by, many, native):
    from sparknoise.core import validation

    if native:
        monkeypatch.setattr(validation, "NATIVE_MIN_ROWS", 0)
    d = dataset("k10")
    base = spark.createDataFrame(d.to_pandas())
    results = [sn.find_label_issues(base.repartition(n), filter_by=filter_by) for n in (1, many)]
    a, b = (ours(r) for r in results)
    assert a.equals(b)
    for name in ("thresholds", "confident_joint", "noise_matrix", "inverse_noise_matrix", "prior", "joint"):
        np.testing.assert_array_equal(getattr(results[0], name), getattr(results[1], name))
    assert results[0].num_flagged == results[1].num_flagged > 0
