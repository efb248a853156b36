"""What an apply decided: :class:`CleaningResult` (``cleaned``, ``audit``, the decided rows and their
counts) and the names of the decided rows' internal columns, shared by label verdicts
(:func:`sparknoise.apply_cleaning`) and audit runs (:func:`sparknoise.apply_data_issues`).
``summary()`` runs on the driver over counts computed with the apply's checks (or one small
aggregation: at most 4 actions x 3 sources x 2 rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame

ACTIONS = ("kept", "relabeled", "downweighted", "removed")
_ACTION = "__sn_action"
_SOURCE = "__sn_source"
_PROTECTED = "__sn_protected"


@dataclass(frozen=True)
class CleaningResult:
    """What :func:`apply_cleaning` decided. Both frames read the materialised decided rows (one read of ``scored``)."""

    cleaned: DataFrame
    audit: DataFrame
    decided: DataFrame  # every scored row's id, action, source and protected flag (removed rows included)
    counts: tuple[tuple[str, str, bool, int], ...] | None = None  # (action, source, protected, rows), computed once
    reviewed: int | None = None  # the ids with a verdict (counted with the checks)
    split_counts: tuple[tuple[str, str, int], ...] | None = None  # (split as a string, action, rows) with split_col

    def summary(self) -> dict[str, Any]:
        """Counts per action, per (source, action) and of protected rows per action (counted with the checks)."""
        counts = {a: 0 for a in ACTIONS}
        by_source: dict[str, dict[str, int]] = {"review": {}, "policy": {}, "none": {}}
        protected: dict[str, int] = {}
        rows = self.counts
        if rows is None:  # <= 4 x 3 x 2 rows
            rows = tuple(tuple(r) for r in self.decided.groupBy(_ACTION, _SOURCE, _PROTECTED).count().collect())
        for action, source, is_protected, n in rows:
            counts[action] += n
            by_source[source][action] = by_source[source].get(action, 0) + n
            if is_protected:
                protected[action] = protected.get(action, 0) + n
        return {**counts, "rows": sum(counts.values()),
                "reviewed": sum(by_source["review"].values()), "by_source": by_source, "protected": protected}
