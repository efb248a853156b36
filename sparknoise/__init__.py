"""sparknoise: Confident Learning on Spark. Finds mislabeled rows exactly as cleanlab 2.9.0 does.

>>> import sparknoise as sn
>>> res = sn.find_label_issues(df, label_col="label", probs_col="pred_probs", id_col="id")
>>> res.issues().show()
"""

from sparknoise.clean_learning import CleanLearning, CleanLearningModel
from sparknoise.cross_validation import cross_val_predict_proba
from sparknoise.errors import ConfigError, InputError, SparkNoiseError
from sparknoise.evaluation import EvaluationResult, evaluate_label_noise
from sparknoise.health import HealthSummary, health_summary
from sparknoise.label_issues import find_label_issues, label_quality_scores
from sparknoise.noise_injection import inject_label_noise
from sparknoise.noise_matrix import noise_matrix_from_trace, noise_matrix_is_valid
from sparknoise.result import LabelIssuesResult

__version__ = "0.1.0"

__all__ = [
    "CleanLearning",
    "CleanLearningModel",
    "cross_val_predict_proba",
    "ConfigError",
    "EvaluationResult",
    "evaluate_label_noise",
    "HealthSummary",
    "health_summary",
    "inject_label_noise",
    "noise_matrix_from_trace",
    "noise_matrix_is_valid",
    "InputError",
    "LabelIssuesResult",
    "SparkNoiseError",
    "__version__",
    "find_label_issues",
    "label_quality_scores",
]
