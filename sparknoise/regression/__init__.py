"""Regression targets: find wrong numbers (prices, ratings, durations) on Spark.

``inputs`` checks the label / prediction / id columns (driver-side type checks, one validating
aggregation on the executors). The scores, the flag rule and CleanLearning for regressors build on it.
"""
