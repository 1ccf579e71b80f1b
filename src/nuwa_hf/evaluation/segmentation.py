"""Pixel accuracy, mean IoU and frequency-weighted IoU from a confusion matrix, as NUWA reports for VQ-GAN-Seg
(table 4) and, with a segmenter in between, as "Detected PA" for sketch-to-video.

With C[i, j] the number of pixels of true class i predicted as j, t_i = sum_j C[i, j] and p_j = sum_i C[i, j]:
    pixel accuracy = sum_i C[i, i] / sum_i t_i
    IoU_i          = C[i, i] / (t_i + p_i - C[i, i])
    mean IoU       = mean of IoU_i over classes that occur in the truth or the prediction
    FWIoU          = sum_i (t_i / sum_k t_k) IoU_i          (Long, Shelhamer & Darrell, 2015)
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from .image_inputs import as_label_maps


def confusion_matrix(
    predicted: Any, reference: Any, num_classes: int, ignore_index: Optional[int] = None
) -> torch.Tensor:
    """int64 (num_classes, num_classes) counts; rows are reference classes, columns predicted classes.

    ``predicted`` and ``reference`` are class maps (N, H, W) (or (H, W)); pixels whose reference is
    ``ignore_index`` are skipped. Class ids outside [0, num_classes) raise.
    """
    predicted_maps = as_label_maps(predicted, "predicted label maps")
    reference_maps = as_label_maps(reference, "reference label maps")
    if predicted_maps.shape != reference_maps.shape:
        raise ValueError(
            f"Predicted and reference label maps differ in shape: {tuple(predicted_maps.shape)} vs "
            f"{tuple(reference_maps.shape)}. Resize predictions (nearest neighbour) to the reference size."
        )
    predicted_flat, reference_flat = predicted_maps.flatten(), reference_maps.flatten()
    if ignore_index is not None:
        keep = reference_flat != ignore_index
        predicted_flat, reference_flat = predicted_flat[keep], reference_flat[keep]
    for name, values in (("predicted", predicted_flat), ("reference", reference_flat)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} label maps hold class ids in [{int(values.min())}, {int(values.max())}] but num_classes is "
                f"{num_classes}: raise num_classes or set ignore_index for the void label."
            )
    counts = torch.bincount(reference_flat * num_classes + predicted_flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def scores_from_confusion(confusion: torch.Tensor) -> Dict[str, Any]:
    """Pixel accuracy, mean class accuracy, mean IoU, FWIoU and per-class IoU (``nan`` for absent classes)."""
    confusion = torch.as_tensor(confusion, dtype=torch.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"A confusion matrix must be square, got shape {tuple(confusion.shape)}.")
    total = confusion.sum()
    if total <= 0:
        raise ValueError("The confusion matrix is empty: no pixel was counted.")
    correct = confusion.diagonal()
    true_counts, predicted_counts = confusion.sum(dim=1), confusion.sum(dim=0)
    union = true_counts + predicted_counts - correct
    present = union > 0
    iou = torch.where(present, correct / union.clamp(min=1e-300), torch.full_like(correct, float("nan")))
    has_truth = true_counts > 0
    class_accuracy = correct[has_truth] / true_counts[has_truth]
    frequency = true_counts / total
    return {
        "pixel_accuracy": float(correct.sum() / total),
        "mean_class_accuracy": float(class_accuracy.mean()),
        "mean_iou": float(iou[present].mean()),
        "frequency_weighted_iou": float((frequency[present] * iou[present]).sum()),
        "per_class_iou": [float(value) for value in iou],
    }


def segmentation_scores(
    predicted: Any, reference: Any, num_classes: int, ignore_index: Optional[int] = None
) -> Dict[str, Any]:
    """Scores of predicted class maps against reference class maps (see module docstring), plus pixel count."""
    confusion = confusion_matrix(predicted, reference, num_classes, ignore_index)
    return {**scores_from_confusion(confusion), "num_pixels": int(confusion.sum())}
