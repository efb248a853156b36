"""Duplicate sets and leakage pairs from the near-duplicate edges and the exact-duplicate groups.

Edges (lazy): the neighbour pairs strictly within the near-duplicate radius, plus the rows with
identical features (an exact group larger than k + 1 has pairs beyond the kNN lists): for the sets
each member linked to its group's smallest id, for ``leakage()`` every pair (a self-join within each
exact-duplicate group, distance 0: m(m-1)/2 pairs for a group of m rows). A *duplicate set* is a connected component
of these edges; its id (``near_duplicate_set_id``) is the smallest row id in it, so it does not
depend on partitioning or on the order of the rows. Components are found on the executors by
min-label propagation over the edges (one join and one count per round; the labels of a round that
changed some are materialised; ``edges`` should be materialised already), at most ``MAX_ROUNDS`` rounds.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparknoise.audit.inputs import ID
from sparknoise.errors import SparkNoiseError
from sparknoise.storage import materialised

MAX_ROUNDS = 64


def exact_pairs(groups: DataFrame) -> DataFrame:
    """(id, other_id, distance=0) for each pair of rows with identical features (id < other_id)."""
    a = groups.select(F.col(ID).alias("id"), "exact_set_id")
    b = groups.select(F.col(ID).alias("other_id"), "exact_set_id")
    return a.join(b, "exact_set_id").filter(F.col("id") < F.col("other_id")).select(
        "id", "other_id", F.lit(0.0).alias("distance"))


def exact_stars(groups: DataFrame) -> DataFrame:
    """(set id, member, distance=0): each row with an identical twin joined to its group's smallest id -
    the same components as all pairs, with m - 1 edges for a group of m rows instead of m(m-1)/2."""
    return groups.filter(F.col(ID) != F.col("exact_set_id")).select(
        F.col("exact_set_id").alias("id"), F.col(ID).alias("other_id"), F.lit(0.0).alias("distance"))


def all_edges(near: DataFrame, exact: DataFrame) -> DataFrame:
    return near.unionByName(exact).groupBy("id", "other_id").agg(F.min("distance").alias("distance"))


def components(edges: DataFrame, scratch: str | None = None) -> DataFrame:
    """(id, near_duplicate_set_id): each node's component label, the smallest id reachable."""
    both = edges.select(F.col("id").alias("a"), F.col("other_id").alias("b")).unionByName(
        edges.select(F.col("other_id").alias("a"), F.col("id").alias("b")))
    labels = both.groupBy("a").agg(F.least(F.min("b"), F.col("a")).alias("label"))
    for round_ in range(MAX_ROUNDS):
        nxt = (both.join(labels.withColumnRenamed("a", "b").withColumnRenamed("label", "nl"), "b")
               .groupBy("a").agg(F.min("nl").alias("nl"))
               .join(labels, "a").select("a", F.least("label", "nl").alias("label"), (F.col("nl") < F.col("label"))
                                         .alias("changed")))
        changed = nxt.agg(F.sum(F.col("changed").cast("long")).alias("c")).collect()[0]["c"]  # one aggregate row
        if not changed:  # the labels are final: no materialisation needed
            return labels.select(F.col("a").alias(ID), F.col("label").alias("near_duplicate_set_id"))
        labels = materialised(nxt.select("a", "label"), scratch, f"audit.labels{round_ + 1}")
    raise SparkNoiseError(f"duplicate sets did not settle within {MAX_ROUNDS} rounds of label propagation (a chain "
                          "of near duplicates longer than that); lower k or audit a sample.")
