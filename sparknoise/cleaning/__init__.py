"""The cleaning loop after detection: apply reviewers' verdicts and a policy for the unreviewed
flagged rows (``apply``: the cleaned rows and the audit trail, on Spark), and the review queue's
and verdicts' file formats, Label Studio's among them (``formats``, driver-side files).
Depends on ``core`` only."""
