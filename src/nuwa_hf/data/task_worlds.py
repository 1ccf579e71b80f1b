"""Which built-in world each task trains and is evaluated on: the named world sets, one place.

A *world set* fixes, for every trainable task, the world function and its arguments at a given frame size. Training
(``nuwa-hf train --world``), the demo and evaluation conditions (``nuwa_hf.data.task_examples``) and the default
checkpoint's recipe all read it, so a model is always shown the world it learned.

| world set | T2I / I2I / TI2I | T2V / TV2V | V2V | S2I / S2V |
|---|---|---|---|---|
| ``"large_digits"`` (default) | ONE coloured MNIST digit filling ~80% of the frame, captions in 8 phrasings ("a red 7", "the digit seven in red", "7, red"), no place named | ONE coloured digit of ~60% of the frame moving with GODIVA's four motions, captions in 7 phrasings with and without colour | the same videos, no caption | scene world |
| ``"multi_digit"`` (harder benchmark, checkpoints v1-v4) | 1 digit of 34% of the frame on a 3x3 grid of places, the place named | GODIVA's captioned Moving MNIST, 1 or 2 white digits | Srivastava's two bouncing digits | scene world |

Why "large_digits" is the default: a digit that fills the frame is ~6x6 VQ tokens at 32 pixels (4 pixels a token),
and the pilot study (docs/pilot_study.md) measured that such a digit's identity is learned several times faster than
one of 4x4 tokens among nine places; the multi-digit worlds stay available by name as harder benchmarks.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

WORLD_SETS = ("large_digits", "multi_digit")
DEFAULT_WORLD_SET = "large_digits"

# Tasks that draw from a world (the zero-shot tasks use their trained sibling's world).
WORLD_OF_TASK = {"t2i": "t2i", "i2i": "t2i", "ti2i": "t2i", "t2v": "t2v", "tv2v": "t2v", "v2v": "v2v",
                 "s2i": "s2i", "s2v": "s2v"}

# Digit sides as a fraction of the frame in the "large_digits" world: 26 px on 32 (6.5 tokens across at 4 px a token)
# for images; 20 px on 32 for videos, leaving 12 px to move across 4 frames.
LARGE_IMAGE_DIGIT = 0.8125
LARGE_VIDEO_DIGIT = 0.625


def check_world_set(world: str) -> str:
    """``world`` if it is a known world set, else a clear error naming the known ones."""
    if world not in WORLD_SETS:
        raise ValueError(f"unknown world set {world!r}; choose one of {', '.join(WORLD_SETS)}.")
    return world


def task_world(task: str, world: str = DEFAULT_WORLD_SET, *, image_size: int, num_frames: int = 4
               ) -> Tuple[Callable[..., Any], Dict[str, Any]]:
    """``(world_function, keyword_arguments)`` for ``task`` ("t2i", "i2i", "ti2i", "t2v", "tv2v", "v2v", "s2i",
    "s2v", any case) in the world set ``world`` at ``image_size`` pixels: call ``world_function(split, n, seed=...,
    **keyword_arguments)``. The arguments include ``image_size`` (and ``num_frames`` for videos)."""
    from . import captioned_moving_mnist, digit_images, moving_mnist, scene_images, scene_videos
    from .captioned_moving_mnist import SINGLE_DIGIT_VIDEO_TEMPLATES
    from .digit_images import SINGLE_DIGIT_CAPTION_TEMPLATES

    check_world_set(world)
    key = WORLD_OF_TASK.get(str(task).strip().lower())
    if key is None:
        raise ValueError(f"no built-in world for task {task!r}; known tasks: {', '.join(WORLD_OF_TASK)}.")
    size = int(image_size)
    video = {"image_size": size, "num_frames": int(num_frames)}
    if key == "s2i":
        return scene_images, {"image_size": size}
    if key == "s2v":
        return scene_videos, dict(video)
    if world == "multi_digit":
        if key == "t2i":
            return digit_images, {"image_size": size}
        if key == "t2v":
            return captioned_moving_mnist, dict(video)
        return moving_mnist, dict(video)
    if key == "t2i":
        return digit_images, {"image_size": size, "digit_size": int(round(LARGE_IMAGE_DIGIT * size)), "num_digits": 1,
                              "templates": SINGLE_DIGIT_CAPTION_TEMPLATES}
    moving = {**video, "digit_size": int(round(LARGE_VIDEO_DIGIT * size)), "num_digits": 1, "colored": True,
              "templates": SINGLE_DIGIT_VIDEO_TEMPLATES}
    return captioned_moving_mnist, moving  # t2v and v2v: v2v reads only the "video" column


def world_rows(task: str, split: str, num_samples: int, *, seed: int = 0, world: str = DEFAULT_WORLD_SET,
               image_size: int, num_frames: int = 4, **overrides):
    """The ``datasets.Dataset`` of ``task``'s world: ``task_world`` called with ``split``, ``num_samples``, ``seed``
    (``overrides`` replace or add world arguments, e.g. ``streaming=True``)."""
    function, kwargs = task_world(task, world, image_size=image_size, num_frames=num_frames)
    return function(split, num_samples, seed=seed, **{**kwargs, **overrides})
