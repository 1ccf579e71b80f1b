"""Pixel accuracy, mean IoU and frequency-weighted IoU of predicted class maps (NUWA table 4, "Detected PA")."""

import datasets
import evaluate

from nuwa_hf.evaluation.metric_module_support import IMAGE, label_maps_of, pil_label_maps
from nuwa_hf.evaluation.segmentation import segmentation_scores

_DESCRIPTION = """Scores of predicted class maps against reference class maps from their confusion matrix: pixel
accuracy, mean class accuracy, mean IoU (over classes present in either), frequency-weighted IoU, and per-class IoU."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class maps, integer arrays (N, H, W) (or PIL "L"/"I;16" images), ids < 65,536.
    references: reference class maps, same shape.
    num_classes: number of classes (required).
    ignore_index: reference id whose pixels are not counted (optional).
Returns:
    pixel_accuracy, mean_class_accuracy, mean_iou, frequency_weighted_iou, per_class_iou, num_pixels.
Example:
    >>> seg = evaluate.load("metrics/segmentation")  # from the repository root
    >>> seg.compute(predictions=maps, references=truth, num_classes=20)["frequency_weighted_iou"]
"""

_CITATION = """@inproceedings{long2015fully, title={Fully convolutional networks for semantic segmentation},
author={Long, Jonathan and Shelhamer, Evan and Darrell, Trevor}, booktitle={CVPR}, year={2015}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SegmentationScores(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": IMAGE, "references": IMAGE}),
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (converted to 8-bit PIL images, stored as PNG)."""
        return super().add_batch(predictions=pil_label_maps(predictions), references=pil_label_maps(references),
                                 **kwargs)

    def _compute(self, predictions, references, num_classes=None, ignore_index=None):
        if num_classes is None:
            raise ValueError("Pass num_classes=... (the number of classes in the label maps).")
        return segmentation_scores(label_maps_of(predictions), label_maps_of(references), num_classes, ignore_index)
