"""Evaluation for nuwa-hf: the paper's metrics computed offline, as Python functions and as ``evaluate`` modules.

Real backbones where they can be had offline (the FID Inception, fetched from a PyPI wheel and hash-checked);
elsewhere small scorers the project trains, each named honestly and reporting its own held-out accuracy.
"""

from .attributes import attribute_accuracy, video_digit_accuracy
from .text_visual_similarity import clip_similarity
from .frechet import frechet_distance, frechet_inception_distance
from .inception import InceptionFeatureExtractor, fetch_inception_weights
from .inception_scoring import inception_score, inception_score_from_probabilities
from .kernel_inception import kernel_distance, kernel_inception_distance
from .metrics import METRIC_NAMES, metric_path
from .psnr import peak_signal_to_noise_ratio
from .report_writers import metrics_markdown, write_metrics_json, write_metrics_markdown
from .scorers import (
    AttributeClassifier,
    DigitClassifier,
    DigitSetClassifier,
    LocalClipScorer,
    MotionClassifier,
    TextVisualDualEncoder,
    VideoFeatureNetwork,
    default_scorers,
    load_scorer,
)
from .segmentation import confusion_matrix, scores_from_confusion, segmentation_scores
from .ssim import structural_similarity
from .task_evaluation import TASK_METRICS, EvaluationScorers, task_metrics
from .video_distance import frechet_video_distance

__all__ = [
    "METRIC_NAMES",
    "TASK_METRICS",
    "AttributeClassifier",
    "DigitClassifier",
    "DigitSetClassifier",
    "EvaluationScorers",
    "InceptionFeatureExtractor",
    "LocalClipScorer",
    "MotionClassifier",
    "TextVisualDualEncoder",
    "VideoFeatureNetwork",
    "attribute_accuracy",
    "clip_similarity",
    "default_scorers",
    "confusion_matrix",
    "fetch_inception_weights",
    "frechet_distance",
    "frechet_inception_distance",
    "frechet_video_distance",
    "inception_score",
    "inception_score_from_probabilities",
    "kernel_distance",
    "kernel_inception_distance",
    "load_scorer",
    "metric_path",
    "metrics_markdown",
    "peak_signal_to_noise_ratio",
    "scores_from_confusion",
    "segmentation_scores",
    "structural_similarity",
    "task_metrics",
    "video_digit_accuracy",
    "write_metrics_json",
    "write_metrics_markdown",
]
