"""MNIST digits as sprites: drawing one of a class from a split, resizing, colouring and pasting onto a canvas."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .attributes import COLOR_RGB
from .mnist import load_mnist


class DigitPool:
    """The MNIST images of one split, indexed by class.

    Args:
        mnist_split: ``"train"``, ``"validation"`` or ``"test"`` (see :func:`nuwa_hf.data.load_mnist`).
        sprite_size: side in pixels of the returned sprites (MNIST's own is 28).
    """

    def __init__(self, mnist_split: str, sprite_size: int):
        self.images, labels = load_mnist(mnist_split)
        self.indices_by_digit = [np.flatnonzero(labels == digit) for digit in range(10)]
        self.sprite_size = sprite_size

    def draw(self, digit: int, rng: np.random.Generator) -> np.ndarray:
        """A random image of ``digit``: uint8 ``(sprite_size, sprite_size)``, white on black."""
        candidates = self.indices_by_digit[digit]
        image = self.images[candidates[int(rng.integers(len(candidates)))]]
        return resize_sprite(image, self.sprite_size)


def resize_sprite(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(h, w)`` -> uint8 ``(size, size)``; Lanczos keeps strokes crisp when shrinking."""
    if image.shape == (size, size):
        return np.array(image)
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def paste_max(canvas: np.ndarray, sprite: np.ndarray, top: int, left: int, color: str = "white") -> None:
    """Draw ``sprite`` (uint8 ``(s, s)`` intensity) in ``color`` onto ``canvas`` (uint8 ``(H, W, 3)``) in place.

    Overlapping digits combine by per-channel maximum, as in Srivastava's Moving MNIST, so neither hides the other.
    The sprite must lie fully inside the canvas (the worlds' trajectories guarantee it).
    """
    size = sprite.shape[0]
    rgb = np.asarray(COLOR_RGB[color], dtype=np.float32) / 255.0
    colored = np.rint(sprite[:, :, None].astype(np.float32) * rgb).astype(np.uint8)
    region = canvas[top : top + size, left : left + size]
    if region.shape[:2] != sprite.shape:
        raise ValueError(f"sprite at ({top}, {left}) of size {size} does not fit a canvas of {canvas.shape[:2]}")
    np.maximum(region, colored, out=region)
