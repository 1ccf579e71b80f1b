"""Which of four motions a Moving-MNIST-style video shows: "up then down", "down then up", "left then right",
"right then left" (the captioned Moving MNIST protocol of GODIVA). The attribute classifier for motion in T2V.
"""

from __future__ import annotations

import numbers
from typing import Any, List, Sequence

import numpy as np

import torch
import torch.nn.functional as F

from ..image_inputs import split_into_batches
from .scorer_base import TrainedScorer, chance_of_labels
from .training import fit_minibatches
from .video_backbone import VideoBackbone2Plus1D, preprocess_videos

MOTIONS = ("up then down", "down then up", "left then right", "right then left")


def motion_ids(motions: Any, names: Sequence[str]) -> torch.Tensor:
    """Motion labels -> int64 ids. Accepts ids, names, or per-video lists of names that all agree."""
    if isinstance(motions, (torch.Tensor, np.ndarray)) and not np.asarray(motions).dtype.kind in "USO":
        motions = np.asarray(motions).tolist()
    if len(motions) and all(isinstance(motion, numbers.Integral) for motion in motions):
        ids = torch.as_tensor([int(motion) for motion in motions], dtype=torch.long)
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(names)):
            raise ValueError(f"Motion ids must lie in [0, {len(names)}), got {ids.min()}..{ids.max()}.")
        return ids
    ids: List[int] = []
    for motion in motions:
        if isinstance(motion, (list, tuple)):
            if len(set(motion)) != 1:
                raise ValueError(f"One video has several different motions {list(motion)}: the classifier reads one.")
            motion = motion[0]
        if motion not in names:
            raise ValueError(f"Unknown motion {motion!r}: expected one of {list(names)}.")
        ids.append(list(names).index(motion))
    return torch.tensor(ids, dtype=torch.long)


class MotionClassifier(TrainedScorer):
    """Videos -> logits over the motions in ``motions``. A ``VideoBackbone2Plus1D`` and a linear head."""

    short_name = "motion (2+1)D CNN"

    def __init__(self, motions: Sequence[str] = MOTIONS, channels: int = 1, frame_size: int = 32, width: int = 16,
                 time_bins: int = 4):
        super().__init__(motions=list(motions), channels=channels, frame_size=frame_size, width=width,
                         time_bins=time_bins)
        self.backbone = VideoBackbone2Plus1D(channels, width, time_bins)
        self.head = torch.nn.Linear(self.backbone.output_size, len(motions))

    def preprocess(self, videos: Any) -> torch.Tensor:
        return preprocess_videos(videos, self.config["channels"], self.config["frame_size"])

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(clips))

    @torch.no_grad()
    def predict_proba(self, videos: Any, batch_size: int = 32) -> torch.Tensor:
        """Motion probabilities (N, num_motions) for raw videos."""
        was_training = self.training
        self.eval()
        clips = self.preprocess(videos)
        probabilities = torch.cat([self(clips[rows]).softmax(-1) for rows in split_into_batches(len(clips), batch_size)])
        self.train(was_training)
        return probabilities

    def predict(self, videos: Any, batch_size: int = 32) -> List[str]:
        """Most likely motion name per video."""
        return [self.config["motions"][index] for index in self.predict_proba(videos, batch_size).argmax(-1).tolist()]

    def label_ids(self, motions: Any) -> torch.Tensor:
        """Motion names (or ids) -> int64 (N,)."""
        return motion_ids(motions, self.config["motions"])

    def measure_held_out(self, videos: Any, motions: Any, split: str, trained_on: str) -> dict:
        wanted = motion_ids(motions, self.config["motions"])
        predicted = self.predict_proba(videos).argmax(-1)
        accuracy = float((predicted == wanted).float().mean())
        return self.record_held_out({"accuracy": accuracy},
                                    {"accuracy": chance_of_labels(wanted, len(self.config["motions"]))},
                                    split, len(wanted), trained_on)

    def fit(self, videos: Any, motions: Any, held_out_videos: Any, held_out_motions: Any, trained_on: str,
            held_out_split: str = "test", epochs: int = 3, batch_size: int = 32, learning_rate: float = 2e-3,
            seed: int = 0, progress: bool = False) -> "MotionClassifier":
        """Train on (videos, motions), then measure accuracy on the held-out pair. Returns self."""
        clips = self.preprocess(videos)
        targets = motion_ids(motions, self.config["motions"])
        fit_minibatches(self, [clips, targets], lambda batch: F.cross_entropy(self(batch[0]), batch[1]),
                        epochs, batch_size, learning_rate, seed, progress)
        self.measure_held_out(held_out_videos, held_out_motions, held_out_split, trained_on)
        return self
