"""Generation beyond tokens, in the model: from pixels, past the trained length, to pixels (as MusicGen decodes its
own audio), and the one place where the sampling options are checked and merged into a ``GenerationConfig``.

:meth:`NuwaVisualGenerationMixin.generate_visual` is what every NUWA pipeline calls::

    text ids / sketch maps / known pixels + region  --(the model's own VQ-GANs code them)-->  condition + known tokens
    --> generate() (constrained decoding; generate_long_video past the trained frame count) --> tokens (B, T, h, w)
    --(VQ-GAN decoder)--> pixel_values (B, T, 3, H, W) in [-1, 1]

Sampling options (``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``guidance_scale``, and the
``logits_processor`` list beside them) travel in ONE ``GenerationConfig`` per call, made by
:meth:`~NuwaVisualGenerationMixin.visual_generation_config`: the caller's values (checked by
:func:`check_sampling_options`, the rules below), then the task's entry of ``generation_config.task_sampling``, then
the model folder's defaults.

=================  =====================================================================================================
option             accepted values
=================  =====================================================================================================
guidance_scale     a finite number >= 1. 1 turns guidance off; > 1 follows the condition (text, sketch) more closely.
                   Values below 1 would steer *away* from the condition (0 ignores it), which is never what a user
                   wants, so they are refused. Needs a condition (text or sketch).
temperature        a finite number > 0 (1 = the model's distribution; lower is more conservative).
top_k              an integer >= 0 (0 = no top-k filtering).
top_p              a number in (0, 1] (1 = no nucleus filtering).
do_sample          a bool (True samples, NUWA's way and the default here; False decodes greedily).
logits_processor   a list of transformers ``LogitsProcessor`` objects (callables ``(input_ids, scores) -> scores``),
                   run at every decoding step after NUWA's guidance and forcing, before the top-k / top-p warpers.
=================  =====================================================================================================

Numbers may be Python or numpy numbers (or 0-d tensors); bools are not numbers here, and strings are refused with a
message that names the option. Every check raises ``ValueError`` (a value out of range) or ``TypeError`` (not a number
/ not a bool).
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from transformers import GenerationConfig
from transformers.utils import ModelOutput

# --------------------------------------------------------------------------------------------------------------------
# The rules of the sampling options (the one validation: the pipelines, the diffusers face and the CLI use these)

# The GenerationConfig fields a caller (or a task's entry in generation_config.task_sampling) sets.
SAMPLING_OPTIONS = ("do_sample", "temperature", "top_k", "top_p", "guidance_scale")
TASK_SAMPLING_KEYS = ("guidance_scale", "top_k", "top_p", "temperature")

SAMPLING_RULES = {
    "guidance_scale": "a finite number >= 1 (1 = no guidance; > 1 follows the condition more closely)",
    "temperature": "a finite number > 0",
    "top_k": "an integer >= 0 (0 = no top-k filtering)",
    "top_p": "a number in (0, 1]",
    "do_sample": "True or False",
}


def _unwrap(value: Any) -> Any:
    """0-d numpy arrays and tensors -> their Python scalar; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, torch.Tensor) and value.ndim == 0:
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


SAMPLING_CHECKS = {
    "guidance_scale": check_guidance_scale,
    "temperature": check_temperature,
    "top_k": check_top_k,
    "top_p": check_top_p,
    "do_sample": check_do_sample,
    "logits_processor": check_logits_processor,
}


def check_sampling_options(options: dict) -> dict:
    """Check every sampling option of ``options`` (None values mean "unset" and are kept as None); returns a copy with
    the values normalised (Python ``float`` / ``int`` / ``bool``). Other entries are passed through unchanged."""
    checked = dict(options)
    for name, check in SAMPLING_CHECKS.items():
        if checked.get(name) is not None:
            checked[name] = check(checked[name])
    return checked


def task_sampling_defaults(generation_config, task_name: Optional[str]) -> dict:
    """The sampling defaults ``generation_config.task_sampling[task_name]`` holds (guidance scale, top-k, top-p,
    temperature), or ``{}``. A folder's generation_config.json may tune them per task::

        "task_sampling": {"nuwa-text-to-image": {"guidance_scale": 3.0, "top_k": 8}}

    (transformers keeps such an extra field only in a file without ``"_from_model_config": true``: set
    ``generation_config._from_model_config = False`` before saving one.)
    """
    entry = task_sampling_entry(generation_config, task_name)
    return {key: entry[key] for key in TASK_SAMPLING_KEYS if entry.get(key) is not None}


