"""The scorers the project trains: they learn, they report held-out accuracy, and they save/load as safetensors."""

import json

import numpy as np
import pytest
import torch

from nuwa_hf.evaluation import DigitClassifier, attribute_accuracy, inception_score, load_scorer
from nuwa_hf.evaluation.inception_scoring import inception_score_from_probabilities
from nuwa_hf.evaluation.scorers.label_sets import label_presence, label_set_matches, most_common_set_rate
from train_scorers import fit  # examples/train_scorers.py (on sys.path through conftest.py)


def test_digit_classifier_beats_chance_on_held_out_digits(trained_digit_classifier):
    report = trained_digit_classifier.held_out
    assert report["metrics"]["accuracy"] > 0.8 > 3 * report["chance"]["accuracy"]
    assert report["num_examples"] == 300 and "synthetic" in trained_digit_classifier.name


def test_save_and_load_round_trip(trained_digit_classifier, digit_data, tmp_path):
    folder = trained_digit_classifier.save_pretrained(tmp_path / "digits")
    assert sorted(path.name for path in folder.iterdir()) == ["config.json", "model.safetensors"]
    restored = load_scorer(folder)
    images = digit_data[1][0][:20]
    assert isinstance(restored, DigitClassifier)
    assert torch.equal(restored.predict_proba(images), trained_digit_classifier.predict_proba(images))
    assert restored.held_out == trained_digit_classifier.held_out
    assert json.loads((folder / "config.json").read_text())["config"]["width"] == 16


def test_loading_refuses_wrong_folders(tmp_path, trained_digit_classifier):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        load_scorer(tmp_path)
    trained_digit_classifier.save_pretrained(tmp_path / "digits")
    from nuwa_hf.evaluation import MotionClassifier

    with pytest.raises(ValueError, match="DigitClassifier"):
        MotionClassifier.from_pretrained(tmp_path / "digits")


def test_untrained_scorer_refuses_to_score():
    with pytest.raises(ValueError, match="held-out accuracy"):
        inception_score(np.zeros((2, 28, 28), np.uint8), DigitClassifier())


def test_attribute_accuracy_reports_the_scorer_and_drops_for_shuffled_labels(trained_digit_classifier, digit_data):
    images, labels = digit_data[1]
    true = attribute_accuracy(images, labels, trained_digit_classifier, "digit")
    shuffled = attribute_accuracy(images, np.roll(labels, 1), trained_digit_classifier, "digit")
    assert true["digit_accuracy"] > 0.8 and shuffled["digit_accuracy"] < 0.3
    assert true["digit_accuracy_scorer_held_out_accuracy"] == trained_digit_classifier.held_out["metrics"]["accuracy"]
    assert true["digit_accuracy_scorer"] == trained_digit_classifier.name


def test_inception_score_known_answers_and_real_vs_collapsed(trained_digit_classifier, digit_data):
    assert inception_score_from_probabilities(torch.full((8, 5), 0.2))[0] == pytest.approx(1.0)
    assert inception_score_from_probabilities(torch.eye(5).repeat(2, 1))[0] == pytest.approx(5.0)
    images, labels = digit_data[1]
    varied = inception_score(images, trained_digit_classifier)
    collapsed = inception_score(images[labels == 3], trained_digit_classifier)  # one class only
    assert varied["inception_score"] > 4 > 2 > collapsed["inception_score"]
    assert varied["inception_score_name"].startswith("IS (digit CNN trained on")


def test_label_sets():
    presence = label_presence([3, [1, 2], "0"], [str(digit) for digit in range(4)])
    assert presence.tolist() == [[0, 0, 0, 1], [0, 1, 1, 0], [1, 0, 0, 0]]
    scores = torch.tensor([[0.1, 0.2, 0.3, 0.9], [0.1, 0.8, 0.05, 0.7], [0.9, 0.1, 0.1, 0.1]])
    assert label_set_matches(scores, presence).tolist() == [True, False, True]
    assert most_common_set_rate(presence) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="Unknown label"):
        label_presence(["seven"], ["0", "1"])


def test_digit_set_classifier_reads_several_digits_anywhere(tmp_path):
    from synthetic import digit_canvases

    from nuwa_hf.evaluation import DigitSetClassifier, attribute_accuracy

    images, labels = digit_canvases(600, seed=0, glyph=16)
    held_images, held_labels = digit_canvases(200, seed=1, glyph=16)
    reader = fit(DigitSetClassifier(image_size=32, width=8), images, labels, held_images, held_labels,
                 "synthetic digit canvases", epochs=6, batch_size=16)
    report = reader.held_out
    assert report["metrics"]["digit_set_accuracy"] > 3 * report["chance"]["digit_set_accuracy"]
    true = attribute_accuracy(held_images, held_labels, reader, "digit")["digit_accuracy"]
    shuffled = attribute_accuracy(held_images, held_labels[1:] + held_labels[:1], reader, "digit")["digit_accuracy"]
    assert true > 3 * shuffled
    restored = load_scorer(reader.save_pretrained(tmp_path / "reader"))
    assert torch.equal(restored.predict_scores(held_images[:5]), reader.predict_scores(held_images[:5]))


def test_scoring_uses_eval_mode_without_autograd_and_restores_the_mode(trained_digit_classifier, digit_data):
    """A scorer called in the middle of training (e.g. a held-out check inside ``fit``) must not switch training off,
    must not build a graph, and must score with eval-mode layers whatever mode it was in."""
    images = digit_data[1][0][:20]
    seen_modes = []
    hook = trained_digit_classifier.head.register_forward_hook(lambda module, inputs, output: seen_modes.append(module.training))
    try:
        trained_digit_classifier.train()
        scores_from_training_mode = trained_digit_classifier.predict_proba(images, batch_size=8)
        assert trained_digit_classifier.training, "scoring switched training mode off"
        trained_digit_classifier.eval()
        scores_from_eval_mode = trained_digit_classifier.predict_proba(images, batch_size=7)
        assert not trained_digit_classifier.training
    finally:
        hook.remove()
    assert seen_modes and not any(seen_modes)  # every batch ran in eval mode (3 + 3 batches)
    assert len(seen_modes) == 6
    assert not scores_from_training_mode.requires_grad
    torch.testing.assert_close(scores_from_training_mode, scores_from_eval_mode)
