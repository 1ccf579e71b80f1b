"""A small 3D CNN whose embedding stands in for I3D in an FVD-style score ("FVD (3D CNN trained on ...)").

No I3D weights can be had offline, so the project trains its own video network on the world's labels: which digits
appear and how they move (both multi-label, so two-digit videos work). Its ``embedding_size``-wide penultimate layer
is the feature the Fréchet distance compares, as I3D's is for the real FVD. Its held-out report gives both tasks'
set-match accuracy.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .label_sets import label_presence, label_set_matches, most_common_set_rate
from .motion_classifier import MOTIONS
from .scorer_base import TrainedScorer
from .video_backbone import VideoBackbone3D, preprocess_videos

DIGIT_NAMES = tuple(str(digit) for digit in range(10))


class VideoFeatureNetwork(TrainedScorer):
    """Videos -> ``embedding_size`` features, trained through two multi-label heads: digits shown and motions."""

    short_name = "3D CNN"

    def __init__(self, motions: Sequence[str] = MOTIONS, num_digits: int = 10, channels: int = 1,
                 frame_size: int = 32, width: int = 16, time_bins: int = 4, embedding_size: int = 128):
        super().__init__(motions=list(motions), num_digits=num_digits, channels=channels, frame_size=frame_size,
                         width=width, time_bins=time_bins, embedding_size=embedding_size)
        self.backbone = VideoBackbone3D(channels, width, time_bins)
        # Linear, no ReLU: a narrow ReLU bottleneck can die and take a whole task head with it.
        self.embedding = torch.nn.Linear(self.backbone.output_size, embedding_size)
        self.digit_head = torch.nn.Linear(embedding_size, num_digits)
        self.motion_head = torch.nn.Linear(embedding_size, len(motions))

    def preprocess(self, videos: Any) -> torch.Tensor:
        return preprocess_videos(videos, self.config["channels"], self.config["frame_size"])

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(embedding (N, E), digit logits (N, num_digits), motion logits (N, num_motions))."""
        embedding = self.embedding(self.backbone(clips))
        return embedding, self.digit_head(embedding), self.motion_head(embedding)

    def digit_presence(self, digits: Any) -> torch.Tensor:
        """Per-video digits (an int or a list of ints each) -> float (N, num_digits) presence."""
        return label_presence(digits, DIGIT_NAMES[: self.config["num_digits"]])

    def motion_presence(self, motions: Any) -> torch.Tensor:
        """Per-video motions (names, ids, or lists) -> float (N, num_motions) presence."""
        return label_presence(motions, self.config["motions"])

    def video_feature_extractor(self):
        """A callable for ``extract_features``: float videos (B, T, 3, H, W) in [0, 1] -> (B, embedding_size)."""

        def extract(videos: torch.Tensor) -> torch.Tensor:
            with self.evaluating():
                return self(self.preprocess(videos))[0]

        extract.name = self.name
        return extract

    def predict_scores(self, videos: Any, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """(digit probabilities (N, num_digits), motion probabilities (N, num_motions)), independent sigmoids."""
        parts = self.in_batches(self.preprocess(videos), batch_size, lambda clips: self(clips)[1:])
        return (torch.cat([digit_logits for digit_logits, _ in parts]).sigmoid(),
                torch.cat([motion_logits for _, motion_logits in parts]).sigmoid())

    def measure_held_out(self, videos: Any, digits: Any, motions: Any, split: str, trained_on: str) -> dict:
        digit_truth, motion_truth = self.digit_presence(digits), self.motion_presence(motions)
        digit_scores, motion_scores = self.predict_scores(videos)
        return self.record_held_out(
            {"digit_set_accuracy": float(label_set_matches(digit_scores, digit_truth).float().mean()),
             "motion_set_accuracy": float(label_set_matches(motion_scores, motion_truth).float().mean())},
            {"digit_set_accuracy": most_common_set_rate(digit_truth),
             "motion_set_accuracy": most_common_set_rate(motion_truth)},
            split, len(digit_truth), trained_on,
        )
