"""Small networks the project trains to read generated samples; each reports its held-out accuracy beside its scores."""

from .attribute_classifier import AttributeClassifier
from .clip_adapter import LocalClipScorer
from .digit_classifier import DigitClassifier
from .digit_set_classifier import DigitSetClassifier
from .dual_encoder import TextVisualDualEncoder
from .motion_classifier import MOTIONS, MotionClassifier
from .scorer_base import TrainedScorer, load_scorer, scorer_report
from .video_feature_network import VideoFeatureNetwork
from .world_training import default_scorers, train_digit_classifier, train_image_scorers, train_video_scorers

__all__ = [
    "AttributeClassifier",
    "DigitClassifier",
    "DigitSetClassifier",
    "LocalClipScorer",
    "MOTIONS",
    "MotionClassifier",
    "TextVisualDualEncoder",
    "TrainedScorer",
    "VideoFeatureNetwork",
    "default_scorers",
    "load_scorer",
    "scorer_report",
    "train_digit_classifier",
    "train_image_scorers",
    "train_video_scorers",
]
