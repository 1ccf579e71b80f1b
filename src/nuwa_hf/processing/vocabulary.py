"""The words a trained NUWA knows, read from its caption tokenizer, never typed by hand: :func:`known_words`,
:func:`unknown_words` (the pipelines' prompt notices), :func:`without_unknown_words` (what the pipelines give the
model), :func:`content_words` (a prompt reduced to fillers is refused), grouped for people by
:func:`vocabulary_by_kind` (the model card, ``nuwa-hf generate --help``).

A word is *known* when the training captions had it. :func:`~nuwa_hf.processing.tokenization_nuwa.
train_caption_tokenizer` records the captions' words (:func:`caption_words`) in the tokenizer's
``tokenizer_config.json`` (field ``caption_words``, an init argument of the tokenizer, so ``save_pretrained`` /
``from_pretrained`` carry it), and that record decides. A tokenizer without the record (trained before it existed,
CLIP's paper tokenizer) falls back to its vocabulary: a word is known when the BPE holds it as one whole-word token
(fine-tuning such a tokenizer on new captions gives it a record, :func:`add_caption_words`).
That rule also counts word endings the BPE learned from longer words: with the shipped tokenizer "an" ("cy-an"), "it"
("dig-it") and "at" ("th-at") are whole tokens although no caption has them as words; the record lists only the captions' words.
"""

from __future__ import annotations

import functools
import json
import os
import re
import unicodedata
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

# words as the caption tokenizers split them: letters, single digits, runs of punctuation
_WORD = re.compile(r"[^\W\d_]+|\d|[^\w\s]+")

# the tokenizer_config.json field (a tokenizer init argument) that holds the words of the training captions
CAPTION_WORDS_FIELD = "caption_words"


def prompt_words(text: str) -> List[str]:
    """``text``'s words as the caption tokenizers read them: NFC, lower-cased, split into letter runs, single digits
    and punctuation runs (the tokenizers split there before BPE). The record and the prompts are both split so."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


def caption_words(captions: Iterable[str]) -> List[str]:
    """The sorted distinct words (:func:`prompt_words`) of a caption corpus: the record
    :func:`~nuwa_hf.processing.tokenization_nuwa.train_caption_tokenizer` keeps in the tokenizer's config."""
    words = set()
    for caption in captions:
        words.update(prompt_words(caption))
    return sorted(words)


def recorded_caption_words(tokenizer) -> Optional[frozenset]:
    """The words of the captions ``tokenizer`` was trained on (its ``caption_words`` init argument, saved in
    ``tokenizer_config.json``), or None when it has no record (older folders, CLIP's tokenizer)."""
    init_kwargs = getattr(tokenizer, "init_kwargs", None)
    record = init_kwargs.get(CAPTION_WORDS_FIELD) if isinstance(init_kwargs, dict) else None
    if record is None:
        return None
    cached = getattr(tokenizer, "_nuwa_caption_words", None)
    if cached is not None and cached[0] is record:
        return cached[1]
    if not isinstance(record, (list, tuple)) or not all(isinstance(word, str) for word in record):
        raise ValueError(
            f"The tokenizer's {CAPTION_WORDS_FIELD!r} (tokenizer_config.json) must be a list of words, got "
            f"{type(record).__name__}: write it with nuwa_hf.processing.vocabulary.caption_words(captions), or delete "
            "the field to judge words by the tokenizer's vocabulary.")
    words = frozenset(record)
    try:
        tokenizer._nuwa_caption_words = (record, words)
    except AttributeError:
        pass
    return words


