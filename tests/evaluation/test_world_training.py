"""The default scorers: trained by examples/train_scorers.py on the project's own worlds (tiny sizes here), cached
under NUWA_HF_CACHE, loaded by nuwa_hf.evaluation.default_scorers (which never trains)."""

import pytest
from train_scorers import train_default_scorers, train_image_scorers, train_video_scorers

from nuwa_hf.evaluation import EvaluationScorers, TextVisualDualEncoder, default_scorers


def test_missing_scorers_raise_naming_the_training_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="examples/train_scorers.py default --visual video"):
        default_scorers("video", cache=tmp_path)
    with pytest.raises(ValueError, match="visual"):
        default_scorers("audio", cache=tmp_path)


def test_the_package_holds_no_scorer_training():
    import nuwa_hf.evaluation.scorers as scorers

    for cls in (scorers.DigitClassifier, scorers.DigitSetClassifier, scorers.AttributeClassifier,
                scorers.VideoFeatureNetwork, scorers.TextVisualDualEncoder):
        assert not hasattr(cls, "fit") and not hasattr(cls, "fit_new"), cls
    with pytest.raises(ImportError):
        import nuwa_hf.evaluation.scorers.training  # noqa: F401


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


def test_trained_scorers_in_the_cache_are_what_default_scorers_loads(tmp_path, monkeypatch):
    """train_default_scorers saves under <cache>/scorers/<name>; default_scorers loads exactly those."""
    import train_scorers

    from nuwa_hf.evaluation import AttributeClassifier, DigitSetClassifier
    from nuwa_hf.evaluation.scorers.word_tokenizer import build_vocabulary

    def untrained_image_scorers(progress=True):  # stand-ins: the training itself is tested above
        scorers = {"color_classifier": AttributeClassifier("color", ["red", "blue"], visual="image", channels=3),
                   "text_image": TextVisualDualEncoder(build_vocabulary(["a red 7"]), visual="image", channels=3),
                   "image_digits": DigitSetClassifier(image_size=32, width=4)}
        for scorer in scorers.values():
            scorer.record_held_out({"accuracy": 1.0}, {"accuracy": 0.5}, "test", 1, "a stand-in")
        return scorers

    monkeypatch.setattr(train_scorers, "train_image_scorers", untrained_image_scorers)
    folders = train_default_scorers("image", cache=tmp_path, progress=False)
    assert sorted(folders) == sorted(("color_classifier", "text_image", "image_digits"))
    loaded = default_scorers("image", cache=tmp_path)
    assert isinstance(loaded, EvaluationScorers) and isinstance(loaded.digit_classifier, DigitSetClassifier)
    assert set(loaded.attribute_classifiers) == {"color"}
