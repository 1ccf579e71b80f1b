"""What a pipeline call did not understand, said instead of done in silence: prompt words the model's training
captions never had, inputs resized by more than 2x, inputs of another shape than the model's frames, whose centre crop
leaves part of them out, the frames of a clip video prediction does not read, edits whose region is the whole
picture (nothing of it is read), and pictures on a light background (dark ink on white paper; the model was trained
on light digits on black: :mod:`.backgrounds`). Each is a warning through transformers' logging (once per call and
message), or, with ``strict=True``, a ``ValueError``. The pipelines also leave the unknown words out of what the
model reads (``drop_unknown_words=True``, the default; the warning says what it reads) and refuse with a
``ValueError`` listing the known words a prompt with no known word at all, or one that leaving out its unknown words
reduces to filler words of the captions ("a purple cat" -> "a") (:mod:`.pipeline_base`). Before that, common
phrasings of a motion are read in the captions' words ("up and down" as "up then down", ``rephrase_prompt=True``, the
default; :mod:`nuwa_hf.processing.phrasings`), and, for image manipulation, an edit as the picture it asks for ("turn
the 6 into an 8" as "an 8"), with a warning saying how the prompt was read. An image manipulation whose prompt names
no digit or no colour ("make it blue") is completed from what the model reads in the picture ("a blue 6" for a yellow
6) and told so (:func:`completion_notice`), or, with ``complete_instruction=False`` (or a model whose words cannot say
what a picture shows), told that the model may draw any there (:func:`open_kinds_notice`); both are advice, which
``strict=True`` does not refuse.

A word is *known* when the training captions had it: the caption tokenizer records their words
(``tokenizer_config.json``, ``caption_words``); a tokenizer without the record is asked whether it holds the word as
one whole-word token (:mod:`nuwa_hf.processing.vocabulary`). No list is typed by hand.

Who reads a notice decides how its remedy is worded (:class:`NoticeWording`): a library user is told the argument;
``nuwa-hf generate`` names its flag (``--keep-unknown-words``) and the web page (spaces/nuwa/app.py) words it for its
visitors, each through :func:`worded_for`. The wording also names the text the notices are about as its reader knows
it: the pipelines' ``prompt``, a page's "instruction" box (its manipulation tabs). Two notices say how an input was
read on the user's behalf (:func:`rephrase_notice`, :func:`completion_notice`); the others say what the model will not
honour: :func:`says_how_read` tells them apart, for a reader that shows them differently (the web page: an "Info"
pop-up against a "Warning" one).
"""

from __future__ import annotations

import contextlib
import logging as _logging
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple

from transformers.utils import logging


logger = logging.get_logger("nuwa_hf.pipelines")

MAX_RESIZE = 2.0


@dataclass(frozen=True)
class NoticeWording:
    """The parts of the unknown-word notices that depend on who reads them: what a library user passes, a web page's
    visitor clicks, etc. The rest (which words, what the model reads) is the same for everyone.

    keep: how to give the model the left-out words too, said in brackets after what it reads; None: no way to
    (the sentence then says nothing about it). drop: how to leave them out, said after the sub-word warning; None:
    no way to. keep_instead: the alternative offered when every word of a prompt is unknown ("..., or <this>.");
    None: no alternative. known: a sentence saying where the words the model knows are listed (or listing them).
    part_of_image: how to edit part of a picture instead of all of it (the whole-region notice).
    as_typed: how to have a rephrased prompt read as typed, said in brackets after the rephrasing notice; None: no way
    to (the notice then says nothing about it).
    as_given: how to have an edit instruction read as given instead of completed from the picture, said in brackets
    after the completion notice; None: no way to.
    prompt: what the reader calls the text the model draws from (the pipelines' argument ``prompt``; a page may name
    its box "instruction"): the notices and errors about that text name it so ("The instruction 'make it blue' ...").
    invert: how to invert a picture on a light background before giving it (the light-background notice).
    """

    keep: Optional[str]
    drop: Optional[str]
    keep_instead: Optional[str]
    known: str
    part_of_image: str = "regenerate part of it (e.g. mask='bottom half')"
    as_typed: Optional[str] = None
    as_given: Optional[str] = None
    prompt: str = "prompt"
    invert: str = "invert it first, e.g. PIL.ImageOps.invert(image.convert('RGB'))"


LIBRARY_WORDING = NoticeWording(
    keep="drop_unknown_words=False keeps them",
    drop="drop_unknown_words=True leaves them out",
    keep_instead="pass drop_unknown_words=False",
    known="The words it knows are in the model card (or nuwa_hf.processing.vocabulary.known_words(tokenizer)).",
    as_typed="rephrase_prompt=False reads it as typed",
    as_given="complete_instruction=False reads the instruction as given",
)

_wording: ContextVar[NoticeWording] = ContextVar("nuwa_hf_notice_wording", default=LIBRARY_WORDING)


