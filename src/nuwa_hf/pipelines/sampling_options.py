"""One validation of the sampling options, shared by the pipelines, the diffusers face and the ``nuwa-hf`` command.

Every option is checked here and nowhere else, so a bad value gets the same message whichever way it came in
(``pipe(..., temperature=0)``, ``NuwaDiffusionPipeline(...)("T2I", ..., temperature=0)``, ``nuwa-hf generate
--temperature 0``). The rules:

=================  =====================================================================================================
option             accepted values
=================  =====================================================================================================
guidance_scale     a finite number >= 1. 1 turns guidance off; > 1 follows the condition (text, sketch) more closely.
                   Values below 1 would steer *away* from the condition (0 ignores it), which is never what a user
                   wants from these pipelines, so they are refused.
temperature        a finite number > 0 (1 = the model's distribution; lower is more conservative).
top_k              an integer >= 0 (0 = no top-k filtering).
top_p              a number in (0, 1] (1 = no nucleus filtering).
do_sample          a bool (True samples, NUWA's way; False decodes greedily). Strings such as "no" are refused.
batch_size         an integer >= 1: rows generated together (only memory depends on it).
seed               an integer in [0, 2**63 - 1].
num_candidates     an integer >= 1 (candidates per output when a scorer reranks).
logits_processor   a list of transformers ``LogitsProcessor`` objects (callables ``(input_ids, scores) -> scores``),
                   run at every decoding step after NUWA's guidance and forcing, before the top-k / top-p warpers.
per-input counts   ``num_images_per_prompt`` and friends: integers >= 1.
=================  =====================================================================================================

Numbers may be Python or numpy numbers (or 0-d tensors); bools are not numbers here, and strings are refused with a
message that names the option, instead of a bare ``float()`` error. Every check raises ``ValueError`` (a value out of
range) or ``TypeError`` (not a number / not a bool).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

import numpy as np

MAX_SEED = 2**63 - 1

# The options this module knows, with a one-line rule each (used in messages and docs).
SAMPLING_RULES = {
    "guidance_scale": "a finite number >= 1 (1 = no guidance; > 1 follows the condition more closely)",
    "temperature": "a finite number > 0",
    "top_k": "an integer >= 0 (0 = no top-k filtering)",
    "top_p": "a number in (0, 1]",
    "do_sample": "True or False",
    "batch_size": "an integer >= 1",
    "seed": f"an integer in [0, {MAX_SEED}]",
    "num_candidates": "an integer >= 1",
}


def _unwrap(value: Any) -> Any:
    """0-d numpy arrays and tensors -> their Python scalar; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if type(value).__name__ == "Tensor" and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _describe(value: Any) -> str:
    return f"{value!r} (a {type(value).__name__})"


def check_number(name: str, value: Any, rule: Optional[str] = None) -> float:
    """A real number (not a bool, not a string) -> float; NaN and infinities are refused."""
    rule = rule or SAMPLING_RULES.get(name, "a finite number")
    value = _unwrap(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {rule}, got {_describe(value)}.")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be {rule}, got {value!r}.")
    return number


def check_integer(name: str, value: Any, minimum: int = 1, maximum: Optional[int] = None,
                  rule: Optional[str] = None) -> int:
    """An integer (Python or numpy; not a bool, not a float such as 2.0) in ``[minimum, maximum]`` -> int."""
    if rule is None:
        rule = SAMPLING_RULES.get(name) or (f"an integer >= {minimum}" if maximum is None
                                            else f"an integer in [{minimum}, {maximum}]")
    value = _unwrap(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {rule}, got {_describe(value)}.")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {rule}, got {number}.")
    return number


def check_guidance_scale(value: Any) -> float:
    number = check_number("guidance_scale", value)
    if number < 1:
        raise ValueError(
            f"guidance_scale must be {SAMPLING_RULES['guidance_scale']}, got {value!r}: values below 1 steer away from "
            "the condition (0 ignores it). Use 1 (or leave it unset) for no guidance."
        )
    return number


def check_temperature(value: Any) -> float:
    number = check_number("temperature", value)
    if number <= 0:
        raise ValueError(f"temperature must be {SAMPLING_RULES['temperature']}, got {value!r} (use do_sample=False for "
                         "greedy decoding).")
    return number


def check_top_p(value: Any) -> float:
    number = check_number("top_p", value)
    if not 0 < number <= 1:
        raise ValueError(f"top_p must be {SAMPLING_RULES['top_p']}, got {value!r}.")
    return number


def check_top_k(value: Any) -> int:
    return check_integer("top_k", value, minimum=0)


def check_do_sample(value: Any) -> bool:
    value = _unwrap(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"do_sample must be {SAMPLING_RULES['do_sample']}, got {_describe(value)}.")
    return bool(value)


def check_batch_size(value: Any) -> int:
    return check_integer("batch_size", value, minimum=1)


def check_seed(value: Any) -> int:
    return check_integer("seed", value, minimum=0, maximum=MAX_SEED)


def check_num_candidates(value: Any) -> int:
    return check_integer("num_candidates", value, minimum=1)


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """A count such as ``num_images_per_prompt`` or ``num_frames``: an integer >= ``minimum``."""
    return check_integer(name, value, minimum=minimum)


def check_logits_processor(value: Any) -> list:
    """A list (or ``LogitsProcessorList``) of callables ``(input_ids, scores) -> scores``; one callable is taken as a
    list of one."""
    items = [value] if callable(value) and not isinstance(value, (list, tuple)) else value
    if not isinstance(items, (list, tuple)) or not all(callable(item) for item in items):
        raise TypeError(
            f"logits_processor must be a list of transformers LogitsProcessor objects (callables (input_ids, scores) "
            f"-> scores), got {value!r}."
        )
    from transformers import LogitsProcessorList

    return LogitsProcessorList(items)


CHECKS = {
    "guidance_scale": check_guidance_scale,
    "temperature": check_temperature,
    "top_k": check_top_k,
    "top_p": check_top_p,
    "do_sample": check_do_sample,
    "batch_size": check_batch_size,
    "seed": check_seed,
    "num_candidates": check_num_candidates,
    "logits_processor": check_logits_processor,
}


def check_sampling_options(options: dict) -> dict:
    """Check every known option of ``options`` (None values mean "unset" and are kept as None); returns a copy with the
    values normalised (Python ``float`` / ``int`` / ``bool``). Options this module does not know are passed through."""
    checked = dict(options)
    for name, check in CHECKS.items():
        if checked.get(name) is not None:
            checked[name] = check(checked[name])
    return checked
