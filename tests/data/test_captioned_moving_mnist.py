"""Captioned Moving MNIST: captions describe what is drawn, splits use the right digits, seeds reproduce."""

import re

import numpy as np
import pytest
from datasets import Dataset, IterableDataset

from nuwa_hf.data import COLORS, MOTIONS, captioned_moving_mnist, godiva_caption, load_mnist

CAPTION = re.compile(r"the (?:(\w+) )?digit (\d) is moving (up then down|down then up|left then right|right then left)")


def center_of_mass(frame: np.ndarray) -> np.ndarray:
    """(row, col) of the intensity-weighted centre of a (H, W, 3) frame."""
    mass = frame.astype(np.float64).sum(axis=2)
    rows, cols = np.indices(mass.shape)
    return np.array([(rows * mass).sum(), (cols * mass).sum()]) / mass.sum()


def motion_from_centers(centers: np.ndarray) -> str:
    """Read a GODIVA motion off a (T, 2) track of centres: the moving axis and its turn's direction."""
    spans = centers.max(axis=0) - centers.min(axis=0)
    axis = int(np.argmax(spans))
    assert spans[1 - axis] < 0.5, "the other axis must stay still"
    steps = np.sign(np.diff(centers[:, axis]))
    assert np.all(steps != 0), f"the digit must move every frame: {centers[:, axis]}"
    turns = np.flatnonzero(steps[1:] != steps[:-1])
    assert len(turns) == 1, f"exactly one turn expected: {centers[:, axis]}"
    going_up_first = steps[0] < 0  # towards row/col 0 first
    if axis == 0:
        return "up then down" if going_up_first else "down then up"
    return "left then right" if going_up_first else "right then left"


def test_single_digit_caption_names_the_motion_actually_drawn(world_cache):
    ds = captioned_moving_mnist("train", 24, seed=3, image_size=64, num_frames=10, num_digits=1)
    assert isinstance(ds, Dataset) and len(ds) == 24
    seen_motions = set()
    for row in ds:
        video = row["video"]
        assert video.shape == (10, 64, 64, 3) and video.dtype == np.uint8
        color, digit, motion = CAPTION.fullmatch(str(row["text"])).groups()
        assert color is None  # GODIVA's form by default
        centers = np.stack([center_of_mass(frame) for frame in video])
        assert motion_from_centers(centers) == motion
        assert int(row["digits"][0]) == int(digit)
        assert MOTIONS[int(row["motion"][0])] == motion
        seen_motions.add(motion)
    assert seen_motions == set(MOTIONS)


def test_double_digit_caption_matches_each_digits_box_and_pixels(world_cache):
    ds = captioned_moving_mnist("validation", 12, seed=1, image_size=32, num_frames=6, num_digits=2, colored=True)
    digit_size = 14
    for row in ds:
        phrases = CAPTION.findall(str(row["text"]))
        assert len(phrases) == 2 and " and " in str(row["text"])
        for index, (color, digit, motion) in enumerate(phrases):
            assert COLORS[int(row["color"][index])] == color != "white"
            assert int(row["digits"][index]) == int(digit)
            corners = row["positions"][index].astype(np.float64)
            assert motion_from_centers(corners + digit_size / 2) == motion
        # Every lit pixel lies inside one of the two digit boxes of its frame.
        for frame, video_frame in enumerate(row["video"]):
            inside = np.zeros((32, 32), dtype=bool)
            for top, left in row["positions"][:, frame]:
                assert 0 <= top <= 32 - digit_size and 0 <= left <= 32 - digit_size
                inside[top : top + digit_size, left : left + digit_size] = True
            assert not video_frame.any(axis=2)[~inside].any()


def test_same_seed_same_data_streaming_or_cached_and_another_seed_differs(world_cache):
    kwargs = dict(num_samples=6, image_size=32, num_frames=4)
    cached = captioned_moving_mnist("train", seed=7, **kwargs)
    streamed = captioned_moving_mnist("train", seed=7, streaming=True, **kwargs)
    assert isinstance(streamed, IterableDataset)
    for row, example in zip(cached, streamed):
        assert np.array_equal(row["video"], example["video"]) and row["text"] == example["text"]
        assert example["video"].dtype == np.uint8
    # Sample i does not depend on how many samples were asked for.
    longer = captioned_moving_mnist("train", seed=7, num_samples=9, image_size=32, num_frames=4)
    assert np.array_equal(longer[5]["video"], cached[5]["video"])
    other = captioned_moving_mnist("train", seed=8, **kwargs)
    assert not np.array_equal(other["video"], cached["video"])


def test_train_and_test_digits_come_from_their_own_mnist_split(world_cache):
    train_images, _ = load_mnist("train")
    test_images, _ = load_mnist("test")
    train_set = {image.tobytes() for image in train_images}
    test_set = {image.tobytes() for image in test_images}
    for split, own, other in (("train", train_set, test_set), ("test", test_set, train_set)):
        # digit_size 28 draws MNIST images unresized, so the sprite in frame 0 is a verbatim MNIST image.
        ds = captioned_moving_mnist(split, 8, seed=0, image_size=64, num_frames=4, digit_size=28, num_digits=1)
        for row in ds:
            top, left = row["positions"][0, 0]
            sprite = np.ascontiguousarray(row["video"][0, top : top + 28, left : left + 28, 0])
            assert sprite.tobytes() in own and sprite.tobytes() not in other


def test_held_out_combinations_never_reach_training_and_fill_the_held_out_split(world_cache):
    held_out = [{"digit": 3, "motion": "up then down"}, {"digit": 7}]
    kwargs = dict(seed=0, image_size=32, num_frames=4, held_out=held_out)
    train = captioned_moving_mnist("train", 40, **kwargs)
    test = captioned_moving_mnist("test", 20, **kwargs)
    novel = captioned_moving_mnist("test_held_out", 20, **kwargs)

    def combos(row):
        return {(int(d), MOTIONS[int(m)]) for d, m in zip(row["digits"], row["motion"])}

    def is_held_out(combo):
        return combo == (3, "up then down") or combo[0] == 7

    for row in list(train) + list(test):
        assert not any(is_held_out(c) for c in combos(row)), row["text"]
    for row in novel:
        assert any(is_held_out(c) for c in combos(row)), row["text"]
    train_texts = {str(t) for t in train["text"]}
    assert not train_texts & {str(t) for t in novel["text"]}


def test_bad_arguments_are_named(world_cache):
    with pytest.raises(ValueError, match="split"):
        captioned_moving_mnist("dev", 2)
    with pytest.raises(ValueError, match="held_out patterns"):
        captioned_moving_mnist("test_held_out", 2)
    with pytest.raises(ValueError, match="'speed'"):
        captioned_moving_mnist("train", 2, held_out=[{"speed": 3}])
    with pytest.raises(ValueError, match="nothing is left"):
        captioned_moving_mnist("train", 2, held_out=[{"motion": m} for m in MOTIONS])
    with pytest.raises(ValueError, match="at least 3 frames"):
        captioned_moving_mnist("train", 2, num_frames=2)
    with pytest.raises(ValueError, match="larger image_size"):
        captioned_moving_mnist("train", 2, image_size=16, digit_size=14, num_frames=8)


def test_godiva_caption_forms():
    assert godiva_caption([3], ["up then down"]) == "the digit 3 is moving up then down"
    assert godiva_caption([3, 7], ["up then down", "left then right"], ["red", "blue"]) == (
        "the red digit 3 is moving up then down and the blue digit 7 is moving left then right")