def notice_wording() -> NoticeWording:
    """The wording of the notices in this thread / task: :data:`LIBRARY_WORDING` unless :func:`worded_for` says."""
    return _wording.get()


@contextlib.contextmanager
def worded_for(wording: NoticeWording):
    """During the block (this thread / task only), the pipelines word their unknown-word notices and errors with
    ``wording``: e.g. a web page says what its visitors can do instead of naming Python arguments."""
    token = _wording.set(wording)
    try:
        yield
    finally:
        _wording.reset(token)


def _with_article(noun: str) -> str:
    """"a prompt", "an instruction"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def prompt_notice(prompt: Optional[str], unknown: List[str], read: Optional[str], what_prompt: Optional[str] = None
                  ) -> Optional[str]:
    """A sentence naming the words of ``prompt`` the model never saw (``unknown``, as
    :func:`~nuwa_hf.processing.vocabulary.without_unknown_words` finds them), or None. ``read``: what the model reads
    when the pipeline left them out (``drop_unknown_words``), None when it gave them to the model. ``what_prompt``
    names it ("negative prompt"; default: the wording's name for the prompt). Worded by :func:`notice_wording`."""
    unknown = [word for word in unknown if any(c.isalnum() for c in word)]  # a "." or "?" is left out unremarked
    if not prompt or not unknown:
        return None
    wording = notice_wording()
    what_prompt = what_prompt or wording.prompt
    listed = ", ".join(repr(w) for w in unknown)
    if read is not None:
        what = f"they were left out, so the model reads {read!r}" + (f" ({wording.keep})" if wording.keep else "")
    else:
        what = ("the model reads them as sub-word pieces it never saw in that order, which can change the output "
                "at random" + (f" ({wording.drop})" if wording.drop else ""))
    return (f"The {what_prompt} {prompt!r} has word(s) the model never saw in training: {listed}; {what}. "
            f"{wording.known}")


def rephrase_notice(prompt: str, text: str, rephrased: List[Tuple[str, str]],
                    edits: List[Tuple[str, str]] = ()) -> Optional[str]:
    """A sentence saying how ``prompt`` was read (``text``) when common phrasings of a motion in it were written in
    the training captions' words (``rephrased``: ``[(typed, read as), ...]``, as
    :func:`~nuwa_hf.processing.phrasings.rephrase` returns them) and, for an edit, what it replaces was left out
    (``edits``, as :func:`~nuwa_hf.processing.phrasings.rephrase_edit` returns them), or None when nothing was.
    Worded by :func:`notice_wording`."""
    if not rephrased and not edits:
        return None
    wording = notice_wording()
    parts = []
    if rephrased:
        changes = ", ".join(f"{typed!r} as {read!r}" for typed, read in rephrased)
        parts.append(f"{changes}, the words the training captions say these motions with")
    if edits:
        changes = ", ".join(f"{typed!r} as {read!r}" for typed, read in edits)
        parts.append(f"{changes}, the picture the edit asks for (the model reads {_with_article(wording.prompt)} as "
                     "the caption of the whole edited picture, so what the edit replaces is left out)")
    as_typed = wording.as_typed
    return (f"The {wording.prompt} {prompt!r} was read as {text!r}: {'; '.join(parts)}"
            + (f" ({as_typed})." if as_typed else "."))


def open_kinds_notice(prompt: str, read: str, open_kinds: List[str], example: str) -> Optional[str]:
    """A sentence for an edit whose prompt (``read``: what the model reads of it) names no value of some kinds of
    what the model draws (``open_kinds``, e.g. ``["digit", "colour"]``), or None when it names them all. The model
    reads a prompt as the caption of the whole edited picture and redraws the region from it and the pixels before it,
    not from what the region shows now: "make it blue" (read as "blue") may come back as another digit. ``example``:
    a caption naming every kind ("a blue 7"). A prompt may leave a kind open on purpose, so this is advice, which
    ``strict=True`` does not refuse. Names the prompt as :func:`notice_wording` does."""
    if not open_kinds:
        return None
    name = notice_wording().prompt
    kinds = " and no ".join(open_kinds)
    if open_kinds == ["colour"]:
        may = "it may draw the region in any colour"
    else:
        may = f"it may draw any {open_kinds[0]} there" + (" in any colour" if "colour" in open_kinds[1:] else "")
    them = "it" if len(open_kinds) == 1 else "them"
    return (f"The {name} {prompt!r} (read as {read!r}) names no {kinds}: the model reads {_with_article(name)} as the "
            f"caption of the whole edited picture and redraws the region from it, not from what the region shows now, "
            f"so {may}. "
            f"To keep the picture's {' and '.join(open_kinds)}, name {them} as a caption does (e.g. {example!r}).")


def completion_notice(prompt: str, open_kinds: List[str], seen: str, caption: str) -> str:
    """A sentence for an edit instruction (``prompt``, as typed) that named no value of ``open_kinds`` (e.g.
    ``["digit"]``) and was completed from the picture: the model read the picture as the caption ``seen`` ("a yellow
    6") and edits it with ``caption`` ("a blue 6") (:mod:`nuwa_hf.pipelines.instruction_completion`). How to have it
    read as given is worded by :func:`notice_wording`. Advice, which ``strict=True`` does not refuse."""
    switch = notice_wording().as_given
    return (f"The instruction {prompt!r} names no {' and no '.join(open_kinds)}: the model reads the picture as "
            f"{seen!r} and edits it with {caption!r}" + (f" ({switch})." if switch else "."))


def no_known_word_error(prompt: str, unknown: List[str], knows: List[str], what_prompt: Optional[str] = None,
                        asks: str = "describe the picture") -> str:
    """The message for a prompt none of whose words the model saw (``unknown``), listing the words it knows
    (``knows``), worded by :func:`notice_wording`. ``what_prompt`` names it ("negative prompt"; default: the wording's
    name for the prompt), ``asks`` says what to write in those words ("say what to steer away from")."""
    wording = notice_wording()
    instead = wording.keep_instead
    return (f"The {what_prompt or wording.prompt} {prompt!r} has no word the model saw in training (it never saw "
            f"{', '.join(repr(w) for w in unknown)}): {asks} in the words it knows "
            f"({', '.join(knows)})" + (f", or {instead}." if instead else "."))


def fillers_only_error(prompt: str, read: str, unknown: List[str], kinds: str) -> str:
    """The message for a prompt that leaving out its ``unknown`` words reduces to filler words of the training
    captions (``read``, what is left), listing the words the model knows by kind (``kinds``), worded by
    :func:`notice_wording`."""
    wording = notice_wording()
    instead = wording.keep_instead
    return (f"The {wording.prompt} {prompt!r} leaves only {read!r} once the words the model never saw "
            f"({', '.join(repr(w) for w in unknown)}) are left out, and those are filler words of its training "
            f"captions that say nothing about the picture (it would draw whatever it guesses): describe the picture "
            f"in the words it knows ({kinds})" + (f", or {instead}." if instead else "."))


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


def light_background_notice(what: str, brightness: float, frames: Optional[Tuple[int, int]] = None) -> str:
    """A sentence for an input picture on a light background (:mod:`nuwa_hf.pipelines.backgrounds`: the median grey
    level of its border, ``brightness`` in [0, 1], at least ``LIGHT_BORDER``, 0.6), e.g. dark ink on white paper,
    which the model (trained on light digits on black) reads as nothing it saw. ``what``: "image" or "video";
    ``frames``: (how many of the given frames are light, how many were given) for a video. The fix is worded by
    :func:`notice_wording`."""
    which = f"the {what}" if frames is None else f"{frames[0]} of the {frames[1]} given frame(s) of the {what}"
    return (f"{which[0].upper()}{which[1:]} has a light background (its border's median grey level is "
            f"{brightness:.2f} on a 0-1 scale, against 0 for the model's training pictures, light digits on black): "
            f"the model reads a dark picture on a light background as nothing it was trained on, so the output will "
            f"not follow it. To draw from it, {notice_wording().invert} (dark ink on white becomes light ink on "
            f"black), and invert the output back if you want it dark on light.")


def whole_region_notice(read: Optional[str]) -> str:
    """A sentence for an image completion / manipulation whose region is the whole picture: no token of the picture is
    kept, so the picture is not read at all, and the output comes from the prompt (``read``: what the model reads of
    it) or, without one, from nothing. Its remedy is worded by :func:`notice_wording`."""
    name = notice_wording().prompt
    source = f"the {name} alone (the model reads {read!r})" if read else f"nothing (no {name}: the None condition)"
    return ("The region covers the whole image, so nothing of the image is kept or read: the output is drawn from "
            f"{source}, as text-to-image would. To edit the picture, {notice_wording().part_of_image}; "
            "to redraw it, say what to draw ('a blue 3').")


# The sentences of rephrase_notice and completion_notice, whatever their wording names the prompt: "The <name> <text>
# was read as <text>" and "The <name> <text> names no <kinds>: the model reads the picture as <caption>" (the open-kinds
# advice says "(read as ...) names no ...: the model reads a prompt as ...", the unknown-word notice "has word(s)").
_HOW_READ = (re.compile(r"The [a-z ]+ (?:'.*'|\".*\") was read as (?:'|\")", re.DOTALL),
             re.compile(r"The [a-z ]+ (?:'.*'|\".*\") names no [a-z ]+: the model reads the picture as ", re.DOTALL))


def says_how_read(message: str) -> bool:
    """Whether ``message`` is a notice that says how an input was read on the user's behalf (:func:`rephrase_notice`:
    a motion in the captions' words, an edit as the picture it asks for; :func:`completion_notice`: an instruction
    completed from the picture) rather than one that says what the model will not honour (words it never saw, a
    picture not read, a digit or colour it may draw at random, resizes and crops, a light background)."""
    return any(pattern.match(message) for pattern in _HOW_READ)


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
