"""Common ways of saying a motion, read as the training captions say it: :func:`rephrase` ("a red 7 bouncing up and
down" -> "a red 7 bouncing up then down"), what the pipelines do to a prompt before leaving out the words the model
never saw (``rephrase_prompt=True``, the default; the warning says how the prompt was read; ``rephrase_prompt=False``
reads it as typed).

Why: GODIVA's captions name four motions, "up then down", "down then up", "left then right" and "right then left"
(:data:`nuwa_hf.data.attributes.MOTIONS`). People write "up and down", "side to side", "bouncing". Left out as unknown
words, "and", "side", "to" and "bouncing" take the motion with them: "a 5 sliding left and right" is read as "a 5 left
right", "a blue eight wiggling side to side" as "a blue eight" (no motion at all). Measured with the shipped checkpoint
(``benchmarks/bench_user_video_prompts.py``): see benchmarks/README.md.

The table (:data:`ORDERED_PAIR`, :data:`AXIS_PHRASES`, :data:`VERTICAL_VERBS`) is small and typed by hand, since it
says what English means; the motions it writes are GODIVA's, read from :data:`~nuwa_hf.data.attributes.MOTIONS`, and a
rule is used only when the model knows every word it writes (a model whose captions had no "then" is given nothing).

| typed | read as |
|---|---|
| two opposite directions joined by "and", "and then", ", then", "&", "-", "/", "to", "back" ("up and down", "left to right", "from left to right and back", "down and back up", "to the right and then to the left", "upward then downward") | the motion that goes the first way first ("up then down", "left then right", "down then up", "right then left") |
| "side to side", "back and forth", "horizontally", "sideways" | "left then right" |
| "vertically", "rising and falling" | "up then down"; "falling and rising": "down then up" |
| "bouncing", "bounces", "jumping", "hopping", ... in a prompt that names no direction | "moving up then down" |

A phrase that asks for an axis without an order ("side to side", "bouncing") is read as that axis' motion that goes
the first way first; the notice says so, and a user who wants the other order says it ("right then left").
"""

from __future__ import annotations

import re
from typing import List, Tuple

from .vocabulary import unknown_words

# a direction word, with "-ward(s)" ("upward", "downwards")
_DIRECTION = r"(up|down|left|right)(?:wards?)?"
# what may stand between two directions of one motion: "and", "then", "to", "the", "back", ",", "&", "-", "/"
_JOIN = r"(?:\s*(?:,|&|-|/|\band\b|\bthen\b|\bto\b|\bthe\b|\bback\b)\s*)+"
# "from the left", "to the right": before the first direction; "and back (again)" after the second
_BEFORE = r"(?:\b(?:from|to)\s+(?:the\s+)?)?"
_AFTER = r"(?:\s+and\s+back(?:\s+again)?\b|\s+again\b)?"

ORDERED_PAIR = re.compile(rf"{_BEFORE}\b{_DIRECTION}{_JOIN}{_DIRECTION}\b{_AFTER}", re.IGNORECASE)

# phrases that name an axis without an order -> the axis' motion that goes the first way first
AXIS_PHRASES = (
    (re.compile(r"\bside\s*(?:to|-)\s*side\b", re.IGNORECASE), "left then right"),
    (re.compile(r"\bback\s*(?:and|&|-|'?n'?)\s*forth\b", re.IGNORECASE), "left then right"),
    (re.compile(r"\b(?:horizontally|sideways)\b", re.IGNORECASE), "left then right"),
    (re.compile(r"\bvertically\b", re.IGNORECASE), "up then down"),
    (re.compile(r"\b(?:rising|rises|rise)\s+and\s+(?:falling|falls|fall)\b", re.IGNORECASE), "up then down"),
    (re.compile(r"\b(?:falling|falls|fall)\s+and\s+(?:rising|rises|rise)\b", re.IGNORECASE), "down then up"),
)

# verbs of a vertical motion, read as "moving up then down" when the prompt names no direction
VERTICAL_VERBS = re.compile(r"\b(?:bounc(?:e|es|ing)|jump(?:s|ing)?|hop(?:s|ping)?)\b", re.IGNORECASE)
_ANY_DIRECTION = re.compile(rf"\b{_DIRECTION}\b", re.IGNORECASE)


def _motions() -> dict:
    """(first direction, second direction) -> GODIVA's motion, from :data:`nuwa_hf.data.attributes.MOTIONS`."""
    from ..data.attributes import MOTIONS  # nuwa_hf.data is not part of `import nuwa_hf`

    pairs = {}
    for motion in MOTIONS:
        first, _, second = motion.partition(" then ")
        pairs[(first, second)] = motion
    return pairs


def rephrase(tokenizer, text: str) -> Tuple[str, List[Tuple[str, str]]]:
    """``text`` with the common phrasings of a motion (module docstring) written in the training captions' words, and
    the rewrites made, ``[(typed, read as), ...]`` in order (empty, and ``text`` unchanged, when none applies).

    A rewrite is made only when the model knows every word it writes (:func:`~nuwa_hf.processing.vocabulary.
    unknown_words` of the replacement is empty) and it changes something ("up then down" is left as typed). The rest
    of the text is kept as typed; the pipelines then leave out the words the model never saw ("bouncing")."""
    if not text:
        return text, []
    motions = _motions()
    known = {}

    def knows(phrase: str) -> bool:
        if phrase not in known:
            known[phrase] = not unknown_words(tokenizer, phrase)
        return known[phrase]

    done: List[Tuple[str, str]] = []

    def pair(match: re.Match) -> str:
        motion = motions.get((match.group(1).lower(), match.group(2).lower()))
        typed = match.group(0)
        if motion is None or typed.lower() == motion or not knows(motion):
            return typed
        done.append((typed, motion))
        return motion

    text = ORDERED_PAIR.sub(pair, text)
    for pattern, motion in AXIS_PHRASES:
        def axis(match: re.Match, motion=motion) -> str:
            if not knows(motion):
                return match.group(0)
            done.append((match.group(0), motion))
            return motion

        text = pattern.sub(axis, text)
    # two phrasings of one motion side by side ("back and forth horizontally") are read as the motion once
    for motion in set(read for _, read in done):
        text = re.sub(rf"\b{motion}(?:\s*(?:,|\band\b)?\s*{motion}\b)+", motion, text)
    if not _ANY_DIRECTION.search(text):
        vertical = "moving " + next(m for (first, _), m in motions.items() if first == "up")

        def verb(match: re.Match) -> str:
            if done or not knows(vertical):  # one motion per prompt: the first verb only
                return match.group(0)
            done.append((match.group(0), vertical))
            return vertical

        text = VERTICAL_VERBS.sub(verb, text)
    return text, done
