"""The readers of the digit worlds (nuwa_hf.evaluation.digit_reading), checked on real held-out pictures of the
default world: what they read there is what the evaluation and the demo page rely on."""

from pathlib import Path

import numpy as np
import pytest

from nuwa_hf import data
from nuwa_hf.evaluation import digit_reading


SHIPPED_READER = Path(__file__).resolve().parents[2] / "checkpoints" / "mnist-digit-reader"


@pytest.fixture(scope="module")
def reader():
    return digit_reading.default_digit_reader(SHIPPED_READER)


def test_a_missing_reader_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="python examples/train_scorers.py digit-reader"):
        digit_reading.default_digit_reader(tmp_path)


def test_shipped_reader_states_its_held_out_accuracy(reader):
    assert reader.report("digit")["digit_scorer_held_out_accuracy"] >= 0.97


def test_motion_reader_reads_the_worlds_motions():
    rows = data.world_rows("t2v", "test", 60, seed=2, image_size=32, num_frames=4)[:]
    read = [digit_reading.read_motion(v) for v in np.asarray(rows["video"])]
    wanted = [data.MOTIONS[int(m[0])] for m in rows["motion"]]
    assert np.mean([r == w for r, w in zip(read, wanted)]) >= 0.9
    assert digit_reading.read_motion(np.zeros((4, 32, 32, 3), np.uint8)) is None


def test_digit_and_colour_readers_on_real_held_out_images(reader):
    rows = data.world_rows("t2i", "test", 60, seed=2, image_size=32)[:]
    pictures = np.asarray(rows["image"])
    digits = np.array([int(d[0]) for d in rows["digits"]])
    assert (digit_reading.read_digits(reader, pictures).argmax(-1).numpy() == digits).mean() >= 0.93
    colours = digit_reading.read_colours(pictures, [(0.0, 0.0, 1.0, 1.0)] * len(pictures), 32)
    assert np.mean([c == data.COLORS[int(w[0])] for c, w in zip(colours, rows["color"])]) >= 0.95
    # the sentence the demo page shows names the digit and the colour
    described = digit_reading.describe_picture(pictures[0], reader)
    assert described == f"reads: {digits[0]}, {data.COLORS[int(rows['color'][0][0])]}"


def test_video_description_names_digit_colour_and_motion(reader):
    rows = data.world_rows("t2v", "test", 1, seed=5, image_size=32, num_frames=4)[:]
    text = digit_reading.describe_video(np.asarray(rows["video"])[0], reader)
    assert text.startswith("reads: ") and "moving " in text and data.COLORS[int(rows["color"][0][0])] in text


@pytest.mark.parametrize("caption, digits, motions", [
    ("the digit 3 is moving up then down", [3], ["up then down"]),
    ("the number two in cyan moves down then up", [2], ["down then up"]),
    ("a 5 that moves right then left", [5], ["right then left"]),
    ("the digit 1 is moving left then right and the digit 7 is moving up then down", [1, 7],
     ["left then right", "up then down"]),
])
def test_video_captions_are_parsed_in_every_phrasing(caption, digits, motions):
    assert digit_reading.parse_video_caption(caption) == (digits, motions)


def test_first_colour_of_a_caption():
    assert digit_reading.first_colour("7, red") == "red"
    assert digit_reading.first_colour("the digit seven in blue and a red 3") == "blue"
    assert digit_reading.first_colour("a 7") is None


def test_colour_kept_reads_the_completed_half_against_the_known_colour():
    """Image completion's colour row: a held-out digit keeps its caption colour in its bottom half; the same digit
    with the bottom half painted another colour, or blank, does not keep it; the top half is not read."""
    from nuwa_hf.data.attributes import COLOR_RGB

    rows = data.world_rows("t2i", "test", 20, seed=3, image_size=32)[:]
    pictures = np.asarray(rows["image"]).copy()
    colours = [data.COLORS[int(c[0])] for c in rows["color"]]
    assert np.mean(digit_reading.colour_kept(pictures, colours, size=32)) >= 0.9
    other = "blue"
    repainted, blank = pictures.copy(), pictures.copy()
    bottom = repainted[:, 18:]
    lit = bottom.max(axis=-1) > 90
    bottom[lit] = COLOR_RGB[other]
    blank[:, 18:] = 0
    not_blue = [c != other for c in colours]
    kept = digit_reading.colour_kept(repainted, colours, size=32)
    assert not any(k for k, n in zip(kept, not_blue) if n)  # the caption's colour is not what the half shows
    assert not any(digit_reading.colour_kept(blank, colours, size=32))
    top_blank = pictures.copy()
    top_blank[:, :17] = 0  # the known half is not what the row reads
    assert digit_reading.colour_kept(top_blank, colours, size=32) == digit_reading.colour_kept(pictures, colours, size=32)
