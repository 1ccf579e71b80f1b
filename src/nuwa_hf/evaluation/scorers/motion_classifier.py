"""Which of the four captioned-Moving-MNIST motions a video shows: "up then down", "down then up", "left then right",
"right then left" (GODIVA's protocol). An ``AttributeClassifier`` preset for videos; a two-digit video may show two
motions, and the classifier reads the set.
"""

from __future__ import annotations

from typing import Sequence

from .attribute_classifier import AttributeClassifier

# Same order as nuwa_hf.data.attributes.MOTIONS, whose ClassLabel ids the worlds store.
MOTIONS = ("up then down", "down then up", "left then right", "right then left")


class MotionClassifier(AttributeClassifier):
    """Videos -> one logit per motion. See ``AttributeClassifier`` for predict/measure_held_out."""

    def __init__(self, attribute: str = "motion", label_names: Sequence[str] = MOTIONS, visual: str = "video",
                 channels: int = 1, frame_size: int = 32, width: int = 16, time_bins: int = 4):
        super().__init__(attribute, label_names, visual, channels, frame_size, width, time_bins)
