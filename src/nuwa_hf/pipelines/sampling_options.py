"""The pipeline-only call options (rows per batch, seeds, candidates, counts), checked like the sampling options.

The sampling options (``guidance_scale``, ``temperature``, ``top_k``, ``top_p``, ``do_sample``, ``logits_processor``)
are the model's: their rules and their one check are in :mod:`nuwa_hf.models.nuwa.visual_generation_nuwa`, which
``model.visual_generation_config`` applies when it merges them into the call's ``GenerationConfig``. This module adds
the options only a pipeline call has, checked with the same helpers, so every bad value gets the same kind of message
whichever way it came in (``pipe(..., seed=-1)``, the diffusers face, ``nuwa-hf generate --seed -1``):

=================  =====================================================================================================
batch_size         an integer >= 1: rows generated together (only memory depends on it).
seed               an integer in [0, 2**63 - 1].
num_candidates     an integer >= 1 (candidates per output when a scorer reranks).
per-input counts   ``num_outputs_per_input`` (``num_images_per_prompt`` and friends), ``num_frames``: integers >= 1.
=================  =====================================================================================================
"""

from __future__ import annotations

from typing import Any

from ..models.nuwa.visual_generation_nuwa import SAMPLING_CHECKS, SAMPLING_RULES, check_integer

MAX_SEED = 2**63 - 1

RULES = {
    **SAMPLING_RULES,
    "batch_size": "an integer >= 1",
    "seed": f"an integer in [0, {MAX_SEED}]",
    "num_candidates": "an integer >= 1",
}


def check_batch_size(value: Any) -> int:
    return check_integer("batch_size", value, minimum=1, rule=RULES["batch_size"])


def check_seed(value: Any) -> int:
    return check_integer("seed", value, minimum=0, maximum=MAX_SEED, rule=RULES["seed"])


def check_num_candidates(value: Any) -> int:
    return check_integer("num_candidates", value, minimum=1, rule=RULES["num_candidates"])


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """A count such as ``num_images_per_prompt`` or ``num_frames``: an integer >= ``minimum``."""
    return check_integer(name, value, minimum=minimum)


CHECKS = {**SAMPLING_CHECKS, "batch_size": check_batch_size, "seed": check_seed,
          "num_candidates": check_num_candidates}


def check_call_options(options: dict) -> dict:
    """Check the sampling options (the model's rules) and the pipeline-only ones of ``options`` (None = unset, kept);
    returns a copy with the values normalised. Options this module does not know are passed through."""
    checked = dict(options)
    for name, check in CHECKS.items():
        if checked.get(name) is not None:
            checked[name] = check(checked[name])
    return checked
