"""The named world sets: the default "large_digits" world draws one large digit per image or video with captions in
several phrasings; "multi_digit" keeps the harder benchmark worlds."""

import re

import numpy as np
import pytest

from nuwa_hf import data
from nuwa_hf.data.task_worlds import task_world


def _digit_box_side(picture):
    bright = np.asarray(picture).max(axis=-1) > 60
    ys, xs = np.nonzero(bright)
    return max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)


def test_default_image_world_is_one_large_named_digit_in_many_phrasings():
    rows = data.world_rows("t2i", "train", 120, seed=3, image_size=32)[:]
    texts = [str(t) for t in rows["text"]]
    assert all(len(d) == 1 for d in rows["digits"])
    # the digit fills most of the 32-px frame: a 26-px MNIST sprite (6.5 VQ tokens of 4 px), ~19 px of ink
    assert np.median([_digit_box_side(img) for img in rows["image"]]) >= 18
    for text, digits, colour in zip(texts, rows["digits"], rows["color"]):
        digit = int(digits[0])
        assert re.search(rf"\b({digit}|{data.DIGIT_WORDS[digit]})\b", text), text
        assert data.COLORS[int(colour[0])] in text, text
        assert not any(p in text for p in ("top", "bottom", "left", "right", "center")), text
    # several phrasings and orders, e.g. "a red 7", "the digit seven in red", "7, red"
    shapes = {re.sub(r"\b(\d|" + "|".join(data.DIGIT_WORDS) + "|" + "|".join(data.COLORS) + r")\b", "_", t)
              for t in texts}
    assert len(shapes) >= 6, shapes
    assert any(re.fullmatch(r"\d, \w+", t) for t in texts)
    assert any(re.fullmatch(r"the digit [a-z]+ in \w+", t) for t in texts)


def test_default_video_world_is_one_moving_digit_with_and_without_colour():
    rows = data.world_rows("t2v", "train", 80, seed=1, image_size=32, num_frames=4)[:]
    videos, texts = np.asarray(rows["video"]), [str(t) for t in rows["text"]]
    assert videos.shape == (80, 4, 32, 32, 3)
    assert all(len(d) == 1 for d in rows["digits"])
    named_colour = [any(re.search(rf"\b{c}\b", t) for c in data.COLORS[1:]) for t in texts]
    assert any(named_colour) and not all(named_colour)
    for text, motion in zip(texts, rows["motion"]):
        assert data.MOTIONS[int(motion[0])] in text
    # the digit really moves: its box of bright pixels shifts by several pixels between frames
    positions = np.asarray(rows["positions"])[:, 0]  # (N, T, 2) top-left per frame
    assert np.abs(np.diff(positions, axis=1)).max(axis=(1, 2)).min() >= 2


def test_video_prediction_reads_the_same_videos_as_text_to_video():
    v2v = data.world_rows("v2v", "test", 4, seed=0, image_size=32, num_frames=4)[:]
    t2v = data.world_rows("t2v", "test", 4, seed=0, image_size=32, num_frames=4)[:]
    assert np.array_equal(np.asarray(v2v["video"]), np.asarray(t2v["video"]))


def test_multi_digit_world_keeps_the_benchmark_worlds():
    function, kwargs = task_world("t2i", "multi_digit", image_size=48)
    assert function is data.digit_images and kwargs == {"image_size": 48}
    function, _ = task_world("v2v", "multi_digit", image_size=48, num_frames=4)
    assert function is data.moving_mnist
    rows = data.world_rows("t2i", "train", 8, world="multi_digit", image_size=48)[:]
    assert any(p in str(t) for t in rows["text"] for p in data.POSITIONS)


def test_zero_shot_tasks_use_their_trained_siblings_world():
    assert task_world("TI2I", image_size=32) == task_world("t2i", image_size=32)
    assert task_world("tv2v", image_size=32, num_frames=4) == task_world("t2v", image_size=32, num_frames=4)


@pytest.mark.parametrize("call, words", [
    (lambda: task_world("t2i", "tiny_digits", image_size=32), ["unknown world set", "large_digits", "multi_digit"]),
    (lambda: task_world("x2y", image_size=32), ["no built-in world", "t2i"]),
    (lambda: data.captioned_moving_mnist("train", 2, templates=["{colour} {digit}"]), ["{color_name}", "template"]),
])
def test_bad_world_requests_name_the_fix(call, words):
    with pytest.raises(ValueError) as error:
        call()
    assert all(w in str(error.value) for w in words), str(error.value)


@pytest.mark.parametrize("world", ["large_digits", "multi_digit"])
def test_caption_fillers_are_what_the_worlds_captions_hold_besides_their_attributes(world):
    """nuwa_hf.processing.vocabulary.caption_filler_words is derived from the templates and caption functions; the captions
    the worlds actually write must agree: each word that is not a word of an attribute value (colour, digit, motion,
    place) is a filler, and no attribute word is one but "then", which every motion has."""
    from nuwa_hf.processing.vocabulary import caption_filler_words
    from nuwa_hf.processing.vocabulary import prompt_words

    fillers = caption_filler_words()
    assert {"a", "the", "digit", "is", "moving", ","} <= fillers
    values = set(data.COLORS) | set(data.DIGIT_WORDS) | {str(d) for d in range(10)}
    values |= {w for phrase in data.MOTIONS + data.POSITIONS + data.DIRECTIONS for w in phrase.split()}
    assert not (fillers - {"then"}) & values  # "then" is in every motion: it tells none from another
    texts = [str(t) for task in ("t2i", "t2v") for t in data.world_rows(task, "train", 300, seed=5, world=world,
                                                                        image_size=32, num_frames=4)["text"]]
    written = {w for text in texts for w in prompt_words(text)}
    assert written - values <= fillers, written - values - fillers
    assert written & fillers == (written - values) | {"then"}
    if world == "large_digits":
        assert written - values == {",", "a", "digit", "in", "is", "moves", "moving", "number", "that", "the"}
