"""Plain Moving MNIST (Srivastava, Mansimov & Salakhutdinov, 2015) for video prediction.

Digits start at random places, move in a random direction at a random speed and bounce off the borders; overlapping
digits combine by maximum. The classic benchmark is 2 digits, 64x64, 20 frames (10 observed, 10 predicted).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from datasets import Array3D, Array4D, Dataset, Features, IterableDataset, List, Value

from .digit_sprites import DigitPool, paste_max
from .held_out import check_split
from .trajectories import bouncing_track
from .world_dataset import build_world_dataset, check_positive, iterate_indices, sample_rng

WORLD = "moving_mnist"
MNIST_SPLIT_OF = {"train": "train", "validation": "validation", "test": "test"}


def _generate(shards: list[tuple[int, int]], config: dict) -> Iterator[dict]:
    size, frames, sprite_size = config["image_size"], config["num_frames"], config["digit_size"]
    pool = DigitPool(MNIST_SPLIT_OF[config["split"]], sprite_size)
    free_range = size - sprite_size
    low, high = config["speed_range"]
    for index in iterate_indices(shards):
        rng = sample_rng(config["seed"], WORLD, config["split"], index)
        digits = [int(rng.integers(10)) for _ in range(config["num_digits"])]
        video = np.zeros((frames, size, size, 3), dtype=np.uint8)
        tracks = []
        for digit in digits:
            sprite = pool.draw(digit, rng)
            track = bouncing_track(frames, free_range, (low * free_range, high * free_range), rng)
            for frame, (top, left) in enumerate(track):
                paste_max(video[frame], sprite, int(top), int(left))
            tracks.append(track)
        yield {"video": video, "digits": digits, "positions": np.stack(tracks)}


def moving_mnist(
    split: str = "train",
    num_samples: int = 1000,
    *,
    seed: int = 0,
    image_size: int = 64,
    num_frames: int = 20,
    num_digits: int = 2,
    digit_size: int | None = None,
    speed_range: tuple[float, float] = (0.05, 0.15),
    streaming: bool = False,
    num_proc: int | None = None,
) -> Dataset | IterableDataset:
    """Srivastava's bouncing-digit videos, deterministic from ``seed``.

    Args:
        split: ``"train"`` / ``"validation"`` / ``"test"``: digits from the same MNIST split.
        num_samples, seed, streaming, num_proc: as in :func:`nuwa_hf.data.captioned_moving_mnist`.
        image_size: frame side (64 in the paper).
        num_frames: 20 in the paper (first 10 observed, last 10 to predict).
        num_digits: digits per video (2 in the paper).
        digit_size: sprite side; default ``round(28 * image_size / 64)``.
        speed_range: speed in fractions of the free range (``image_size - digit_size``) per frame, drawn uniformly;
            Srivastava's generator used a fixed 0.1 (3.6 px/frame at 64x64).

    Returns:
        Rows with ``"video"`` uint8 ``(num_frames, image_size, image_size, 3)`` (gray digits, R = G = B),
        ``"digits"`` int64 ``(num_digits,)`` and ``"positions"`` int64 ``(num_digits, num_frames, 2)`` (sprite top-left
        row, col). No caption: the task is prediction. Formats as in :mod:`nuwa_hf.data.world_dataset`.
    """
    check_split(split)
    if split not in MNIST_SPLIT_OF:
        raise ValueError("moving_mnist has no held-out combinations; use split 'train', 'validation' or 'test'.")
    check_positive(num_samples=num_samples, image_size=image_size, num_frames=num_frames, num_digits=num_digits)
    digit_size = int(round(28 * image_size / 64)) if digit_size is None else digit_size
    check_positive(digit_size=digit_size)
    if digit_size >= image_size:
        raise ValueError(f"digit_size={digit_size} must be smaller than image_size={image_size}.")
    low, high = (float(v) for v in speed_range)
    if not 0 <= low <= high:
        raise ValueError(f"speed_range must be (low, high) with 0 <= low <= high, got {speed_range!r}.")
    DigitPool(MNIST_SPLIT_OF[split], digit_size)  # fetch MNIST once, in this process
    config = {"split": split, "seed": int(seed), "image_size": int(image_size), "num_frames": int(num_frames),
              "num_digits": int(num_digits), "digit_size": int(digit_size), "speed_range": (low, high)}
    features = Features({
        "video": Array4D((num_frames, image_size, image_size, 3), "uint8"),
        "digits": List(Value("int64")),
        "positions": Array3D((num_digits, num_frames, 2), "int64"),
    })
    return build_world_dataset(world=WORLD, generate=_generate, config=config, features=features,
                               num_samples=num_samples, streaming=streaming, num_proc=num_proc)
