"""Text-to-image digits: caption, attribute columns and pixels agree."""

import re

import numpy as np
import pytest

from nuwa_hf.data import COLORS, DIGIT_WORDS, POSITIONS, digit_images
from nuwa_hf.data.attributes import COLOR_RGB, POSITION_CENTERS

PHRASE = re.compile(r"(?:a|the) (\w+) (?:digit (\d)|number (\w+)|(\d)) (?:at|in) the ([a-z ]+?)(?= and |$)")


def test_captions_and_pixels_agree_on_digit_colour_and_place(world_cache):
    ds = digit_images("train", 20, seed=4, image_size=64, num_digits=(1, 2, 3))
    assert ds.column_names == ["image", "text", "digits", "color", "position"]
    for row in ds:
        image = row["image"]
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        phrases = PHRASE.findall(str(row["text"]))
        assert len(phrases) == len(row["digits"]) >= 1, row["text"]
        assert len({int(p) for p in row["position"]}) == len(phrases)  # one digit per cell
        for index, (color, numeral, word, bare, position) in enumerate(phrases):
            digit = int(numeral or bare) if (numeral or bare) else DIGIT_WORDS.index(word)
            assert digit == int(row["digits"][index])
            assert color == COLORS[int(row["color"][index])]
            assert position == POSITIONS[int(row["position"][index])]
            if list(row["color"]).count(row["color"][index]) > 1:
                continue  # two digits share the colour: pixels cannot be told apart by hue
            # Pixels of exactly this colour's hue sit around the named grid point.
            rgb = np.asarray(COLOR_RGB[color], dtype=np.float64)
            lit = image.astype(np.float64)
            brightness = lit.max(axis=2)
            matches = (brightness > 120) & (np.abs(lit / np.maximum(brightness, 1)[..., None] - rgb / rgb.max()).max(axis=2) < 0.08)
            rows, cols = np.nonzero(matches)
            assert len(rows) > 10
            expected = np.array(POSITION_CENTERS[position]) * 64
            assert np.abs(np.array([rows.mean(), cols.mean()]) - expected).max() < 10


def test_held_out_colour_digit_pairs_and_template_errors(world_cache):
    held_out = [{"digit": 2, "color": "red"}]
    train = digit_images("train", 30, seed=0, image_size=32, held_out=held_out)
    novel = digit_images("test_held_out", 10, seed=0, image_size=32, held_out=held_out)
    red = COLORS.index("red")
    assert not any(int(r["digits"][0]) == 2 and int(r["color"][0]) == red for r in train)
    assert all(int(r["digits"][0]) == 2 and int(r["color"][0]) == red for r in novel)
    assert all("red" in str(t) for t in novel["text"])
    with pytest.raises(ValueError, match="allowed fields"):
        digit_images("train", 2, templates=("a {colour} digit",))
    with pytest.raises(ValueError, match="num_digits"):
        digit_images("train", 2, num_digits=10)
