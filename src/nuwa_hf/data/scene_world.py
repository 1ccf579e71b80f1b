"""The scene world: textured ground and wall with coloured shapes, with exact segmentation maps (sketches).

For sketch-to-image and sketch-to-video. Each scene has two "stuff" regions split by a horizontal horizon (the upper
one and the lower one drawn from brick / grass / gravel, real photographs from scikit-image, tinted per class), and 1-3
"thing" shapes (circle / square / triangle) in colours from :data:`attributes.COLORS`, shaded by a texture. The class
map uses the 6 classes of :data:`SCENE_CLASSES` (``NUM_SCENE_CLASSES``). Captions come from the attributes:

    image: "a red circle and a blue triangle over grass below bricks"
    video: "a red circle moving left and a blue triangle moving up over grass below bricks"

Splits: ``"train"`` crops textures from rows 0-383 of each photograph, ``"validation"`` and ``"test"`` from disjoint
128x256 blocks below, so test images show texture pixels never seen in training; ``"test_held_out"`` uses the test
block and contains a held-out (shape, colour[, motion]) combination in every sample.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from datasets import Array2D, Array3D, Array4D, ClassLabel, Dataset, Features, IterableDataset, List, Value

from .attributes import COLORS, DIRECTIONS
from .captions import scene_caption
from .held_out import CombinationSampler, check_split, normalize_patterns
from .scene_rendering import (
    SCENE_CLASSES, SCENE_SHAPES, SCENE_STUFF, place_mask, render_background, shape_fill, shape_mask,
    to_uint8,
)
from .textures import load_textures
from .trajectories import straight_track
from .world_dataset import build_world_dataset, check_positive, iterate_indices, sample_rng

NUM_SCENE_CLASSES = len(SCENE_CLASSES)
LAYOUT_ATTEMPTS = 40
MIN_VISIBLE_FRACTION = 0.6  # images: every object keeps 60% of its pixels; videos: 30% in every frame


def _domains(video: bool) -> dict[str, tuple]:
    domains = {"shape": SCENE_SHAPES, "color": COLORS[1:]}
    if video:
        domains["motion"] = DIRECTIONS
    return domains


def _visible_enough(masks_per_frame: list[list[np.ndarray]], fraction: float) -> bool:
    """True when, in every frame, each object keeps ``fraction`` of its pixels after later objects are drawn."""
    for masks in masks_per_frame:
        covered = np.zeros_like(masks[0])
        for mask in reversed(masks):
            if (mask & ~covered).sum() < fraction * mask.sum():
                return False
            covered |= mask
    return True


def _generate(shards: list[tuple[int, int]], config: dict) -> Iterator[dict]:
    size, frames, video = config["image_size"], config["num_frames"], config["video"]
    split = config["split"]
    textures = load_textures()
    sampler = CombinationSampler(_domains(video), config["held_out"], split)
    world = "scene_videos" if video else "scene_images"
    low_side, high_side = config["object_size"]
    for index in iterate_indices(shards):
        rng = sample_rng(config["seed"], world, split, index)
        top_index, bottom_index = rng.choice(len(SCENE_STUFF), size=2, replace=False)
        top_stuff, bottom_stuff = SCENE_STUFF[top_index], SCENE_STUFF[bottom_index]
        horizon = int(rng.uniform(0.3, 0.7) * size)
        background, background_sketch = render_background(size, horizon, top_stuff, bottom_stuff, textures, split, rng)
        count = int(rng.choice(config["num_objects"]))
        objects = sampler.draw(count, rng)
        # Draw a layout; if objects hide each other too much after LAYOUT_ATTEMPTS tries, drop the last object
        # (a single object is always visible), so captions never name an invisible shape.
        while True:
            for _ in range(LAYOUT_ATTEMPTS):
                sides = [int(rng.integers(int(low_side * size), int(high_side * size) + 1)) for _ in objects]
                if video:
                    tracks = [straight_track(obj["motion"], frames, size - side, size - side, rng)
                              for obj, side in zip(objects, sides)]
                else:
                    tracks = [rng.integers(0, size - side + 1, size=(1, 2)) for side in sides]
                locals_ = [shape_mask(obj["shape"], side) for obj, side in zip(objects, sides)]
                masks = [[place_mask(local, int(track[t, 0]), int(track[t, 1]), size)
                          for local, track in zip(locals_, tracks)] for t in range(frames)]
                if _visible_enough(masks, MIN_VISIBLE_FRACTION / (2 if video else 1)):
                    break
            else:
                objects = objects[:-1]
                continue
            break
        fills = [shape_fill(obj["color"], side, textures, split, rng) for obj, side in zip(objects, sides)]
        images = np.empty((frames, size, size, 3), dtype=np.uint8)
        sketches = np.empty((frames, size, size), dtype=np.int64)
        for t in range(frames):
            image, sketch = background.copy(), background_sketch.copy()
            for obj, local, fill, track, side in zip(objects, locals_, fills, tracks, sides):
                top, left = int(track[t, 0]), int(track[t, 1])
                box = (slice(top, top + side), slice(left, left + side))
                image[box][local] = fill[local]
                sketch[box][local] = SCENE_CLASSES.index(obj["shape"])
            images[t], sketches[t] = to_uint8(image), sketch
        boxes = np.array([[[track[t, 0], track[t, 1], side] for t in range(frames)]
                          for track, side in zip(tracks, sides)], dtype=np.int64)
        row = {
            "text": scene_caption(objects, top_stuff, bottom_stuff),
            "classes": [obj["shape"] for obj in objects],
            "color": [obj["color"] for obj in objects],
            "stuff": [top_stuff, bottom_stuff],
        }
        if video:
            row.update(video=images, sketch=sketches, motion=[obj["motion"] for obj in objects], boxes=boxes)
        else:
            row.update(image=images[0], sketch=sketches[0], boxes=boxes[:, 0])
        yield row


def _build(video: bool, split, num_samples, seed, image_size, num_frames, num_objects, object_size, held_out,
           streaming, num_proc):
    check_split(split)
    check_positive(num_samples=num_samples, image_size=image_size, num_frames=num_frames)
    counts = (num_objects,) if isinstance(num_objects, (int, np.integer)) else tuple(int(n) for n in num_objects)
    if not counts or any(not 1 <= n <= 4 for n in counts):
        raise ValueError(f"num_objects must be between 1 and 4, or a sequence of such counts; got {num_objects!r}.")
    low, high = (float(v) for v in object_size)
    if not 0 < low <= high < 1 or int(low * image_size) < 3:
        raise ValueError(f"object_size must be fractions (low, high) of image_size with 0 < low <= high < 1 and "
                         f"objects at least 3 px wide; got {object_size!r} at image_size={image_size}.")
    domains = _domains(video)
    patterns = normalize_patterns(held_out, domains)
    CombinationSampler(domains, patterns, split)
    load_textures()  # fetch once, in this process, before any worker needs the textures
    if video:
        straight_track("left", num_frames, 0, image_size - int(high * image_size), np.random.default_rng(0))
    config = {"split": split, "seed": int(seed), "image_size": int(image_size), "num_frames": int(num_frames),
              "num_objects": counts, "object_size": (low, high), "held_out": patterns, "video": video}
    attributes = {
        "text": Value("string"),
        "classes": List(ClassLabel(names=list(SCENE_CLASSES))),
        "color": List(ClassLabel(names=list(COLORS))),
        "stuff": List(ClassLabel(names=list(SCENE_CLASSES))),
    }
    if video:
        features = Features({
            "video": Array4D((num_frames, image_size, image_size, 3), "uint8"),
            "sketch": Array3D((num_frames, image_size, image_size), "int64"),
            **attributes,
            "motion": List(ClassLabel(names=list(DIRECTIONS))),
            "boxes": Array3D((None, num_frames, 3), "int64"),
        })
    else:
        features = Features({
            "image": Array3D((image_size, image_size, 3), "uint8"),
            "sketch": Array2D((image_size, image_size), "int64"),
            **attributes,
            "boxes": Array2D((None, 3), "int64"),
        })
    return build_world_dataset(world="scene_videos" if video else "scene_images", generate=_generate, config=config,
                               features=features, num_samples=num_samples, streaming=streaming, num_proc=num_proc)


def scene_images(
    split: str = "train",
    num_samples: int = 1000,
    *,
    seed: int = 0,
    image_size: int = 64,
    num_objects: int | Sequence[int] = (1, 2, 3),
    object_size: tuple[float, float] = (0.2, 0.4),
    held_out: Sequence[Mapping[str, object]] | None = None,
    streaming: bool = False,
    num_proc: int | None = None,
) -> Dataset | IterableDataset:
    """Scene images with exact segmentation maps and captions, deterministic from ``seed``.

    Args:
        split: ``"train"`` / ``"validation"`` / ``"test"`` / ``"test_held_out"`` (see the module docstring).
        num_samples, seed, streaming, num_proc: as in :func:`nuwa_hf.data.captioned_moving_mnist`.
        image_size: side of the square image.
        num_objects: shapes per scene, or a sequence to draw from (a shape may be dropped if it would be mostly hidden).
        object_size: (low, high) side of a shape's bounding box as a fraction of ``image_size``.
        held_out: patterns over ``"shape"`` and ``"color"``, e.g. ``[{"shape": "triangle", "color": "red"}]``.

    Returns:
        Rows with ``"image"`` uint8 ``(S, S, 3)``; ``"sketch"`` int64 ``(S, S)`` class indices in
        ``0..NUM_SCENE_CLASSES-1`` (:data:`SCENE_CLASSES`, also ``ds.features["classes"].feature.names``);
        ``"text"`` str; per shape (D of them, in drawing order, later ones on top): ``"classes"`` int64 ``(D,)``
        (class index of the shape), ``"color"`` int64 ``(D,)`` (:data:`attributes.COLORS` index), ``"boxes"`` int64
        ``(D, 3)`` (top, left, side); and ``"stuff"`` int64 ``(2,)``: class of the upper and of the lower region.
        Formats as in :mod:`nuwa_hf.data.world_dataset`.
    """
    return _build(False, split, num_samples, seed, image_size, 1, num_objects, object_size, held_out, streaming,
                  num_proc)


def scene_videos(
    split: str = "train",
    num_samples: int = 1000,
    *,
    seed: int = 0,
    image_size: int = 64,
    num_frames: int = 10,
    num_objects: int | Sequence[int] = (1, 2),
    object_size: tuple[float, float] = (0.2, 0.35),
    held_out: Sequence[Mapping[str, object]] | None = None,
    streaming: bool = False,
    num_proc: int | None = None,
) -> Dataset | IterableDataset:
    """Scene videos (static background, shapes moving in straight lines) with per-frame segmentation maps.

    Args: as :func:`scene_images`, plus ``num_frames``; ``held_out`` patterns may also name ``"motion"``
    (:data:`attributes.DIRECTIONS`: "left", "right", "up", "down"). Objects never leave the frame.

    Returns:
        Rows with ``"video"`` uint8 ``(T, S, S, 3)``, ``"sketch"`` int64 ``(T, S, S)``, ``"text"`` str, ``"classes"``,
        ``"color"`` and ``"motion"`` int64 ``(D,)`` (``motion``: :data:`attributes.DIRECTIONS` index), ``"boxes"`` int64
        ``(D, T, 3)`` (top, left, side per frame) and ``"stuff"`` int64 ``(2,)``.
    """
    return _build(True, split, num_samples, seed, image_size, num_frames, num_objects, object_size, held_out,
                  streaming, num_proc)
