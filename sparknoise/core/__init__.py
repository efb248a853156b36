"""The Confident Learning engine: cleanlab 2.9.0's ``find_label_issues`` on a Spark DataFrame.

Pipeline: ``inputs`` (working columns) -> ``validation`` + ``class_stats`` (pass 1: input rules,
per-class counts and exact threshold sums) -> ``confident_joint`` (pass 2, K x K counts) ->
``estimates`` (driver-side K x K maths: thresholds, latent noise matrices, prune counts, rounding)
-> ``selection`` (per-cell cutoffs) -> ``row_map`` + ``flags`` + ``row_expressions`` (the lazy
per-row map on the executors) -> ``ranking`` and ``weights``; ``label_issues`` runs it and returns
a ``result.LabelIssuesResult``; ``health`` is cleanlab.dataset's health summary. ``kernels`` holds
the numpy row maths shared by the Arrow UDFs, ``invalid_rows`` the screening of unusable rows.

Depends only on ``sparknoise.errors`` (and, lazily in ``LabelIssuesResult.report``, on ``report``).
"""
