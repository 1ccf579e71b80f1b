"""Video scorers trained on small synthetic moving-digit clips: they beat chance on held-out clips, and the metrics
they power rank a true set above a corrupted one. The scorers are trained once per session (see conftest.py)."""

import numpy as np
import pytest
import torch

from nuwa_hf.evaluation import attribute_accuracy, clip_similarity, frechet_video_distance, load_scorer

pytestmark = pytest.mark.slow


def test_motion_classifier_beats_chance(motion_classifier, video_data):
    report = motion_classifier.held_out
    assert report["metrics"]["accuracy"] > max(0.6, 2 * report["chance"]["accuracy"])
    held_videos, _, held_motions, _ = video_data[1]
    true = attribute_accuracy(held_videos, held_motions, motion_classifier, "motion")
    wrong = attribute_accuracy(held_videos, [{"up then down": "left then right", "down then up": "right then left",
                                              "left then right": "up then down", "right then left": "down then up"}[m]
                                             for m in held_motions], motion_classifier, "motion")
    assert true["motion_accuracy"] > 0.6 > 0.3 > wrong["motion_accuracy"]
    assert true["motion_accuracy_scorer"].startswith("motion 3D CNN trained on synthetic")


def test_fvd_is_zero_for_identical_sets_and_grows_for_frozen_videos(feature_network, video_data):
    report = feature_network.held_out
    assert report["metrics"]["motion_set_accuracy"] > 2 * report["chance"]["motion_set_accuracy"]
    reference = video_data[0][0]
    held_videos = video_data[1][0]
    identical = frechet_video_distance(reference, reference, feature_network=feature_network)
    assert identical["fvd"] < 1e-6
    assert identical["fvd_name"] == "FVD (3D CNN trained on synthetic moving digits)"
    assert identical["fvd_scorer_held_out_motion_set_accuracy"] == report["metrics"]["motion_set_accuracy"]
    true = frechet_video_distance(held_videos, reference, feature_network=feature_network)["fvd"]
    frozen = np.repeat(held_videos[:, :1], held_videos.shape[1], axis=1)  # the first frame, never moving
    assert frechet_video_distance(frozen, reference, feature_network=feature_network)["fvd"] > 2 * true


def test_dual_encoder_beats_chance_and_prefers_true_captions(dual_encoder, video_data):
    report = dual_encoder.held_out
    assert report["metrics"]["caption_top1_accuracy"] > 2 * report["chance"]["caption_top1_accuracy"]
    held_videos, _, _, captions = video_data[1]
    true = clip_similarity(held_videos, captions, dual_encoder)
    shuffled = clip_similarity(held_videos, captions[1:] + captions[:1], dual_encoder)
    assert true["clipsim"] > shuffled["clipsim"] + 0.1
    assert true["clipsim_name"] == "CLIPSIM-style (text-video dual encoder trained on synthetic moving digits)"
    assert "clipsim_scorer_held_out_caption_top1_accuracy" in true


def test_video_scorers_round_trip(tmp_path, feature_network, dual_encoder, video_data):
    held_videos, _, _, captions = video_data[1]
    for scorer in (feature_network, dual_encoder):
        restored = load_scorer(scorer.save_pretrained(tmp_path / type(scorer).__name__))
        assert type(restored) is type(scorer) and restored.held_out == scorer.held_out
    restored_encoder = load_scorer(tmp_path / "TextVisualDualEncoder")
    assert torch.allclose(restored_encoder.similarity(held_videos[:8], captions[:8]),
                          dual_encoder.similarity(held_videos[:8], captions[:8]))
    # Words never seen in training map to [UNK] instead of failing.
    assert dual_encoder.encode_texts(["a wholly unseen sentence"]).shape == (1, 32)
