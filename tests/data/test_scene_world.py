"""Scene world: the segmentation map is exact (every pixel's colour belongs to its class), captions say what is drawn."""

import re

import numpy as np
import pytest

from nuwa_hf.data import COLORS, DIRECTIONS, NUM_SCENE_CLASSES, SCENE_CLASSES, scene_images, scene_videos
from nuwa_hf.data.attributes import COLOR_RGB
from nuwa_hf.data.scene_rendering import STUFF_PHRASES, STUFF_TINT

OBJECT = re.compile(r"a (\w+) (circle|square|triangle)(?: moving (left|right|up|down))?")
STUFF_NAME = {phrase: name for name, phrase in STUFF_PHRASES.items()}


def hue(rgb) -> np.ndarray:
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb / np.maximum(rgb.max(axis=-1, keepdims=True), 1e-6)


def assert_pixels_match_classes(image: np.ndarray, sketch: np.ndarray, row) -> None:
    """Each pixel's hue is that of its class (stuff tint, or the colour of a shape of that class)."""
    hues_by_class = {SCENE_CLASSES.index(name): [hue(tint)] for name, tint in STUFF_TINT.items()}
    for shape, color in zip(row["classes"], row["color"]):
        hues_by_class.setdefault(int(shape), []).append(hue(COLOR_RGB[COLORS[int(color)]]))
    pixel_hues = hue(image)
    for cls in np.unique(sketch):
        own = np.stack(hues_by_class[int(cls)])
        pixels = pixel_hues[sketch == cls]
        distance_own = np.abs(pixels[:, None, :] - own[None]).max(axis=2).min(axis=1)
        assert distance_own.max() < 0.08, f"class {SCENE_CLASSES[cls]} has off-colour pixels"
        others = [h for c, hs in hues_by_class.items() if c != cls for h in hs
                  if not any(np.allclose(h, o) for o in own)]
        distance_other = np.abs(pixels[:, None, :] - np.stack(others)[None]).max(axis=2).min(axis=1)
        assert np.all(distance_own < distance_other)


def parse(text: str):
    objects_part, stuff_part = text.split(" over ")
    bottom, top = stuff_part.split(" below ")
    return OBJECT.findall(objects_part), STUFF_NAME[top], STUFF_NAME[bottom]


def test_scene_images_have_exact_maps_and_true_captions(world_cache):
    ds = scene_images("train", 12, seed=0, image_size=48)
    assert ds.features["classes"].feature.names == list(SCENE_CLASSES) and NUM_SCENE_CLASSES == 6
    for row in ds:
        image, sketch = row["image"], row["sketch"]
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8
        assert sketch.shape == (48, 48) and sketch.dtype == np.int64
        assert 0 <= sketch.min() and sketch.max() < NUM_SCENE_CLASSES
        objects, top, bottom = parse(str(row["text"]))
        assert [SCENE_CLASSES.index(top), SCENE_CLASSES.index(bottom)] == list(row["stuff"])
        assert sketch[0, 0] == SCENE_CLASSES.index(top) or any(
            b[0] == 0 and b[1] == 0 for b in row["boxes"])
        assert [(c, s) for c, s, _ in objects] == [
            (COLORS[int(c)], SCENE_CLASSES[int(s)]) for c, s in zip(row["color"], row["classes"])]
        for shape in row["classes"]:
            assert (sketch == shape).sum() > 0  # every named shape is visible
        assert_pixels_match_classes(image, sketch, row)


def test_scene_videos_move_as_captioned_with_a_map_per_frame(world_cache):
    ds = scene_videos("validation", 6, seed=1, image_size=32, num_frames=6)
    for row in ds:
        video, sketch, boxes = row["video"], row["sketch"], row["boxes"]
        assert video.shape == (6, 32, 32, 3) and sketch.shape == (6, 32, 32) and sketch.dtype == np.int64
        objects, _, _ = parse(str(row["text"]))
        assert len(objects) == len(row["classes"]) == boxes.shape[0]
        for index, (_, shape, direction) in enumerate(objects):
            assert DIRECTIONS[int(row["motion"][index])] == direction
            step = np.diff(boxes[index, :, :2], axis=0)
            expected = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}[direction]
            for axis in range(2):
                if expected[axis]:
                    assert np.all(np.sign(step[:, axis]) == expected[axis])
                else:
                    assert np.all(step[:, axis] == 0)
            assert boxes[index, :, :2].min() >= 0 and (boxes[index, :, :2] + boxes[index, :, 2:]).max() <= 32
        for frame in range(6):
            assert_pixels_match_classes(video[frame], sketch[frame], row)
        # Background does not move: wherever no object is in either frame, the pixels are identical.
        still = np.isin(sketch[0], [0, 1, 2]) & np.isin(sketch[-1], [0, 1, 2])
        assert np.array_equal(video[0][still], video[-1][still])


def test_scene_determinism_held_out_and_streaming(world_cache):
    held_out = [{"shape": "triangle", "color": "red"}]
    cached = scene_images("test", 5, seed=9, image_size=32, held_out=held_out)
    streamed = list(scene_images("test", 5, seed=9, image_size=32, held_out=held_out, streaming=True))
    for row, example in zip(cached, streamed):
        assert np.array_equal(row["image"], example["image"]) and np.array_equal(row["sketch"], example["sketch"])
    red, triangle = COLORS.index("red"), SCENE_CLASSES.index("triangle")
    for row in scene_images("train", 30, seed=0, image_size=32, held_out=held_out):
        assert not any(int(s) == triangle and int(c) == red for s, c in zip(row["classes"], row["color"]))
    novel = scene_images("test_held_out", 8, seed=0, image_size=32, held_out=held_out)
    assert all("a red triangle" in str(text) for text in novel["text"])
    with pytest.raises(ValueError, match="motion"):
        scene_images("train", 2, held_out=[{"motion": "left"}])
    with pytest.raises(ValueError, match="object_size"):
        scene_images("train", 2, image_size=8)
