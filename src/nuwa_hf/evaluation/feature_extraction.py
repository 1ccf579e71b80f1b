"""Run a feature network over a whole set of images or videos, batch by batch, without gradients."""

from __future__ import annotations

from typing import Callable

import torch

from .image_inputs import split_into_batches

FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]
"""Any callable mapping a float batch in [0, 1] (images (B, 3, H, W) or videos (B, T, 3, H, W)) to features (B, D).

Outputs shaped (B, D, 1, 1) (pooled conv maps) are accepted and flattened.
"""


def extract_features(samples: torch.Tensor, extractor: FeatureExtractor, batch_size: int = 32) -> torch.Tensor:
    """Features of every sample: float64 (N, D). ``samples`` is float (N, ...) already laid out for ``extractor``."""
    if len(samples) == 0:
        raise ValueError("Cannot extract features from an empty set.")
    outputs = []
    with torch.inference_mode():
        for batch in split_into_batches(len(samples), batch_size):
            features = extractor(samples[batch])
            if not isinstance(features, torch.Tensor):
                raise TypeError(f"The feature extractor must return a tensor, got {type(features).__name__}.")
            outputs.append(features.reshape(features.shape[0], -1).double().cpu())
    return torch.cat(outputs)
