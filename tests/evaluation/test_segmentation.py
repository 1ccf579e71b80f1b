"""Pixel accuracy, mIoU and FWIoU from a known confusion matrix."""

import numpy as np
import pytest

from nuwa_hf.evaluation.segmentation import confusion_matrix, scores_from_confusion, segmentation_scores

# Rows: true class, columns: predicted class.
KNOWN = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])


def _maps_realising(confusion):
    truth, predicted = [], []
    for true_class, row in enumerate(confusion):
        for predicted_class, count in enumerate(row):
            truth += [true_class] * count
            predicted += [predicted_class] * count
    order = np.random.default_rng(0).permutation(len(truth))  # pixel order must not matter
    return np.array(predicted)[order].reshape(1, 2, 5), np.array(truth)[order].reshape(1, 2, 5)


def test_known_confusion_matrix_gives_known_scores():
    predicted, truth = _maps_realising(KNOWN)
    assert np.array_equal(confusion_matrix(predicted, truth, 3).numpy(), KNOWN)
    scores = segmentation_scores(predicted, truth, num_classes=3)
    iou = [3 / (4 + 5 - 3), 4 / (6 + 5 - 4)]
    assert scores["pixel_accuracy"] == pytest.approx(0.7)
    assert scores["mean_class_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert scores["mean_iou"] == pytest.approx(sum(iou) / 2)  # class 2 appears nowhere: left out
    assert scores["frequency_weighted_iou"] == pytest.approx(0.4 * iou[0] + 0.6 * iou[1])
    assert np.isnan(scores["per_class_iou"][2]) and scores["num_pixels"] == 10


def test_perfect_and_shuffled_predictions():
    truth = np.random.default_rng(1).integers(0, 4, (3, 16, 16))
    perfect = segmentation_scores(truth, truth, 4)
    assert perfect["pixel_accuracy"] == perfect["mean_iou"] == perfect["frequency_weighted_iou"] == 1.0
    shuffled = segmentation_scores(truth[[1, 2, 0]], truth, 4)
    assert shuffled["frequency_weighted_iou"] < 0.5


def test_ignore_index_and_bad_ids():
    truth = np.array([[[0, 1, 255]]])
    predicted = np.array([[[0, 1, 0]]])
    assert segmentation_scores(predicted, truth, 2, ignore_index=255)["pixel_accuracy"] == 1.0
    with pytest.raises(ValueError, match="num_classes"):
        segmentation_scores(predicted, truth, 2)
    with pytest.raises(ValueError, match="square"):
        scores_from_confusion(np.ones((2, 3)))