def add_caption_words(tokenizer, captions: Iterable[str]) -> Tuple[List[str], bool]:
    """Make the words of more training captions known: those of a fine-tuning run's own data, trained with a tokenizer
    that came from elsewhere (``--init-from``, ``--tokenizer``), so that the fine-tuned model's pipelines keep them in
    prompts instead of leaving them out as unknown.

    A word is known when the training captions had it, and a fine-tuning run's captions are training captions too. A
    tokenizer with a ``caption_words`` record gets the new words added to it (a new sorted list in ``init_kwargs``,
    which ``save_pretrained`` writes). A tokenizer without a record (an older folder, a stock CLIPTokenizer: its words
    judged by its whole-word tokens) gets one: every word that rule accepts (:func:`whole_word_rule_words`) plus the
    captions' words, so that no word known before becomes unknown and the captions' words are known from then on. The
    rule's words include the word endings a BPE learned from longer words ("ight" of "eight"); they were accepted
    before and stay accepted. A tokenizer that is not a whole-word BPE (nothing can be said about its words, every
    word passes) is left without a record: one would make its other words unknown.

    Args:
        tokenizer: a caption tokenizer (transformers), changed in place.
        captions: the run's captions.

    Returns:
        ``(new, started)``: the captions' words :func:`unknown_words` called unknown before (sorted), and whether the
        tokenizer had no record and was given one now. Afterwards the record holds every word of the captions, except
        for a tokenizer that is not a whole-word BPE (no record, ``([], False)``).
    """
    words = caption_words(captions)
    new = [word for word in words if unknown_words(tokenizer, word)]
    record = recorded_caption_words(tokenizer)
    started = record is None
    if started:
        if not _whole_word_tokens(tokenizer):
            return new, False
        record = frozenset(whole_word_rule_words(tokenizer))
    if new or started:
        tokenizer.init_kwargs[CAPTION_WORDS_FIELD] = sorted(record | set(words))
    return new, started


def whole_word_rule_words(tokenizer) -> List[str]:
    """The words a tokenizer without a ``caption_words`` record knows (sorted): the whole-word tokens' words that
    :func:`unknown_words` accepts as prompt words (the word is one :func:`prompt_words` word and tokenizes to that one
    token). Letter words, digits and punctuation, word endings included (unlike :func:`known_words`, which is for
    people to read)."""
    vocabulary = _whole_word_tokens(tokenizer)
    candidates = sorted({word for word in vocabulary.values() if prompt_words(word) == [word]})
    known = []
    for word in candidates:
        pieces = _pieces(tokenizer, word)
        if len(pieces) == 1 and pieces[0] in vocabulary:  # the test unknown_words makes without a record
            known.append(word)
    return known


class FolderTokenizer:
    """A model folder's caption tokenizer read with ``tokenizers`` alone (no transformers import: ``--help``, the
    model card): ``tokenizer.json`` plus the folder's caption-word record, for the functions of this module."""

    def __init__(self, tokenizer, init_kwargs: dict):
        self._tokenizer, self.init_kwargs = tokenizer, init_kwargs

    def get_vocab(self) -> dict:
        return self._tokenizer.get_vocab()

    def encode(self, *args, **kwargs):
        return self._tokenizer.encode(*args, **kwargs)


def read_folder_tokenizer(folder: os.PathLike) -> FolderTokenizer:
    """The caption tokenizer of a saved folder (``tokenizer.json``, and ``tokenizer_config.json``'s
    ``caption_words`` when it has one) for :func:`vocabulary_by_kind` and the rest. Raises what
    ``tokenizers.Tokenizer.from_file`` raises for a missing or damaged ``tokenizer.json``."""
    from tokenizers import Tokenizer

    folder = Path(folder)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # A folder saved after padded encoding (training encodes captions with padding="max_length") keeps that padding
    # and truncation in tokenizer.json; a word's pieces must not come padded to the prompt length.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    record = config.get(CAPTION_WORDS_FIELD) if isinstance(config, dict) else None
    return FolderTokenizer(tokenizer, {} if record is None else {CAPTION_WORDS_FIELD: record})


def _whole_word_tokens(tokenizer) -> dict:
    """token -> word for the vocabulary entries that are a whole word (CLIP-style ``word</w>``)."""
    cached = getattr(tokenizer, "_nuwa_whole_words", None)
    if cached is None:
        cached = {}
        for token in tokenizer.get_vocab():
            if token.endswith("</w>") and len(token) > 4 and not token.startswith("<|"):
                cached[token] = token[:-4]
        try:
            tokenizer._nuwa_whole_words = cached
        except AttributeError:
            pass
    return cached


