"""DataIssuesResult: the per-row issue columns (lazy) plus the small per-type summary (driver)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise.errors import ConfigError


@dataclass(frozen=True)
class DataIssuesResult:
    """What :func:`sparknoise.find_data_issues` found.

    ``rows`` (materialised once by ``find_data_issues``: ``localCheckpoint`` or a table under ``scratch``):
    the id column and, per issue type that ran, Datalab's ``is_<type>_issue`` and ``<type>_score``
    (near duplicates add ``near_duplicate_set_id`` and ``distance_to_nearest_neighbor``;
    underperforming groups ``group_id``). ``search`` says which nearest-neighbour search ran.
    """

    rows: DataFrame
    issue_types: tuple
    summary_table: pd.DataFrame
    id_col: str
    search: dict[str, Any] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per eager stage
    split_col: str | None = None
    _edges: DataFrame | None = None  # (id, other_id, distance): exact and near duplicate pairs
    _splits: DataFrame | None = None  # (id, split)
    _exact: DataFrame | None = None  # (id, exact_set_id) of the rows with an identical twin
    _sets: DataFrame | None = None  # (id, near_duplicate_set_id) of the rows in a duplicate set
    _knn: DataFrame | None = None  # (__au_id, nn_ids, nn_dists): the materialised neighbour lists

    def summary(self) -> pd.DataFrame:
        """One row per issue type: ``issue_type``, ``num_issues``, ``score`` (Datalab's ``issue_summary``);
        ``.attrs["search"]`` holds ``search`` (which nearest-neighbour search ran). No Spark job runs."""
        return self.summary_table.copy()

    def duplicate_sets(self) -> DataFrame:
        """One row per set of exact or near duplicates (a connected component of the duplicate pairs):
        ``near_duplicate_set_id`` (its smallest id), ``num_members``, ``members`` (sorted ids) and
        ``exact`` (all members have identical features). Lazy."""
        if "near_duplicate" not in self.issue_types:
            raise ConfigError("duplicate_sets() needs the near_duplicate issue type; run find_data_issues with "
                              "issue_types including 'near_duplicate'.")
        flagged = self._sets.join(self._exact, "id", "left")
        return (flagged.groupBy("near_duplicate_set_id")
                .agg(F.count(F.lit(1)).alias("num_members"), F.sort_array(F.collect_list("id")).alias("members"),
                     F.count("exact_set_id").alias("__n_exact"),
                     F.count_distinct("exact_set_id").alias("__n_groups"))
                .withColumn("exact", (F.col("__n_exact") == F.col("num_members")) & (F.col("__n_groups") == 1))
                .drop("__n_exact", "__n_groups"))

    def leakage(self) -> DataFrame:
        """Pairs of exact or near duplicates in different splits: ``id``, ``other_id`` (id < other_id),
        ``split``, ``other_split``, ``distance`` (0 for exact duplicates). Lazy."""
        if self.split_col is None or self._edges is None or self._splits is None:
            raise ConfigError("leakage() needs split_col= (the train/test split column) and the near_duplicate "
                              "issue type; run find_data_issues(..., split_col='split').")
        s1 = self._splits.select(F.col("id"), F.col("split"))
        s2 = self._splits.select(F.col("id").alias("other_id"), F.col("split").alias("other_split"))
        return (self._edges.join(s1, "id").join(s2, "other_id")
                .filter(~F.col("split").eqNullSafe(F.col("other_split")))
                .select("id", "other_id", "split", "other_split", "distance"))
