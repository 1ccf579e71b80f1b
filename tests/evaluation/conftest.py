"""Shared fixtures: small synthetic data sets and scorers trained once per test session (fixed seeds)."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from synthetic import digit_images, moving_digit_videos  # noqa: E402


@pytest.fixture(scope="session")
def digit_data():
    """((train images, labels), (held-out images, labels)): 1,500 / 300 synthetic 28x28 digits."""
    return digit_images(1500, seed=0), digit_images(300, seed=1)


@pytest.fixture(scope="session")
def trained_digit_classifier(digit_data):
    from nuwa_hf.evaluation import DigitClassifier

    (images, labels), (held_out_images, held_out_labels) = digit_data
    return DigitClassifier().fit(images, labels, held_out_images, held_out_labels, "synthetic seven-segment digits",
                                 "synthetic test", epochs=3, batch_size=32)


@pytest.fixture(scope="session")
def video_data():
    """(train, held-out) tuples of (videos uint8 (N, 8, 32, 32, 3), digits, motions, captions)."""
    return moving_digit_videos(240, seed=0), moving_digit_videos(96, seed=1)
