"""nuwa_hf.data.sketch_motion: one drawn sketch set in motion for sketch-to-video."""

import numpy as np
import pytest

from nuwa_hf.data.scene_rendering import SCENE_CLASSES
from nuwa_hf.data.sketch_motion import MOTION_CHOICES, move_shapes

SQUARE, GRASS, BRICK = SCENE_CLASSES.index("square"), SCENE_CLASSES.index("grass"), SCENE_CLASSES.index("brick")


def _sketch():
    sketch = np.full((16, 16), BRICK, dtype=np.int64)
    sketch[8:] = GRASS
    sketch[6:10, 2:6] = SQUARE
    return sketch


@pytest.mark.parametrize("motion, axis, sign", [("right", 1, 1), ("left", 1, -1), ("down", 0, 1), ("up", 0, -1)])
def test_the_shapes_move_over_the_ground(motion, axis, sign):
    sketch = _sketch()
    if motion == "left":
        sketch = sketch[:, ::-1].copy()  # room on the left
    maps, note = move_shapes(sketch, motion, 4)
    assert maps.shape == (4, 16, 16) and note is None
    centres = [np.nonzero(m == SQUARE)[axis].mean() for m in maps]
    assert all(sign * (b - a) > 0 for a, b in zip(centres, centres[1:]))
    assert all((m == SQUARE).sum() == 16 for m in maps)  # the square keeps its size
    uncovered = maps[-1][6:10][(maps[-1][6:10] != SQUARE)]
    assert set(uncovered.tolist()) <= {BRICK, GRASS}  # where it was is ground again


def test_nothing_moves_without_shapes_motion_or_room():
    ground = np.full((8, 8), GRASS, dtype=np.int64)
    maps, note = move_shapes(ground, "right", 3)
    assert (maps == ground).all() and "no circle, square or triangle" in note
    for motion in ("none", None, ""):
        maps, note = move_shapes(_sketch(), motion, 3)
        assert (maps == _sketch()).all() and note is None
    edge = _sketch()
    edge[:, -1] = SQUARE
    maps, note = move_shapes(edge, "right", 3)
    assert "touch the right edge" in note
    assert move_shapes(_sketch(), "right", 1)[0].shape == (1, 16, 16)
    assert MOTION_CHOICES == ("left", "right", "up", "down", "none")
    with pytest.raises(ValueError, match="Unknown motion 'sideways'"):
        move_shapes(_sketch(), "sideways", 3)


def test_only_the_models_shape_classes_move():
    maps, note = move_shapes(_sketch(), "right", 3, num_classes=SQUARE)  # a model without the square class
    assert (maps == _sketch()).all() and "nothing moves" in note
