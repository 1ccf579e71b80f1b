"""The words a trained NUWA knows, read from its caption tokenizer, never typed by hand: :func:`known_words`,
:func:`unknown_words` (the pipelines' prompt notices), :func:`without_unknown_words` (what the pipelines give the
model), grouped for people by :func:`vocabulary_by_kind` (the model
card, ``nuwa-hf generate --help``).

A word is *known* when the caption tokenizer holds it as one whole-word token: NUWA's tokenizers are BPEs trained on
the training captions, so every word of those captions is one token, and a word the captions never had ("purple",
"cat") falls apart into pieces.
"""

from __future__ import annotations

import re
from typing import List, Tuple

# words as the caption tokenizers split them: letters, single digits, runs of punctuation
_WORD = re.compile(r"[^\W\d_]+|\d|[^\w\s]+")


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
    """The words the tokenizer holds as whole tokens, sorted: the vocabulary a trained NUWA knows, for people to read.

    A BPE also holds word endings as tokens ("ight</w>" of "eight", "enta</w>" of "magenta"); those are left out: an
    entry of two or more ASCII letters is listed unless it is the ending of a longer listed word ("a" is listed).
    :func:`unknown_words` needs no such rule: it asks the tokenizer about each word of a prompt."""
    words = {w for w in _whole_word_tokens(tokenizer).values() if w.isascii() and w.isalpha() and w == w.lower()}
    return sorted(w for w in words if w == "a" or (len(w) >= 2 and not any(
        other != w and other.endswith(w) for other in words)))


def unknown_words(tokenizer, text: str) -> List[str]:
    """Words of ``text`` the tokenizer never saw as a whole (each once, in order)."""
    vocabulary = _whole_word_tokens(tokenizer)
    if not vocabulary:  # not a whole-word BPE: nothing can be said
        return []
    unknown: List[str] = []
    for word in _WORD.findall(text.lower()):
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
    single digits and punctuation runs apart before BPE (``_WORD`` is that split). Returns ``(text, [])`` unchanged
    when every word is known or the tokenizer is not a whole-word BPE.
    """
    unknown = unknown_words(tokenizer, text)
    if not unknown:
        return text, []
    dropped = set(unknown)
    kept = [word for word in _WORD.findall(text) if word.lower() not in dropped]
    return " ".join(kept), unknown


def _pieces(tokenizer, word: str) -> List[str]:
    """A transformers tokenizer's ``tokenize``, or a bare ``tokenizers.Tokenizer``'s tokens (no special tokens)."""
    if hasattr(tokenizer, "tokenize"):
        return tokenizer.tokenize(word)
    return tokenizer.encode(word, add_special_tokens=False).tokens


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
