"""Drawing the scene world: two textured "stuff" regions and flat-shaded shapes, with the exact class map.

Every pixel belongs to exactly one class and is painted from that class's material, with hard (not anti-aliased)
edges, so the segmentation map is exact by construction: ``sketch[y, x] == c`` iff pixel (y, x) was painted as class c.
"""

from __future__ import annotations

import numpy as np

from .attributes import COLOR_RGB
from .textures import crop_texture

SCENE_STUFF = ("brick", "grass", "gravel")
SCENE_SHAPES = ("circle", "square", "triangle")
SCENE_CLASSES = SCENE_STUFF + SCENE_SHAPES


def sketch_class_legend() -> str:
    """The sketch class ids as users read them: ``"0 brick, 1 grass, 2 gravel, 3 circle, 4 square, 5 triangle"``.
    The README, the model card and ``nuwa-hf generate --help`` show this text (tests check the README against it)."""
    return ", ".join(f"{index} {name}" for index, name in enumerate(SCENE_CLASSES))

STUFF_PHRASES = {"brick": "bricks", "grass": "grass", "gravel": "gravel"}

# Each stuff class keeps one hue, so its look identifies it (brick reddish, grass green, gravel gray).
STUFF_TINT = {"brick": (1.0, 0.55, 0.42), "grass": (0.55, 0.95, 0.4), "gravel": (0.85, 0.83, 0.8)}

# Texture regions of the 512x512 photographs used by each split: test crops come from pixels training never saw.
TEXTURE_REGIONS = {
    "train": (slice(0, 384), slice(0, 512)),
    "validation": (slice(384, 512), slice(0, 256)),
    "test": (slice(384, 512), slice(256, 512)),
    "test_held_out": (slice(384, 512), slice(256, 512)),
}


def shape_mask(shape: str, side: int) -> np.ndarray:
    """bool ``(side, side)``: the pixels of ``shape`` inside its ``side``-wide bounding box.

    A pixel belongs to the shape when its centre does; the triangle points up with its base on the box's bottom.
    """
    centers = np.arange(side) + 0.5
    rows, cols = centers[:, None], centers[None, :]
    if shape == "square":
        return np.ones((side, side), dtype=bool)
    if shape == "circle":
        return (rows - side / 2) ** 2 + (cols - side / 2) ** 2 <= (side / 2) ** 2
    if shape == "triangle":
        return np.abs(cols - side / 2) <= rows / 2
    raise ValueError(f"Unknown shape {shape!r}; choose one of {SCENE_SHAPES}.")


def place_mask(local_mask: np.ndarray, top: int, left: int, image_size: int) -> np.ndarray:
    """bool ``(image_size, image_size)`` with ``local_mask`` at (top, left); the box must lie inside the canvas."""
    canvas = np.zeros((image_size, image_size), dtype=bool)
    side = local_mask.shape[0]
    canvas[top : top + side, left : left + side] = local_mask
    return canvas


def render_background(
    image_size: int, horizon: int, top_stuff: str, bottom_stuff: str, textures: dict, split: str,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """float32 RGB ``(S, S, 3)`` in [0, 1] and int64 class map ``(S, S)``: ``top_stuff`` above row ``horizon``."""
    image = np.empty((image_size, image_size, 3), dtype=np.float32)
    sketch = np.empty((image_size, image_size), dtype=np.int64)
    for stuff, rows in ((top_stuff, slice(0, horizon)), (bottom_stuff, slice(horizon, image_size))):
        texture = crop_texture(textures[stuff], image_size, image_size, rng, TEXTURE_REGIONS[split])
        # Stretch the crop's contrast to [0.15, 1] before tinting so every crop is equally readable.
        low, high = np.percentile(texture, (2, 98))
        normalized = 0.15 + 0.85 * np.clip((texture - low) / max(high - low, 1e-3), 0.0, 1.0)
        image[rows] = normalized[rows, :, None] * np.asarray(STUFF_TINT[stuff], dtype=np.float32)
        sketch[rows] = SCENE_CLASSES.index(stuff)
    return image, sketch


def shape_fill(color: str, side: int, textures: dict, split: str, rng: np.random.Generator) -> np.ndarray:
    """float32 RGB ``(side, side, 3)``: the object's colour shaded by a real texture, in the object's own frame
    (so the surface moves with the object in videos)."""
    name = SCENE_STUFF[int(rng.integers(len(SCENE_STUFF)))]
    texture = crop_texture(textures[name], side, side, rng, TEXTURE_REGIONS[split])
    # Mild shading around 0.85 keeps the hue (the attribute a scorer reads) dominant over the texture.
    shade = np.clip(0.85 + 0.5 * (texture - texture.mean()), 0.5, 1.0)
    rgb = np.asarray(COLOR_RGB[color], dtype=np.float32) / 255.0
    return shade[:, :, None] * rgb


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 [0, 255]."""
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
