"""Paths of moving objects over video frames, as integer top-left corners (row, col).

Three kinds:
- :func:`godiva_track`: GODIVA's "up then down" / "down then up" / "left then right" / "right then left": constant
  speed along one axis, a single turn at a frame ``k`` between a third and two thirds of the clip, the other axis
  fixed. Both phases last at least one frame step and every step moves at least ``MIN_STEP`` pixels, so the motion
  named in the caption is always visible.
- :func:`bouncing_track`: Srivastava et al. (2015) Moving MNIST: random start, random direction and speed, reflected
  at the borders.
- :func:`straight_track`: constant velocity left/right/up/down, never leaving the canvas (scene videos).

``free_range`` is the number of pixel positions the object's top-left corner can take minus one (canvas - object).
"""

from __future__ import annotations

import numpy as np

from .attributes import DIRECTIONS, MOTIONS

MIN_STEP = 1.5  # pixels per frame: rounding to whole pixels can never freeze a phase of the motion


def godiva_turn_frames(num_frames: int) -> tuple[int, int]:
    """The inclusive range of frames at which a GODIVA motion turns around."""
    low = max(1, num_frames // 3)
    high = min(num_frames - 2, num_frames - 1 - num_frames // 3)
    return low, high


def check_godiva_geometry(num_frames: int, free_range: int) -> None:
    """Raise a clear error when the canvas is too small for a visible back-and-forth motion in ``num_frames``."""
    if num_frames < 3:
        raise ValueError(f"num_frames={num_frames}: a 'then' motion needs at least 3 frames (one step each way).")
    low, _ = godiva_turn_frames(num_frames)
    longest_phase = num_frames - 1 - low
    slowest = 0.6 * free_range / longest_phase
    if slowest < MIN_STEP:
        raise ValueError(
            f"A free range of {free_range} px over {num_frames} frames moves digits by less than {MIN_STEP} px a "
            "frame: use a larger image_size, a smaller digit_size, or fewer frames."
        )


def godiva_track(motion: str, num_frames: int, free_range: int, rng: np.random.Generator) -> np.ndarray:
    """int64 ``(num_frames, 2)`` top-left (row, col) for one of :data:`attributes.MOTIONS`."""
    if motion not in MOTIONS:
        raise ValueError(f"Unknown motion {motion!r}; choose one of {MOTIONS}.")
    low, high = godiva_turn_frames(num_frames)
    turn = int(rng.integers(low, high + 1))
    longest_phase = max(turn, num_frames - 1 - turn)
    speed = rng.uniform(0.6, 1.0) * free_range / longest_phase
    travel = speed * longest_phase
    times = np.arange(num_frames, dtype=np.float64)
    distance_from_turn = speed * np.abs(times - turn)
    if motion in ("up then down", "left then right"):
        # Extreme (smallest coordinate) at the turn; the coordinate then grows on both sides of it.
        extreme = rng.uniform(0.0, free_range - travel)
        moving = extreme + distance_from_turn
    else:
        extreme = rng.uniform(travel, free_range)
        moving = extreme - distance_from_turn
    fixed = np.full(num_frames, rng.uniform(0.0, free_range))
    rows, cols = (moving, fixed) if motion in ("up then down", "down then up") else (fixed, moving)
    return np.rint(np.stack([rows, cols], axis=1)).astype(np.int64)


def bouncing_track(
    num_frames: int, free_range: int, speed_range: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """int64 ``(num_frames, 2)``: Srivastava's bouncing digit. ``speed_range`` is in pixels per frame."""
    position = rng.uniform(0.0, free_range, size=2)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    velocity = rng.uniform(*speed_range) * np.array([np.sin(angle), np.cos(angle)])
    track = np.empty((num_frames, 2), dtype=np.float64)
    for frame in range(num_frames):
        track[frame] = position
        position = position + velocity
        for axis in range(2):
            # Reflect off the border: the overshoot is folded back and that velocity component flips.
            if position[axis] < 0:
                position[axis], velocity[axis] = -position[axis], -velocity[axis]
            elif position[axis] > free_range:
                position[axis], velocity[axis] = 2 * free_range - position[axis], -velocity[axis]
    return np.rint(track).astype(np.int64)


def straight_track(
    direction: str, num_frames: int, free_rows: int, free_cols: int, rng: np.random.Generator
) -> np.ndarray:
    """int64 ``(num_frames, 2)``: constant velocity in one of :data:`attributes.DIRECTIONS`, always on the canvas.

    Raises:
        ValueError: the canvas leaves less than ``MIN_STEP`` pixels a frame for the motion.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}; choose one of {DIRECTIONS}.")
    steps = max(num_frames - 1, 1)
    free_along = free_cols if direction in ("left", "right") else free_rows
    fastest = free_along / steps
    if fastest < MIN_STEP:
        raise ValueError(
            f"Objects cannot move {MIN_STEP} px a frame over {num_frames} frames in {free_along} free pixels: use a "
            "larger image_size, smaller objects, or fewer frames."
        )
    speed = rng.uniform(max(MIN_STEP, 0.5 * fastest), fastest)
    travel = speed * steps
    start_along = rng.uniform(travel, free_along) if direction in ("left", "up") else rng.uniform(0.0, free_along - travel)
    sign = -1.0 if direction in ("left", "up") else 1.0
    along = start_along + sign * speed * np.arange(num_frames)
    across = np.full(num_frames, rng.uniform(0.0, free_rows if direction in ("left", "right") else free_cols))
    rows, cols = (across, along) if direction in ("left", "right") else (along, across)
    return np.rint(np.stack([rows, cols], axis=1)).astype(np.int64)
