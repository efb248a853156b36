"""Data issues beyond labels: cleanlab Datalab's issue types on Spark (``sn.find_data_issues``).

``inputs`` checks and prepares the columns; ``neighbors`` runs the exact nearest-neighbour search and
finds exact duplicates; ``issues`` applies each Datalab rule; ``duplicates`` builds duplicate sets and
leakage pairs; ``find`` orchestrates; ``result`` holds the answer.
"""

from sparknoise.audit.find import ISSUE_TYPES, find_data_issues
from sparknoise.audit.result import DataIssuesResult

__all__ = ["DataIssuesResult", "ISSUE_TYPES", "find_data_issues"]
