"""Fréchet distance between two Gaussians fitted to feature sets: FID (images), and the core of FVD (videos).

    d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))

tr((S_a S_b)^(1/2)) equals the sum of square roots of the eigenvalues of S_a^(1/2) S_b S_a^(1/2), a symmetric PSD
matrix, so two symmetric eigendecompositions in float64 replace scipy's general ``sqrtm`` and never give complex parts.

With few samples there is a cheaper exact route. Writing S_a = A^T A and S_b = B^T B, with A, B the centred samples
divided by sqrt(N - 1), the non-zero eigenvalues of S_a S_b are the squared singular values of the small N_a x N_b
matrix A B^T, so the trace is that matrix's nuclear norm. For 2048 Inception features and a few hundred samples this
replaces two 2048 x 2048 eigendecompositions (seconds) by one small SVD (milliseconds).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from .feature_extraction import FeatureExtractor, extract_features
from .image_inputs import as_float_images


def _symmetric_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def gaussian_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of float features (N, D), N >= 2, in float64."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"Need features shaped (N >= 2, D), got {tuple(features.shape)}: pass at least 2 samples.")
    features = features.double()
    return features.mean(dim=0), torch.cov(features.T).reshape(features.shape[1], features.shape[1])


def frechet_distance_from_statistics(mean_a, covariance_a, mean_b, covariance_b) -> float:
    """Fréchet distance between N(mean_a, covariance_a) and N(mean_b, covariance_b)."""
    mean_a, mean_b = mean_a.double(), mean_b.double()
    covariance_a, covariance_b = covariance_a.double(), covariance_b.double()
    root_a = _symmetric_sqrt(covariance_a)
    middle = root_a @ covariance_b @ root_a
    cross_trace = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mean_a - mean_b).square().sum() + covariance_a.trace() + covariance_b.trace() - 2 * cross_trace
    # Rounding can push an exact zero slightly negative; a distance is never negative.
    return max(float(distance), 0.0)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N_a, D) and (N_b, D), N >= 2."""
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"Need two feature sets (N, D) of one width, got {tuple(features_a.shape)} and "
                         f"{tuple(features_b.shape)}.")
    count_a, count_b, width = features_a.shape[0], features_b.shape[0], features_a.shape[1]
    if count_a * count_b > width * width:
        return frechet_distance_from_statistics(*gaussian_statistics(features_a), *gaussian_statistics(features_b))
    if min(count_a, count_b) < 2:
        raise ValueError(f"Need at least 2 samples per set, got {count_a} and {count_b}.")
    features_a, features_b = features_a.double(), features_b.double()
    mean_a, mean_b = features_a.mean(dim=0), features_b.mean(dim=0)
    scaled_a = (features_a - mean_a) / (count_a - 1) ** 0.5
    scaled_b = (features_b - mean_b) / (count_b - 1) ** 0.5
    cross_trace = torch.linalg.svdvals(scaled_a @ scaled_b.T).sum()
    distance = (mean_a - mean_b).square().sum() + scaled_a.square().sum() + scaled_b.square().sum() - 2 * cross_trace
    return max(float(distance), 0.0)


def frechet_distance_of_features(generated: torch.Tensor, reference: torch.Tensor, extractor: FeatureExtractor,
                                 batch_size: int) -> float:
    """The Fréchet distance between the features ``extractor`` gives (in batches) for two sets of float pictures:
    images (N, 3, H, W) for FID, videos (N, T, 3, H, W) for FVD."""
    return frechet_distance(extract_features(generated, extractor, batch_size),
                            extract_features(reference, extractor, batch_size))


def frechet_inception_distance(
    generated: Any,
    reference: Any,
    feature_extractor: Optional[FeatureExtractor] = None,
    feature_extractor_name: Optional[str] = None,
    batch_size: int = 16,
) -> Dict[str, Any]:
    """FID between two image sets (any layout ``image_inputs`` accepts; the two sizes may differ).

    ``feature_extractor`` defaults to the real FID Inception (pool3); pass your own callable mapping float
    (B, 3, H, W) in [0, 1] to (B, D) to use another network, and name it with ``feature_extractor_name``.
    Returns ``{"fid", "fid_feature_extractor", "num_generated", "num_reference"}``. FID is biased upwards at small
    sample sizes (hundreds of images or fewer): compare such numbers only at equal N, or prefer KID.
    """
    from .inception import default_inception

    extractor = feature_extractor if feature_extractor is not None else default_inception()
    name = feature_extractor_name or getattr(extractor, "name", None) or type(extractor).__name__
    generated_images = as_float_images(generated, what="generated images")
    reference_images = as_float_images(reference, what="reference images")
    return {
        "fid": frechet_distance_of_features(generated_images, reference_images, extractor, batch_size),
        "fid_feature_extractor": name,
        "num_generated": len(generated_images),
        "num_reference": len(reference_images),
    }
