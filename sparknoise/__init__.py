"""sparknoise: Confident Learning on Spark. Finds mislabeled rows exactly as cleanlab 2.9.0 does.

>>> import sparknoise as sn
>>> res = sn.find_label_issues(df, label_col="label", probs_col="pred_probs", id_col="id")
>>> res.issues().show()
"""

from sparknoise._version import __version__
from sparknoise.audit import DataIssuesResult, find_data_issues
from sparknoise.cleaning.apply import CleaningResult, apply_cleaning
from sparknoise.cleaning.data_issues import apply_data_issues
from sparknoise.cleaning.releases import Release, read_release
from sparknoise.core.health import HealthSummary, health_summary
from sparknoise.core.label_issues import find_label_issues, label_quality_scores
from sparknoise.core.result import LabelIssuesResult
from sparknoise.errors import ConfigError, InputError, SparkNoiseError
from sparknoise.ml.clean_learning import CleanLearning, CleanLearningModel
from sparknoise.ml.cross_validation import cross_val_predict_proba
from sparknoise.multiannotator.active_learning import active_learning_scores
from sparknoise.multiannotator.crowdlab import MultiannotatorResult, majority_vote, multiannotator_quality
from sparknoise.multilabel import MultilabelIssuesResult, find_multilabel_issues, multilabel_label_quality_scores
from sparknoise.multilabel.learn import MultilabelCleanLearningModel
from sparknoise.noise.evaluation import EvaluationResult, evaluate_label_noise
from sparknoise.noise.injection import inject_label_noise
from sparknoise.noise.matrices import noise_matrix_from_trace, noise_matrix_is_valid
from sparknoise.noise.regression_evaluation import regression_detection_metrics, regression_fit_metrics
from sparknoise.regression.issues import find_regression_issues
from sparknoise.regression.learn import RegressionCleanLearning, RegressionCleanLearningModel
from sparknoise.regression.result import RegressionIssuesResult
from sparknoise.regression.scores import RegressionScores, regression_label_quality_scores, score_regression_labels

__all__ = [
    "active_learning_scores",
    "DataIssuesResult",
    "find_data_issues",
    "majority_vote",
    "MultiannotatorResult",
    "multiannotator_quality",
    "apply_cleaning",
    "apply_data_issues",
    "CleaningResult",
    "read_release",
    "Release",
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
    "regression_detection_metrics",
    "regression_fit_metrics",
    "InputError",
    "LabelIssuesResult",
    "SparkNoiseError",
    "__version__",
    "find_label_issues",
    "find_multilabel_issues",
    "multilabel_label_quality_scores",
    "MultilabelIssuesResult",
    "MultilabelCleanLearningModel",
    "label_quality_scores",
    "find_regression_issues",
    "RegressionIssuesResult",
    "RegressionCleanLearning",
    "RegressionCleanLearningModel",
    "regression_label_quality_scores",
    "RegressionScores",
    "score_regression_labels",
]
