"""Small synthetic stand-ins for MNIST and captioned Moving MNIST, so the evaluation tests need no data download.

Digits are seven-segment glyphs drawn with random stroke width, position and noise; videos move one glyph along
one of the four captioned motions. Everything is a pure function of its seed.
"""

from __future__ import annotations

import numpy as np

MOTIONS = ("up then down", "down then up", "left then right", "right then left")

# Segments: top, top-left, top-right, middle, bottom-left, bottom-right, bottom.
_SEGMENTS_OF_DIGIT = {
    0: "abcefg", 1: "cf", 2: "acdeg", 3: "acdfg", 4: "bcdf",
    5: "abdfg", 6: "abdefg", 7: "acf", 8: "abcdefg", 9: "abcdfg",
}


def draw_digit(digit: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One float glyph (size, size) in [0, 1]: the digit's segments in a box of about 0.5 x 0.75 of the canvas."""
    canvas = np.zeros((size, size), dtype=np.float32)
    width, height = size * 0.45, size * 0.7
    left = (size - width) / 2 + rng.uniform(-size * 0.08, size * 0.08)
    top = (size - height) / 2 + rng.uniform(-size * 0.08, size * 0.08)
    stroke = max(1, int(round(size * rng.uniform(0.07, 0.11))))
    mid = top + height / 2
    right, bottom = left + width, top + height
    lines = {
        "a": (left, top, right, top), "b": (left, top, left, mid), "c": (right, top, right, mid),
        "d": (left, mid, right, mid), "e": (left, mid, left, bottom), "f": (right, mid, right, bottom),
        "g": (left, bottom, right, bottom),
    }
    for segment in _SEGMENTS_OF_DIGIT[digit]:
        x0, y0, x1, y1 = lines[segment]
        r0, r1 = int(round(min(y0, y1))), int(round(max(y0, y1))) + stroke
        c0, c1 = int(round(min(x0, x1))), int(round(max(x0, x1))) + stroke
        canvas[max(r0, 0):min(r1, size), max(c0, 0):min(c1, size)] = 1.0
    return canvas


def digit_images(count: int, seed: int, size: int = 28, noise: float = 0.1):
    """(uint8 images (count, size, size), int64 labels (count,)), labels cycling through 0..9."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    images = np.stack([draw_digit(int(label), size, rng) for label in labels])
    images = np.clip(images + rng.normal(0, noise, images.shape), 0, 1)
    return (images * 255).round().astype(np.uint8), labels.astype(np.int64)


def _positions(motion: str, frames: int, travel: float) -> np.ndarray:
    """Offsets (frames, 2) (dy, dx) from the start: out for half the clip, then back."""
    half = frames / 2
    steps = np.arange(frames)
    out_and_back = np.where(steps <= half, steps, 2 * half - steps) / half * travel
    sign = -1 if motion.startswith(("up", "left")) else 1
    vertical = motion.startswith(("up", "down"))
    offsets = np.zeros((frames, 2))
    offsets[:, 0 if vertical else 1] = sign * out_and_back
    return offsets


def moving_digit_videos(count: int, seed: int, frames: int = 8, size: int = 32, glyph: int = 14):
    """(uint8 videos (count, frames, size, size, 3), digits (count,), motion names (count,), captions (count,))."""
    rng = np.random.default_rng(seed)
    videos = np.zeros((count, frames, size, size, 3), dtype=np.uint8)
    digits = rng.integers(0, 10, count)
    motions = [MOTIONS[index] for index in rng.integers(0, 4, count)]
    travel = (size - glyph) / 2 - 1
    for row in range(count):
        image = draw_digit(int(digits[row]), glyph, rng)
        start = np.array([(size - glyph) / 2, (size - glyph) / 2]) + rng.uniform(-1, 1, 2)
        for frame, (dy, dx) in enumerate(_positions(motions[row], frames, travel)):
            y, x = int(round(start[0] + dy)), int(round(start[1] + dx))
            videos[row, frame, y:y + glyph, x:x + glyph, :] = (image[..., None] * 255).astype(np.uint8)
    captions = [f"the digit {digit} is moving {motion}" for digit, motion in zip(digits, motions)]
    return videos, digits.astype(np.int64), motions, captions


def digit_canvases(count: int, seed: int, size: int = 32, glyph: int = 14):
    """(uint8 canvases (count, size, size) with one or two glyphs at random places, per-canvas digit lists)."""
    rng = np.random.default_rng(seed)
    canvases = np.zeros((count, size, size), dtype=np.float32)
    labels = []
    for row in range(count):
        digits = list(rng.choice(10, size=int(rng.integers(1, 3)), replace=False))
        corners = rng.permutation([(0, 0), (0, size - glyph), (size - glyph, 0), (size - glyph, size - glyph)])
        for digit, (top, left) in zip(digits, corners):
            canvases[row, top:top + glyph, left:left + glyph] = np.maximum(
                canvases[row, top:top + glyph, left:left + glyph], draw_digit(int(digit), glyph, rng))
        labels.append([int(digit) for digit in digits])
    return (canvases * 255).astype(np.uint8), labels
