"""The captions of the built-in worlds, in one place that needs no ``datasets``: the templates and caption functions
the worlds write their ``"text"`` with, and :func:`caption_filler_words`, the words those captions are built of that
say nothing about the picture (the pipelines refuse a prompt reduced to them, :mod:`nuwa_hf.processing.vocabulary`).

The worlds import their templates from here (:mod:`.digit_images`, :mod:`.captioned_moving_mnist`,
:mod:`.scene_world`), so a template added there is seen by :func:`caption_filler_words`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from .attributes import COLORS, DIGIT_WORDS, DIRECTIONS, MOTIONS, POSITIONS
from .scene_rendering import SCENE_SHAPES, STUFF_PHRASES

# Text-to-image digits (:mod:`.digit_images`). Fields: {color} (with its trailing space, empty when uncoloured),
# {color_name} (the bare colour word, "white" when uncoloured), {digit} (numeral), {word} ("seven"), {position}.
DIGIT_CAPTION_TEMPLATES = (
    "a {color}digit {digit} at the {position}",
    "the {color}number {word} at the {position}",
    "a {color}{digit} in the {position}",
)

# Phrasings of ONE digit whose place is not named (the default "large_digits" world): numeral or word, colour before
# or after, as people type them ("a red 7", "the digit seven in red", "red digit 7", "7, red").
SINGLE_DIGIT_CAPTION_TEMPLATES = (
    "a {color}{digit}",
    "a {color}digit {digit}",
    "{color}digit {digit}",
    "the digit {word} in {color_name}",
    "the number {digit} in {color_name}",
    "{digit}, {color_name}",
    "a {color}{word}",
    "the {color}number {word}",
)

# Phrasings of ONE moving digit (the default "large_digits" world, :mod:`.captioned_moving_mnist`), with and without
# its colour. Fields: {color} (with its trailing space), {color_name}, {digit} (numeral), {word} ("seven"), {motion}.
# GODIVA's own form comes first.
SINGLE_DIGIT_VIDEO_TEMPLATES = (
    "the digit {digit} is moving {motion}",
    "the {color}digit {digit} is moving {motion}",
    "a {color}{digit} moving {motion}",
    "the number {word} in {color_name} moves {motion}",
    "{color}digit {digit} moving {motion}",
    "a {digit} that moves {motion}",
    "the {word} is moving {motion}",
)


def godiva_caption(digits: Sequence[int], motions: Sequence[str], colors: Sequence[str] | None = None) -> str:
    """GODIVA's caption for digits and their motions; ``colors`` (one per digit) adds a colour word before "digit"."""
    phrases = []
    for index, (digit, motion) in enumerate(zip(digits, motions)):
        color = f"{colors[index]} " if colors is not None else ""
        phrases.append(f"the {color}digit {int(digit)} is moving {motion}")
    return " and ".join(phrases)


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def scene_caption(objects: Sequence[Mapping[str, str]], top_stuff: str, bottom_stuff: str) -> str:
    """Caption for objects (dicts with "color", "shape" and optionally "motion") over two stuff regions."""
    phrases = []
    for obj in objects:
        motion = f" moving {obj['motion']}" if "motion" in obj else ""
        phrases.append(f"a {obj['color']} {obj['shape']}{motion}")
    return f"{_join(phrases)} over {STUFF_PHRASES[bottom_stuff]} below {STUFF_PHRASES[top_stuff]}"


def _words(text: str) -> set:
    """The words of ``text`` as the vocabulary functions split prompts (lower-cased letters, digits, punctuation)."""
    from ..processing.vocabulary import prompt_words

    return set(prompt_words(text))


@functools.lru_cache(maxsize=1)
def caption_filler_words() -> frozenset:
    """The words the built-in captions put around what they describe: ``frozenset`` of lower-case words and
    punctuation, e.g. "a", "the", "digit", "is", "moving", "in", ",".

    Derived, not typed: every caption form above (each template, coloured and not, and the caption functions with
    one, two and three objects) is written with attribute values, and the words of the values (:mod:`.attributes`
    colours, digits, number words, motions, directions, places; the scene world's shapes and ground) are taken away;
    what is left is in every caption of its form whatever the picture shows. A word that every value of an attribute
    has ("then" of "up then down", "left then right", ...) is a filler too: it tells no value from another. "digit"
    and "number" are fillers: every picture of the worlds is a digit, so they name nothing that narrows it.
    """
    attributes = {
        "color": COLORS, "digit": tuple(str(d) for d in range(10)), "word": DIGIT_WORDS, "motion": MOTIONS,
        "direction": DIRECTIONS, "position": POSITIONS, "shape": SCENE_SHAPES, "stuff": tuple(STUFF_PHRASES.values()),
    }
    value_words = set().union(*(_words(value) for values in attributes.values() for value in values))
    shared = set()
    for values in attributes.values():
        shared |= set.intersection(*(_words(value) for value in values))

    color, digit, motion, direction = COLORS[1], 7, MOTIONS[0], DIRECTIONS[0]
    captions = []
    for template in DIGIT_CAPTION_TEMPLATES + SINGLE_DIGIT_CAPTION_TEMPLATES + SINGLE_DIGIT_VIDEO_TEMPLATES:
        for colored in (True, False):
            captions.append(template.format(color=f"{color} " if colored else "", color_name=color, digit=digit,
                                            word=DIGIT_WORDS[digit], motion=motion, position=POSITIONS[0]))
    for count in (1, 2):
        captions.append(godiva_caption([digit] * count, [motion] * count))
        captions.append(godiva_caption([digit] * count, [motion] * count, [color] * count))
    stuff = tuple(STUFF_PHRASES)
    for count in (1, 2, 3):
        captions.append(scene_caption([{"color": color, "shape": SCENE_SHAPES[0]}] * count, stuff[0], stuff[1]))
        captions.append(scene_caption([{"color": color, "shape": SCENE_SHAPES[0], "motion": direction}] * count,
                                      stuff[0], stuff[1]))
    written = set().union(*(_words(caption) for caption in captions))
    return frozenset((written - value_words) | shared)
