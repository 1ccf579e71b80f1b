"""Reconstruction quality of the visual tokenizers, as reported in the NUWA paper's VQ-GAN tables.

Images: PSNR and SSIM (Wang et al. 2004, Gaussian window 11x11, sigma 1.5). Sketches: pixel accuracy and
frequency-weighted IoU (table 4 of the paper), from a confusion matrix that can be accumulated over batches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """
    Peak signal-to-noise ratio of every image, in dB.

    Args:
        prediction, target (`torch.FloatTensor` of shape `(N, C, H, W)`): images in the same range.
        data_range (`float`, defaults to 2.0): max minus min of that range (2 for `[-1, 1]`, 1 for `[0, 1]`).

    Returns:
        `torch.FloatTensor` of shape `(N,)`; identical images give `inf`.
    """
    mse = (prediction.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    kernel_1d = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel_1d = kernel_1d / kernel_1d.sum()
    kernel_2d = kernel_1d[:, None] * kernel_1d[None, :]
    return kernel_2d.expand(channels, 1, size, size).contiguous()


def ssim(
    prediction: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 2.0,
    window_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """
    Structural similarity of every image (mean over channels and valid window positions).

    Args:
        prediction, target (`torch.FloatTensor` of shape `(N, C, H, W)`): images in the same range; `H` and `W` at
            least `window_size`.
        data_range (`float`, defaults to 2.0): max minus min of that range.
        window_size (`int`, defaults to 11), sigma (`float`, defaults to 1.5): the Gaussian window.

    Returns:
        `torch.FloatTensor` of shape `(N,)` in `[-1, 1]`; 1 for identical images.
    """
    if prediction.shape != target.shape or prediction.ndim != 4:
        raise ValueError(
            f"ssim needs two (N, C, H, W) tensors of one shape, got {tuple(prediction.shape)} and {tuple(target.shape)}."
        )
    if min(prediction.shape[-2:]) < window_size:
        raise ValueError(
            f"ssim needs images of at least {window_size}x{window_size} pixels, got {tuple(prediction.shape[-2:])}."
        )
    x, y = prediction.double(), target.double()
    channels = x.shape[1]
    window = _gaussian_window(window_size, sigma, channels, x.device, x.dtype)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov_xy = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1).to(prediction.dtype if prediction.is_floating_point() else torch.float32)


def confusion_matrix(prediction: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """
    Confusion matrix of class maps.

    Args:
        prediction, target (`torch.LongTensor` of one shape, e.g. `(N, H, W)`): class ids in `[0, num_classes)`.

    Returns:
        `torch.LongTensor` of shape `(num_classes, num_classes)`: entry `[t, p]` counts pixels of true class `t`
        predicted as `p`. Sum matrices of several batches to score a whole set.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must have one shape.")
    flat = target.reshape(-1).long().cpu() * num_classes + prediction.reshape(-1).long().cpu()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def segmentation_scores(confusion: torch.Tensor) -> dict[str, float]:
    """
    Pixel accuracy, frequency-weighted IoU and mean IoU from a confusion matrix.

    FWIoU = sum_c freq_c * IoU_c with freq_c the share of pixels whose true class is c; mean IoU averages over the
    classes that occur in the target or the prediction.
    """
    confusion = confusion.double()
    total = confusion.sum().clamp_min(1)
    true_positive = confusion.diag()
    per_true_class = confusion.sum(dim=1)
    per_predicted_class = confusion.sum(dim=0)
    union = per_true_class + per_predicted_class - true_positive
    present = union > 0
    iou = torch.where(present, true_positive / union.clamp_min(1), torch.zeros_like(union))
    frequency = per_true_class / total
    return {
        "pixel_accuracy": float(true_positive.sum() / total),
        "fw_iou": float((frequency * iou).sum()),
        "mean_iou": float(iou[present].mean()) if present.any() else 0.0,
    }