def task_sampling_entry(generation_config, task_name: Optional[str]) -> dict:
    """``generation_config.task_sampling[task_name]`` as the folder has it (the sampling defaults above, and the
    pipelines' reranking: ``scorer``, ``num_candidates``), or ``{}``."""
    table = getattr(generation_config, "task_sampling", None)
    entry = table.get(task_name) if isinstance(table, dict) and task_name else None
    return entry if isinstance(entry, dict) else {}


# --------------------------------------------------------------------------------------------------------------------
# Generation from pixels to pixels


@dataclass
class NuwaVisualGenerationOutput(ModelOutput):
    """What :meth:`NuwaVisualGenerationMixin.generate_visual` returns.

    Args:
        tokens: ``(B * n, T, h, w)`` int64 visual codes, rows input-major (input 0's n rows first), known tokens
            included (the given frames, the tokens outside the region).
        pixel_values: ``(B * n, T, 3, H, W)`` the VQ-GAN's decoding of ``tokens`` in [-1, 1] (``NuwaProcessor.
            postprocess`` makes PIL images of them); None with ``return_pixels=False``.
    """

    tokens: Optional[torch.LongTensor] = None
    pixel_values: Optional[torch.FloatTensor] = None


class NuwaVisualGenerationMixin:
    """Generation from and to pixels, beside ``generate`` (which works on tokens). Mixed into
    :class:`~nuwa_hf.models.nuwa.NuwaForConditionalGeneration`."""

    @torch.no_grad()
    def token_grid_losses(self, labels: torch.LongTensor, batch_size: int = 32,
                          position_mask: Optional[torch.Tensor] = None, **condition) -> torch.Tensor:
        """Teacher-forced summed token loss (nats) of each token grid given its condition: ``labels`` ``(B, T, h, w)``
        and the condition as ``forward`` takes it (``input_ids`` ``(B, L)``, ``sketch_tokens`` / ``sketch_maps``, or
        ``condition_type="none"``) -> ``(B,)`` on the CPU, lower = more likely. ``batch_size`` rows per forward pass;
        ``position_mask`` ``(B, T, h, w)`` bool: sum only the losses of these positions (default all; every position
        is still read as context). What likelihood reranking (``scorer="likelihood"``), the attribute posterior
        (``scorer="attribute_posterior"``) and the condition gains (:mod:`nuwa_hf.evaluation.condition_gain`) read."""
        if position_mask is not None and tuple(position_mask.shape) != tuple(labels.shape):
            raise ValueError(f"position_mask must have the labels' shape {tuple(labels.shape)}, got "
                             f"{tuple(position_mask.shape)}.")
        losses = []
        for start in range(0, labels.shape[0], batch_size):
            part = {k: v[start:start + batch_size].to(self.device) if torch.is_tensor(v) else v
                    for k, v in condition.items()}
            target = labels[start:start + batch_size].to(self.device)
            logits = self(**part, labels=target, use_cache=False).logits.float()
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
            loss = loss.view(target.shape[0], -1)
            if position_mask is not None:
                loss = loss * position_mask[start:start + batch_size].to(loss.device).reshape(loss.shape)
            losses.append(loss.sum(dim=1).cpu())
        return torch.cat(losses)

    def visual_generation_config(self, task: Optional[str] = None, condition: str = "text",
                                 generation_config: Optional[GenerationConfig] = None, **options) -> GenerationConfig:
        """The ``GenerationConfig`` of one call: the caller's sampling options, checked, over the task's defaults.

        Precedence, per field: ``options`` (``do_sample``, ``temperature``, ``top_k``, ``top_p``,
        ``guidance_scale``; None = unset), then the fields ``generation_config`` sets, then
        ``self.generation_config.task_sampling[task]`` (its guidance only for a text or sketch condition, its sampling
        controls only when sampling), then the folder's ``guidance_scale`` for a text or sketch condition; every other
        field falls back to ``self.generation_config`` inside ``generate``, as in transformers. ``do_sample`` defaults
        to True (NUWA samples). The result holds only what was decided here, so calling this again on it (with no
        ``task``) gives the same config.

        Args:
            task: a task name, e.g. ``"nuwa-text-to-image"`` (or ``"T2I"``), whose ``task_sampling`` entry applies.
            condition: "text", "sketch" or "none" (the "None" condition has nothing to guide toward).

        Raises:
            ValueError / TypeError: a value against the rules of this module's docstring (the message names the
                option and the rule), guidance without a condition, or an option this method does not take.
        """
        unknown = sorted(set(options) - set(SAMPLING_OPTIONS))
        if unknown:
            raise TypeError(f"{unknown} are not sampling options; the generation config carries "
                            f"{list(SAMPLING_OPTIONS)}.")
        if generation_config is not None and not isinstance(generation_config, GenerationConfig):
            raise TypeError(f"generation_config must be a transformers GenerationConfig, got "
                            f"{type(generation_config).__name__}.")
        given = {name: getattr(generation_config, name, None) for name in SAMPLING_OPTIONS} if generation_config else {}
        given.update(options)
        chosen = {name: value for name, value in check_sampling_options(given).items() if value is not None}
        if condition == "none" and "guidance_scale" in chosen:
            raise ValueError(
                "guidance_scale needs a condition to guide toward, but this call has none: add a prompt, or leave "
                "guidance_scale unset."
            )
        chosen.setdefault("do_sample", True)
        if task is not None:
            from ...tasks import get_task_info

            # generation_config.json's "task_sampling" may tune sampling per task (e.g. milder guidance for images
            # than for videos); what the caller sets always wins.
            for key, value in task_sampling_defaults(self.generation_config, get_task_info(task).name).items():
                if (key == "guidance_scale" and condition == "none") or (key != "guidance_scale"
                                                                         and not chosen["do_sample"]):
                    continue  # no condition to guide by; greedy decoding ignores the sampling controls
                chosen.setdefault(key, value)
        default_guidance = getattr(self.generation_config, "guidance_scale", None)
        if "guidance_scale" not in chosen and condition != "none" and default_guidance not in (None, 1.0):
            chosen["guidance_scale"] = float(default_guidance)  # the folder's default guidance for conditioned tasks
        chosen = check_sampling_options(chosen)  # the task's and the folder's values obey the same rules
        config = copy.deepcopy(generation_config) if generation_config is not None else GenerationConfig()
        for name, value in chosen.items():
            setattr(config, name, value)
        return config

    @torch.no_grad()
    def generate_visual(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        sketch_maps: Optional[torch.Tensor] = None,
        pixel_values: Optional[torch.Tensor] = None,
        *,
        sketch_tokens: Optional[torch.LongTensor] = None,
        region_mask: Optional[torch.Tensor] = None,
        visual_grid=None,
        task: Optional[str] = None,
        generation_config: Optional[GenerationConfig] = None,
        num_return_sequences: int = 1,
        generator=None,
        logits_processor=None,
        streamer=None,
        return_pixels: bool = True,
        **kwargs,
    ) -> NuwaVisualGenerationOutput:
        """Generate images or videos from what a user gives: a text, a sketch, known pixels (first frames, or an image
        and the region to regenerate), decoded back to pixels. The pipelines are this call between their
        preprocessing and their postprocessing.

        Args:
            input_ids: ``(B, L)`` text ids (the processor's, padded to ``config.max_text_length``): the text condition.
            sketch_maps: ``(B, Ts, Hs, Ws)`` (or ``(B, Hs, Ws)``) sketch class ids, coded by the model's sketch VQ-GAN;
                or ``sketch_tokens`` ``(B, Ts, hs, ws)`` already coded. Neither text nor sketch: the "None" condition.
            pixel_values: ``(B, F, 3, H, W)`` (or ``(B, 3, H, W)``) in [-1, 1], coded by the model's VQ-GAN into known
                tokens: without ``region_mask`` the F first frames of the video (they are kept, the rest generated:
                video prediction and manipulation); with it, the picture the region is cut from.
            region_mask: ``(B, T, h, w)``, ``(B, h, w)`` or ``(h, w)`` bool on the token grid, True where tokens are
                regenerated (image completion and manipulation); the rest keeps ``pixel_values``' tokens.
            visual_grid: ``(T, h, w)`` to generate. T may exceed the trained frame count ``config.max_visual_grid[0]``:
                the video is then continued by a sliding window (:meth:`generate_long_video`; text or "None"
                condition). Default: the region mask's grid, else ``pixel_values``' token size (or the model's
                largest) with the trained frame count.
            task: a task name (or code) whose ``generation_config.task_sampling`` entry supplies defaults.
            generation_config: a ``GenerationConfig`` for this call; sampling options given as keyword arguments
                (``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``guidance_scale``) go over it. The merged,
                checked config is :meth:`visual_generation_config`'s.
            num_return_sequences: n rows per input (input-major, as transformers lays them out).
            generator: a ``torch.Generator`` (every row draws from it in turn), or a list with one per input (its n
                rows draw from it in turn) or one per row (B * n): then a row's tokens depend only on its own
                generator, not on the batch it shares (the pipelines' ``seed=``). None: torch's global generator.
            logits_processor: transformers ``LogitsProcessor`` list run at every step (after guidance and forcing).
            streamer: transformers' streamer, given each step's tokens (also during sliding).
            return_pixels: decode the tokens to pixels (default); False returns tokens only.
            **kwargs: sampling options (above) and anything ``generate`` takes (e.g. ``fast_decoding``, or
                ``negative_prompt_ids`` ``(B, L)``: a text that guidance steers away from).

        Returns:
            :class:`NuwaVisualGenerationOutput` with ``tokens (B*n, T, h, w)`` and ``pixel_values (B*n, T, 3, H, W)``.

        Example:
            >>> inputs = processor(videos=[first_frames], return_tensors="pt")    # pixel_values (1, F, 3, H, W)
            >>> out = model.generate_visual(pixel_values=inputs["pixel_values"], visual_grid=(8, 8, 8),
            ...                             task="nuwa-video-prediction", generator=torch.Generator().manual_seed(0))
            >>> out.tokens.shape, out.pixel_values.shape      # (1, 8, 8, 8), (1, 8, 3, 64, 64): given frames first
            >>> image = processor.postprocess(model.generate_visual(input_ids=ids, visual_grid=(1, 8, 8)).pixel_values)
        """
        device = self.device
        if input_ids is not None and (sketch_maps is not None or sketch_tokens is not None):
            raise ValueError("Give one condition: input_ids (text) or sketch_maps / sketch_tokens (sketch), not both.")
        if sketch_maps is not None:
            if sketch_tokens is not None:
                raise ValueError("Give sketch_maps or sketch_tokens, not both.")
            sketch_tokens = self.encode_sketches(sketch_maps.to(device))
        condition = "text" if input_ids is not None else "sketch" if sketch_tokens is not None else "none"
        sampling = {name: kwargs.pop(name) for name in SAMPLING_OPTIONS if name in kwargs}
        config = self.visual_generation_config(task, condition, generation_config, **sampling)
        rows_per_input = check_integer("num_return_sequences", num_return_sequences)

        max_frames = int(self.config.max_visual_grid[0])
        known = first_frames = mask = None
        if pixel_values is not None:
            pixel_values = pixel_values.to(device)
            if pixel_values.dim() == 4:
                pixel_values = pixel_values[:, None]
            if pixel_values.dim() != 5 or pixel_values.shape[2] != 3:
                raise ValueError(f"pixel_values must be (batch, frames, 3, height, width), got "
                                 f"{tuple(pixel_values.shape)}.")
        if region_mask is not None:
            if pixel_values is None:
                raise ValueError("region_mask marks what to regenerate in a picture: give pixel_values too.")
            mask = torch.as_tensor(region_mask, device=device)
            if mask.dtype != torch.bool:
                raise ValueError(f"region_mask must be boolean (True = regenerate), got {mask.dtype}.")
            batched = mask.dim() != 2  # (h, w): one region for every row, (T=1, h, w) for generate
            mask = mask[None] if not batched else mask[:, None] if mask.dim() == 3 else mask
            if mask.dim() != 3 + batched or mask.shape[-3] > pixel_values.shape[1]:
                raise ValueError(f"region_mask must be (batch, frames, h, w), (batch, h, w) or (h, w) with at most "
                                 f"pixel_values' {pixel_values.shape[1]} frames, got {tuple(region_mask.shape)}.")
            known = self.encode_videos(pixel_values[:, : mask.shape[-3]])
            if tuple(known.shape[2:]) != tuple(mask.shape[-2:]):
                raise ValueError(f"region_mask is {tuple(mask.shape[-2:])} tokens but the picture codes to "
                                 f"{tuple(known.shape[2:])}: make the mask on the token grid of pixel_values.")
            visual_grid = tuple(mask.shape[-3:]) if visual_grid is None else visual_grid
        elif pixel_values is not None:
            first_frames = self.encode_videos(pixel_values)
            visual_grid = (max_frames, *first_frames.shape[2:]) if visual_grid is None else visual_grid
        grid = tuple(int(v) for v in (visual_grid or self.config.max_visual_grid))
        if len(grid) != 3 or min(grid) < 1:
            raise ValueError(f"visual_grid must be (frames, height, width) of positive ints, got {visual_grid!r}.")
        frames, h, w = grid
        if first_frames is not None and first_frames.shape[1] >= frames:
            raise ValueError(f"pixel_values gives {first_frames.shape[1]} frame(s) and visual_grid asks for {frames}: "
                             "nothing is left to generate; ask for more frames.")

        # One row per output: each input's tensors repeated n times (input-major), its generator(s) with them.
        repeat = (lambda t: t.repeat_interleave(rows_per_input, dim=0)) if rows_per_input > 1 else (lambda t: t)
        conditions = {name: repeat(t.to(device)) for name, t in (("input_ids", input_ids),
                                                                 ("sketch_tokens", sketch_tokens)) if t is not None}
        negative = kwargs.pop("negative_prompt_ids", None)
        if negative is not None:  # one per input (or one for all): repeated with its input's rows
            kwargs["negative_prompt_ids"] = repeat(negative.to(device)) if negative.shape[0] > 1 else negative
        known, first_frames = (None if t is None else repeat(t) for t in (known, first_frames))
        mask = repeat(mask) if mask is not None and mask.dim() == 4 else mask
        sizes = {t.shape[0] for t in (*conditions.values(), known, first_frames) if t is not None}
        if len(sizes) > 1:
            raise ValueError(f"inconsistent batch sizes across the inputs: "
                             f"{sorted(s // rows_per_input for s in sizes)}.")
        rows = sizes.pop() if sizes else rows_per_input
        if isinstance(generator, (list, tuple)) and rows_per_input > 1 and len(generator) * rows_per_input == rows:
            generator = [g for g in generator for _ in range(rows_per_input)]  # one per input: its rows in turn
        options = dict(kwargs, generation_config=config, generator=generator, streamer=streamer)
        if logits_processor is not None:
            options["logits_processor"] = check_logits_processor(logits_processor)

        if frames > max_frames:
            if mask is not None:
                raise ValueError(f"A region is regenerated within the trained {max_frames} frame(s); visual_grid asks "
                                 f"for {frames}.")
            if condition == "none" and first_frames is None:
                raise ValueError("Sliding past the trained length under the 'None' condition continues given frames: "
                                 "pass pixel_values (the first frames).")
            # The window sees at most the last max_frames given frames; earlier ones are put back in front.
            given = first_frames.shape[1] if first_frames is not None else 0
            earlier = max(given - max_frames, 0)
            video = self.generate_long_video(
                **conditions, visual_grid=(max_frames, h, w), num_frames=frames - earlier, first_frames=first_frames,
                condition_type="none" if condition == "none" else None, **options,
            )
            tokens = torch.cat([first_frames[:, :earlier], video], dim=1) if earlier else video
        else:
            if condition == "none":
                conditions.update(condition_type="none", batch_size=rows)
            if first_frames is not None:  # the first frames are known, the rest is generated
                known = torch.zeros(rows, frames, h, w, dtype=torch.long, device=device)
                known[:, : first_frames.shape[1]] = first_frames
                mask = torch.zeros(frames, h, w, dtype=torch.bool, device=device)
                mask[first_frames.shape[1]:] = True
            if known is not None:
                conditions.update(known_tokens=known, generate_mask=mask)
            tokens = self.sequences_to_grid(self.generate(**conditions, visual_grid=grid, **options), grid)
        pixels = self.decode_visual_tokens(tokens) if return_pixels else None
        return NuwaVisualGenerationOutput(tokens=tokens, pixel_values=pixels)
