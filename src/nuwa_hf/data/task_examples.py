"""Conditions for every task from the built-in worlds' held-out splits, with what the outputs should match.

Used by ``nuwa-hf demo`` (a few examples per task) and ``nuwa-hf evaluate`` (many). Each task reads the world its
model was trained on; held-out splits ("test") use MNIST test digits and textures never seen in training:

| task | world (``nuwa_hf.data``)        | inputs                                            | reference            |
|------|---------------------------------|---------------------------------------------------|----------------------|
| T2I  | digit_images                    | caption                                           | the captioned image  |
| T2V  | captioned_moving_mnist          | caption                                           | the captioned video  |
| V2V  | moving_mnist                    | first frame                                       | the whole video      |
| S2I  | scene_images                    | segmentation map                                  | the scene image      |
| I2I  | digit_images                    | image with its bottom half black, "bottom half" to regenerate | the original image |
| TI2I | digit_images                    | image, caption with the first digit's colour changed, the digit's cell | the original image |
| S2V  | scene_videos                    | segmentation map per frame                        | the scene video      |
| TV2V | captioned_moving_mnist          | first frame, caption with another motion          | the original video   |

I2I's input shows only the known part: the region (the bottom half, rows ``image_size // 2`` on) is black, the
condition a completion user has. The VQ-GAN encoder's receptive field crosses token cells, so with the whole original
picture as input the kept tokens beside the region carry the region's own pixels into the completion (digit kept 0.69
against 0.49 blanked, ``benchmarks/bench_self_read_completion.py``); ``whole_picture=True`` gives that earlier input
back, for comparisons only.

Worlds are generated at the model's frame size and frame count; when a world cannot be drawn that small, it is drawn
at 64 pixels and resized (bicubic for pictures, nearest neighbour for maps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import PIL.Image

from ..tasks import TASK_CODE_OF, get_task_info


@dataclass
class TaskExamples:
    """Inputs of one task as pipeline keyword arguments holding one list entry per example, plus references.

    ``inputs[name][i]`` is the ``name`` argument of example ``i``; ``fixed`` are arguments shared by all examples.
    """

    task: str
    inputs: dict[str, list]
    fixed: dict[str, Any] = field(default_factory=dict)
    references: Optional[np.ndarray] = None
    texts: Optional[list[str]] = None
    attributes: dict[str, list] = field(default_factory=dict)
    sketches: Optional[np.ndarray] = None
    num_classes: Optional[int] = None
    description: str = ""

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def chunk(self, start: int, stop: int) -> dict[str, Any]:
        """Pipeline keyword arguments for examples ``start:stop`` (lists, so the pipeline returns one entry each)."""
        return {**{name: values[start:stop] for name, values in self.inputs.items()}, **self.fixed}


def _resize_pictures(array: np.ndarray, size: int) -> np.ndarray:
    """uint8 pictures (..., H, W, 3) -> (..., size, size, 3), bicubic."""
    if array.shape[-3:-1] == (size, size):
        return array
    flat = array.reshape(-1, *array.shape[-3:])
    out = np.stack([np.asarray(PIL.Image.fromarray(f).resize((size, size), PIL.Image.BICUBIC)) for f in flat])
    return out.reshape(*array.shape[:-3], size, size, 3)


def _resize_maps(array: np.ndarray, size: int) -> np.ndarray:
    """Class maps (..., H, W) -> (..., size, size), nearest neighbour (class ids are never blended)."""
    if array.shape[-2:] == (size, size):
        return array
    flat = array.reshape(-1, *array.shape[-2:]).astype(np.int32)
    out = np.stack([np.asarray(PIL.Image.fromarray(f).resize((size, size), PIL.Image.NEAREST)) for f in flat])
    return out.astype(np.int64).reshape(*array.shape[:-2], size, size)


def _draw(world, split: str, count: int, size: int, seed: int, **kwargs):
    """Rows of a world at ``size`` pixels, or at 64 pixels when the world refuses that size (then flagged)."""
    try:
        return world(split, count, seed=seed, image_size=size, **kwargs), False
    except ValueError:
        return world(split, count, seed=seed, image_size=64, **kwargs), True


def _column(dataset, name: str) -> list:
    values = dataset[:][name]
    return [v.tolist() if hasattr(v, "tolist") and getattr(v, "ndim", 0) <= 1 else v for v in values]


def _pictures(dataset, name: str, size: int, resized: bool) -> np.ndarray:
    array = np.asarray(dataset[:][name])
    return _resize_pictures(array, size) if resized else array


def _maps(dataset, name: str, size: int, resized: bool) -> np.ndarray:
    array = np.asarray(dataset[:][name]).astype(np.int64)
    return _resize_maps(array, size) if resized else array


def _change_colour(caption: str, colours: tuple[str, ...], rng: np.random.Generator) -> tuple[str, Optional[str]]:
    for colour in colours:
        match = re.search(rf"\b{colour}\b", caption)
        if match:
            others = [c for c in colours if c != colour]
            new = others[int(rng.integers(len(others)))]
            return caption[: match.start()] + new + caption[match.end():], new
    return caption, None


def _change_motion(caption: str, motions: tuple[str, ...], rng: np.random.Generator) -> str:
    for motion in motions:
        if motion in caption:
            others = [m for m in motions if m != motion]
            return caption.replace(motion, others[int(rng.integers(len(others)))], 1)
    return caption


def task_examples(task: str, num_examples: int, image_size: int, num_frames: int, split: str = "test",
                  seed: int = 0, num_sketch_classes: Optional[int] = None, world: str = "large_digits",
                  whole_picture: bool = False) -> TaskExamples:
    """``num_examples`` conditions of ``task`` from its world's ``split``, at the model's ``image_size`` and
    ``num_frames`` (see the module docstring). ``world`` names the world set the model was trained on
    (:mod:`nuwa_hf.data.task_worlds`: ``"large_digits"``, the default checkpoint's, or ``"multi_digit"``).
    ``whole_picture`` (I2I only): the input is the whole original picture, region included (the protocol before
    the region was blanked; it leaks the region's pixels into the kept tokens), for comparisons."""
    from .. import data
    from .attributes import POSITION_CENTERS
    from .task_worlds import check_world_set, task_world

    check_world_set(world)

    def world_function(code: str):
        """The task's world as ``_draw`` calls it: ``(split, count, seed=, image_size=)``; the world set gives the
        arguments (digit sizes too) for whichever size ``_draw`` asks for."""

        def draw(split, count, *, seed, image_size):
            function, kwargs = task_world(code, world, image_size=image_size, num_frames=world_frames)
            return function(split, count, seed=seed, **kwargs)

        return draw

    task = get_task_info(task).name
    code = TASK_CODE_OF[task]
    if not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"The number of examples must be a positive int, got {num_examples!r}.")
    rng = np.random.default_rng(seed)
    frames = max(int(num_frames), 1)
    world_frames = max(frames, 3)  # the worlds' motions need at least 3 frames

    if code in ("T2I", "I2I", "TI2I"):
        rows, resized = _draw(world_function("t2i"), split, num_examples, image_size, seed)
        images = _pictures(rows, "image", image_size, resized)
        texts = [str(t) for t in _column(rows, "text")]
        digits = _column(rows, "digits")
        if code == "T2I":
            return TaskExamples(task, {"prompt": texts}, references=images, texts=texts,
                                attributes={"digit": [d[0] if isinstance(d, list) else d for d in digits]},
                                description="captions of held-out coloured digit images")
        pil_images = [PIL.Image.fromarray(image) for image in images]
        if code == "I2I":
            if not whole_picture:  # only the known part: the region black (see the module docstring)
                known = images.copy()
                known[:, image_size // 2:] = 0
                pil_images = [PIL.Image.fromarray(image) for image in known]
            return TaskExamples(task, {"image": pil_images, "mask": ["bottom half"] * len(images)}, references=images,
                                description="held-out digit images, bottom half regenerated"
                                + (" (the whole picture given)" if whole_picture else " from the top half alone"))
        positions = _column(rows, "position")
        edits, masks = [], []
        for text, position, image in zip(texts, positions, images):
            edited, _ = _change_colour(text, data.COLORS[1:], rng)
            edits.append(edited)
            if world == "multi_digit":  # the first digit's grid cell
                index = position[0] if isinstance(position, list) else position
                centre_y, centre_x = POSITION_CENTERS[data.POSITIONS[int(index)]]
                half = 0.22
                masks.append((max(centre_x - half, 0.0), max(centre_y - half, 0.0), min(centre_x + half, 1.0),
                              min(centre_y + half, 1.0)))
            else:  # the one digit's box of bright pixels
                masks.append(_bright_box(image))
        return TaskExamples(task, {"image": pil_images, "prompt": edits, "mask": masks}, references=images,
                            texts=edits, description="held-out digit images, the first digit recoloured by text")

    if code in ("T2V", "TV2V"):
        rows, resized = _draw(world_function("t2v"), split, num_examples, image_size, seed)
        videos = _pictures(rows, "video", image_size, resized)[:, :frames]
        texts = [str(t) for t in _column(rows, "text")]
        if code == "T2V":
            motions = [[data.MOTIONS[m] if isinstance(m, (int, np.integer)) else m for m in row]
                       for row in _column(rows, "motion")]
            return TaskExamples(task, {"prompt": texts}, fixed={"num_frames": frames}, references=videos, texts=texts,
                                attributes={"digit": _column(rows, "digits"), "motion": motions},
                                description="captions of held-out captioned Moving MNIST videos")
        edits = [_change_motion(text, data.MOTIONS, rng) for text in texts]
        first = [[PIL.Image.fromarray(video[0])] for video in videos]
        return TaskExamples(task, {"video": first, "prompt": edits},
                            fixed={"num_condition_frames": 1, "num_frames": frames}, references=videos, texts=edits,
                            description="first frames of held-out Moving MNIST videos, captions with another motion")

    if code == "V2V":
        rows, resized = _draw(world_function("v2v"), split, num_examples, image_size, seed)
        videos = _pictures(rows, "video", image_size, resized)[:, :frames]
        first = [[PIL.Image.fromarray(video[0])] for video in videos]
        return TaskExamples(task, {"video": first},
                            fixed={"num_condition_frames": 1, "num_frames_to_predict": max(frames - 1, 1)},
                            references=videos, description="first frames of held-out Moving MNIST videos")

    if code == "S2I":
        rows, resized = _draw(data.scene_images, split, num_examples, image_size, seed)
        sketches = _maps(rows, "sketch", image_size, resized)
        _check_classes(sketches, num_sketch_classes)
        return TaskExamples(task, {"sketch": list(sketches)}, references=_pictures(rows, "image", image_size, resized),
                            sketches=sketches, num_classes=data.NUM_SCENE_CLASSES,
                            description="segmentation maps of held-out scenes")

    if code == "S2V":
        rows, resized = _draw(data.scene_videos, split, num_examples, image_size, seed, num_frames=world_frames)
        sketches = _maps(rows, "sketch", image_size, resized)[:, :frames]
        _check_classes(sketches, num_sketch_classes)
        return TaskExamples(task, {"sketch_video": list(sketches)},
                            references=_pictures(rows, "video", image_size, resized)[:, :frames], sketches=sketches,
                            num_classes=data.NUM_SCENE_CLASSES,
                            description="per-frame segmentation maps of held-out scene videos")
    raise AssertionError(code)


def _bright_box(image: np.ndarray, threshold: int = 60) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) fractions of the box around the bright pixels of one (H, W, 3) uint8 picture, grown by 1/16 of
    the side; the whole picture when nothing is bright."""
    bright = image.max(axis=-1) > threshold
    if not bright.any():
        return (0.0, 0.0, 1.0, 1.0)
    ys, xs = np.nonzero(bright)
    size = image.shape[0]
    grow = size / 16
    return (max(xs.min() - grow, 0) / size, max(ys.min() - grow, 0) / size, min(xs.max() + 1 + grow, size) / size,
            min(ys.max() + 1 + grow, size) / size)


def _check_classes(sketches: np.ndarray, num_sketch_classes: Optional[int]) -> None:
    if num_sketch_classes is not None and sketches.size and int(sketches.max()) >= num_sketch_classes:
        raise ValueError(
            f"The scene world has class ids up to {int(sketches.max())} but the model's sketch VQ-GAN knows "
            f"{num_sketch_classes} classes: this model was not trained on the built-in scene world."
        )