def known_words(tokenizer) -> List[str]:
    """The letter words a trained NUWA knows, sorted, for people to read: those of the tokenizer's caption record
    (:func:`recorded_caption_words`), else those it holds as whole tokens.

    Without the record: a BPE also holds word endings as tokens ("ight</w>" of "eight", "enta</w>" of "magenta");
    those are left out: an entry of two or more ASCII letters is listed unless it is the ending of a longer listed
    word ("a" is listed)."""
    record = recorded_caption_words(tokenizer)
    if record is not None:
        return sorted(word for word in record if word.isalpha())
    words = {w for w in _whole_word_tokens(tokenizer).values() if w.isascii() and w.isalpha() and w == w.lower()}
    return sorted(w for w in words if w == "a" or (len(w) >= 2 and not any(
        other != w and other.endswith(w) for other in words)))


def unknown_words(tokenizer, text: str) -> List[str]:
    """Words of ``text`` (:func:`prompt_words`) the training captions never had (each once, in order): not in the
    tokenizer's caption record, or, without one, not one whole-word token of it."""
    record = recorded_caption_words(tokenizer)
    if record is not None:
        return list(dict.fromkeys(word for word in prompt_words(text) if word not in record))
    vocabulary = _whole_word_tokens(tokenizer)
    if not vocabulary:  # not a whole-word BPE: nothing can be said
        return []
    unknown: List[str] = []
    for word in prompt_words(text):
        pieces = _pieces(tokenizer, word)
        if (len(pieces) != 1 or pieces[0] not in vocabulary) and word not in unknown:
            unknown.append(word)
    return unknown


def without_unknown_words(tokenizer, text: str) -> Tuple[str, List[str]]:
    """``text`` without the words the tokenizer never saw as a whole, and those words (as :func:`unknown_words`).

    Why: a word the training captions never had reaches the encoder as sub-word pieces it never saw in that order, and
    they are not neutral: "colored" splits into pieces ending in "red</w>" (a prompt "a 7 colored blue" came out red
    3/3 times with the shipped checkpoint) and "generate an image of a red 7" lost both digit and colour. Left out,
    the prompt is what the model was trained on ("a red 7"), in the same tokens the tokenizer would give it. The kept
    words are joined by single spaces, which tokenizes as the original does: the caption tokenizers split words,
    single digits and punctuation runs apart before BPE (``_WORD`` is that split); a word that leaving words out puts
    right after itself is kept once ("a picture of a red 7" -> "a red 7", not "a a red 7"). Returns ``(text, [])``
    unchanged when every word is known or the tokenizer is not a whole-word BPE.
    """
    unknown = unknown_words(tokenizer, text)
    if not unknown:
        return text, []
    dropped = set(unknown)
    kept, gap = [], False
    for word in _WORD.findall(unicodedata.normalize("NFC", text)):
        if word.lower() in dropped:
            gap = True
            continue
        # "a picture of a red 7": the left-out words leave "a a"; a word the gap made a repeat is read once
        if not (gap and kept and word.lower() == kept[-1].lower()):
            kept.append(word)
        gap = False
    return " ".join(kept), unknown


def _pieces(tokenizer, word: str) -> List[str]:
    """A transformers tokenizer's ``tokenize``, or a bare ``tokenizers.Tokenizer``'s tokens (no special tokens)."""
    if hasattr(tokenizer, "tokenize"):
        return tokenizer.tokenize(word)
    return tokenizer.encode(word, add_special_tokens=False).tokens


def _word_set(text: str) -> set:
    """The distinct words of ``text`` (:func:`prompt_words`)."""
    return set(prompt_words(text))


