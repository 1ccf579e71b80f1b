"""Evaluation for nuwa-hf: the paper's metrics computed offline, as Python functions (their ``evaluate`` module
scripts live in the repository's ``metrics/`` folder: ``evaluate.load("metrics/fid")``).

Real backbones where they can be had offline (the FID Inception, fetched from a PyPI wheel and hash-checked);
elsewhere small scorers the project trains, each named honestly and reporting its own held-out accuracy.
"""

from ..lazy_imports import lazy_exports

# Each name loads with its module on first use (the scorers only when a scorer is asked for).
__getattr__, __dir__ = lazy_exports(__name__, globals(), {
    ".attributes": ("attribute_accuracy", "video_digit_accuracy"),
    ".text_visual_similarity": ("clip_similarity",),
    ".frechet": ("frechet_distance", "frechet_inception_distance"),
    ".inception": ("InceptionFeatureExtractor", "fetch_inception_weights"),
    ".inception_scoring": ("inception_score", "inception_score_from_probabilities"),
    ".kernel_inception": ("kernel_distance", "kernel_inception_distance"),
    ".psnr": ("peak_signal_to_noise_ratio",),
    ".report_writers": ("metrics_markdown", "write_metrics_json", "write_metrics_markdown"),
    ".scorers": ("AttributeClassifier", "DigitClassifier", "DigitSetClassifier", "LocalClipScorer", "MotionClassifier",
                 "TextVisualDualEncoder", "VideoFeatureNetwork", "default_scorers", "load_scorer"),
    ".segmentation": ("confusion_matrix", "scores_from_confusion", "segmentation_scores"),
    ".ssim": ("structural_similarity",),
    ".task_evaluation": ("TASK_METRICS", "EvaluationScorers", "task_metrics"),
    ".video_distance": ("frechet_video_distance",),
})

__all__ = [
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
