"""The words a trained NUWA knows, grouped for people (the model card, ``nuwa-hf generate --help``): read from its
caption tokenizer (:func:`nuwa_hf.pipelines.notices.known_words`), never typed by hand."""

from __future__ import annotations

from ..data.attributes import COLORS, DIGIT_WORDS, MOTIONS
from ..pipelines.notices import known_words, unknown_words


def vocabulary_by_kind(tokenizer) -> dict:
    """The words a model knows (:func:`known_words`), grouped for people: digits (numerals and number words),
    colours, motions (GODIVA's phrases whose words are all known) and other words."""
    words = known_words(tokenizer)
    numerals = [str(d) for d in range(10) if not unknown_words(tokenizer, str(d))]
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
