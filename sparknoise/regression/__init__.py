"""Regression targets: find wrong numbers (prices, ratings, durations) on Spark.

``inputs`` checks the label / prediction / id columns (driver-side type checks, one validating
aggregation on the executors). ``scores`` computes cleanlab's label quality scores (``outre``: exact
or grid-approximate 2-D nearest neighbours on the executors; ``residual``: a native expression);
the flag rule and CleanLearning for regressors build on them.
"""
