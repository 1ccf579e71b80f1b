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


# --------------------------------------------------------------------------------------------------------------------
# Edit instructions (text-guided image manipulation): what the edit replaces is left out

# "turn the 3 into an 8", "change the red 1 to a blue 9", "replace the 7 with a 5", "swap the 3 for a 6",
# "from red to magenta": an edit verb (or "from"), what is replaced, a joining word, what replaces it. The verb must come
# first, so "a 7 next to a 3" or "a 7 with a blue 3" are not edits. What is replaced is at most 120 characters long (a
# long prompt of verbs without a joining word is read in linear time).
EDIT_VERBS = ("change", "changes", "changing", "turn", "turns", "turning", "convert", "transform", "switch", "recolor",
              "recolour", "replace", "swap", "exchange", "trade", "from")
_EDIT = re.compile(rf"\b(?:{'|'.join(EDIT_VERBS)})\b(?P<source>[^,;.!?]{{0,120}}?)\b(?:into|to|with|for)\b"
                   r"(?P<target>[^,;.!?]*)", re.IGNORECASE)
# "blue instead of yellow", "a 5 rather than the 3": what replaces, then what is replaced
_INSTEAD = re.compile(r"(?:^|(?<=[,;.!?]))(?P<target>[^,;.!?]*?)\b(?:instead\s+of|rather\s+than)\b"
                      r"(?P<source>[^,;.!?]*)", re.IGNORECASE)
_WORDS = re.compile(r"[^\W_]+")
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)


def _value_kinds() -> dict:
    """word -> the kind of value it names in the built-in captions: ``"digit"`` (numerals and number words) or
    ``"colour"`` (:data:`~nuwa_hf.data.attributes.COLORS`)."""
    from ..data.attributes import COLORS, DIGIT_WORDS

    kinds = {str(d): "digit" for d in range(10)}
    kinds.update({word: "digit" for word in DIGIT_WORDS})
    kinds.update({colour: "colour" for colour in COLORS})
    return kinds


def rephrase_edit(text: str) -> Tuple[str, List[Tuple[str, str]]]:
    """An edit instruction read as the picture it asks for: what the edit replaces is left out when the instruction
    names what replaces it ("turn the 6 into an 8" -> "an 8", "change the colour from red to magenta" -> "magenta",
    "blue instead of yellow" -> "blue"), and the rewrites made, ``[(typed, read as), ...]`` (empty, and ``text``
    unchanged, when none applies).

    Why: NUWA reads a prompt as the caption of the whole picture it draws. Left as typed (less the words it never
    saw), "turn the 6 into an 8" is read as "the 6 8", which names two digits, and the shipped model draws the 6 again
    (``benchmarks/bench_user_edit_prompts.py``).

    Only values of a kind that the replacement names are left out: "turn the red 7 into an 8" is read as "the red 8"
    (the colour is kept: the edit changes the digit only), "recolour the eight to yellow" is left as typed (the eight
    is what is recoloured, not what is replaced). When nothing the instruction names of what is replaced is left, the
    words before the replacement go too ("change the red 1 into a magenta 9" -> "a magenta 9"). An instruction that
    names no value before the joining word ("change it to cyan", "replace it with a 5") is left as typed."""
    if not text:
        return text, []
    kinds = _value_kinds()
    done: List[Tuple[str, str]] = []

    def named(part: str) -> List[re.Match]:
        return [m for m in _WORDS.finditer(part) if m.group(0).lower() in kinds]

    def without_replaced(match: re.Match) -> str:
        typed, source, target = match.group(0), match.group("source"), match.group("target")
        replaced = named(source)
        asked = {kinds[m.group(0).lower()] for m in named(target)}
        gone = [m for m in replaced if kinds[m.group(0).lower()] in asked]
        if not gone:
            return typed
        read = target.strip()
        if len(gone) < len(replaced):  # what is kept of the replaced thing, then the replacement without its article
            kept = source
            for m in reversed(gone):
                kept = kept[: m.start()] + kept[m.end():]
            kept = re.sub(r"\s+", " ", kept).strip()
            read = kept + " " + _ARTICLE.sub("", read)
        done.append((typed.strip(), read))
        lead = typed[: len(typed) - len(typed.lstrip())]
        return lead + read + (" " if typed.endswith(" ") else "")

    text = _INSTEAD.sub(without_replaced, text)
    text = _EDIT.sub(without_replaced, text)
    return text, done


def unnamed_kinds(tokenizer, text: str) -> Tuple[List[str], str]:
    """The kinds of value the model knows (``"digit"``, ``"colour"``: :func:`~nuwa_hf.processing.vocabulary.
    vocabulary_by_kind` of its tokenizer) that ``text`` names none of, and a caption in the model's words naming one of
    each ("a blue 7": the text's own digit and colour where it names them). For the edit pipelines' notice that "make
    it blue" leaves the digit to the model (:func:`~nuwa_hf.pipelines.notices.open_kinds_notice`); a model that knows
    no digit or colour words has nothing to say (``[]``)."""
    from .vocabulary import prompt_words, vocabulary_by_kind

    vocabulary = vocabulary_by_kind(tokenizer)
    words = set(prompt_words(text or ""))
    named, missing = {}, []
    for kind, values in (("colour", vocabulary["colours"]), ("digit", vocabulary["digits"])):
        if not values:
            continue
        found = [value for value in values if value in words]
        named[kind] = found[0] if found else ("7" if kind == "digit" and "7" in values else values[0])
        if not found:
            missing.append(kind)
    missing.sort(key=lambda kind: kind != "digit")  # the digit first: "names no digit and no colour"
    example = " ".join(["a"] + [named[kind] for kind in ("colour", "digit") if kind in named])
    return missing, example
