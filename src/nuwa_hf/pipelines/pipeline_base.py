"""What the eight NUWA pipelines share: transformers' ``Pipeline`` steps for a VQ-token generator.

A NUWA pipeline is a ``transformers.Pipeline``: its ``__call__`` is transformers' own, so one input gives one output, a
list gives a list, and datasets, generators, ``batch_size`` and ``num_workers`` work as in every transformers
pipeline. A task file only says how one input becomes a :class:`NuwaRequest` and how the decoder is driven for it
(:class:`DecodingPlan`); the three steps are here:

1. **preprocess** (one input, CPU only, safe in DataLoader workers): the prompt (common phrasings of a motion read in
   the captions' words, and for image manipulation an edit as the picture it asks for, unless
   ``rephrase_prompt=False``; without the words the model never saw, unless
   ``drop_unknown_words=False``) -> text ids ``(1, L)``, given
   images / frames -> ``pixel_values (1, F, 3, H, W)``, sketches -> ``sketch_maps (1, T, H, W)``, a region (a mask,
   a box, or a shortcut such as ``"bottom half"``) -> a boolean token mask, and the plan as a small integer tensor;
2. **_forward** (a batch of inputs, on the model's device): ``model.generate_visual`` (the model codes the given
   pixels and sketches with its own VQ-GANs, samples ``num_outputs_per_input x num_candidates`` rows per input with
   constrained decoding from the known pixels, slides past the trained length, and decodes to pixels) under ONE
   ``GenerationConfig`` (``model.visual_generation_config``: the call's sampling options over the task's defaults);
   then post-processing that needs the whole candidate set: with a scorer, the best candidates are kept (the paper
   keeps the best of 60 by CLIP), and the input's own pixels are pasted back outside the region / in given frames;
3. **postprocess** (one input): pixels -> PIL images / frame lists, numpy or torch arrays, or the tokens themselves.

Inputs of a batch are grouped by their plan (task condition, grid, known frames) inside ``_forward``, so one batch may
mix videos of different lengths; every input is generated as if it were alone: when the call is seeded, each input is
sampled from its own generator (``seed=s`` gives input ``i`` the seed ``s + i``; :mod:`nuwa_hf.pipelines.randomness`),
so an input's outputs do not depend on the batch it shares (unseeded, the rows of a batch share torch's generator).

One model folder (or Hub repo id) holds everything: the NUWA weights and config at its root, with the VQ-GAN (and,
for sketch tasks, the VQ-GAN-Seg) inside the model, and the processor files (tokenizer + image processor).
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import PIL.Image
import torch
from transformers import Pipeline
from transformers.generation.streamers import BaseStreamer

# One error type for every model-folder problem (missing or damaged files, another model type, a model without its
# VQ-GAN, missing processor files): the model raises it while loading, the pipelines and the CLI (exit 3) too.
from ..models.nuwa.loading_nuwa import NuwaModelFolderError
from ..tasks import TASK_CODE_OF, TASK_CODES, TASK_NAMES, get_task_info  # noqa: F401
from .work_limits import check_chunk_memory, check_frames, check_rows
from .regions import blank_pixels, grow_token_mask, region_to_token_mask, token_mask_to_pixels
from .backgrounds import LIGHT_BORDER, border_brightness
from ..models.nuwa.visual_generation_nuwa import SAMPLING_OPTIONS, task_sampling_entry
from .call_options import CALL_OPTIONS, NUM_OUTPUTS, OUTPUT_TYPES, merge_generate_kwargs, rename_old_count_names
from .randomness import SeededInput, generators_of, seed_from, with_call_randomness
from .notices import (
    CallNotices, completion_notice, crop_notice, fillers_only_error, light_background_notice, no_known_word_error,
    open_kinds_notice, prompt_notice, rephrase_notice, resize_notice, whole_region_notice,
)
from ..processing.phrasings import rephrase, rephrase_edit, unnamed_kinds
from ..processing.vocabulary import (
    content_words, known_numerals, known_words, vocabulary_by_kind, without_unknown_words,
)
from .instruction_completion import (
    KINDS, caption_form, completable_kinds, completed_caption, picture_captions, read_pictures,
)
from .paste_back import DEFAULT_SEAM, keep_original_pixels
from .reranking import (ATTRIBUTE_POSTERIOR, CONDITION_GAIN, LIKELIHOOD, MODEL_SCORER_NAMES, MODEL_SCORERS,
                        CandidateScorer)
from .attribute_posterior import ATTRIBUTE_KINDS, AttributeSwapper, posterior_scores
from .sampling_options import check_batch_size, check_call_options, check_count


def resolve_task_name(task: str) -> str:
    """``"text-to-video"``, ``"nuwa-text-to-video"`` or ``"T2V"`` -> ``"nuwa-text-to-video"``.

    Raises:
        ValueError: an unknown task, listing the known ones.
    """
    return get_task_info(task).name


# --------------------------------------------------------------------------------------------------------------------
# Loading the processor; checking the model's VQ-GANs


def load_nuwa_processor(name_or_path: str | os.PathLike, **hub_kwargs):
    """Load ``NuwaProcessor`` (tokenizer + image processor) from a model folder or repo id."""
    from ..processing import NuwaProcessor

    try:
        return NuwaProcessor.from_pretrained(name_or_path, **hub_kwargs)
    except (OSError, ValueError) as error:
        raise NuwaModelFolderError(
            f"Could not load the NUWA processor from {str(name_or_path)!r} ({error}). A NUWA model folder holds the "
            "processor files next to config.json: save them with `processor.save_pretrained(folder)`."
        ) from error


def check_visual_tokenizers(model, where: Any, needs_sketch_vqgan: bool) -> None:
    """Raise :class:`NuwaModelFolderError` naming the fix when the model lacks the VQ-GAN or the VQ-GAN-Seg."""
    where = f"The model {str(where)!r}" if where else "The model"
    if getattr(model, "vqgan", None) is None:
        raise NuwaModelFolderError(
            f"{where} has no VQ-GAN (config.vqgan_config is None): NUWA needs its visual tokenizer. Attach the one it "
            "was trained with, `model.set_visual_tokenizers(vqgan=NuwaVQGAN.from_pretrained(...))`, and save the model "
            "again."
        )
    if needs_sketch_vqgan and getattr(model, "sketch_vqgan", None) is None:
        raise NuwaModelFolderError(
            f"{where} has no sketch VQ-GAN (config.sketch_vqgan_config is None): sketch tasks need a NuwaSegVQGAN. "
            "Attach it with `model.set_visual_tokenizers(sketch_vqgan=...)`, or use a model trained for sketches."
        )


# --------------------------------------------------------------------------------------------------------------------
# One input, normalised, and how the decoder runs for it


_REQUIRED = object()  # no default: a missing request-dict key is an error


@dataclass
class NuwaRequest:
    """One input of a pipeline call, normalised.

    prompt: the text condition (or None). image: RGB PIL image. video: list of RGB PIL frames. sketch: class ids
    ``(H, W)`` or ``(T, H, W)``. region: what to regenerate in ``image`` (mask / box / shortcut, see
    :func:`~nuwa_hf.pipelines.regions.region_to_token_mask`). generator: a ``torch.Generator`` for this input's
    outputs, or a list with one per output row (diffusers' convention; ``generator=[...]`` of a call lands here).
    notes: what the task's ``make_request`` did not honour of this input (e.g. frames left out), said as notices.
    blank_region: black out the region's pixels before the VQ-GAN encodes the picture, so no kept token carries what
    was under the region (diffusers' inpainting blanks the masked image the same way), and the paste-back's seam
    blends the blanked picture: the output depends on the known part alone. border: also regenerate this many token
    rows / columns around the region (its boundary tokens, which were encoded seeing the region); outside the region
    the input's pixels are pasted back as always.
    """

    prompt: Optional[str] = None
    image: Optional[PIL.Image.Image] = None
    video: Optional[list] = None
    sketch: Optional[np.ndarray] = None
    region: Any = None
    generator: Any = None
    notes: tuple = ()
    blank_region: bool = False
    border: int = 0


@dataclass
class DecodingPlan:
    """How the decoder runs for one request.

    condition: "text", "sketch" or "none". frames: frames T of the grid to generate (1 for images).
    known_frames: for video tasks with given frames (prediction, manipulation), how many leading frames are known.
    regions: for image tasks with a region, use ``NuwaRequest.region``.
    output_from_frame: drop the frames before this one from the output (e.g. the given frames of a prediction).
    """

    condition: str
    frames: int = 1
    known_frames: int = 0
    regions: bool = False
    output_from_frame: int = 0


CONDITIONS = ("none", "text", "sketch")

# The plan travels from preprocess to _forward as one int64 row per input (tensors batch in DataLoaders; the columns):
_PLAN_COLUMNS = ("condition", "frames", "known_frames", "regions", "output_from_frame", "sketch_frames")


# --------------------------------------------------------------------------------------------------------------------
# Call options

# What the work limit on frames names for each video task (see work_limits.check_frames).
FRAMES_ARGUMENT = {"nuwa-video-prediction": "num_condition_frames + num_frames_to_predict",
                   "nuwa-sketch-to-video": "The video sketch"}
DEFAULT_BATCH_SIZE = 8  # inputs per forward pass, unless pipeline(..., batch_size=) or the call says otherwise


class _TokenProgress(BaseStreamer):
    """A tqdm bar advanced by generate(): one step per generated token position."""

    def __init__(self, bar):
        self.bar = bar
        self.first = True

    def put(self, value):
        if self.first:  # the decoder prompt (<bos> and any known prefix)
            self.first = False
            return
        self.bar.update(1)

    def end(self):
        self.first = True


def is_prepared_input(value: Any) -> bool:
    """Inputs a task's ``__call__`` passes on as they are: request dicts, a list of them, or a stream of inputs
    (a generator, a torch / 🤗 datasets dataset) whose items ``preprocess`` reads one by one."""
    if isinstance(value, dict) or isinstance(value, types.GeneratorType):
        return True
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, dict) for item in value):
        return True
    return isinstance(value, torch.utils.data.Dataset) or _is_hf_dataset(value)


def _is_hf_dataset(value: Any) -> bool:
    return type(value).__module__.startswith("datasets.") and type(value).__name__ in ("Dataset", "IterableDataset")


class _DatasetRows(torch.utils.data.Dataset):
    """A 🤗 ``datasets.Dataset`` seen as a torch map-style dataset of its rows (dicts), which transformers' pipelines
    iterate lazily with ``batch_size`` and ``num_workers``."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index]


# --------------------------------------------------------------------------------------------------------------------
# The base pipeline


# Names other libraries use for an option of these pipelines (diffusers, other text-to-image front ends).
_OTHER_NAMES = {"text": "prompt", "prompts": "prompt", "caption": "prompt", "num_images": "num_outputs_per_input",
                "num_return_sequences": "num_outputs_per_input", "guidance": "guidance_scale",
                "cfg_scale": "guidance_scale", "images": "image", "mask_image": "mask"}


# Options of diffusion pipelines that an autoregressive model has no use for: why, and what to do instead. ``{size}``
# is the model's output size in pixels.
_DIFFUSION_ONLY = {
    "height": "NUWA draws at the size it was trained at ({size} pixels); resize the result for another size "
              "(e.g. image.resize((256, 256), PIL.Image.NEAREST))",
    "num_inference_steps": "NUWA is autoregressive, not a diffusion model: it draws its token grid one token after "
                           "another and has no denoising steps to set (do_sample, top_k, temperature and "
                           "guidance_scale are its sampling settings)",
    "strength": "the region given by mask= is redrawn whole and the rest kept; there is no partial-noise strength",
}
for _alias, _key in (("width", "height"), ("timesteps", "num_inference_steps"), ("eta", "num_inference_steps"),
                     ("scheduler", "num_inference_steps")):
    _DIFFUSION_ONLY[_alias] = _DIFFUSION_ONLY[_key]


def _diffusion_only_hint(unknown: list, size: str) -> str:
    """`` "; height=, width=: NUWA draws at ..."`` for the diffusion options among ``unknown``, or ``""``."""
    reasons: dict = {}
    for name in unknown:
        if name in _DIFFUSION_ONLY:
            reasons.setdefault(_DIFFUSION_ONLY[name].format(size=size), []).append(f"{name}=")
    return "".join(f"; {', '.join(names)}: {reason}" for reason, names in reasons.items())


def misnamed_hint(given: dict, wanted: str) -> str:
    """``" (got text=; did you mean prompt=?)"`` when ``given`` (a call's keyword arguments) holds another library's
    name for the input ``wanted``, else ``""``: for the "needs a prompt" errors, which Python or the task raise before
    the unexpected-argument check would name it."""
    other = [name for name in given if _OTHER_NAMES.get(name) == wanted]
    return f" (got {', '.join(n + '=' for n in other)}; did you mean {wanted}=?)" if other else ""


def _did_you_mean(unknown: list, known: list) -> str:
    """``" (did you mean prompt=, guidance_scale=?)"`` for misnamed options, or ``""``."""
    import difflib

    guesses = []
    for name in unknown:
        guess = _OTHER_NAMES.get(name) or next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.75)), None)
        if guess and f"{guess}=" not in guesses:
            guesses.append(f"{guess}=")
    return f" (did you mean {', '.join(guesses)}?)" if guesses else ""


