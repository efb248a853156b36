"""Numerical constants of cleanlab 2.9.0 that exact parity depends on (``cleanlab.internal.constants`` and the
literals inside its functions); driver and executors read them."""

FLOATING_POINT_COMPARISON = 1e-6  # given-label bias of the final safeguard; rounding loop tolerance
CONFIDENT_SLACK = 1e-6  # confident-joint test p_ik >= t_k - 1e-6
CONFIDENT_THRESHOLDS_LOWER_BOUND = 2e-6
CLIPPING_LOWER_BOUND = 1e-6
TINY_VALUE = 1e-100
MISSING_CLASS_THRESHOLD = 2.0  # BIG_VALUE: threshold of a class with no rows
NOISE_RATE_UPPER_CLIP = 0.9999
CLEANLAB_WEIGHT_DIAGONAL_FLOOR = 1e-3

# Input tolerances (sparknoise's own): probabilities may stray outside [0, 1] by this much
# (cleanlab's own range check), and a row may sum to 1 within ROW_SUM_TOLERANCE.
PROBABILITY_RANGE_SLACK = 1e-6
ROW_SUM_TOLERANCE = 1e-3
