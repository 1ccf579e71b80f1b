"""A classifier for one attribute of generated images or videos (motion, colour, position, scene class...), trained
by the project on a world's own labels. The attribute reader behind "attribute accuracy".

Samples may show several values at once (two digits moving differently, three coloured digits), so the classifier is
multi-label: one sigmoid per value, trained with binary cross-entropy, judged by set match (see ``label_sets``).
Images go through the same 3D CNN as videos, as one-frame clips.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..image_inputs import as_float_images
from .label_sets import label_presence, label_set_matches, most_common_set_rate
from .scorer_base import TrainedScorer
from .video_backbone import VideoBackbone3D, preprocess_videos


class AttributeClassifier(TrainedScorer):
    """Images or videos (``visual``) -> one logit per value in ``label_names``.

    ``attribute`` names what is read (e.g. "motion", "color"); ``channels`` is 1 (gray) or 3 (needed for colour).
    """

    def __init__(self, attribute: str, label_names: Sequence[str], visual: str = "video", channels: int = 1,
                 frame_size: int = 32, width: int = 16, time_bins: int = 4):
        if visual not in ("image", "video"):
            raise ValueError(f"visual must be 'image' or 'video', got {visual!r}.")
        super().__init__(attribute=attribute, label_names=list(label_names), visual=visual, channels=channels,
                         frame_size=frame_size, width=width, time_bins=time_bins)
        self.backbone = VideoBackbone3D(channels, width, time_bins)
        self.head = torch.nn.Linear(self.backbone.output_size, len(label_names))

    @property
    def short_name(self) -> str:
        """e.g. "motion 3D CNN"."""
        return f"{self.config['attribute']} {'3D CNN' if self.config['visual'] == 'video' else 'CNN'}"

    def preprocess(self, samples: Any) -> torch.Tensor:
        """Raw images or videos -> float (N, C, T, S, S)."""
        if self.config["visual"] == "image":
            samples = as_float_images(samples, channels=self.config["channels"]).unsqueeze(1)
        return preprocess_videos(samples, self.config["channels"], self.config["frame_size"])

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(clips))

    def label_presence(self, labels: Any) -> torch.Tensor:
        """Per-sample labels (names, ids, or lists) -> float (N, K) presence."""
        return label_presence(labels, self.config["label_names"])

    def predict_scores(self, samples: Any, batch_size: int = 32) -> torch.Tensor:
        """Per-value probabilities (N, K) (independent sigmoids) for raw samples."""
        return torch.cat(self.in_batches(self.preprocess(samples), batch_size, lambda clips: self(clips).sigmoid()))

    def predict(self, samples: Any, threshold: float = 0.5) -> list:
        """The values each sample shows (probability above ``threshold``; at least the most likely one)."""
        names = self.config["label_names"]
        predictions = []
        for row in self.predict_scores(samples):
            chosen = [names[index] for index in (row > threshold).nonzero().flatten().tolist()]
            predictions.append(chosen or [names[int(row.argmax())]])
        return predictions

    def measure_held_out(self, samples: Any, labels: Any, split: str, trained_on: str) -> dict:
        presence = self.label_presence(labels)
        matches = label_set_matches(self.predict_scores(samples), presence)
        return self.record_held_out({"accuracy": float(matches.float().mean())},
                                    {"accuracy": most_common_set_rate(presence)}, split, len(presence), trained_on)
