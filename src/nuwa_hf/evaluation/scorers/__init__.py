"""Small networks the project trains to read generated samples; each reports its held-out accuracy beside its scores.

This package holds the networks, their loading and their held-out measurement; their training lives outside the
package, in ``examples/train_scorers.py``.
"""

from .attribute_classifier import AttributeClassifier
from .clip_adapter import LocalClipScorer
from .digit_classifier import DigitClassifier
from .digit_set_classifier import DigitSetClassifier
from .dual_encoder import TextVisualDualEncoder
from .motion_classifier import MOTIONS, MotionClassifier
from .scorer_base import TrainedScorer, load_scorer, scorer_report
from .video_feature_network import VideoFeatureNetwork
from .world_scorers import IMAGE_SCORERS, VIDEO_SCORERS, default_scorers

__all__ = [
    "AttributeClassifier",
    "DigitClassifier",
    "IMAGE_SCORERS",
    "DigitSetClassifier",
    "LocalClipScorer",
    "MOTIONS",
    "MotionClassifier",
    "TextVisualDualEncoder",
    "TrainedScorer",
    "VIDEO_SCORERS",
    "VideoFeatureNetwork",
    "default_scorers",
    "load_scorer",
    "scorer_report",
]
