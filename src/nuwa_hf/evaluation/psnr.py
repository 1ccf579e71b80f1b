"""Peak signal-to-noise ratio, 10 log10(MAX^2 / MSE), per image pair (values scaled to [0, 1], so MAX = 1) and
averaged over pairs. A pair of identical images has infinite PSNR; the mean is then infinite too, and the number of
identical pairs is reported so that a reader sees why.
"""

from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np
import torch

from .image_inputs import paired_pictures


def psnr_per_image(first: torch.Tensor, second: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB of each pair of float images (N, C, H, W) -> (N,); ``inf`` where a pair is identical.

    ``data_range`` is max minus min of the images' range: 1 for [0, 1] (the evaluation's), 2 for [-1, 1] (what the
    VQ-GANs read and write)."""
    if first.shape != second.shape:
        raise ValueError(f"Images to compare must have the same shape, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}.")
    mse = (first.double() - second.double()).square().mean(dim=(1, 2, 3))
    return (10 * torch.log10(data_range**2 / mse)).float()


def psnr_in_region(first: Any, second: Any, region: Any, data_range: float = 255.0) -> float:
    """PSNR in dB of two arrays over the pixels where ``region`` is true (e.g. what an edit must keep), in their own
    range (``data_range`` 255 for uint8 pictures). Identical regions give a large finite value (MSE floored at 1e-10)."""
    first = torch.as_tensor(np.asarray(first), dtype=torch.float64)
    second = torch.as_tensor(np.asarray(second), dtype=torch.float64)
    if first.shape != second.shape:
        raise ValueError(f"Arrays to compare must have the same shape, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}.")
    mse = (first - second).square()[torch.as_tensor(np.asarray(region), dtype=torch.bool)].mean()
    return float(10 * torch.log10(data_range**2 / mse.clamp(min=1e-10)))


def peak_signal_to_noise_ratio(generated: Any, reference: Any, videos: bool = False) -> Dict[str, Any]:
    """Mean PSNR (dB) over image pairs, or over all frames of paired videos when ``videos=True``.

    Returns ``{"psnr", "psnr_finite_mean", "num_identical_pairs", "num_pairs"}``; ``psnr_finite_mean`` leaves out
    identical pairs (``nan`` when all are identical).
    """
    first, second = paired_pictures(generated, reference, videos)
    scores = psnr_per_image(first, second)
    finite = scores[torch.isfinite(scores)]
    return {
        "psnr": float(scores.double().mean()),
        "psnr_finite_mean": float(finite.double().mean()) if len(finite) else math.nan,
        "num_identical_pairs": int((~torch.isfinite(scores)).sum()),
        "num_pairs": len(scores),
    }
