"""The default scorers train on the project's own worlds (tiny sizes here) and are cached under NUWA_HF_CACHE."""

import pytest

from nuwa_hf.evaluation import TextVisualDualEncoder, default_scorers
from nuwa_hf.evaluation.scorers import train_image_scorers, train_video_scorers


def test_missing_scorers_raise_instead_of_training(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_if_missing"):
        default_scorers("video", cache=tmp_path, train_if_missing=False)
    with pytest.raises(ValueError, match="visual"):
        default_scorers("audio", cache=tmp_path)


@pytest.mark.slow
def test_scorers_train_on_the_built_in_worlds(tmp_path, monkeypatch):
    monkeypatch.setenv("NUWA_HF_CACHE", str(tmp_path))  # the worlds are generated into a fresh cache
    pytest.importorskip("nuwa_hf.data")
    video = train_video_scorers(num_train=24, num_held_out=12, image_size=32, num_frames=4, epochs=1, progress=False)
    assert set(video) == {"motion_classifier", "video_features", "text_video", "frame_digits"}
    for scorer in video.values():
        assert scorer.held_out["num_examples"] == 12 and "captioned Moving MNIST train (24 videos)" in scorer.name
    assert video["frame_digits"].name.endswith("3 frames each")
    image = train_image_scorers(num_train=24, num_held_out=12, image_size=32, epochs=1, progress=False)
    assert set(image) == {"color_classifier", "text_image", "image_digits"}
    assert image["color_classifier"].config["channels"] == 3
    assert isinstance(image["text_image"], TextVisualDualEncoder) and image["text_image"].config["visual"] == "image"
