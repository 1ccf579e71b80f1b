"""The captions of the built-in worlds, in one place that needs no ``datasets``: the templates and caption functions
the worlds write their ``"text"`` with.

The worlds import their templates from here (:mod:`.digit_images`, :mod:`.captioned_moving_mnist`,
:mod:`.scene_world`), and so does :func:`nuwa_hf.processing.vocabulary.caption_filler_words` (the words these
captions are built of that say nothing about the picture), so a template added here is seen there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .scene_rendering import STUFF_PHRASES

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
