"""Multi-label tags: cleanlab 2.9.0's ``multilabel_classification`` (filter, rank, dataset) on Spark.

A row carries a set of classes; Confident Learning runs as K binary problems (tag present or not,
probabilities [1 - p_c, p_c]) whose K 2x2 confident joints come from one aggregation. See
:func:`find_multilabel_issues` (issues.py) for the passes and where each runs.
"""

from sparknoise.multilabel.issues import find_multilabel_issues
from sparknoise.multilabel.result import MultilabelIssuesResult
from sparknoise.multilabel.scores import multilabel_label_quality_scores

__all__ = ["find_multilabel_issues", "multilabel_label_quality_scores", "MultilabelIssuesResult"]
