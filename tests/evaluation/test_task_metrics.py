"""A task's metric table, and its JSON and Markdown forms."""

import json
import math

import numpy as np
import torch
import pytest

from nuwa_hf.evaluation import (
    EvaluationScorers,
    metrics_markdown,
    task_metrics,
    write_metrics_json,
    write_metrics_markdown,
)


def _mean_colour(images):
    return images.mean(dim=(2, 3))


CHEAP = EvaluationScorers(image_features=_mean_colour, image_features_name="mean RGB")


def _images(seed, count=6, size=16):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_image_completion_table_ranks_truth_above_a_shuffle():
    reference = _images(0)
    exact = task_metrics("I2I", reference, reference, scorers=CHEAP)
    shuffled = task_metrics("I2I", reference[::-1].copy(), reference, scorers=CHEAP)
    values = {row["metric"]: row["value"] for row in exact["rows"]}
    assert set(values) == {"FID (mean RGB)", "KID", "SSIM", "PSNR (dB)"} and not exact["skipped"]
    assert values["SSIM"] == pytest.approx(1.0) and math.isinf(values["PSNR (dB)"])
    worse = {row["metric"]: row["value"] for row in shuffled["rows"]}
    # A permutation leaves the set (and so FID) unchanged while every pair (SSIM) gets worse.
    assert worse["SSIM"] < values["SSIM"]
    assert worse["FID (mean RGB)"] == pytest.approx(values["FID (mean RGB)"], abs=1e-6)


def test_missing_inputs_are_listed_not_dropped(trained_digit_classifier, digit_data):
    images, labels = digit_data[1]
    table = task_metrics("T2I", images[:40], texts=["a digit"] * 40, attributes={"digit": labels[:40]},
                         scorers=EvaluationScorers(digit_classifier=trained_digit_classifier))
    metrics = [row["metric"] for row in table["rows"]]
    assert metrics[0].startswith("IS (digit CNN") and metrics[1] == "digit accuracy"
    assert set(table["skipped"]) == {"fid", "kid", "clipsim"}
    accuracy_row = table["rows"][1]
    held_out = trained_digit_classifier.held_out["metrics"]["accuracy"]
    assert accuracy_row["scorer_held_out"]["accuracy"]["accuracy"] == held_out
    with pytest.raises(ValueError, match="Unknown task"):
        task_metrics("T2X", images)


def test_vqgan_seg_table_uses_table_4_metrics():
    truth = np.random.default_rng(1).integers(0, 5, (2, 8, 8))
    table = task_metrics("VQGAN-Seg", truth, truth, num_classes=5)
    assert [(row["metric"], row["value"]) for row in table["rows"]] == [("PA", 1.0), ("mIoU", 1.0), ("FWIoU", 1.0)]


@pytest.mark.slow
def test_text_to_video_table_with_trained_scorers(motion_classifier, feature_network, dual_encoder, video_data):
    (reference, _, _, _), (videos, digits, motions, captions) = video_data
    scorers = EvaluationScorers(image_features=_mean_colour, image_features_name="mean RGB",
                                motion_classifier=motion_classifier, video_features=feature_network,
                                text_visual=dual_encoder)
    table = task_metrics("T2V", videos, reference, texts=captions, attributes={"digit": digits, "motion": motions},
                         scorers=scorers)
    names = [row["metric"] for row in table["rows"]]
    assert names[:2] == ["FID-img (mean RGB)", "FVD (3D CNN trained on synthetic moving digits)"]
    assert names[2].startswith("CLIPSIM-style") and names[3:] == ["digit accuracy", "motion accuracy"]
    assert all(row["scorer_held_out"] for row in table["rows"][1:])
    assert not table["skipped"]


def test_writers_are_valid_and_atomic(tmp_path):
    reference = _images(2)
    table = task_metrics("I2I", reference, reference, scorers=CHEAP)
    json_path = write_metrics_json(table, tmp_path / "out" / "metrics.json")
    loaded = json.loads(json_path.read_text())  # strict JSON: inf became a string
    assert loaded["details"]["psnr"]["psnr"] == "inf" and loaded["task"] == "I2I"
    markdown_path = write_metrics_markdown(table, tmp_path / "out" / "metrics.md")
    text = markdown_path.read_text()
    assert text == metrics_markdown(table) and "| SSIM | 1 |" in text
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["metrics.json", "metrics.md"]  # no temp left


def test_sketch_to_image_detected_scores_with_a_segmenter():
    # Class 1 where the image is bright: a thresholding "segmenter" recovers the sketch exactly.
    sketches = np.random.default_rng(3).integers(0, 2, (4, 16, 16))
    images = np.repeat((sketches * 255).astype(np.uint8)[..., None], 3, axis=-1)

    def threshold_segmenter(batch):
        return (batch.mean(dim=1) > 0.5).long()

    scorers = EvaluationScorers(image_features=_mean_colour, segmenter=threshold_segmenter)
    exact = task_metrics("S2I", images, images, sketches=sketches, num_classes=2, scorers=scorers)
    detected = {row["metric"]: row["value"] for row in exact["rows"] if row["metric"].startswith("detected")}
    assert detected == {"detected PA": 1.0, "detected mIoU": 1.0, "detected FWIoU": 1.0}
    wrong = task_metrics("S2I", images, images, sketches=sketches[::-1].copy(), num_classes=2, scorers=scorers)
    assert {row["metric"]: row["value"] for row in wrong["rows"]}["detected PA"] < 0.75


def test_a_segmenter_that_names_its_classes_gets_one_iou_row_per_class():
    # The mean IoU hides small classes; a segmenter with class_names gets "detected IoU <name>" rows. Here class
    # "shape" (bright pixels, ~1/8 of the picture) is never detected: its row reads 0 while PA stays high.
    rng = np.random.default_rng(4)
    sketches = (rng.random((4, 16, 16)) < 0.125).astype(np.int64)
    images = np.repeat((sketches * 255).astype(np.uint8)[..., None], 3, axis=-1)

    class BlindSegmenter:
        class_names = ["ground", "shape"]

        def __call__(self, batch):
            return torch.zeros(batch.shape[0], *batch.shape[2:], dtype=torch.long)

    scorers = EvaluationScorers(image_features=_mean_colour, segmenter=BlindSegmenter())
    rows = {row["metric"]: row["value"]
            for row in task_metrics("S2I", images, images, sketches=sketches, num_classes=2, scorers=scorers)["rows"]}
    assert rows["detected IoU shape"] == 0.0
    assert 0.8 < rows["detected IoU ground"] < 1.0 and rows["detected PA"] > 0.8
    unnamed = task_metrics("S2I", images, images, sketches=sketches, num_classes=2,
                           scorers=EvaluationScorers(image_features=_mean_colour, segmenter=BlindSegmenter().__call__))
    assert not any("IoU shape" in row["metric"] for row in unnamed["rows"])
