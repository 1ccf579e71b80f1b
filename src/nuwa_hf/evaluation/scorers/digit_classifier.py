"""A small CNN that reads which digit (0-9) an image shows: the attribute classifier for MNIST-based tasks and the
classifier behind the project's Inception-Score-style metric.

Any image layout ``nuwa_hf.evaluation.image_inputs`` accepts goes in; images are turned to gray (luma) and resized to
``image_size`` x ``image_size`` (28, MNIST's own size), so generated 64x64 RGB digits read the same as MNIST.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..image_inputs import as_float_images
from .label_sets import label_presence
from .scorer_base import TrainedScorer, chance_of_labels


def gray_pixels(images: Any, size: int) -> torch.Tensor:
    """Raw images (any layout ``as_float_images`` takes) -> float luma (N, 1, size, size) in [0, 1], resized with
    antialiasing when they are not ``size`` x ``size`` already. The input of both digit CNNs."""
    gray = as_float_images(images, channels=1)
    if gray.shape[-2:] != (size, size):
        gray = F.interpolate(gray, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return gray


def digit_presence(labels: Any, num_classes: int) -> torch.Tensor:
    """Per-image digits (an int, or a list for images with several) -> float (N, num_classes) presence."""
    return label_presence(labels, [str(digit) for digit in range(num_classes)])


class DigitClassifier(TrainedScorer):
    """Images -> logits over ``num_classes`` digits. Two conv blocks and a small MLP (about 0.1 M parameters).

    ``forward`` takes preprocessed float (N, 1, image_size, image_size); ``predict_proba``/``predict`` take raw images.
    """

    short_name = "digit CNN"

    def __init__(self, num_classes: int = 10, image_size: int = 28, width: int = 16, hidden: int = 64):
        super().__init__(num_classes=num_classes, image_size=image_size, width=width, hidden=hidden)
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(width, 2 * width, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        )
        pooled = image_size // 4
        self.head = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(2 * width * pooled * pooled, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, num_classes),
        )

    def preprocess(self, images: Any) -> torch.Tensor:
        """Raw images -> float (N, 1, image_size, image_size) in [0, 1]."""
        return gray_pixels(images, self.config["image_size"])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels))

    def predict_proba(self, images: Any, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, num_classes) for raw images."""
        return torch.cat(self.in_batches(self.preprocess(images), batch_size, lambda batch: self(batch).softmax(-1)))

    def predict(self, images: Any, batch_size: int = 256) -> torch.Tensor:
        """Most likely digit (N,) int64 for raw images."""
        return self.predict_proba(images, batch_size).argmax(dim=-1)

    def predict_scores(self, images: Any, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities (N, num_classes): the scores attribute accuracy ranks."""
        return self.predict_proba(images, batch_size)

    def label_presence(self, labels: Any) -> torch.Tensor:
        """Per-image digits (an int, or a list for images with several digits) -> float (N, num_classes) presence."""
        return digit_presence(labels, self.config["num_classes"])

    def label_ids(self, labels: Any) -> torch.Tensor:
        """Digit labels -> int64 (N,), checked to lie in [0, num_classes)."""
        ids = torch.as_tensor(np.array(labels, dtype=np.int64)).flatten()
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.config["num_classes"]):
            raise ValueError(f"Digit labels must lie in [0, {self.config['num_classes']}), got "
                             f"{ids.min()}..{ids.max()}.")
        return ids

    def measure_held_out(self, images: Any, labels: Any, split: str, trained_on: str) -> dict:
        """Accuracy on images the classifier was not trained on; stored as its held-out report and returned."""
        labels = self.label_ids(labels)
        accuracy = float((self.predict(images) == labels).float().mean())
        return self.record_held_out(
            {"accuracy": accuracy}, {"accuracy": chance_of_labels(labels, self.config["num_classes"])},
            split, len(labels), trained_on,
        )
