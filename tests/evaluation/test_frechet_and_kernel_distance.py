"""Fréchet and kernel distances on features with known answers (no network involved)."""

import pytest
import torch

from nuwa_hf.evaluation.frechet import frechet_distance, frechet_distance_from_statistics, gaussian_statistics
from nuwa_hf.evaluation.kernel_inception import kernel_distance, unbiased_mmd2


def test_identical_feature_sets_are_at_distance_zero():
    features = torch.randn(40, 64, generator=torch.Generator().manual_seed(0))
    assert abs(frechet_distance(features, features)) < 1e-8
    # Fewer samples than dimensions: a rank-deficient covariance must still give 0, not a rounding artefact.
    few = features[:6]
    assert abs(frechet_distance(few, few)) < 1e-8


def test_sample_route_and_covariance_route_agree():
    # Few samples in many dimensions take the small-SVD route; the statistics route must give the same number.
    generator = torch.Generator().manual_seed(3)
    first, second = torch.randn(7, 50, generator=generator), torch.randn(9, 50, generator=generator) + 0.3
    via_statistics = frechet_distance_from_statistics(*gaussian_statistics(first), *gaussian_statistics(second))
    # (1e-6, not 1e-9: square roots of rank-deficient covariances' near-zero eigenvalues cost the statistics route
    # about sqrt(machine epsilon) of accuracy; the SVD route has no such term.)
    assert frechet_distance(first, second) == pytest.approx(via_statistics, rel=1e-6)


def test_closed_form_for_diagonal_gaussians():
    # For diagonal covariances d^2 = |mu_a - mu_b|^2 + sum_i (sigma_a_i - sigma_b_i)^2.
    mean_a, mean_b = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    std_a, std_b = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 1.0, 0.5])
    expected = float((mean_a - mean_b).square().sum() + (std_a - std_b).square().sum())
    got = frechet_distance_from_statistics(mean_a, torch.diag(std_a**2), mean_b, torch.diag(std_b**2))
    assert abs(got - expected) < 1e-9


def test_fid_and_kid_grow_with_a_real_difference():
    generator = torch.Generator().manual_seed(1)
    reference = torch.randn(300, 16, generator=generator)
    same_distribution = torch.randn(300, 16, generator=generator)
    shifted = torch.randn(300, 16, generator=generator) + 0.5
    assert frechet_distance(same_distribution, reference) < frechet_distance(shifted, reference)
    kid_same, _ = kernel_distance(same_distribution, reference, subset_size=100, num_subsets=20)
    kid_shifted, _ = kernel_distance(shifted, reference, subset_size=100, num_subsets=20)
    assert abs(kid_same) < 0.02 < kid_shifted


def test_unbiased_mmd_is_zero_in_expectation():
    # The average of many independent same-distribution estimates is close to 0 (it is unbiased), and they do go
    # negative sometimes, which a biased estimator never does.
    generator = torch.Generator().manual_seed(2)
    estimates = torch.tensor([unbiased_mmd2(torch.randn(20, 8, generator=generator),
                                            torch.randn(20, 8, generator=generator)) for _ in range(200)])
    assert abs(float(estimates.mean())) < 3 * float(estimates.std()) / 200**0.5 + 1e-3
    assert (estimates < 0).any()
