"""A small (2+1)D CNN whose embedding stands in for I3D in an FVD-style score ("FVD ((2+1)D CNN trained on Moving MNIST)").

No I3D weights can be had offline, so the project trains its own video network on the world's labels: which digits
appear (multi-label, so two-digit videos work) and how they move. Its ``embedding_size``-wide penultimate layer is the
feature the Fréchet distance compares, as I3D's is for the real FVD. Its held-out report gives both tasks' accuracy.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..image_inputs import split_into_batches
from .motion_classifier import MOTIONS, motion_ids
from .scorer_base import TrainedScorer, chance_of_labels
from .training import fit_minibatches
from .video_backbone import VideoBackbone2Plus1D, preprocess_videos


def digit_presence(digits: Any, num_digits: int) -> torch.Tensor:
    """Per-video digit lists (or single ints) -> float (N, num_digits) 0/1 presence vectors."""
    presence = torch.zeros(len(digits), num_digits)
    for row, video_digits in enumerate(digits):
        values = [int(video_digits)] if np.ndim(video_digits) == 0 else [int(value) for value in video_digits]
        for value in values:
            if not 0 <= value < num_digits:
                raise ValueError(f"Digit {value} is outside [0, {num_digits}).")
            presence[row, value] = 1.0
    return presence


def digit_set_matches(scores: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """For each video, whether the k highest-scoring digits are exactly its k true digits -> bool (N,)."""
    matches = []
    for row_scores, row_presence in zip(scores, presence):
        count = int(row_presence.sum())
        chosen = torch.zeros_like(row_presence)
        chosen[row_scores.topk(count).indices] = 1.0
        matches.append(bool(torch.equal(chosen, row_presence)))
    return torch.tensor(matches)


class VideoFeatureNetwork(TrainedScorer):
    """Videos -> ``embedding_size`` features (``embed``), trained through two heads: digit presence and motion."""

    short_name = "(2+1)D CNN"

    def __init__(self, motions: Sequence[str] = MOTIONS, num_digits: int = 10, channels: int = 1,
                 frame_size: int = 32, width: int = 16, time_bins: int = 4, embedding_size: int = 128):
        super().__init__(motions=list(motions), num_digits=num_digits, channels=channels, frame_size=frame_size,
                         width=width, time_bins=time_bins, embedding_size=embedding_size)
        self.backbone = VideoBackbone2Plus1D(channels, width, time_bins)
        self.embedding = torch.nn.Sequential(torch.nn.Linear(self.backbone.output_size, embedding_size), torch.nn.ReLU())
        self.digit_head = torch.nn.Linear(embedding_size, num_digits)
        self.motion_head = torch.nn.Linear(embedding_size, len(motions))

    def preprocess(self, videos: Any) -> torch.Tensor:
        return preprocess_videos(videos, self.config["channels"], self.config["frame_size"])

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(embedding (N, E), digit logits (N, num_digits), motion logits (N, num_motions))."""
        embedding = self.embedding(self.backbone(clips))
        return embedding, self.digit_head(embedding), self.motion_head(embedding)

    @torch.no_grad()
    def embed_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """Features of preprocessed clips (N, C, T, S, S) -> (N, embedding_size)."""
        return self(clips)[0]

    def video_feature_extractor(self):
        """A callable for :func:`extract_features`: float videos (B, T, 3, H, W) in [0, 1] -> (B, embedding_size)."""

        def extract(videos: torch.Tensor) -> torch.Tensor:
            return self.embed_clips(self.preprocess(videos))

        extract.name = self.name
        return extract

    @torch.no_grad()
    def predict_scores(self, videos: Any, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """(digit probabilities (N, num_digits), motion probabilities (N, num_motions)) for raw videos."""
        was_training = self.training
        self.eval()
        clips = self.preprocess(videos)
        digit_parts, motion_parts = [], []
        for rows in split_into_batches(len(clips), batch_size):
            _, digit_logits, motion_logits = self(clips[rows])
            digit_parts.append(digit_logits.sigmoid())
            motion_parts.append(motion_logits.softmax(-1))
        self.train(was_training)
        return torch.cat(digit_parts), torch.cat(motion_parts)

    def measure_held_out(self, videos: Any, digits: Any, motions: Any, split: str, trained_on: str) -> dict:
        presence = digit_presence(digits, self.config["num_digits"])
        wanted_motions = motion_ids(motions, self.config["motions"])
        digit_scores, motion_scores = self.predict_scores(videos)
        # Chance for the digit sets: always answering the most frequent set.
        set_keys = [tuple(row.nonzero().flatten().tolist()) for row in presence]
        most_common_set = max(set(set_keys), key=set_keys.count)
        return self.record_held_out(
            {"digit_set_accuracy": float(digit_set_matches(digit_scores, presence).float().mean()),
             "motion_accuracy": float((motion_scores.argmax(-1) == wanted_motions).float().mean())},
            {"digit_set_accuracy": set_keys.count(most_common_set) / len(set_keys),
             "motion_accuracy": chance_of_labels(wanted_motions, len(self.config["motions"]))},
            split, len(presence), trained_on,
        )

    def fit(self, videos: Any, digits: Any, motions: Any, held_out_videos: Any, held_out_digits: Any,
            held_out_motions: Any, trained_on: str, held_out_split: str = "test", epochs: int = 3,
            batch_size: int = 32, learning_rate: float = 2e-3, seed: int = 0,
            progress: bool = False) -> "VideoFeatureNetwork":
        """Train both heads on the training videos, then measure both accuracies on the held-out ones."""
        clips = self.preprocess(videos)
        presence = digit_presence(digits, self.config["num_digits"])
        wanted_motions = motion_ids(motions, self.config["motions"])

        def batch_loss(batch):
            inputs, digit_targets, motion_targets = batch
            _, digit_logits, motion_logits = self(inputs)
            # Summed over the digits (not averaged) so the digit task weighs as much as the motion task.
            digit_loss = F.binary_cross_entropy_with_logits(digit_logits, digit_targets, reduction="sum") / len(inputs)
            return digit_loss + F.cross_entropy(motion_logits, motion_targets)

        fit_minibatches(self, [clips, presence, wanted_motions], batch_loss, epochs, batch_size, learning_rate, seed,
                        progress)
        self.measure_held_out(held_out_videos, held_out_digits, held_out_motions, held_out_split, trained_on)
        return self
