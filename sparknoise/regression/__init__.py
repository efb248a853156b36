"""Regression targets: find wrong numbers (prices, ratings, durations) on Spark.

``inputs`` checks the label / prediction / id columns (driver-side type checks, one validating
aggregation on the executors). ``issues`` is cleanlab's regression flag rule on given predictions
(``find_regression_issues``), ``selection`` the exact order statistics it needs, ``learn`` cleanlab's
regression CleanLearning with Spark ML regressors (``RegressionCleanLearning``), ``result`` their result;
``scores`` cleanlab's label quality scores (``outre``: exact or grid-approximate 2-D nearest
neighbours on the executors; ``residual``: a native expression).
"""
