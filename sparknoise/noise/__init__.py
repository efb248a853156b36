"""Label-noise simulation and evaluation: noise matrices, exact hash-ranked draws (``segments``),
``inject_label_noise``, ``evaluate_label_noise`` and synthetic tables. Depends on ``core`` and ``ml``."""
