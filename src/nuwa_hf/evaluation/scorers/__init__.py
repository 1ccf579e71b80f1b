"""Small networks the project trains to read generated samples; each reports its held-out accuracy beside its scores."""

from .clip_adapter import LocalClipScorer
from .digit_classifier import DigitClassifier
from .dual_encoder import TextVisualDualEncoder
from .motion_classifier import MOTIONS, MotionClassifier
from .scorer_base import TrainedScorer, load_scorer, scorer_report
from .video_feature_network import VideoFeatureNetwork

__all__ = [
    "DigitClassifier",
    "LocalClipScorer",
    "MOTIONS",
    "MotionClassifier",
    "TextVisualDualEncoder",
    "TrainedScorer",
    "VideoFeatureNetwork",
    "load_scorer",
    "scorer_report",
]
