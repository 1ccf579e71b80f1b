"""What a pipeline call did not understand, said instead of done in silence: prompt words the model's tokenizer never
saw in training, and inputs resized by more than 2x. Each is a warning through transformers' logging (once per call
and message), or, with ``strict=True``, a ``ValueError``.

A word is *known* when the caption tokenizer holds it as one whole-word token: NUWA's tokenizers are BPEs trained on
the training captions, so every word of those captions is one token, and a word the captions never had ("purple",
"cat") falls apart into pieces. The list of known words is therefore read from the tokenizer itself
(:func:`known_words`), never typed by hand.
"""

from __future__ import annotations

import contextlib
import logging as _logging
import re
from typing import Callable, Iterable, List, Optional, Tuple

from transformers.utils import logging

logger = logging.get_logger("nuwa_hf.pipelines")

# words as the caption tokenizers split them: letters, single digits, runs of punctuation
_WORD = re.compile(r"[^\W\d_]+|\d|[^\w\s]+")
MAX_RESIZE = 2.0


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


def _pieces(tokenizer, word: str) -> List[str]:
    """A transformers tokenizer's ``tokenize``, or a bare ``tokenizers.Tokenizer``'s tokens (no special tokens)."""
    if hasattr(tokenizer, "tokenize"):
        return tokenizer.tokenize(word)
    return tokenizer.encode(word, add_special_tokens=False).tokens


def prompt_notice(tokenizer, prompt: Optional[str]) -> Optional[str]:
    """A sentence naming the words of ``prompt`` the model never saw, or None."""
    if not prompt:
        return None
    words = unknown_words(tokenizer, prompt)
    if not words:
        return None
    listed = ", ".join(repr(w) for w in words)
    return (f"The prompt {prompt!r} has word(s) the model never saw in training: {listed}; they do not steer the "
            "output. The words it knows are in the model card (or nuwa_hf.pipelines.notices.known_words(tokenizer)).")


def resize_notice(what: str, size: Tuple[int, int], target: Tuple[int, int]) -> Optional[str]:
    """A sentence when ``size`` (width, height) is resized to ``target`` by more than 2x in either direction."""
    (width, height), (to_width, to_height) = size, target
    ratios = (width / to_width, height / to_height)
    if all(1 / MAX_RESIZE <= r <= MAX_RESIZE for r in ratios):
        return None
    return (f"The {what} is {width}x{height} pixels and was resized to {to_width}x{to_height}, the model's frame size "
            f"(more than {MAX_RESIZE:g}x): small details may be lost or blocky.")


class CallNotices:
    """Warns each message once per pipeline call (the call's inputs may come in several batches)."""

    def __init__(self):
        self.said: set = set()

    def warn(self, messages: Iterable[str]) -> None:
        for message in messages:
            if message and message not in self.said:
                self.said.add(message)
                logger.warning(message)


@contextlib.contextmanager
def routed_warnings(receive: Callable[[str], None]):
    """During the block, hand each warning of the pipelines to ``receive(message)`` instead of the process's logging
    (the CLI prints them on stderr, the web page shows them on its info line); restored afterwards."""

    class Route(_logging.Handler):
        def emit(self, record):
            receive(record.getMessage())

    handler, propagate = Route(level=_logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