@functools.lru_cache(maxsize=1)
def caption_filler_words() -> frozenset:
    """The words the built-in captions (:mod:`nuwa_hf.data.captions`) put around what they describe: ``frozenset`` of
    lower-case words and punctuation, e.g. "a", "the", "digit", "is", "moving", "in", ",".

    Derived, not typed: every caption form there (each template, coloured and not, and the caption functions with
    one, two and three objects) is written with attribute values, and the words of the values (the colours, digits,
    number words, motions, directions and places of :mod:`nuwa_hf.data.attributes`; the scene world's shapes and
    ground) are taken away; what is left is in every caption of its form whatever the picture shows. A word that every
    value of an attribute has ("then" of "up then down", "left then right", ...) is a filler too: it tells no value
    from another. "digit" and "number" are fillers: every picture of the worlds is a digit, so they name nothing that
    narrows it.
    """
    # nuwa_hf.data is not part of `import nuwa_hf`: imported here, on first use
    from ..data.attributes import COLORS, DIGIT_WORDS, DIRECTIONS, MOTIONS, POSITIONS
    from ..data.captions import (
        DIGIT_CAPTION_TEMPLATES, SINGLE_DIGIT_CAPTION_TEMPLATES, SINGLE_DIGIT_VIDEO_TEMPLATES, godiva_caption,
        scene_caption,
    )
    from ..data.scene_rendering import SCENE_SHAPES, STUFF_PHRASES

    attributes = {
        "color": COLORS, "digit": tuple(str(d) for d in range(10)), "word": DIGIT_WORDS, "motion": MOTIONS,
        "direction": DIRECTIONS, "position": POSITIONS, "shape": SCENE_SHAPES, "stuff": tuple(STUFF_PHRASES.values()),
    }
    value_words = set().union(*(_word_set(value) for values in attributes.values() for value in values))
    shared = set()
    for values in attributes.values():
        shared |= set.intersection(*(_word_set(value) for value in values))

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
    written = set().union(*(_word_set(caption) for caption in captions))
    return frozenset((written - value_words) | shared)


def content_words(tokenizer, text: str) -> List[str]:
    """The words of ``text`` the model knows that say something about the picture (each once, in order): known
    (not :func:`unknown_words`), with a letter or digit, and not a filler of the training captions
    (:func:`caption_filler_words`: "a", "the", "digit", "is", "moving", "in", ...). The pipelines refuse a prompt
    that leaving its unknown words out reduces to none ("a purple cat" -> "a")."""
    fillers, unknown = caption_filler_words(), set(unknown_words(tokenizer, text))
    return list(dict.fromkeys(word for word in prompt_words(text) if word not in unknown and word not in fillers
                              and any(character.isalnum() for character in word)))


def known_numerals(tokenizer) -> List[str]:
    """The single digits "0".."9" the tokenizer knows as words (:func:`known_words` lists only letter words)."""
    return [str(d) for d in range(10) if not unknown_words(tokenizer, str(d))]


def vocabulary_by_kind(tokenizer) -> dict:
    """The words a model knows (:func:`known_words`), grouped for people: digits (numerals and number words),
    colours, motions (GODIVA's phrases whose words are all known) and other words."""
    from ..data.attributes import COLORS, DIGIT_WORDS, MOTIONS  # nuwa_hf.data is not part of `import nuwa_hf`

    words = known_words(tokenizer)
    numerals = known_numerals(tokenizer)
    number_words = [w for w in DIGIT_WORDS if w in words]
    colours = [c for c in COLORS if c in words]
    motions = [m for m in MOTIONS if not unknown_words(tokenizer, m)]
    motion_words = {w for m in motions for w in m.split()}
    other = [w for w in words if w not in number_words and w not in colours and w not in motion_words]
    return {"digits": numerals + number_words, "colours": colours, "motions": motions, "other words": other}


def vocabulary_text(tokenizer) -> str:
    """One line per kind, e.g. ``colours: red, green, ...`` (for ``--help`` and the model card)."""
    return "\n".join(f"{kind}: {', '.join(items) if items else '(none)'}"
                     for kind, items in vocabulary_by_kind(tokenizer).items())
