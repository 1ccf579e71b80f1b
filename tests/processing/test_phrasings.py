"""Common phrasings of a motion read in the training captions' words (nuwa_hf.processing.phrasings.rephrase): what
people type ("up and down", "side to side", "bouncing") becomes GODIVA's motions, only with words the model knows."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from nuwa_hf.processing import train_caption_tokenizer
from nuwa_hf.processing.phrasings import rephrase, rephrase_edit, unnamed_kinds
from nuwa_hf.processing.vocabulary import without_unknown_words

CAPTIONS = [f"the digit {d} is moving {m}" for d in range(10)
            for m in ("up then down", "down then up", "left then right", "right then left")]
CAPTIONS += [f"a {colour} {d}" for colour in ("red", "blue") for d in range(10)]


@pytest.fixture(scope="module")
def knows_motions():
    return train_caption_tokenizer(CAPTIONS, vocab_size=600, model_max_length=16)


@pytest.mark.parametrize("typed, read", [
    ("a red 7 bouncing up and down", "a red 7 bouncing up then down"),
    ("the 3 moves up and then down", "the 3 moves up then down"),
    ("a yellow 1 moving down and up", "a yellow 1 moving down then up"),          # the order typed is kept
    ("a 4 going right and left", "a 4 going right then left"),
    ("a magenta 8 moving from left to right and back", "a magenta 8 moving left then right"),
    ("green 3 moving to the right and then to the left", "green 3 moving right then left"),
    ("the number 5 going down and back up", "the number 5 going down then up"),
    ("a cyan 4 moving upward then downward", "a cyan 4 moving up then down"),
    ("yellow nine, left-right", "yellow nine, left then right"),
    ("a 2 going Up & Down", "a 2 going up then down"),
    ("a yellow three goes down, then up", "a yellow three goes down then up"),
    ("an animation of digit 2 moving side to side", "an animation of digit 2 moving left then right"),
    ("a magenta 2 moving back and forth", "a magenta 2 moving left then right"),
    ("the digit 9 moving back and forth horizontally", "the digit 9 moving left then right"),  # one motion, once
    ("the digit 8 moving vertically", "the digit 8 moving up then down"),
    ("a red 1 rising and falling", "a red 1 up then down"),
    ("a blue 1 falling and rising", "a blue 1 down then up"),
    ("a green five jumping", "a green five moving up then down"),
    ("a 7 jumping and bouncing", "a 7 moving up then down and bouncing"),       # one motion: the first verb only
])
def test_common_phrasings_of_a_motion_are_read_as_the_captions_say_it(knows_motions, typed, read):
    text, rewrites = rephrase(knows_motions, typed)
    assert text == read and rewrites
    for before, after in rewrites:
        assert before in typed and after in text


@pytest.mark.parametrize("typed", [
    "the digit 3 is moving up then down",          # the captions' own words: nothing to do
    "A GREEN 0 MOVING LEFT THEN RIGHT",
    "a red 7",                                      # no motion
    "a 3 moving up and left",                       # not one axis: left as typed
    "a 3 moving left and a 5 moving right",         # two digits' directions are not one motion
    "a red 7 bouncing to the left",                 # a direction named: the verb is not read as one
    "",
])
def test_prompts_without_such_a_phrasing_are_left_as_typed(knows_motions, typed):
    assert rephrase(knows_motions, typed) == (typed, [])


def test_what_is_left_after_unknown_words_are_left_out_keeps_the_motion(knows_motions):
    """The point: without the rewrite "and", "side" and "to" are unknown and left out, and the motion with them."""
    for typed, without, with_rewrite in (
            ("a red 7 sliding left and right", "a red 7 left right", "a red 7 left then right"),
            ("a blue 8 wiggling side to side", "a blue 8", "a blue 8 left then right")):
        assert without_unknown_words(knows_motions, typed)[0] == without
        assert without_unknown_words(knows_motions, rephrase(knows_motions, typed)[0])[0] == with_rewrite


def test_a_model_that_does_not_know_the_motion_words_gets_no_rewrite():
    """Only words the model knows are written: a tokenizer whose captions never had "then" or "moving" (a text-to-image
    model) leaves every phrasing as typed, and its pipelines leave the words out as unknown."""
    images_only = train_caption_tokenizer([f"a {c} {d} at the left" for c in ("red", "blue") for d in range(10)],
                                          vocab_size=600, model_max_length=16)
    for typed in ("a red 7 moving left and right", "a blue 3 side to side", "a red 2 bouncing"):
        assert rephrase(images_only, typed) == (typed, [])


# Edit instructions (image manipulation): what the edit replaces is left out when it names what replaces it


@pytest.mark.parametrize("typed, read", [
    ("turn the 6 into an 8", "an 8"),
    ("change the 9 to a 2", "a 2"),
    ("replace the zero with a four", "a four"),
    ("swap the 3 for a 6", "a 6"),
    ("Turn the 7 into a yellow 6, please", "a yellow 6, please"),
    ("change the red 1 into a magenta 9", "a magenta 9"),            # nothing of the replaced thing left: all goes
    ("change the colour from red to magenta", "magenta"),
    ("blue instead of yellow", "blue"),
    ("turn the red 7 into an 8", "the red 8"),                      # the colour is kept: only the digit changes
    ("a 5 instead of the red 3", "the red 5"),
])
def test_an_edit_is_read_as_the_picture_it_asks_for(typed, read):
    text, rewrites = rephrase_edit(typed)
    assert text == read and len(rewrites) == 1
    assert rewrites[0][0] in typed and rewrites[0][1] in text


@pytest.mark.parametrize("typed", [
    "recolour the eight to yellow",      # the eight is what is recoloured, not what is replaced (another kind)
    "change the color of the 3 to blue",
    "change it to cyan",                  # nothing named before the joining word
    "replace it with a 5",
    "make the 3 red",                     # no joining word
    "a 7 next to a 3",                    # no edit verb: not an edit
    "a red 7 with a blue 3",
    "a blue 7",
    "",
])
def test_instructions_that_replace_nothing_they_name_are_left_as_typed(typed):
    assert rephrase_edit(typed) == (typed, [])


def test_what_the_model_reads_of_an_edit_names_one_digit(knows_motions):
    """The point: without the rewrite "turn the 3 into an 8" is read "the 3 8", two digits (the shipped model draws
    the 3 again: benchmarks/bench_user_edit_prompts.py); with it, only the 8."""
    typed = "turn the red 3 into a blue 8"
    assert without_unknown_words(knows_motions, typed)[0] == "the red 3 a blue 8"
    assert without_unknown_words(knows_motions, rephrase_edit(typed)[0])[0] == "a blue 8"


def test_the_kinds_a_prompt_leaves_open_are_those_the_model_knows(knows_motions):
    """The test tokenizer knows digits and the colours red and blue: "blue" names no digit, "a 7" no colour; the example
    caption uses what the prompt names. A model that knows no colour word is never told a colour is missing."""
    assert unnamed_kinds(knows_motions, "blue") == (["digit"], "a blue 7")
    assert unnamed_kinds(knows_motions, "the digit 3") == (["colour"], "a red 3")
    assert unnamed_kinds(knows_motions, "a") == (["digit", "colour"], "a red 7")
    assert unnamed_kinds(knows_motions, "a blue 3") == ([], "a blue 3")
    digits_only = train_caption_tokenizer([f"the digit {d} is moving up then down" for d in range(10)],
                                          vocab_size=600, model_max_length=16)
    assert unnamed_kinds(digits_only, "the digit 3") == ([], "a 3")
