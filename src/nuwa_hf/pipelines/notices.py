"""What a pipeline call did not understand, said instead of done in silence: prompt words the model's tokenizer never
saw in training, inputs resized by more than 2x, inputs of another shape than the model's frames, whose centre crop
leaves part of them out, and edits whose region is the whole picture (nothing of it is read). Each is a warning through transformers' logging (once per call
and message), or, with ``strict=True``, a ``ValueError``. The pipelines also leave the unknown words out of what the
model reads (``drop_unknown_words=True``, the default; the warning says what it reads) and refuse a prompt with no
known word at all with a ``ValueError`` listing the known words (:mod:`.pipeline_base`).

A word is *known* when the caption tokenizer holds it as one whole-word token: NUWA's tokenizers are BPEs trained on
the training captions, so every word of those captions is one token, and a word the captions never had ("purple",
"cat") falls apart into pieces; the tokenizer is asked (:mod:`nuwa_hf.processing.vocabulary`), no list is typed by
hand.
"""

from __future__ import annotations

import contextlib
import logging as _logging
from typing import Callable, Iterable, List, Optional, Tuple

from transformers.utils import logging


logger = logging.get_logger("nuwa_hf.pipelines")

MAX_RESIZE = 2.0


def prompt_notice(prompt: Optional[str], unknown: List[str], read: Optional[str]) -> Optional[str]:
    """A sentence naming the words of ``prompt`` the model never saw (``unknown``, as
    :func:`~nuwa_hf.processing.vocabulary.without_unknown_words` finds them), or None. ``read``: what the model reads
    when the pipeline left them out (``drop_unknown_words``), None when it gave them to the model."""
    if not prompt or not unknown:
        return None
    listed = ", ".join(repr(w) for w in unknown)
    if read is not None:
        what = f"they were left out, so the model reads {read!r} (drop_unknown_words=False keeps them)"
    else:
        what = ("the model reads them as sub-word pieces it never saw in that order, which can change the output "
                "at random (drop_unknown_words=True leaves them out)")
    return (f"The prompt {prompt!r} has word(s) the model never saw in training: {listed}; {what}. The words it "
            "knows are in the model card (or nuwa_hf.processing.vocabulary.known_words(tokenizer)).")


def resize_notice(what: str, size: Tuple[int, int], target: Tuple[int, int]) -> Optional[str]:
    """A sentence when ``size`` (width, height) is resized to ``target`` by more than 2x in either direction."""
    (width, height), (to_width, to_height) = size, target
    ratios = (width / to_width, height / to_height)
    if all(1 / MAX_RESIZE <= r <= MAX_RESIZE for r in ratios):
        return None
    return (f"The {what} is {width}x{height} pixels and was resized to {to_width}x{to_height}, the model's frame size "
            f"(more than {MAX_RESIZE:g}x): small details may be lost or blocky.")


def crop_notice(what: str, size: Tuple[int, int], resized: Tuple[int, int], target: Tuple[int, int]) -> Optional[str]:
    """A sentence when the centre crop to the model's frame ``target`` (width, height) leaves out part of a picture of
    ``size`` (width, height), scaled to ``resized`` (width, height) first: a picture of another shape than the frame
    loses its sides (or top and bottom) at least one frame pixel wide."""
    (width, height), (resized_width, resized_height), (to_width, to_height) = size, resized, target
    cut_width, cut_height = resized_width - to_width, resized_height - to_height
    if cut_width <= 0 and cut_height <= 0:
        return None
    if cut_width > 0:
        part, left_out = "left and right sides", cut_width / resized_width
    else:
        part, left_out = "top and bottom", cut_height / resized_height
    return (f"The {what} is {width}x{height} pixels, another shape than the model's {to_width}x{to_height} frames: it "
            f"was scaled to {resized_width}x{resized_height} and its centre kept, leaving out {left_out:.0%} of it "
            f"at the {part}. Pad or crop it to the frame's shape first to choose what is kept.")


def whole_region_notice(read: Optional[str]) -> str:
    """A sentence for an image completion / manipulation whose region is the whole picture: no token of the picture is
    kept, so the picture is not read at all, and the output comes from the prompt (``read``: what the model reads of
    it) or, without one, from nothing."""
    source = f"the prompt alone (the model reads {read!r})" if read else "nothing (no prompt: the None condition)"
    return ("The region covers the whole image, so nothing of the image is kept or read: the output is drawn from "
            f"{source}, as text-to-image would. To edit the picture, regenerate part of it (e.g. mask='bottom half'); "
            "to redraw it, say what to draw ('a blue 3').")


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