class NuwaPipeline(Pipeline):
    """Base class of the eight NUWA pipelines (see the module docstring).

    Subclasses set ``task_name`` (the rest of what a task is comes from the task table), list their per-call arguments that shape a request in
    ``request_options``, implement :meth:`make_request` (one input -> :class:`NuwaRequest` + :class:`DecodingPlan`),
    and give ``__call__`` a signature with the task's arguments that turns them into inputs for transformers'
    ``__call__``.

    Init arguments beyond transformers' (model, processor, device, batch_size, num_workers, ...):
        scorer: reranking scorer (see :class:`~nuwa_hf.pipelines.reranking.CandidateScorer`); with one, each output
            is the best of ``num_candidates`` samples. Also settable per call.
        any call option (``do_sample, temperature, top_k, top_p, guidance_scale, seed, num_candidates,
            output_type, ...``): defaults for every call.
    """

    task_name: str = ""
    # Read from the task table (nuwa_hf.tasks) for each task class:
    makes_video: bool = False
    needs_sketch_vqgan: bool = False
    takes_prompt: bool = False  # a text condition, required or optional
    # The prompt is an edit of a given picture (image manipulation): with rephrase_prompt, what the edit replaces is left
    # out ("turn the 6 into an 8" -> "an 8"), and a prompt that names no digit / colour is completed from the model's
    # reading of the picture (complete_instruction; or, with it off, told the model may draw any).
    reads_edits: bool = False
    # Call arguments that shape a request (e.g. num_frames); they go to make_request.
    request_options: tuple = ()

    # Components: transformers loads the processor with AutoProcessor (soft: a failure falls back to our loader, which
    # says what is missing); no tokenizer / image processor of their own.
    _load_processor = None
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False
    _pipeline_calls_generate = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.task_name:
            task = get_task_info(cls.task_name)
            cls.makes_video, cls.needs_sketch_vqgan = task.makes_video, task.condition == "sketch"
            cls.takes_prompt = "prompt" in task.inputs + task.optional_inputs

    def __init__(self, model, processor=None, scorer=None, **kwargs):
        super().__init__(model=model, processor=processor, **kwargs)
        name_or_path = getattr(self.model, "name_or_path", None) or getattr(self.model.config, "_name_or_path", None)
        check_visual_tokenizers(self.model, name_or_path, self.needs_sketch_vqgan)
        if self.processor is None:
            if not name_or_path:
                raise NuwaModelFolderError(
                    "No processor was given and the model does not say which folder it came from: pass "
                    "processor=NuwaProcessor.from_pretrained(folder)."
                )
            self.processor = load_nuwa_processor(name_or_path)
        self.model.eval()
        # transformers' DataLoader collation pads `input_ids` with the tokenizer; the image processor stands in for
        # a feature extractor (our tensors have one shape per task, so nothing else is padded).
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        self.image_processor = getattr(self.processor, "image_processor", None)
        self.scorer = CandidateScorer(scorer) if scorer is not None else None
        if self._batch_size is None:
            self._batch_size = DEFAULT_BATCH_SIZE
        self._progress_bar_config: dict = {}

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Write a complete model folder: NUWA with its VQ-GANs (safetensors) and the processor files.

        (transformers' ``Pipeline.save_pretrained`` does not save the processor, and would copy this pipeline's
        source next to the weights; a NUWA folder needs no pipeline code.)
        """
        os.makedirs(save_directory, exist_ok=True)
        self.model.save_pretrained(save_directory, safe_serialization=True, **kwargs)
        self.processor.save_pretrained(save_directory)

    # ---------------------------------------------------------------------------------------------------------------
    # Configuration

    def set_progress_bar_config(self, **kwargs) -> None:
        """Options for the tqdm progress bar over generated tokens, e.g. ``disable=True`` (as in diffusers)."""
        self._progress_bar_config = dict(kwargs)

    @property
    def config(self):
        return self.model.config

    @property
    def vqgan(self):
        return self.model.vqgan

    @property
    def sketch_vqgan(self):
        return self.model.sketch_vqgan

    @property
    def num_sketch_classes(self) -> int | None:
        """The classes of the model's sketch VQ-GAN (a drawing in their colours is read as a sketch); None without one."""
        sketch_vqgan = getattr(self.model, "sketch_vqgan", None)
        return int(sketch_vqgan.num_classes) if sketch_vqgan is not None else None

    def token_grid(self) -> tuple[int, int]:
        """(h, w) of the visual token grid: the processor's output size over the VQ-GAN's down-sampling factor."""
        height, width = self.processor.image_processor.output_size
        factor = self.vqgan.downsample_factor
        grid = (int(height) // factor, int(width) // factor)
        max_grid = tuple(self.config.max_visual_grid)
        if grid[0] > max_grid[1] or grid[1] > max_grid[2]:
            raise NuwaModelFolderError(
                f"The processor crops to {width}x{height} pixels = {grid[1]}x{grid[0]} tokens, but the model's largest "
                f"visual grid is {max_grid[2]}x{max_grid[1]}: the processor and the model do not belong together."
            )
        return grid

    @property
    def max_frames(self) -> int:
        return int(self.config.max_visual_grid[0])

    # ---------------------------------------------------------------------------------------------------------------
    # What a task defines

    def make_request(self, item: Any, **request_options) -> tuple[NuwaRequest, DecodingPlan]:
        """One input (a request dict, or the task's own single-input form) -> the request and its plan."""
        raise NotImplementedError

    @staticmethod
    def _field(item: Any, *names: str, default: Any = _REQUIRED) -> Any:
        """``item[name]`` for the first of ``names`` a request dict has (``default`` when none; without a default a
        dict with none of them is a ``ValueError`` naming its keys and the one expected, e.g. a dataset whose captions
        are in a ``caption`` column, which would otherwise fail later as 'the prompt must be a string, got None')."""
        for name in names:
            if name in item:
                return item[name]
        if default is not _REQUIRED:
            return default
        expected = " or ".join(repr(name) for name in names)
        keys = sorted(map(str, item))
        old_name = repr(keys[0]) if len(keys) == 1 else "..."
        label = names[0].replace("_", " ")
        raise ValueError(
            f"This input is a dict with the keys {keys} but no {expected}: name its {label} {names[0]!r} (a "
            f"datasets.Dataset column: `dataset.rename_column({old_name}, {names[0]!r})`), or pass the {label} itself."
        )

    # ---------------------------------------------------------------------------------------------------------------
    # transformers' call

    def __call__(self, inputs, **kwargs):
        """transformers' ``Pipeline.__call__`` (one input -> one output, a list -> a list, a dataset or generator ->
        an iterator), after what only a NUWA call needs: 🤗 datasets are read as datasets of rows, an empty list is
        refused, a list given as ``generator=`` is dealt out to the inputs (one per input, or one per output row),
        and ``seed=s`` (or one seed drawn from a single ``generator=``) gives input ``i`` its own seed ``s + i``."""
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, list) and not inputs:
            raise ValueError("Got an empty list of inputs: pass at least one.")
        if _is_hf_dataset(inputs):
            inputs = _DatasetRows(inputs) if type(inputs).__name__ == "Dataset" else (row for row in inputs)
        kwargs = rename_old_count_names(kwargs)  # here, so the FutureWarning points at the caller's line
        if kwargs.get("batch_size") is not None:
            kwargs["batch_size"] = check_batch_size(kwargs["batch_size"])
        def rows_per_input():  # outputs x candidates: what one generator per row is counted against
            merged = {**self._forward_params, **kwargs}
            return check_count("num_outputs_per_input", merged.get(NUM_OUTPUTS) or 1) * self._reranking(merged)[1]

        inputs = with_call_randomness(inputs, kwargs, self._forward_params, rows_per_input)
        kwargs["_notices"] = CallNotices()
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, **kwargs):
        options = merge_generate_kwargs(rename_old_count_names(kwargs))
        notices = options.pop("_notices", None)
        request = {name: options.pop(name) for name in self.request_options if name in options}
        unknown = sorted(set(options) - set(CALL_OPTIONS))
        if unknown:
            known = sorted(set(CALL_OPTIONS) | set(self.request_options))
            height, width = self.processor.image_processor.output_size
            raise TypeError(f"Unexpected argument(s) {unknown} for {type(self).__name__}{_did_you_mean(unknown, known)}"
                            f"{_diffusion_only_hint(unknown, f'{width}x{height}')}; known: {known}.")
        options = check_call_options(options)  # the sampling options by the model's rules, then seeds and counts
        if options.get("generation_config") is not None:  # its fields obey the same rules
            self.model.visual_generation_config(generation_config=options["generation_config"])
        if options.get(NUM_OUTPUTS) is not None:
            options[NUM_OUTPUTS] = check_count("The number of outputs per input", options[NUM_OUTPUTS])
        for flag in ("allow_large", "keep_original_pixels", "strict", "drop_unknown_words", "rephrase_prompt",
                     "complete_instruction"):
            if flag in options and not isinstance(options[flag], bool):
                raise TypeError(f"{flag} must be True or False, got {options[flag]!r}.")
        if "seam" in options and (isinstance(options["seam"], bool) or not isinstance(options["seam"], int)
                                  or not 0 <= options["seam"] <= 16):
            raise ValueError(f"seam must be a whole number of pixels in [0, 16], got {options['seam']!r}.")
        if "output_type" in options and options["output_type"] not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {options['output_type']!r}.")
        if options.get("seed") is not None and options.get("generator") is not None:
            raise ValueError("Pass either seed= or generator=, not both.")
        generator = options.get("generator")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or a list of them (one per input, or one per output row), "
                f"got {type(generator).__name__}."
            )
        check_rows(options.get(NUM_OUTPUTS) or 1, options.get("num_candidates") or 1, bool(options.get("allow_large")))
        if "scorer" in options and options["scorer"] is not None:
            options["scorer"] = CandidateScorer(options["scorer"])
        preprocess = dict(request)
        if "allow_large" in options:
            preprocess["allow_large"] = options["allow_large"]
        for flag in ("strict", "drop_unknown_words", "rephrase_prompt"):
            if flag in options:
                preprocess[flag] = options[flag]
        if "complete_instruction" in options:
            complete = options.pop("complete_instruction")
            if not self.reads_edits:
                raise TypeError(f"complete_instruction completes an edit instruction that names no digit or colour from "
                                f"the picture it edits; {type(self).__name__} edits no picture with an instruction "
                                "(only image manipulation does).")
            preprocess["complete_instruction"] = complete
        negative = options.pop("negative_prompt", None)
        if negative is not None:
            if not self.takes_prompt:
                raise TypeError(f"negative_prompt is a text for guidance to steer away from; {type(self).__name__} "
                                "takes no prompt (the text tasks take one: text-to-image, text-to-video, image and "
                                "video manipulation).")
            if not isinstance(negative, str) or not negative.strip():
                raise TypeError(f"negative_prompt must be a non-empty string, got {negative!r}.")
            guidance = options.get("guidance_scale")
            if guidance is not None and float(guidance) <= 1.0:
                raise ValueError(f"negative_prompt acts through classifier-free guidance, which guidance_scale="
                                 f"{guidance} turns off: pass guidance_scale > 1 (e.g. 3), or leave negative_prompt "
                                 "out.")
            preprocess["negative_prompt"] = negative
        if notices is not None:
            options["_notices"] = notices
        postprocess = {k: options[k] for k in ("output_type", NUM_OUTPUTS) if k in options}
        return preprocess, options, postprocess

    # ---------------------------------------------------------------------------------------------------------------
    # 1. preprocess: one input -> tensors with a batch axis of 1 (CPU only)

    def preprocess(self, inputs: Any, allow_large: bool = False, strict: bool = False, drop_unknown_words: bool = True,
                   rephrase_prompt: bool = True, negative_prompt: Optional[str] = None,
                   complete_instruction: bool = True, **request_options) -> dict:
        seed = None
        if isinstance(inputs, SeededInput):  # a seeded call: this input's own seed (randomness.with_input_seeds)
            inputs, seed = inputs.item, inputs.seed
        request, plan = self.make_request(inputs, **request_options)
        if plan.condition not in CONDITIONS:
            raise ValueError(f"unknown condition {plan.condition!r}")
        # Bounded work (nuwa_hf.pipelines.work_limits): checked before anything is coded or generated.
        check_frames(plan.frames, self.max_frames, FRAMES_ARGUMENT.get(self.task_name, "num_frames"), allow_large)
        # the prompt with common phrasings of a motion in the captions' words (rephrase_prompt), then without the words
        # the model never saw (what it reads when drop_unknown_words), found once
        text, rephrased, edits, read, unknown = request.prompt, [], [], request.prompt, []
        if self.takes_prompt and request.prompt:
            if rephrase_prompt:
                text, rephrased = rephrase(self.processor.tokenizer, request.prompt)
                if self.reads_edits:
                    text, edits = rephrase_edit(text)
            read, unknown = without_unknown_words(self.processor.tokenizer, text)
        notes = [rephrase_notice(request.prompt, text, rephrased, edits)] if rephrased or edits else []
        notes += self._notices_of(request, text, unknown, read if drop_unknown_words else None)
        negative_read = None
        if negative_prompt is not None:  # unknown words left out and said as for the prompt (not rephrased)
            left, negative_unknown = without_unknown_words(self.processor.tokenizer, negative_prompt)
            notes.append(prompt_notice(negative_prompt, negative_unknown, left if drop_unknown_words else None,
                                       what_prompt="negative prompt"))
            if drop_unknown_words:
                self._refuse_no_known_word(negative_prompt, left, negative_unknown, what_prompt="negative prompt",
                                           asks="say what to steer away from")
            negative_read = left if drop_unknown_words else negative_prompt
        notes = [note for note in notes if note]
        mask = None
        whole = False
        if plan.regions:
            mask = region_to_token_mask(request.region, request.image.size, self.token_grid(),
                                        self.processor.image_processor)
            if not bool(mask.any()):
                raise ValueError("The region covers no token: make the mask or box larger.")
            whole = bool(mask.all())
            if whole:
                notes.append(whole_region_notice(read if drop_unknown_words else text))
        # the pictures as the model reads them, made once: for the light-background check, then for the model
        pixels = None
        if plan.regions:
            pixels = self.processor(images=[request.image], return_tensors="pt")["pixel_values"]  # (1, 1, 3, H, W)
        elif plan.known_frames:
            pixels = self.processor(videos=[request.video[: plan.known_frames]], return_tensors="pt")["pixel_values"]
        if pixels is not None:
            notes.extend(self._light_background_notes(pixels[0], mask, "image" if plan.regions else "video"))
        if strict and notes:
            raise ValueError(notes[0] + " (strict=True turns this warning into an error.)")
        completing: list = []  # the kinds _forward fills from the model's reading of the picture
        given = read if drop_unknown_words else text
        if self.reads_edits and request.prompt and not whole:  # advice, not refused by strict (notices.py)
            if complete_instruction:
                completing = completable_kinds(self.processor.tokenizer, given)
            open_kinds, example = unnamed_kinds(self.processor.tokenizer, given)
            if given.strip() and not completing:  # completed: _forward says so instead (completion_notice)
                notes.append(open_kinds_notice(request.prompt, given, open_kinds, example))
            notes = [note for note in notes if note]
        sketch_frames = 0
        model_inputs: dict[str, Any] = {}
        if self.takes_prompt:
            if drop_unknown_words:
                self._check_words_left(request.prompt, read, unknown)
            model_inputs["input_ids"] = self._text_ids(read if drop_unknown_words else text)
            if negative_read is not None:
                model_inputs["negative_input_ids"] = self._text_ids(negative_read)
        if request.sketch is not None:
            model_inputs["sketch_maps"], sketch_frames = self._sketch_maps(request.sketch)
        if plan.regions:  # pixels (1, 1, 3, H, W), made above
            if request.blank_region:  # the region's pixels reach neither the tokens nor the paste-back's seam
                pixels = blank_pixels(pixels, mask)
            model_inputs["pixel_values"] = pixels
            model_inputs["generate_mask"] = grow_token_mask(mask, request.border)[None, None]  # what is sampled
            model_inputs["region_mask"] = mask[None, None]  # the region itself (the paste-back's)
        elif plan.known_frames:  # pixels (1, known_frames, 3, H, W), made above
            model_inputs["pixel_values"] = _pad_frames(pixels, max(self.max_frames, plan.known_frames))
        columns = dict(condition=CONDITIONS.index(plan.condition), frames=plan.frames, known_frames=plan.known_frames,
                       regions=int(plan.regions), output_from_frame=plan.output_from_frame, sketch_frames=sketch_frames)
        model_inputs["plan"] = torch.tensor([[columns[name] for name in _PLAN_COLUMNS]], dtype=torch.long)
        if request.generator is not None:
            if isinstance(request.generator, (list, tuple)):
                seeds = [seed_from(g, f"generator[{i}]") for i, g in enumerate(request.generator)]
                model_inputs["row_seeds"] = torch.tensor([seeds], dtype=torch.long)
            else:
                model_inputs["input_seed"] = torch.tensor([seed_from(request.generator, "generator")])
        elif seed is not None:
            model_inputs["input_seed"] = torch.tensor([seed])
        model_inputs["prompt"] = request.prompt
        if self.reads_edits:  # every input of the task carries them (DataLoader batches need one set of keys)
            model_inputs["open_kinds"] = torch.tensor([[int(kind in completing) for kind in KINDS]], dtype=torch.long)
            model_inputs["read_prompt"] = given or ""
        model_inputs["notices"] = "\n".join(notes)
        return model_inputs

    def _notices_of(self, request: NuwaRequest, text: Optional[str], unknown: list, read: Optional[str]) -> list:
        """What this input asks that the model will not honour (notices.py): the ``unknown`` words of the prompt as
        rephrased (``text``; left out, the model reading ``read``, or given to it when ``read`` is None), big resizes,
        centre crops that leave part of a picture out."""
        notes = []
        if self.takes_prompt and request.prompt:
            notes.append(prompt_notice(text, unknown, read))
        image_processor = self.processor.image_processor
        height, width = image_processor.output_size
        target = (int(width), int(height))
        sizes = []
        if request.image is not None:
            sizes.append(("image", request.image.size))
        if request.video:
            sizes.append(("video", request.video[0].size))
        if request.sketch is not None and np.ndim(request.sketch) >= 2:
            h, w = np.shape(request.sketch)[-2:]
            sizes.append(("sketch", (int(w), int(h))))
        for what, size in sizes:
            notes.append(resize_notice(what, size, target))
            if image_processor.do_center_crop:
                resized_height, resized_width = image_processor.resized_size(size[1], size[0])
                notes.append(crop_notice(what, size, (resized_width, resized_height), target))
        notes.extend(request.notes)
        return [note for note in notes if note]

    @staticmethod
    def _light_background_notes(pixels: torch.Tensor, mask: Optional[torch.Tensor], what: str) -> list:
        """The light-background notice (notices.py) for the given picture(s) ``pixels`` ``(T, 3, H, W)`` in [-1, 1]
        when any is on a light background (:mod:`.backgrounds`), the region of the token ``mask`` ``(h, w)`` (True =
        regenerated; None: no region) left out of the border read; else ``[]``."""
        ignore = None
        if mask is not None:
            height, width = pixels.shape[-2:]
            ignore = torch.from_numpy(token_mask_to_pixels(mask, (width, height)))
        levels = [border_brightness(frame, ignore) for frame in pixels]
        light = [level for level in levels if level >= LIGHT_BORDER]
        if not light:
            return []
        frames = None if what == "image" else (len(light), len(levels))
        return [light_background_notice(what, max(light), frames)]

    def _check_words_left(self, prompt: Optional[str], read: Optional[str], unknown: list) -> None:
        """Refuse a prompt that leaving out the words the model never saw (``unknown``) empties or reduces to fillers
        of the training captions (``read`` is what is left): it would be generated from nothing the user asked for.
        Both errors list the words the model knows. A prompt all of whose words the model knows is read as typed
        ("a digit" is a fair request for any digit); only a reading the pipeline made is checked for content."""
        if not prompt:
            return
        self._refuse_no_known_word(prompt, read, unknown)
        tokenizer = self.processor.tokenizer
        if unknown and not content_words(tokenizer, read):
            kinds = "; ".join(f"{kind}: {', '.join(items)}" for kind, items in vocabulary_by_kind(tokenizer).items()
                              if items)
            raise ValueError(fillers_only_error(prompt, read, unknown, kinds))

    def _refuse_no_known_word(self, prompt: str, read: str, unknown: list, **wording) -> None:
        """A text none of whose words the model saw (``read``, what leaving out the ``unknown`` ones leaves, is empty)
        is an error listing the words it knows; ``wording``: ``no_known_word_error``'s ``what_prompt`` / ``asks``."""
        if not read.strip():
            tokenizer = self.processor.tokenizer
            raise ValueError(no_known_word_error(prompt, unknown, known_words(tokenizer) + known_numerals(tokenizer),
                                                 **wording))

    def _text_ids(self, prompt: Optional[str]) -> torch.Tensor:
        """The prompt -> ids ``(1, L)`` padded to the model's text length (pad tokens are ordinary tokens of NUWA's
        fixed-length text, so this is what the model does itself); no prompt -> a row of pad ids (the row then runs
        under the "None" condition and its ids are not read)."""
        limit = int(self.config.max_text_length)
        limit = min(limit, getattr(self.processor, "text_max_length", None) or limit)
        if prompt is None:
            return torch.full((1, limit), int(self.config.text_pad_token_id), dtype=torch.long)
        return self.processor(text=[prompt], max_length=limit, padding="max_length", return_tensors="pt")["input_ids"]

    def _sketch_maps(self, sketch: np.ndarray) -> tuple[torch.Tensor, int]:
        """A class map ``(H, W)`` or ``(T, H, W)`` -> ``sketch_maps (1, T_max, H', W')`` (padded over frames) and T."""
        num_classes = int(self.sketch_vqgan.num_classes)
        if sketch.size and int(sketch.max()) >= num_classes:
            raise ValueError(
                f"The sketch holds class id {int(sketch.max())} but the model's sketch VQ-GAN knows {num_classes} "
                f"classes (ids 0..{num_classes - 1}): map the extra labels to known classes."
            )
        maps = self.processor(sketches=[sketch], return_tensors="pt")["sketch_maps"]
        if maps.dim() == 3:
            maps = maps[:, None]
        frames = maps.shape[1]
        max_sketch_frames = int(self.config.max_sketch_grid[0])
        if frames > max_sketch_frames:
            raise ValueError(
                f"The sketch has {frames} frames but the model takes at most {max_sketch_frames}: give fewer frames."
            )
        return _pad_frames(maps, max_sketch_frames), frames

    # ---------------------------------------------------------------------------------------------------------------
    # 2. _forward: a batch of inputs -> tokens and pixels of every output (on the model's device)

    def forward(self, model_inputs, **forward_params):
        # transformers' forward moves every tensor to the device and back; _forward places its own tensors, and its
        # outputs come back on the CPU.
        with self.device_placement(), torch.inference_mode():
            outputs = self._forward(model_inputs, **forward_params)
        return {key: value.cpu() for key, value in outputs.items()}

    def _forward(self, model_inputs: dict, **options) -> dict:
        """Returns ``tokens (B, n, T, h, w)`` (int64, padded over T), ``frames (B,)`` (each input's T) and, unless
        only tokens are asked for, ``pixels (B, n, T, 3, H, W)`` in [-1, 1]; n = ``num_outputs_per_input``."""
        from tqdm.auto import tqdm

        plan = model_inputs["plan"]
        batch = plan.shape[0]
        said = model_inputs.get("notices")
        (options.get("_notices") or CallNotices()).warn(
            line for text in (said if isinstance(said, list) else [said or ""]) for line in text.split("\n"))
        prompts = model_inputs.get("prompt")
        prompts = list(prompts) if isinstance(prompts, list) else [prompts] * batch
        if "open_kinds" in model_inputs and bool(model_inputs["open_kinds"].any()):
            self._complete_instructions(model_inputs, prompts, options.get("_notices") or CallNotices())
        num_outputs = options.get(NUM_OUTPUTS) or 1
        want_pixels = options.get("output_type", "pil") != "tokens"

        groups: dict[tuple, list[int]] = {}
        for index in range(batch):
            groups.setdefault(tuple(plan[index].tolist()), []).append(index)
        reranking = {}  # each group's (scorer, candidates), checked for every group before any is generated
        for key in groups:
            spec = dict(zip(_PLAN_COLUMNS, key))
            scorer, num_candidates = reranking[key] = self._reranking(options, spec["frames"],
                                                                      CONDITIONS[spec["condition"]])
            if num_candidates > 1 and scorer is None:
                raise ValueError(
                    f"num_candidates={num_candidates} asks for reranking but no scorer is configured: pass scorer=... "
                    "(e.g. a TextVisualDualEncoder or a callable scorer(candidates, prompt)), or num_candidates=1."
                )
            if num_candidates > 1 and scorer.uses_model:
                self._check_model_scorer(scorer.kind, spec)
                if scorer.kind == ATTRIBUTE_POSTERIOR and (options.get("scorer") or self.scorer) is not None:
                    self._check_attributes_named(model_inputs, groups[key], prompts)
        h, w = self.token_grid()
        steps = sum(self._steps(dict(zip(_PLAN_COLUMNS, key)), h, w) for key in groups)  # one generate() a group
        bar_config = {"desc": f"{self.task_name or 'NUWA'}: tokens", "leave": False, **self._progress_bar_config}
        tokens_of: list = [None] * batch
        pixels_of: list = [None] * batch
        with tqdm(total=steps, **bar_config) as bar:
            for key, rows in groups.items():
                spec = dict(zip(_PLAN_COLUMNS, key))
                scorer, num_candidates = reranking[key]
                per_input = num_outputs * num_candidates
                chunk = self._select(model_inputs, rows)
                out = self._generate_group(chunk, spec, per_input, options, bar, want_pixels or num_candidates > 1)
                tokens = out.tokens[:, spec["output_from_frame"]:]
                tokens = tokens.reshape(len(rows), per_input, *tokens.shape[1:])
                pixels = out.pixel_values
                if pixels is not None:
                    pixels = pixels[:, spec["output_from_frame"]:]
                    pixels = pixels.reshape(len(rows), per_input, *pixels.shape[1:])  # (inputs, n, T, 3, H, W)
                    if options.get("keep_original_pixels", True) and (spec["regions"] or spec["known_frames"]):
                        # the input's own pixels outside the region / in the given frames (paste_back)
                        masks = chunk["region_mask"][:, 0] if spec["regions"] else None
                        pixels = keep_original_pixels(pixels, chunk["pixel_values"], token_masks=masks,
                                                      known_frames=spec["known_frames"],
                                                      output_from_frame=spec["output_from_frame"],
                                                      seam=int(options.get("seam", DEFAULT_SEAM)))
                model_scores = None
                if num_candidates > 1 and scorer.uses_model:  # (inputs, n): teacher-forced passes
                    model_scores = self._model_scores(chunk, spec, out.tokens, per_input, scorer.kind)
                for position, index in enumerate(rows):
                    kept = list(range(per_input))
                    if num_candidates > 1:
                        if model_scores is not None:
                            scores = model_scores[position].tolist()
                        else:
                            scores = scorer(self._to_pictures(pixels[position]), prompts[index])
                        kept = sorted(range(per_input), key=lambda i: -scores[i])[:num_outputs]
                    tokens_of[index] = tokens[position, kept]
                    pixels_of[index] = pixels[position, kept] if want_pixels else None
        outputs = {"tokens": _stack_padded(tokens_of), "frames": torch.tensor([t.shape[1] for t in tokens_of])}
        if want_pixels:
            outputs["pixels"] = _stack_padded(pixels_of)
        return outputs

    def _complete_instructions(self, model_inputs: dict, prompts: list, notices: CallNotices) -> None:
        """For the inputs whose instruction names no digit and / or colour (``model_inputs["open_kinds"]`` ``(B, 2)``,
        1 where ``preprocess`` found the kind of :data:`~.instruction_completion.KINDS` open and completable): the
        model reads their pictures (``pixel_values`` ``(B, 1, 3, H, W)``) as a caption "a {colour} {digit}"
        (:func:`~.instruction_completion.read_pictures`, one batched ``token_grid_losses`` pass per picture), and their
        ``input_ids`` ``(B, L)`` are replaced, in place, by those of the caption completing what the instruction read
        (``read_prompt``) names with that reading; each completion is said (``completion_notice``)."""
        open_kinds = model_inputs["open_kinds"]
        rows = [index for index in range(open_kinds.shape[0]) if bool(open_kinds[index].any())]
        tokenizer = self.processor.tokenizer
        values = picture_captions(tokenizer)
        cache = getattr(self, "_picture_caption_ids", None)
        if cache is None or cache[0] != values:
            cache = self._picture_caption_ids = (values, torch.cat([self._text_ids(caption_form(*v)) for v in values]))
        seen = read_pictures(self.model, model_inputs["pixel_values"][rows, 0], values, cache[1])
        reads = model_inputs.get("read_prompt")
        reads = list(reads) if isinstance(reads, list) else [reads] * open_kinds.shape[0]
        input_ids = model_inputs["input_ids"].clone()
        for index, shown in zip(rows, seen):
            caption = completed_caption(tokenizer, reads[index], shown)
            input_ids[index] = self._text_ids(caption)[0].to(input_ids.device)
            kinds = [kind for kind, is_open in zip(KINDS, open_kinds[index].tolist()) if is_open]
            notices.warn([completion_notice(prompts[index], kinds, caption_form(*shown), caption)])
        model_inputs["input_ids"] = input_ids

    def _model_scores(self, chunk: dict, spec: dict, tokens: torch.Tensor, per_input: int, kind: str) -> torch.Tensor:
        """The scorers the model computes itself, from ``model.token_grid_losses`` (teacher-forced summed token
        losses, nats) of each candidate's whole token grid ``tokens`` ``(inputs * n, T, h, w)`` (rows input-major, as
        ``generate_visual`` returns them) -> ``(inputs, n)``, higher is better:

        - ``"likelihood"``: log p(grid | the input's condition);
        - ``"condition_gain"``: log p(grid | condition) - log p(grid | null condition), the null condition being the
          one classifier-free guidance samples against (``model.null_condition_inputs``: an all-padding prompt, or
          the "None" condition for a sketch). Only for a condition "text" or "sketch" (``_check_model_scorer``, run
          before anything is sampled);
        - ``"attribute_posterior"``: :meth:`_attribute_posterior_scores` (a prompt's asked motion / digit / colour
          against its other values); an input whose prompt names none of them (under a model folder's default: a
          call that asks for this scorer is refused before sampling) is scored by the likelihood.

        Tokens every candidate shares before the first generated one add the same amount to each; known tokens after
        it (the rest of an image around a completed region) score how well the candidate fits them."""
        if kind == ATTRIBUTE_POSTERIOR:
            return self._attribute_posterior_scores(chunk, spec, tokens, per_input)
        condition = CONDITIONS[spec["condition"]]
        inputs: dict = {}
        if condition == "text":
            inputs["input_ids"] = chunk["input_ids"]
        elif condition == "sketch":
            inputs["sketch_maps"] = chunk["sketch_maps"][:, : spec["sketch_frames"]]
        inputs = {k: v.repeat_interleave(per_input, dim=0) for k, v in inputs.items()}
        losses = self.model.token_grid_losses(tokens, condition_type=condition, **inputs)
        if kind == CONDITION_GAIN:
            null = self.model.null_condition_inputs(condition, tokens.shape[0])
            losses = losses - self.model.token_grid_losses(tokens, **null)
        return -losses.view(-1, per_input)

    def _attribute_swapper(self) -> AttributeSwapper:
        """The :class:`~.attribute_posterior.AttributeSwapper` of this pipeline's tokenizer (made once)."""
        swapper = getattr(self, "_swapper", None)
        if swapper is None:
            swapper = self._swapper = AttributeSwapper(self.processor.tokenizer, int(self.config.text_pad_token_id),
                                                       ATTRIBUTE_KINDS)
        return swapper

    def _attribute_posterior_scores(self, chunk: dict, spec: dict, tokens: torch.Tensor,
                                    per_input: int) -> torch.Tensor:
        """``scorer="attribute_posterior"`` for the candidates ``tokens`` ``(inputs * n, T, h, w)`` of the text
        inputs of ``chunk`` (``input_ids`` ``(inputs, L)``) -> ``(inputs, n)``: for each attribute the prompt names
        (:meth:`~.attribute_posterior.AttributeSwapper.swaps`), log p(x | prompt) - logsumexp over the prompt with that
        attribute swapped for each value of its kind (the prompt itself included) of log p(x | swapped prompt), summed
        over the attributes (:func:`~.attribute_posterior.posterior_scores`). Only the positions the model sampled are
        read (not the given frames of a video, nor the kept tokens around an edited region): the score is the model's
        reading of what it made. Inputs whose prompt names none are scored by the likelihood."""
        swapper = self._attribute_swapper()
        swaps = [[ids for _, _, ids in swapper.swaps(row)] for row in chunk["input_ids"]]
        mask = torch.ones(tokens.shape, dtype=torch.bool)
        if spec["regions"]:
            mask = chunk["generate_mask"][:, 0].bool().repeat_interleave(per_input, dim=0)  # (inputs * n, h, w)
            mask = mask[:, None].expand(tokens.shape).clone()
        elif spec["known_frames"]:
            mask[:, : spec["known_frames"]] = False
        scores = posterior_scores(self.model, tokens, [swaps[row // per_input] for row in range(tokens.shape[0])],
                                  position_mask=mask).view(-1, per_input)
        plain = [row for row, found in enumerate(swaps) if not found]
        if plain:  # no attribute to read: the likelihood (only under a folder's default)
            rows = torch.tensor([row * per_input + i for row in plain for i in range(per_input)])
            losses = self.model.token_grid_losses(tokens[rows], input_ids=chunk["input_ids"][plain].repeat_interleave(
                per_input, dim=0))
            scores[plain] = -losses.view(len(plain), per_input)
        return scores

    def _check_attributes_named(self, model_inputs: dict, rows: list, prompts: list) -> None:
        """Refuses, before anything is sampled, a call asking for ``scorer="attribute_posterior"`` whose prompt (of
        the inputs ``rows``) names no motion, digit or colour the model knows: there would be nothing to read."""
        swapper = self._attribute_swapper()
        for index in rows:
            if not swapper.swaps(model_inputs["input_ids"][index]):
                known = "; ".join(f"{kind}: {', '.join(v for group in groups for v, _ in group)}"
                                  for kind, groups in swapper.groups.items() if groups)
                raise ValueError(
                    f"scorer={ATTRIBUTE_POSTERIOR!r} keeps the candidate the model reads as showing the motion, digit "
                    f"or colour the prompt asks for, but the prompt {prompts[index]!r} names none of them the model "
                    f"knows ({known}): name one, or use scorer={LIKELIHOOD!r}.")

    def _check_model_scorer(self, kind: str, spec: dict) -> None:
        """Refuses, before anything is sampled, what the model's own scorer ``kind`` cannot score
        (:meth:`_model_scorer_problem`)."""
        problem = self._model_scorer_problem(kind, spec["frames"], CONDITIONS[spec["condition"]])
        if problem is not None:
            raise ValueError(problem)

    def _model_scorer_problem(self, kind: str, frames: Optional[int], condition: Optional[str]) -> Optional[str]:
        """Why the model's own scorer ``kind`` cannot score a request of ``frames`` frames with ``condition`` (None:
        not known yet, no objection), or None: a grid of more frames than the model was trained on (a video that
        slides a window), and ``"condition_gain"`` without a condition (video prediction, image completion without a
        prompt: the gain would be 0 for every candidate). An explicit scorer is refused for it
        (:meth:`_check_model_scorer`); a folder's default reranking gives one sample instead (:meth:`_reranking`)."""
        if kind not in MODEL_SCORERS:
            return f"unknown model scorer {kind!r}: the model computes {MODEL_SCORER_NAMES}."
        if frames is not None and frames > self.max_frames:
            return (f"scorer={kind!r} scores grids up to the {self.max_frames} frames the model was trained on; this "
                    f"call makes {frames}. Use fewer frames, another scorer, or num_candidates=1.")
        if kind == ATTRIBUTE_POSTERIOR and condition not in (None, "text"):
            return (f"scorer={ATTRIBUTE_POSTERIOR!r} reads the motion, digit or colour a prompt asks for, but this "
                    f"{self.task_name or 'NUWA'} request has no prompt: use scorer={LIKELIHOOD!r}, or give a prompt "
                    "where the task takes one.")
        if kind == CONDITION_GAIN and condition == "none":
            return (f"scorer={CONDITION_GAIN!r} ranks candidates by how much more likely the condition (a prompt or a "
                    f"sketch) makes them, but this {self.task_name or 'NUWA'} request has no condition, so there is "
                    f"nothing to gain from: use scorer={LIKELIHOOD!r}, or give a prompt where the task takes one.")
        return None

    def _reranking(self, options: dict, frames: Optional[int] = None,
                   condition: Optional[str] = None) -> tuple[Any, int]:
        """The call's scorer and candidates per output: the call's own, else the pipeline's, else the task's entry of
        the model folder's ``generation_config.task_sampling`` (e.g. ``{"scorer": "likelihood", "num_candidates":
        4}``, or ``"condition_gain"``: the shipped folder reranks where the validation split said it pays); default 8
        candidates with a scorer. ``num_candidates=1`` turns a folder's reranking off. The folder's reranking applies
        where its scorer can score: a video of ``frames`` past the trained ones (which slides a window), and, for
        ``"condition_gain"``, a request whose ``condition`` is "none", are one sample (asked for in the call, such
        reranking is refused by ``_forward`` instead; both read :meth:`_model_scorer_problem`); a folder's
        ``"attribute_posterior"`` reranks a request without a prompt by the likelihood instead (and
        ``_model_scores`` does so for a prompt that names no attribute)."""
        scorer = options.get("scorer") or self.scorer
        num_candidates = options.get("num_candidates")
        if scorer is None:
            entry = self._task_reranking()
            if entry is not None and num_candidates is None:
                if (entry[0].kind == ATTRIBUTE_POSTERIOR and condition not in (None, "text")
                        and self._model_scorer_problem(LIKELIHOOD, frames, condition) is None):
                    return CandidateScorer(LIKELIHOOD), entry[1]  # no prompt to read: the likelihood
                if self._model_scorer_problem(entry[0].kind, frames, condition) is not None:
                    return None, 1  # where the folder's scorer cannot score: one sample
                scorer, num_candidates = entry
            elif entry is not None and num_candidates > 1:
                scorer = entry[0]
        if num_candidates is None:
            num_candidates = 8 if scorer is not None else 1
        return scorer, int(num_candidates)

    def _task_reranking(self) -> Optional[tuple]:
        """``(CandidateScorer, candidates)`` from this task's ``task_sampling`` entry, or None (checked when read)."""
        entry = task_sampling_entry(getattr(self.model, "generation_config", None), self.task_name)
        if entry.get("scorer") is None:
            return None
        if entry["scorer"] not in MODEL_SCORERS:
            raise ValueError(
                f"generation_config.json's task_sampling entry for {self.task_name} names the scorer "
                f"{entry['scorer']!r}; a model folder can only name {MODEL_SCORER_NAMES} (the scorers the model "
                "computes itself). Pass other scorers with scorer=.")
        return (CandidateScorer(entry["scorer"]),
                check_count("task_sampling num_candidates", entry.get("num_candidates", 4)))

    @staticmethod
    def _select(model_inputs: dict, rows: list[int]) -> dict:
        return {key: value[rows] for key, value in model_inputs.items() if torch.is_tensor(value)}

    @staticmethod
    def _steps(spec: dict, h: int, w: int) -> int:
        """Decoding steps of one row: grid positions after the prefix every row knows (what generate samples)."""
        if spec["regions"]:
            return h * w  # the first masked position varies by row; the bar may finish early
        return (spec["frames"] - spec["known_frames"]) * h * w

    def _generate_group(self, chunk: dict, spec: dict, per_input: int, options: dict, bar, return_pixels: bool):
        """Inputs that share one plan -> ``model.generate_visual``'s output for their ``inputs * per_input`` rows:
        ``tokens (rows, T, h, w)`` and (``return_pixels``) ``pixel_values (rows, T, 3, H, W)``."""
        condition = CONDITIONS[spec["condition"]]
        frames, known = spec["frames"], spec["known_frames"]
        h, w = self.token_grid()
        inputs = {}
        if condition == "text":
            inputs["input_ids"] = chunk["input_ids"]
            if "negative_input_ids" in chunk:
                inputs["negative_prompt_ids"] = chunk["negative_input_ids"]
        elif condition == "sketch":
            inputs["sketch_maps"] = chunk["sketch_maps"][:, : spec["sketch_frames"]]
        if spec["regions"]:
            inputs.update(pixel_values=chunk["pixel_values"][:, :1], region_mask=chunk["generate_mask"])
        elif known:
            inputs["pixel_values"] = chunk["pixel_values"][:, :known]
        # The call's sampling options over this task's generation_config.json entry: one config, checked once.
        config = self.model.visual_generation_config(
            self.task_name, condition, options.get("generation_config"),
            **{name: options[name] for name in SAMPLING_OPTIONS if options.get(name) is not None})
        rows = len(chunk["plan"]) * per_input
        if hasattr(self.config, "decoder_layers"):
            dtype = self.model.dtype
            check_chunk_memory(
                self.config, (min(frames, self.max_frames), h, w), rows, config.guidance_scale not in (None, 1.0),
                self.device, dtype_bytes=torch.finfo(dtype).bits // 8 if dtype.is_floating_point else 4,
                allow_large=bool(options.get("allow_large")), rows_per_input=per_input,
            )
        generator = None
        if "row_seeds" in chunk:  # one generator per output row (diffusers' generator=[...] per row)
            generator = generators_of(chunk["row_seeds"].flatten().tolist())
        elif "input_seed" in chunk:  # one per input; its rows draw from it in turn
            generator = generators_of(chunk["input_seed"].flatten().tolist())
        # Each row samples from its own generator inside ONE batched call, so a batch gives exactly what separate
        # calls with the same seeds give. The bar follows each token, or (sliding past the trained length, where
        # per-token updates cost more than they tell) moves once per group.
        sliding = frames > self.max_frames
        out = self.model.generate_visual(
            **{name: value.to(self.device) for name, value in inputs.items()}, visual_grid=(frames, h, w),
            generation_config=config, num_return_sequences=per_input, generator=generator,
            logits_processor=options.get("logits_processor"), streamer=None if sliding else _TokenProgress(bar),
            return_pixels=return_pixels,
        )
        if sliding:
            bar.update((frames - known) * h * w)
        return out

    # ---------------------------------------------------------------------------------------------------------------
    # 3. postprocess: one input's outputs -> what the user asked for

    def postprocess(self, model_outputs: dict, output_type: str = "pil", num_outputs_per_input: Optional[int] = None):
        """One output per input: with ``num_outputs_per_input`` n = 1 the output itself, else a list of n.

        An output is a PIL image (image tasks) or a list of PIL frames (video tasks) for ``output_type="pil"``;
        float32 in [0, 1] ``(H, W, 3)`` / ``(T, H, W, 3)`` for "np"; ``(3, H, W)`` / ``(T, 3, H, W)`` for "pt"; the
        token grid ``(h, w)`` / ``(T, h, w)`` for "tokens".
        """
        frames = int(model_outputs["frames"][0])
        tokens = model_outputs["tokens"][0][:, :frames]
        if output_type == "tokens":
            items = [t if self.makes_video else t[0] for t in tokens]
        else:
            items = self._to_pictures(model_outputs["pixels"][0][:, :frames])
            if output_type != "pil":
                arrays = [
                    np.stack([np.asarray(f, dtype=np.float32) / 255.0 for f in item]) if self.makes_video
                    else np.asarray(item, dtype=np.float32) / 255.0
                    for item in items
                ]
                items = arrays if output_type == "np" else [
                    torch.from_numpy(a).movedim(-1, -3).contiguous() for a in arrays]
        return items[0] if (num_outputs_per_input or 1) == 1 else items

    def _to_pictures(self, pixels: torch.Tensor) -> list:
        """Pixels ``(N, T, 3, H, W)`` in [-1, 1] -> N PIL images (image tasks) or N frame lists (video tasks)."""
        decoded = self.processor.postprocess(pixels, output_type="pil")
        if self.makes_video:
            return [list(item) if isinstance(item, (list, tuple)) else [item] for item in decoded]
        return [item[0] if isinstance(item, (list, tuple)) else item for item in decoded]


def _pad_frames(tensor: torch.Tensor, frames: int) -> torch.Tensor:
    """``(1, F, ...)`` -> ``(1, frames, ...)`` with zero frames after the F given ones, so every input of a task has
    one shape and transformers' DataLoader collation stacks them (``_forward`` reads back the first F)."""
    missing = frames - tensor.shape[1]
    if missing <= 0:
        return tensor
    return torch.cat([tensor, tensor.new_zeros(tensor.shape[0], missing, *tensor.shape[2:])], dim=1)


def _stack_padded(items: list) -> torch.Tensor:
    """Per-input tensors ``(n, T_i, ...)`` -> ``(B, n, max T_i, ...)``, zero-padded over T."""
    longest = max(item.shape[1] for item in items)
    out = items[0].new_zeros(len(items), items[0].shape[0], longest, *items[0].shape[2:])
    for index, item in enumerate(items):
        out[index, :, : item.shape[1]] = item
    return out
