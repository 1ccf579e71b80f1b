"""SSIM and PSNR on inputs with known answers."""

import math

import numpy as np
import pytest
import torch

from nuwa_hf.evaluation.psnr import peak_signal_to_noise_ratio
from nuwa_hf.evaluation.ssim import ssim_per_image, structural_similarity


def _images(seed, count=4, size=24):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_identical_images_have_ssim_one_and_infinite_psnr():
    images = _images(0)
    assert structural_similarity(images, images)["ssim"] == pytest.approx(1.0, abs=1e-6)
    psnr = peak_signal_to_noise_ratio(images, images)
    assert math.isinf(psnr["psnr"]) and psnr["num_identical_pairs"] == 4 and math.isnan(psnr["psnr_finite_mean"])


def test_ssim_of_constant_images_matches_the_formula():
    # Constant images have no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b = 0.2, 0.6
    first, second = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    c1 = 0.01**2
    assert float(ssim_per_image(first, second)[0]) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)


def test_psnr_matches_the_formula():
    first, second = np.zeros((2, 8, 8), np.float32), np.full((2, 8, 8), 0.1, np.float32)
    assert peak_signal_to_noise_ratio(first, second)["psnr"] == pytest.approx(20.0, abs=1e-4)


def test_more_noise_scores_worse_and_shuffled_pairs_score_worse():
    rng = np.random.default_rng(3)
    clean = (np.clip(rng.normal(0.5, 0.2, (6, 32, 32)), 0, 1)).astype(np.float32)
    ssims, psnrs = [], []
    for noise in (0.02, 0.1, 0.3):
        noisy = np.clip(clean + rng.normal(0, noise, clean.shape), 0, 1).astype(np.float32)
        ssims.append(structural_similarity(noisy, clean)["ssim"])
        psnrs.append(peak_signal_to_noise_ratio(noisy, clean)["psnr"])
    assert ssims[0] > ssims[1] > ssims[2] and psnrs[0] > psnrs[1] > psnrs[2]
    shuffled = clean[[1, 2, 3, 4, 5, 0]]
    assert structural_similarity(shuffled, clean)["ssim"] < ssims[2]


def test_videos_are_compared_frame_by_frame():
    videos = np.random.default_rng(4).integers(0, 256, (2, 3, 16, 16), dtype=np.uint8)
    other = videos.copy()
    other[1, 2] = 255 - other[1, 2]
    result = structural_similarity(other, videos, videos=True)
    assert result["num_pairs"] == 6
    per_frame = ssim_per_image(torch.from_numpy(other[1, 2:3]).float()[:, None] / 255,
                               torch.from_numpy(videos[1, 2:3]).float()[:, None] / 255)
    assert result["ssim"] == pytest.approx((5 + float(per_frame[0])) / 6, abs=1e-5)


def test_small_images_need_a_smaller_window():
    tiny = np.zeros((1, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="window_size"):
        structural_similarity(tiny, tiny)
    assert structural_similarity(tiny, tiny, window_size=7)["ssim"] == pytest.approx(1.0)
