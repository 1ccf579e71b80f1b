"""Kernel Inception Distance (Bińkowski et al., 2018): an unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / D + 1)^3, averaged over random subsets. Unlike FID it is unbiased, so it is the better choice for
the small sample sizes a CPU can afford.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from .feature_extraction import FeatureExtractor, extract_features
from .image_inputs import as_float_images


def _polynomial_kernel(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    return (first @ second.T / first.shape[1] + 1.0) ** 3


def unbiased_mmd2(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Unbiased MMD^2 between two samples (m, D) and (n, D), m, n >= 2, with the KID kernel."""
    m, n = features_a.shape[0], features_b.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {m} and {n}.")
    k_aa, k_bb, k_ab = (_polynomial_kernel(features_a, features_a), _polynomial_kernel(features_b, features_b),
                        _polynomial_kernel(features_a, features_b))
    # The diagonals (a sample with itself) are left out: that is what makes the estimate unbiased.
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (m * (m - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (n * (n - 1))
    return float(within_a + within_b - 2 * k_ab.mean())


def kernel_distance(
    features_a: torch.Tensor,
    features_b: torch.Tensor,
    subset_size: int = 1000,
    num_subsets: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of unbiased MMD^2 over ``num_subsets`` random subsets of ``min(subset_size, N_a, N_b)`` each."""
    features_a, features_b = features_a.double(), features_b.double()
    size = min(subset_size, features_a.shape[0], features_b.shape[0])
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(num_subsets):
        pick_a = torch.randperm(features_a.shape[0], generator=generator)[:size]
        pick_b = torch.randperm(features_b.shape[0], generator=generator)[:size]
        values.append(unbiased_mmd2(features_a[pick_a], features_b[pick_b]))
    values = torch.tensor(values, dtype=torch.float64)
    return float(values.mean()), float(values.std(unbiased=False))


def kernel_inception_distance(
    generated: Any,
    reference: Any,
    feature_extractor: Optional[FeatureExtractor] = None,
    feature_extractor_name: Optional[str] = None,
    subset_size: int = 1000,
    num_subsets: int = 100,
    seed: int = 0,
    batch_size: int = 16,
) -> Dict[str, Any]:
    """KID between two image sets. Same inputs as :func:`frechet_inception_distance`.

    Returns ``{"kid", "kid_std", "kid_feature_extractor", "num_generated", "num_reference"}``.
    """
    from .inception import default_inception

    extractor = feature_extractor if feature_extractor is not None else default_inception()
    name = feature_extractor_name or getattr(extractor, "name", None) or type(extractor).__name__
    generated_images = as_float_images(generated, what="generated images")
    reference_images = as_float_images(reference, what="reference images")
    mean, std = kernel_distance(
        extract_features(generated_images, extractor, batch_size),
        extract_features(reference_images, extractor, batch_size),
        subset_size=subset_size, num_subsets=num_subsets, seed=seed,
    )
    return {
        "kid": mean,
        "kid_std": std,
        "kid_feature_extractor": name,
        "num_generated": len(generated_images),
        "num_reference": len(reference_images),
    }
