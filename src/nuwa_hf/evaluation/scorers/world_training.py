"""Train the default scorers on the project's own data (MNIST and the built-in worlds), and cache them.

    scorers = default_scorers("video")     # loads from $NUWA_HF_CACHE/scorers, training what is missing
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

    Returns {"motion_classifier", "video_features", "text_video"}.
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
    return {"motion_classifier": motion, "video_features": features, "text_video": text_visual}


def train_image_scorers(num_train: int = 3000, num_held_out: int = 500, image_size: int = 64, epochs: int = 4,
                        seed: int = 0, progress: bool = True) -> Dict[str, Any]:
    """Colour classifier and text-image dual encoder (both RGB), trained on the text-to-image digit world.

    Returns {"color_classifier", "text_image"}.
    """
    from nuwa_hf.data import COLORS, digit_images

    train = _columns(digit_images("train", num_train, seed=seed, image_size=image_size), ("image", "text", "color"))
    test = _columns(digit_images("test", num_held_out, seed=seed, image_size=image_size), ("image", "text", "color"))
    world = f"coloured digit images train ({num_train:,} images)"
    color = AttributeClassifier("color", COLORS, visual="image", channels=3).fit(
        train["image"], train["color"], test["image"], test["color"], world, "coloured digit images test",
        epochs=epochs, seed=seed, progress=progress)
    text_image = TextVisualDualEncoder.fit_new(train["image"], train["text"], test["image"], test["text"], world,
                                               "coloured digit images test", epochs=2 * epochs, seed=seed,
                                               progress=progress, visual="image", channels=3)
    return {"color_classifier": color, "text_image": text_image}


def _load_or_train(folder: Path, names: tuple, train, train_if_missing: bool) -> Dict[str, Any]:
    found = {name: load_scorer(folder / name) for name in names if (folder / name / CONFIG_NAME).is_file()}
    if len(found) == len(names):
        return found
    if not train_if_missing:
        missing = sorted(set(names) - set(found))
        raise FileNotFoundError(f"No trained scorers {missing} under {folder}: call default_scorers(train_if_missing=True).")
    for name, scorer in train().items():
        if name in names and name not in found:
            scorer.save_pretrained(folder / name)
            found[name] = scorer
    return found


def default_scorers(visual: str = "video", cache: Optional[PathLike] = None, train_if_missing: bool = True,
                    progress: bool = True):
    """An ``EvaluationScorers`` for image tasks (``visual="image"``) or video tasks (``"video"``), loaded from
    ``<cache>/scorers/<name>`` or trained on MNIST and the built-in worlds and saved there (minutes on a CPU).

    With ``train_if_missing=False`` a missing scorer raises instead of training.
    """
    from ..task_metrics import EvaluationScorers

    if visual not in ("image", "video"):
        raise ValueError(f"visual must be 'image' or 'video', got {visual!r}.")
    folder = cache_dir(cache) / "scorers"
    digits = _load_or_train(folder, ("digit_classifier",),
                            lambda: {"digit_classifier": train_digit_classifier(progress=progress)}, train_if_missing)
    if visual == "image":
        found = _load_or_train(folder, ("color_classifier", "text_image"),
                               lambda: train_image_scorers(progress=progress), train_if_missing)
        return EvaluationScorers(digit_classifier=digits["digit_classifier"], text_visual=found["text_image"],
                                 attribute_classifiers={"color": found["color_classifier"]})
    found = _load_or_train(folder, ("motion_classifier", "video_features", "text_video"),
                           lambda: train_video_scorers(progress=progress), train_if_missing)
    return EvaluationScorers(digit_classifier=digits["digit_classifier"], motion_classifier=found["motion_classifier"],
                             video_features=found["video_features"], text_visual=found["text_video"])
