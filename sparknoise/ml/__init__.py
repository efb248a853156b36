"""Spark ML: hash-assigned folds, out-of-fold probabilities (``cross_val_predict_proba``), the
``CleanLearning`` estimator, and the named estimators the jobs build. Depends on ``core``."""
