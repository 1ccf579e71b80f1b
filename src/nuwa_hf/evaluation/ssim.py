"""Structural similarity (Wang, Bovik, Sheikh & Simoncelli, 2004) with the paper's constants:
an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, statistics over 'valid' windows only (no padding),
computed per channel and averaged. Identical images score exactly 1.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
import torch.nn.functional as F

from .image_inputs import paired_pictures


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    line = line / line.sum()
    return torch.outer(line, line)


def ssim_per_image(
    first: torch.Tensor, second: torch.Tensor, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> torch.Tensor:
    """SSIM of each pair of float images (N, C, H, W) -> (N,), averaged over channels and window positions."""
    if first.shape != second.shape:
        raise ValueError(f"Images to compare must have the same shape, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}.")
    height, width = first.shape[-2:]
    if window_size > min(height, width):
        raise ValueError(
            f"Images of {height}x{width} are smaller than the {window_size}x{window_size} SSIM window: "
            "pass a smaller odd window_size (e.g. 7)."
        )
    channels = first.shape[1]
    window = _gaussian_window(window_size, sigma).to(torch.float64).expand(channels, 1, window_size, window_size)
    x, y = first.double(), second.double()

    def local_mean(values: torch.Tensor) -> torch.Tensor:
        return F.conv2d(values, window, groups=channels)

    mean_x, mean_y = local_mean(x), local_mean(y)
    variance_x = local_mean(x * x) - mean_x**2
    variance_y = local_mean(y * y) - mean_y**2
    covariance = local_mean(x * y) - mean_x * mean_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (variance_x + variance_y + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3)).float()


def structural_similarity(
    generated: Any, reference: Any, videos: bool = False, window_size: int = 11, sigma: float = 1.5
) -> Dict[str, Any]:
    """Mean SSIM over pairs of images (or over all frames of paired videos when ``videos=True``).

    Returns ``{"ssim", "ssim_std", "num_pairs"}``; pairs are frames when ``videos`` is true.
    """
    first, second = paired_pictures(generated, reference, videos)
    scores = ssim_per_image(first, second, window_size, sigma)
    return {"ssim": float(scores.mean()), "ssim_std": float(scores.std(unbiased=False)), "num_pairs": len(scores)}
