"""A one-frame sketch set in motion: the scene world's shapes (circle, square, triangle) slide in one direction over
the static ground, frame after frame, as in the scene videos sketch-to-video is trained on (:mod:`scene_world`).

    >>> maps, note = move_shapes(sketch, "right", 8)      # (8, H, W) class maps; note says why nothing moved, if so

Used by the web demo to make the per-frame sketches of sketch-to-video from one drawing.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .attributes import DIRECTIONS
from .scene_rendering import SCENE_CLASSES, SCENE_SHAPES

MOTION_CHOICES = DIRECTIONS + ("none",)
_SHIFT = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}


def shape_class_ids(num_classes: int) -> list[int]:
    """The class ids of the scene world's shapes among the first ``num_classes`` classes."""
    return [SCENE_CLASSES.index(shape) for shape in SCENE_SHAPES if SCENE_CLASSES.index(shape) < num_classes]


def move_shapes(sketch: np.ndarray, motion: Optional[str], num_frames: int,
                num_classes: int = len(SCENE_CLASSES)) -> tuple[np.ndarray, Optional[str]]:
    """One class map ``(H, W)`` -> ``(num_frames, H, W)`` in which the shapes move ``motion`` (one of
    :data:`MOTION_CHOICES`; ``None`` / ``""`` / ``"none"``: they stay).

    The ground under a shape is its row's most common ground class (else the sketch's). The shapes travel at most an
    eighth of the picture per frame and stop at the edge: over the clip they cover the room they have in ``motion``'s
    direction. Returns the maps and a note when the shapes could not move (none in the sketch, or touching that edge),
    else None.
    """
    sketch = np.asarray(sketch, dtype=np.int64)
    if sketch.ndim != 2:
        raise ValueError(f"A sketch to move is one class map (H, W), got shape {sketch.shape}.")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}.")
    if motion not in MOTION_CHOICES + (None, ""):
        raise ValueError(f"Unknown motion {motion!r}: choose one of {', '.join(MOTION_CHOICES)}.")
    still = np.repeat(sketch[None], num_frames, axis=0)
    if motion in (None, "", "none") or num_frames == 1:
        return still, None
    moving = np.isin(sketch, shape_class_ids(num_classes))
    if not moving.any():
        return still, "the sketch has no circle, square or triangle, so nothing moves."
    ground = sketch.copy()
    fallback = np.bincount(sketch[~moving]).argmax() if (~moving).any() else 0
    for row in range(sketch.shape[0]):  # the ground under a shape: its row's ground class
        if moving[row].any():
            stuff = sketch[row][~moving[row]]
            ground[row][moving[row]] = np.bincount(stuff).argmax() if stuff.size else fallback
    rows, cols = np.nonzero(moving)
    height, width = sketch.shape
    room = {"left": cols.min(), "right": width - 1 - cols.max(), "up": rows.min(), "down": height - 1 - rows.max()}
    step = min(room[motion] / (num_frames - 1), max(height, width) / 8)
    note = None if step >= 1 else f"the shapes touch the {motion} edge, so they cannot move {motion}."
    frames = []
    for index in range(num_frames):
        shift = int(round(step * index))
        dy, dx = (shift * sign for sign in _SHIFT[motion])
        frame = ground.copy()
        frame[rows + dy, cols + dx] = sketch[rows, cols]
        frames.append(frame)
    return np.stack(frames), note
