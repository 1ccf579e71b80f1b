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

from ...file_io import PathLike, cache_root
from .attribute_classifier import AttributeClassifier
from .digit_classifier import DigitClassifier
from .digit_set_classifier import DigitSetClassifier
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


def sample_frames(videos: np.ndarray, labels: list, frames_per_video: int, seed: int) -> tuple[np.ndarray, list]:
    """``frames_per_video`` random frames of each video (N, T, H, W, C), each labelled with its video's labels."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, videos.shape[1], (len(videos), frames_per_video))
    frames = np.concatenate([videos[np.arange(len(videos)), picks[:, k]] for k in range(frames_per_video)])
    return frames, list(labels) * frames_per_video


def train_video_scorers(num_train: int = 2000, num_held_out: int = 500, image_size: int = 64, num_frames: int = 10,
                        epochs: int = 4, seed: int = 0, progress: bool = True) -> Dict[str, Any]:
    """Motion classifier, FVD feature network, text-video dual encoder and a frame digit reader, trained on
    captioned Moving MNIST.

    Returns {"motion_classifier", "video_features", "text_video", "frame_digits"}.
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
    frames, frame_digits = sample_frames(train["video"], train["digits"], 3, seed)
    held_out_frames, held_out_digits = sample_frames(test["video"], test["digits"], 1, seed + 1)
    digit_reader = DigitSetClassifier(image_size=image_size).fit(
        frames, frame_digits, held_out_frames, held_out_digits, f"{world}, 3 frames each",
        "captioned Moving MNIST test frames", epochs=epochs, seed=seed, progress=progress)
    return {"motion_classifier": motion, "video_features": features, "text_video": text_visual,
            "frame_digits": digit_reader}


def train_image_scorers(num_train: int = 3000, num_held_out: int = 500, image_size: int = 64, epochs: int = 4,
                        seed: int = 0, progress: bool = True) -> Dict[str, Any]:
    """Colour classifier, text-image dual encoder (both RGB) and a digit reader, trained on the text-to-image digit
    world.

    Returns {"color_classifier", "text_image", "image_digits"}.
    """
    from nuwa_hf.data import COLORS, digit_images

    columns = ("image", "text", "color", "digits")
    train = _columns(digit_images("train", num_train, seed=seed, image_size=image_size), columns)
    test = _columns(digit_images("test", num_held_out, seed=seed, image_size=image_size), columns)
    world = f"coloured digit images train ({num_train:,} images)"
    color = AttributeClassifier("color", COLORS, visual="image", channels=3).fit(
        train["image"], train["color"], test["image"], test["color"], world, "coloured digit images test",
        epochs=epochs, seed=seed, progress=progress)
    text_image = TextVisualDualEncoder.fit_new(train["image"], train["text"], test["image"], test["text"], world,
                                               "coloured digit images test", epochs=2 * epochs, seed=seed,
                                               progress=progress, visual="image", channels=3)
    digit_reader = DigitSetClassifier(image_size=image_size).fit(
        train["image"], train["digits"], test["image"], test["digits"], world, "coloured digit images test",
        epochs=epochs, seed=seed, progress=progress)
    return {"color_classifier": color, "text_image": text_image, "image_digits": digit_reader}


def _load_or_train(folder: Path, names: tuple, train, train_if_missing: bool) -> Dict[str, Any]:
    found = {name: load_scorer(folder / name) for name in names if (folder / name / CONFIG_NAME).is_file()}
    if len(found) == len(names):
        return found
    if not train_if_missing:
        missing = sorted(set(names) - set(found))
        raise FileNotFoundError(f"No trained scorers {missing} under {folder}: call "
                                "default_scorers(train_if_missing=True).")
    for name, scorer in train().items():
        if name in names and name not in found:
            scorer.save_pretrained(folder / name)
            found[name] = scorer
    return found


def default_scorers(visual: str = "video", cache: Optional[PathLike] = None, train_if_missing: bool = True,
                    progress: bool = True):
    """An ``EvaluationScorers`` for image tasks (``visual="image"``) or video tasks (``"video"``), loaded from
    ``<cache>/scorers/<name>`` or trained on the built-in worlds and saved there (minutes on a CPU).

    Image tasks get the digit world's digit reader, colour classifier and text-image encoder; video tasks the
    captioned Moving MNIST frame digit reader, motion classifier, FVD network and text-video encoder. The MNIST
    ``DigitClassifier`` (for IS on single centred digits) is trained separately: ``train_digit_classifier()``.

    With ``train_if_missing=False`` a missing scorer raises instead of training.
    """
    from ..task_evaluation import EvaluationScorers

    if visual not in ("image", "video"):
        raise ValueError(f"visual must be 'image' or 'video', got {visual!r}.")
    folder = cache_root(cache) / "scorers"
    if visual == "image":
        found = _load_or_train(folder, ("color_classifier", "text_image", "image_digits"),
                               lambda: train_image_scorers(progress=progress), train_if_missing)
        return EvaluationScorers(digit_classifier=found["image_digits"], text_visual=found["text_image"],
                                 attribute_classifiers={"color": found["color_classifier"]})
    found = _load_or_train(folder, ("motion_classifier", "video_features", "text_video", "frame_digits"),
                           lambda: train_video_scorers(progress=progress), train_if_missing)
    return EvaluationScorers(digit_classifier=found["frame_digits"], motion_classifier=found["motion_classifier"],
                             video_features=found["video_features"], text_visual=found["text_video"])
