"""Every metric folder (the repository's top-level ``metrics/``) loads offline with ``evaluate.load(<local path>)``
and agrees with the Python function in ``nuwa_hf.evaluation``."""

import math
from pathlib import Path

import evaluate
import numpy as np
import pytest
import torch

from nuwa_hf.evaluation import frechet_inception_distance, segmentation_scores, structural_similarity

METRICS = Path(__file__).resolve().parents[2] / "metrics"
METRIC_NAMES = ("attribute_accuracy", "clipsim", "fid", "fvd", "inception_score", "kid", "psnr", "segmentation", "ssim")


def metric_path(name: str) -> str:
    """The folder evaluate.load reads for the metric ``name``."""
    return str(METRICS / name)


def _mean_colour(images):
    return images.mean(dim=(2, 3))


def _images(seed, count=6, size=16):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_every_module_loads_offline():
    assert sorted(folder.name for folder in METRICS.iterdir() if folder.is_dir()) == sorted(METRIC_NAMES)
    for name in METRIC_NAMES:
        module = evaluate.load(metric_path(name))
        assert module.description and type(module).__module__.endswith(name)
        assert name in (METRICS / "README.md").read_text()


def test_fid_and_kid_modules_match_the_functions():
    generated, reference = _images(0), _images(1)
    fid = evaluate.load(metric_path("fid")).compute(predictions=generated, references=reference,
                                                    feature_extractor=_mean_colour, feature_extractor_name="mean RGB")
    direct = frechet_inception_distance(generated, reference, feature_extractor=_mean_colour)
    assert fid["fid"] == pytest.approx(direct["fid"], rel=1e-9) and fid["fid_feature_extractor"] == "mean RGB"
    kid = evaluate.load(metric_path("kid")).compute(predictions=generated, references=generated,
                                                    feature_extractor=_mean_colour, num_subsets=5)
    assert abs(kid["kid"]) < 1e-3


def test_ssim_and_psnr_modules_for_images_and_videos():
    images = _images(2, size=24)
    ssim = evaluate.load(metric_path("ssim"))
    assert ssim.compute(predictions=images, references=images)["ssim"] == pytest.approx(1.0)
    noisy = np.clip(images.astype(int) + 40, 0, 255).astype(np.uint8)
    assert ssim.compute(predictions=noisy, references=images)["ssim"] == pytest.approx(
        structural_similarity(noisy, images)["ssim"], abs=1e-6)
    videos = np.stack([images[:3], images[3:]])  # (2, 3, 24, 24, 3)
    video_ssim = evaluate.load(metric_path("ssim"), "video").compute(predictions=videos, references=videos)
    assert video_ssim["ssim"] == pytest.approx(1.0) and video_ssim["num_pairs"] == 6
    psnr = evaluate.load(metric_path("psnr"), "video").compute(predictions=videos, references=videos)
    assert math.isinf(psnr["psnr"]) and psnr["num_identical_pairs"] == 6
    with pytest.raises(ValueError, match="configuration"):
        evaluate.load(metric_path("ssim"), "audio")


def test_segmentation_module_matches_the_function():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 300, (2, 8, 8))  # more than 256 classes: stored as 16-bit PNG, still exact
    predicted = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 300, truth.shape))
    result = evaluate.load(metric_path("segmentation")).compute(predictions=predicted, references=truth,
                                                                num_classes=300)
    direct = segmentation_scores(predicted, truth, 300)
    for key in ("pixel_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert result[key] == pytest.approx(direct[key])
    with pytest.raises(ValueError, match="num_classes"):
        evaluate.load(metric_path("segmentation")).compute(predictions=predicted, references=truth)


def test_scorer_modules_report_held_out_accuracy(trained_digit_classifier, digit_data, tmp_path):
    images, labels = digit_data[1]
    images, labels = images[:60], labels[:60]
    folder = trained_digit_classifier.save_pretrained(tmp_path / "digits")
    accuracy = evaluate.load(metric_path("attribute_accuracy")).compute(
        predictions=images, references=labels, scorer_path=str(folder))
    assert accuracy["digit_accuracy"] > 0.8
    held_out = trained_digit_classifier.held_out["metrics"]["accuracy"]
    assert accuracy["digit_accuracy_scorer_held_out_accuracy"] == held_out
    score = evaluate.load(metric_path("inception_score")).compute(predictions=images, scorer=trained_digit_classifier)
    assert score["inception_score"] > 4 and "inception_score_scorer_held_out_accuracy" in score
    with pytest.raises(ValueError, match="scorer_path"):
        evaluate.load(metric_path("inception_score")).compute(predictions=images)


def test_video_modules_with_an_external_feature_extractor():
    videos = np.random.default_rng(4).integers(0, 256, (4, 3, 8, 8, 3), dtype=np.uint8)

    def mean_per_frame(clips):  # (B, T, 3, H, W) -> (B, T)
        return clips.mean(dim=(2, 3, 4))

    fvd = evaluate.load(metric_path("fvd")).compute(predictions=videos, references=videos,
                                                    feature_extractor=mean_per_frame,
                                                    feature_extractor_name="frame brightness")
    assert fvd["fvd"] == pytest.approx(0.0, abs=1e-9)
    assert fvd["fvd_name"] == "FVD (frame brightness)" and "external" in fvd["fvd_scorer"]
    assert torch.is_tensor(mean_per_frame(torch.zeros(1, 2, 3, 4, 4)))


def test_modules_share_one_base_that_evaluate_passes_over():
    """Every script's class is a VisualMetric (the shared _info / add_batch); the base itself is abstract, so
    evaluate.load takes the script's own class, with the script's texts."""
    import inspect

    from nuwa_hf.evaluation.metric_module_support import VisualMetric

    assert inspect.isabstract(VisualMetric)
    for name in METRIC_NAMES:
        module = evaluate.load(metric_path(name))
        assert isinstance(module, VisualMetric) and type(module) is not VisualMetric, name
        assert module.description == type(module).DESCRIPTION and module.inputs_description == type(module).INPUTS
        assert type(module).__doc__.startswith(type(module).DESCRIPTION), name
    assert "references" not in evaluate.load(metric_path("inception_score")).features


def test_clipsim_module_stores_captions_beside_images_and_videos():
    class BrightnessMatchesCaptionLength:  # an external scorer: similarity (N,) of samples and texts
        name = "brightness"

        def similarity(self, samples, texts):
            brightness = torch.tensor([np.asarray(sample, dtype=np.float64).mean() for sample in samples])
            return brightness / 255 * torch.tensor([float(len(text)) for text in texts], dtype=torch.float64)

    images = _images(5, count=3)
    captions = ["a", "bb", "ccc"]
    result = evaluate.load(metric_path("clipsim")).compute(predictions=images, references=captions,
                                                           scorer=BrightnessMatchesCaptionLength())
    expected = np.mean([images[i].mean() / 255 * len(captions[i]) for i in range(3)])
    assert result["clipsim"] == pytest.approx(expected, abs=1e-9) and result["num_samples"] == 3
    videos = np.stack([images, images])  # (2, 3, 16, 16, 3)
    video_result = evaluate.load(metric_path("clipsim"), "video").compute(
        predictions=videos, references=["a", "bb"], scorer=BrightnessMatchesCaptionLength())
    assert video_result["num_samples"] == 2 and "external" in video_result["clipsim_scorer"]
