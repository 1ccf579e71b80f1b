"""Train the default scorers on the project's own data (MNIST and the built-in worlds), and cache them.

    scorers = default_scorers()            # loads from $NUWA_HF_CACHE/scorers, training what is missing
    table = task_metrics("T2V", generated, reference, texts=..., attributes=..., scorers=scorers)

Training data and held-out data never overlap: MNIST train vs MNIST test digits; the worlds' "train" split (MNIST
train digits) vs their "test" split (MNIST test digits). ``nuwa_hf.data`` is imported only when training is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..cache import PathLike, cache_dir
from .attribute_classifier import AttributeClassifier
from .digit_classifier import DigitClassifier
from .dual_encoder import TextVisualDualEncoder
from .motion_classifier import MotionClassifier
from .scorer_base import CONFIG_NAME, load_scorer
from .video_feature_network import VideoFeatureNetwork


def train_digit_classifier(num_train: Optional[int] = None, epochs: int = 2, seed: int = 0,
                           progress: bool = True) -> DigitClassifier:
    """A ``DigitClassifier`` trained on MNIST train (all 50,000 digits by default), held out on MNIST test."""
    from nuwa_hf.data import load_mnist

    images, labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    if num_train is not None:
        images, labels = images[:num_train], labels[:num_train]
    return DigitClassifier().fit(images, labels, test_images, test_labels, f"MNIST train ({len(labels):,} digits)",
                                 "MNIST test", epochs=epochs, seed=seed, progress=progress)


def _columns(dataset: Any, names: tuple) -> Dict[str, Any]:
    """Stacked columns of a (numpy-formatted) world dataset; list columns stay per-sample lists."""
    rows = dataset[:]
    return {name: (np.asarray(rows[name]) if name in ("video", "image") else
                   [value.tolist() if hasattr(value, "tolist") else value for value in rows[name]])
            for name in names}


def train_video_scorers(num_train: int = 2000, num_held_out: int = 500, image_size: int = 64, num_frames: int = 10,
                        epochs: int = 4, seed: int = 0, progress: bool = True) -> Dict[str, Any]:
    """Motion classifier, FVD feature network and text-video dual encoder, trained on captioned Moving MNIST.

    Returns {"motion_classifier", "video_features", "text_visual"}.
    """
    from nuwa_hf.data import captioned_moving_mnist

    train = _columns(captioned_moving_mnist("train", num_train, seed=seed, image_size=image_size,
                                            num_frames=num_frames), ("video", "text", "digits", "motion"))
    test = _columns(captioned_moving_mnist("test", num_held_out, seed=seed, image_size=image_size,
                                           num_frames=num_frames), ("video", "text", "digits", "motion"))
    world = f"captioned Moving MNIST train ({num_train:,} videos)"
    motion = MotionClassifier().fit(train["video"], train["motion"], test["video"], test["motion"], world,
                                    "captioned Moving MNIST test", epochs=epochs, seed=seed, progress=progress)
    features = VideoFeatureNetwork().fit(train["video"], train["digits"], train["motion"], test["video"],
                                         test["digits"], test["motion"], world, "captioned Moving MNIST test",
                                         epochs=epochs, seed=seed, progress=progress)
    text_visual = TextVisualDualEncoder.fit_new(train["video"], train["text"], test["video"], test["text"], world,
                                                "captioned Moving MNIST test", epochs=2 * epochs, seed=seed,
                                                progress=progress)
    return {"motion_classifier": motion, "video_features": features, "text_visual": text_visual}


def train_color_classifier(num_train: int = 3000, num_held_out: int = 500, image_size: int = 64, epochs: int = 3,
                           seed: int = 0, progress: bool = True) -> AttributeClassifier:
    """An RGB ``AttributeClassifier`` for the colours of the text-to-image digit world."""
    from nuwa_hf.data import COLORS, digit_images

    train = _columns(digit_images("train", num_train, seed=seed, image_size=image_size), ("image", "color"))
    test = _columns(digit_images("test", num_held_out, seed=seed, image_size=image_size), ("image", "color"))
    classifier = AttributeClassifier("color", COLORS, visual="image", channels=3)
    return classifier.fit(train["image"], train["color"], test["image"], test["color"],
                          f"coloured digit images train ({num_train:,} images)", "coloured digit images test",
                          epochs=epochs, seed=seed, progress=progress)


def default_scorers(cache: Optional[PathLike] = None, train_if_missing: bool = True, progress: bool = True):
    """An ``EvaluationScorers`` with every default scorer, loaded from ``<cache>/scorers/<name>`` or trained and saved.

    With ``train_if_missing=False`` a missing scorer raises instead of training (minutes on a CPU).
    """
    from ..task_metrics import EvaluationScorers

    folder = cache_dir(cache) / "scorers"
    loaded: Dict[str, Any] = {}
    names = ("digit_classifier", "motion_classifier", "video_features", "text_visual")
    for name in names:
        if (folder / name / CONFIG_NAME).is_file():
            loaded[name] = load_scorer(folder / name)
    missing = [name for name in names if name not in loaded]
    if missing and not train_if_missing:
        raise FileNotFoundError(f"No trained scorers {missing} under {folder}: call default_scorers(train_if_missing=True).")
    if "digit_classifier" in missing:
        loaded["digit_classifier"] = train_digit_classifier(progress=progress)
        loaded["digit_classifier"].save_pretrained(folder / "digit_classifier")
    if {"motion_classifier", "video_features", "text_visual"} & set(missing):
        for name, scorer in train_video_scorers(progress=progress).items():
            if name in missing:
                loaded[name] = scorer
                scorer.save_pretrained(Path(folder) / name)
    return EvaluationScorers(**loaded)
