"""Label-noise simulation and evaluation: noise matrices, exact hash-ranked draws (``segments``),
``inject_label_noise`` (class labels, and numeric labels through ``regression_noise``),
``evaluate_label_noise``, the regression metric helpers (``regression_evaluation``) and synthetic
tables. Depends on ``core`` and ``ml``."""
