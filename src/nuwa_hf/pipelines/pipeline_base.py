"""What the eight NUWA pipelines share: loading the model folder, reading conditions, regions, generation, reranking.

A NUWA pipeline is thin: its ``__call__`` turns the user's inputs into :class:`NuwaRequest` objects and says how the
decoder is driven (:class:`DecodingPlan`); everything else happens here, in four steps that mirror transformers'
``preprocess`` / ``_forward`` / ``postprocess``:

1. **preprocess**: prompts -> text ids, images / videos -> VQ-GAN token grids, sketches -> VQ-GAN-Seg token grids,
   regions (a mask, a box, or a shortcut such as ``"bottom half"``) -> a boolean token mask;
2. **forward**: ``model.generate`` for all rows of the call (inputs x samples x candidates), chunked by ``batch_size``,
   with constrained decoding for the zero-shot tasks (known tokens are teacher-forced, only masked positions are
   sampled) and a sliding window (``generate_long_video``) when more frames are asked than the model was trained on;
3. **rerank**: with a scorer, keep the best ``num_images_per_prompt`` of ``num_candidates`` samples per input (the
   paper keeps the best of 60 by CLIP);
4. **postprocess**: token grids -> PIL images / frame lists, or numpy / torch arrays, or the tokens themselves.

One model folder (or Hub repo id) holds everything: the NUWA weights and config at its root, with the VQ-GAN (and,
for sketch tasks, the VQ-GAN-Seg) inside the model, and the processor files (tokenizer + image processor).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import PIL.Image
import torch
from transformers import Pipeline
from transformers.generation.streamers import BaseStreamer

from .. import media
# One error type for every model-folder problem (missing or damaged files, another model type, a model without its
# VQ-GAN, missing processor files): the model raises it while loading, the pipelines and the CLI (exit 3) too.
from ..models.nuwa.loading_nuwa import NuwaModelFolderError
# The names and codes live in the one task table (nuwa_hf.tasks); re-exported here for the pipelines' users.
from ..tasks import TASK_CODE_OF, TASK_CODES, TASK_NAMES, get_task_info  # noqa: F401
from . import work_limits
from .sampling_options import check_batch_size, check_count, check_sampling_options

# --------------------------------------------------------------------------------------------------------------------
# Tasks


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
# Requests: one normalised input of a call


@dataclass
class NuwaRequest:
    """One input of a pipeline call, normalised.

    prompt: the text condition (or None). image: RGB PIL image. video: list of RGB PIL frames. sketch: class ids
    ``(H, W)`` or ``(T, H, W)``. region: what to regenerate in ``image`` (mask / box / shortcut, see
    :func:`region_to_token_mask`).
    """

    prompt: Optional[str] = None
    image: Optional[PIL.Image.Image] = None
    video: Optional[list] = None
    sketch: Optional[np.ndarray] = None
    region: Any = None


@dataclass
class DecodingPlan:
    """How the decoder runs for every request of a call.

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


# --------------------------------------------------------------------------------------------------------------------
# Input normalisation helpers (used by the task pipelines' __call__)


def is_single_text(value: Any) -> bool:
    return isinstance(value, str)


def as_prompt_list(prompt: Any, what: str = "prompt") -> tuple[list[str], bool]:
    """A prompt or a list of prompts -> (list, was_batched). Empty prompts are an error."""
    if isinstance(prompt, str):
        prompts, batched = [prompt], False
    elif isinstance(prompt, Sequence) and not isinstance(prompt, (bytes, bytearray)):
        prompts, batched = list(prompt), True
    else:
        raise TypeError(f"The {what} must be a string or a list of strings, got {type(prompt).__name__}.")
    if not prompts:
        raise ValueError(f"Got an empty list of {what}s: pass at least one.")
    for index, text in enumerate(prompts):
        if not isinstance(text, str):
            raise TypeError(f"{what.capitalize()} {index} must be a string, got {type(text).__name__}.")
        if not text.strip():
            raise ValueError(f"{what.capitalize()} {index} is empty: describe what to generate, e.g. 'the digit 3'.")
    return prompts, batched


def _is_image_like(value: Any) -> bool:
    if isinstance(value, (PIL.Image.Image, str, os.PathLike)):
        return True
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.ndim in (2, 3)
    return False


def as_image_list(images: Any, what: str = "image") -> tuple[list[PIL.Image.Image], bool]:
    """An image (PIL, path, array) or a list of them -> (list of RGB PIL images, was_batched)."""
    if _is_image_like(images):
        return [_load_image_checked(images, what)], False
    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        if len(images) == 0:
            raise ValueError(f"Got an empty batch of {what}s (shape {tuple(images.shape)}): pass at least one.")
        return [_load_image_checked(image, f"{what} {i}") for i, image in enumerate(images)], True
    if isinstance(images, Sequence) and not isinstance(images, (bytes, bytearray)):
        if not images:
            raise ValueError(f"Got an empty list of {what}s: pass at least one.")
        return [_load_image_checked(image, f"{what} {i}") for i, image in enumerate(images)], True
    raise TypeError(f"The {what} must be a PIL image, a path, an array or a list of them; got {type(images).__name__}.")


def _load_image_checked(image: Any, what: str) -> PIL.Image.Image:
    if isinstance(image, PIL.Image.Image):
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            raise ValueError(
                f"The {what} is a single-channel {image.mode!r} image (32-bit / 16-bit / float), which looks like a "
                "class map or a depth map, not a picture: pass an RGB image (`image.convert('RGB')` after scaling to "
                "0..255), or use a sketch pipeline for class maps."
            )
        if image.mode in ("RGBA", "LA", "PA"):
            image = image.convert("RGBA").convert("RGB")  # drop the alpha channel
    try:
        return media.load_image(image)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{what.capitalize()}: {error}") from None


def _looks_like_one_image(value: Any) -> bool:
    """A PIL image, or an array (H, W, 3|4) (a video of grey frames (T, H, W) has many more than 4 columns)."""
    if isinstance(value, PIL.Image.Image):
        return True
    return isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 3 and value.shape[-1] in (3, 4) \
        and value.shape[0] > 4


def _is_single_video(value: Any) -> bool:
    """A video is a path, an image (one frame), an array (T, H, W[, C]) or a list of frames (PIL images or arrays)."""
    if isinstance(value, (str, os.PathLike)) or _looks_like_one_image(value):
        return True
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.ndim in (3, 4)
    if isinstance(value, Sequence) and value and all(isinstance(f, PIL.Image.Image) or (
            isinstance(f, (np.ndarray, torch.Tensor)) and f.ndim in (2, 3)) for f in value):
        return True
    return False


def as_video_list(videos: Any, what: str = "video") -> tuple[list[list[PIL.Image.Image]], bool]:
    """A video (path, list of frames, array (T, H, W, 3)) or a list of videos -> (list of frame lists, was_batched)."""
    if isinstance(videos, Sequence) and not isinstance(videos, (str, bytes)) and len(videos) == 0:
        raise ValueError(f"The {what} has no frames: give a video with at least one frame.")
    if _is_single_video(videos):
        return [_load_video_checked(videos, what)], False
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        if len(videos) == 0:
            raise ValueError(f"Got an empty batch of {what}s (shape {tuple(videos.shape)}): pass at least one.")
        return [_load_video_checked(video, f"{what} {i}") for i, video in enumerate(videos)], True
    if isinstance(videos, Sequence) and not isinstance(videos, (str, bytes)):
        return [_load_video_checked(video, f"{what} {i}") for i, video in enumerate(videos)], True
    raise TypeError(
        f"The {what} must be a path (GIF, MP4, folder of frames), a list of frames, an array (T, H, W, 3), or a list of "
        f"such videos; got {type(videos).__name__}."
    )


def _load_video_checked(video: Any, what: str) -> list[PIL.Image.Image]:
    if _looks_like_one_image(video):
        return [_load_image_checked(video, what)]
    try:
        return media.load_video(video)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{what.capitalize()}: {error}") from None


def as_sketch_list(sketches: Any, video: bool, what: str = "sketch") -> tuple[list[np.ndarray], bool]:
    """Image sketches ``(H, W)`` / video sketches ``(T, H, W)`` (or lists of them) -> (list of int64 arrays, batched)."""
    single_ndim = 3 if video else 2
    loader = media.load_sketch_video if video else media.load_sketch

    def load(item, label):
        try:
            return loader(item)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{label.capitalize()}: {error}") from None

    if isinstance(sketches, (str, os.PathLike, PIL.Image.Image)):
        return [load(sketches, what)], False
    if isinstance(sketches, (np.ndarray, torch.Tensor)):
        _refuse_picture_as_sketch(sketches, single_ndim, what)
        if sketches.ndim == single_ndim:
            return [load(sketches, what)], False
        if sketches.ndim == single_ndim + 1:
            if len(sketches) == 0:
                raise ValueError(f"Got an empty batch of {what}es (shape {tuple(sketches.shape)}): pass at least one.")
            return [load(item, f"{what} {i}") for i, item in enumerate(sketches)], True
        layout = "(T, H, W)" if video else "(H, W)"
        raise ValueError(f"A {what} must be a class-index map {layout} or a batch of them, got shape {tuple(sketches.shape)}.")
    if isinstance(sketches, Sequence) and not isinstance(sketches, (str, bytes)):
        if not sketches:
            raise ValueError(f"Got an empty list of {what}es: pass at least one.")
        if video and all(isinstance(m, PIL.Image.Image) or (isinstance(m, (np.ndarray, torch.Tensor)) and m.ndim == 2)
                         for m in sketches):
            return [load(list(sketches), what)], False  # one video sketch given as a list of frames
        return [load(item, f"{what} {i}") for i, item in enumerate(sketches)], True
    raise TypeError(f"The {what} must be a class-index map (array, PIL image in mode L/P, path) or a list of them.")


def _refuse_picture_as_sketch(array: Any, single_ndim: int, what: str) -> None:
    """An array whose last axis has 3 or 4 entries (and whose other sides are larger) is an RGB(A) picture, not a batch
    of class maps (an (H, W, 3) image would otherwise become H sketches): refuse it, the same way in S2I and S2V."""
    shape = tuple(array.shape)
    if len(shape) in (3, single_ndim + 1) and shape[-1] in (3, 4) and min(shape[-3:-1]) > 4:
        raise ValueError(
            f"The {what} has shape {shape}, which looks like an RGB(A) picture (..., H, W, {shape[-1]}), not class ids: "
            f"a sketch is a class-index map {'(T, H, W)' if single_ndim == 3 else '(H, W)'} of integer class ids (map "
            "the colours of a drawing to class ids first). A batch of maps is given as a list of them."
        )


def check_equal_frame_counts(videos: list, what: str = "video") -> int:
    """The videos of one batch must have the same number of frames (none is cut to the shortest in silence); returns
    that number. Callers that take an explicit ``num_condition_frames`` cut every video to it instead."""
    counts = [len(v) for v in videos]
    if len(set(counts)) > 1:
        raise ValueError(
            f"The {what}s of this batch have different frame counts {counts}: trim them to one length, pass "
            "num_condition_frames=N to use the first N frames of each, or call the pipeline once per video."
        )
    return counts[0]


def broadcast(values: list, count: int, what: str) -> list:
    """A single value is repeated for every input; a list must have one value per input."""
    if len(values) == count:
        return values
    if len(values) == 1:
        return values * count
    raise ValueError(f"Got {len(values)} {what}s for {count} inputs: give one {what} or one per input.")


# --------------------------------------------------------------------------------------------------------------------
# Regions to regenerate

REGION_SHORTCUTS = (
    "top half", "bottom half", "left half", "right half", "center", "top left", "top right", "bottom left",
    "bottom right", "all",
)


def _shortcut_mask(name: str, grid: tuple[int, int]) -> np.ndarray:
    h, w = grid
    mask = np.zeros((h, w), dtype=bool)
    half_h, half_w = h // 2, w // 2
    key = " ".join(name.lower().replace("-", " ").replace("_", " ").split())
    key = {"centre": "center", "middle": "center", "bottom": "bottom half", "top": "top half", "left": "left half",
           "right": "right half", "whole": "all", "everything": "all"}.get(key, key)
    if key == "top half":
        mask[:half_h] = True
    elif key == "bottom half":
        mask[half_h:] = True
    elif key == "left half":
        mask[:, :half_w] = True
    elif key == "right half":
        mask[:, half_w:] = True
    elif key == "center":
        mask[h // 4: h - h // 4, w // 4: w - w // 4] = True
    elif key in ("top left", "top right", "bottom left", "bottom right"):
        rows = slice(0, half_h) if key.startswith("top") else slice(half_h, h)
        cols = slice(0, half_w) if key.endswith("left") else slice(half_w, w)
        mask[rows, cols] = True
    elif key == "all":
        mask[:] = True
    else:
        raise ValueError(
            f"Unknown region {name!r}. Use one of {', '.join(repr(s) for s in REGION_SHORTCUTS)}, a box "
            "(left, top, right, bottom) in pixels or as fractions in [0, 1], or a mask image (white = regenerate)."
        )
    return mask


def _mask_array(mask: Any) -> np.ndarray:
    """A mask as PIL (mode '1' or 'L'), bool / 0-1 / 0-255 array or tensor -> bool (H, W), True = regenerate."""
    if isinstance(mask, (str, os.PathLike)):
        path = Path(mask)
        if not path.exists():
            raise FileNotFoundError(f"The mask file {str(path)!r} does not exist; check the path.")
        with PIL.Image.open(path) as opened:
            mask = opened.copy()
    if isinstance(mask, PIL.Image.Image):
        if mask.mode not in ("1", "L", "LA", "P"):
            raise ValueError(
                f"The mask is a PIL image in mode {mask.mode!r}; a mask is black and white (mode '1' or 'L'), white = "
                "regenerate. Convert it with `mask.convert('L')`."
            )
        return np.asarray(mask.convert("L")) >= 128
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"A mask must be a PIL image, an array or a tensor, got {type(mask).__name__}.")
    if mask.ndim == 3 and 1 in (mask.shape[0], mask.shape[-1]):
        mask = mask.reshape(mask.shape[1:] if mask.shape[0] == 1 else mask.shape[:-1])
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"A mask must be 2-D (H, W) with at least one pixel, got shape {mask.shape}.")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"A mask holds booleans, 0/1 or 0..255 numbers; got dtype {mask.dtype}.")
    if mask.dtype == np.bool_:
        return mask
    if np.issubdtype(mask.dtype, np.floating) and not np.isfinite(mask).all():
        raise ValueError("The mask holds NaN or infinite values: give a mask of 0/1, booleans or 0..255.")
    if np.issubdtype(mask.dtype, np.floating) and mask.size and mask.max() <= 1.0:
        return mask >= 0.5
    return mask >= 128 if mask.size and mask.max() > 1 else mask > 0


def _box_mask(box: Sequence[float], image_size: tuple[int, int]) -> np.ndarray:
    width, height = image_size
    if len(box) != 4:
        raise ValueError(f"A box is (left, top, right, bottom), got {len(box)} numbers: {tuple(box)!r}.")
    values = [float(v) for v in box]
    if all(isinstance(v, float) for v in box) and all(0.0 <= v <= 1.0 for v in values):
        values = [values[0] * width, values[1] * height, values[2] * width, values[3] * height]
    left, top, right, bottom = values
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise ValueError(
            f"The box {tuple(box)!r} does not fit the {width}x{height} image: give (left, top, right, bottom) with "
            f"0 <= left < right <= {width} and 0 <= top < bottom <= {height} (pixels), or fractions in [0, 1]."
        )
    mask = np.zeros((height, width), dtype=bool)
    mask[int(math.floor(top)): int(math.ceil(bottom)), int(math.floor(left)): int(math.ceil(right))] = True
    return mask


def region_to_token_mask(region: Any, image_size: tuple[int, int], token_grid: tuple[int, int], image_processor) -> torch.Tensor:
    """The region to regenerate -> bool token mask ``(h, w)``, True = generate.

    Args:
        region: a shortcut (``"bottom half"``, ``"top half"``, ``"left half"``, ``"right half"``, ``"center"``,
            ``"top left"`` ..., ``"all"``), applied to the token grid; a box ``(left, top, right, bottom)`` in pixels of
            the input image, or as fractions in [0, 1]; or a mask (PIL image in mode '1'/'L', array, tensor, or a path),
            white / True = regenerate, the size of the input image (it then gets the image's resize and crop) or of the
            token grid itself.
        image_size: (width, height) of the input image as given (before the processor's resize and crop).
        token_grid: (h, w) of the VQ-GAN token grid.
        image_processor: the ``NuwaImageProcessor`` whose geometry the image went through.

    A token is regenerated when any pixel of its cell is in the region, so the edit always covers the region.
    """
    h, w = token_grid
    if region is None:
        raise ValueError("No region given: pass mask= as a shortcut such as 'bottom half', a box or a mask image.")
    if isinstance(region, str) and not Path(region).suffix:
        return torch.from_numpy(_shortcut_mask(region, token_grid))
    if isinstance(region, (tuple, list)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in region):
        pixels = _box_mask(region, image_size)
    else:
        pixels = _mask_array(region)
        if pixels.shape == (h, w) and (h, w) != (image_size[1], image_size[0]):
            return torch.from_numpy(pixels.copy())
        if pixels.shape != (image_size[1], image_size[0]):
            raise ValueError(
                f"The mask is {pixels.shape[1]}x{pixels.shape[0]} (width x height) but the image is "
                f"{image_size[0]}x{image_size[1]}: resize the mask to the image's size (nearest neighbour), or give "
                f"it at the token grid's size {w}x{h}."
            )
    processed = image_processor.preprocess_sketches(
        pixels.astype(np.int64), num_sketch_classes=2, return_tensors="np"
    )["sketch_maps"][0]
    crop_h, crop_w = processed.shape
    if crop_h % h or crop_w % w:
        raise ValueError(f"The processed mask ({crop_w}x{crop_h}) is not a multiple of the token grid {w}x{h}.")
    cells = processed.reshape(h, crop_h // h, w, crop_w // w).astype(bool)
    return torch.from_numpy(cells.any(axis=(1, 3)))


# --------------------------------------------------------------------------------------------------------------------
# Reranking


class CandidateScorer:
    """Scores candidates for reranking; higher is better. Wraps what a user passes as ``scorer=``:

    - an object with ``similarity(samples, texts) -> (N,)`` (``TextVisualDualEncoder``, ``LocalClipScorer`` from
      ``nuwa_hf.evaluation``, or any CLIP-like scorer): scores each candidate against the request's prompt;
    - a path to a scorer folder saved with ``TrainedScorer.save_pretrained`` (loaded with ``load_scorer``);
    - any callable ``scorer(candidates, prompt) -> sequence of floats``, where ``candidates`` is a list of PIL images
      (image tasks) or of frame lists (video tasks) and ``prompt`` the request's text (or None).
    """

    def __init__(self, scorer: Any):
        if isinstance(scorer, (str, os.PathLike)):
            from ..evaluation import load_scorer

            scorer = load_scorer(scorer)
        if not (hasattr(scorer, "similarity") or callable(scorer)):
            raise TypeError(
                "scorer must have similarity(samples, texts), be a callable scorer(candidates, prompt) -> scores, or be "
                f"a path to a saved scorer; got {type(scorer).__name__}."
            )
        self.scorer = scorer
        self.name = getattr(scorer, "name", None) or type(scorer).__name__

    def __call__(self, candidates: list, prompt: Optional[str]) -> list[float]:
        if hasattr(self.scorer, "similarity"):
            if prompt is None:
                raise ValueError(
                    f"The scorer {self.name} compares samples with text, but this request has no prompt: pass a "
                    "callable scorer(candidates, prompt) for tasks without text, or no scorer."
                )
            samples = [np.stack([np.asarray(f) for f in c]) if isinstance(c, list) else np.asarray(c) for c in candidates]
            scores = self.scorer.similarity(np.stack(samples), [prompt] * len(candidates))
        else:
            scores = self.scorer(candidates, prompt)
        scores = [float(s) for s in (scores.tolist() if hasattr(scores, "tolist") else scores)]
        if len(scores) != len(candidates):
            raise ValueError(f"The scorer returned {len(scores)} scores for {len(candidates)} candidates.")
        return scores


# --------------------------------------------------------------------------------------------------------------------
# Progress over generated tokens


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


# --------------------------------------------------------------------------------------------------------------------
# The base pipeline

GENERATION_OPTIONS = ("do_sample", "temperature", "top_k", "top_p", "guidance_scale")
CALL_OPTIONS = GENERATION_OPTIONS + ("seed", "generator", "num_candidates", "scorer", "output_type", "batch_size",
                                     "generate_kwargs", "allow_large")
# What the work limit on frames names for each video task (see work_limits.check_frames).
FRAMES_ARGUMENT = {"nuwa-video-prediction": "num_condition_frames + num_frames_to_predict",
                   "nuwa-sketch-to-video": "The video sketch"}
OUTPUT_TYPES = ("pil", "np", "pt", "tokens")


def _merge_generate_kwargs(options: dict) -> dict:
    """transformers' pipelines take sampling settings as ``generate_kwargs={...}``: merge them into the call's options
    (the same names as the direct arguments; giving one both ways with different values is an error)."""
    extra = options.pop("generate_kwargs", None)
    if extra is None:
        return options
    if not isinstance(extra, dict):
        raise TypeError(f"generate_kwargs must be a dict of sampling settings, got {type(extra).__name__}.")
    unsupported = sorted(set(extra) - set(GENERATION_OPTIONS))
    if unsupported:
        raise TypeError(f"generate_kwargs {unsupported} are not supported by NUWA's pipelines; they take "
                        f"{list(GENERATION_OPTIONS)} (the grid and its length follow from the task and num_frames).")
    clashes = sorted(k for k in extra if k in options and options[k] != extra[k])
    if clashes:
        raise TypeError(f"{clashes} given both directly and in generate_kwargs with different values; give each once.")
    return {**options, **extra}


def _check_count(name: str, value: Any, minimum: int = 1) -> int:
    """A count (frames, outputs per input ...): an integer >= ``minimum`` (see :mod:`.sampling_options`)."""
    return check_count(name, value, minimum)


class NuwaPipeline(Pipeline):
    """Base class of the eight NUWA pipelines (see the module docstring).

    Subclasses set ``task``, ``makes_video`` and ``needs_sketch_vqgan``, and implement ``__call__`` by building
    :class:`NuwaRequest` objects and calling :meth:`run`.

    Init arguments beyond transformers' (model, processor, device, ...):
        scorer: reranking scorer (see :class:`CandidateScorer`); with one, each output is the best of
            ``num_candidates`` samples. Also settable per call.
        any of ``do_sample, temperature, top_k, top_p, guidance_scale, seed, num_candidates, output_type``: defaults
            for every call.
    """

    task_name: str = ""
    makes_video: bool = False
    needs_sketch_vqgan: bool = False

    # Components: transformers loads the processor with AutoProcessor (soft: a failure falls back to our loader, which
    # says what is missing); no tokenizer / image processor of their own.
    _load_processor = None
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False
    _pipeline_calls_generate = False

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
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        self.image_processor = getattr(self.processor, "image_processor", None)
        self.scorer = CandidateScorer(scorer) if scorer is not None else None
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

    def token_grid(self) -> tuple[int, int]:
        """(h, w) of the visual token grid: the processor's crop size over the VQ-GAN's down-sampling factor."""
        crop = self.processor.image_processor.crop_size
        height = getattr(crop, "height", None) or crop["height"]
        width = getattr(crop, "width", None) or crop["width"]
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

    def _sanitize_parameters(self, **kwargs):
        unknown = sorted(set(kwargs) - set(CALL_OPTIONS))
        if unknown:
            raise TypeError(f"Unexpected argument(s) {unknown} for {type(self).__name__}; known: {list(CALL_OPTIONS)}.")
        return {}, dict(kwargs), {}

    # ---------------------------------------------------------------------------------------------------------------
    # Encoding conditions

    def encode_text(self, prompts: list[str]) -> dict:
        """Prompts -> text ids (B, L), truncated (with a warning) to the model's ``max_text_length``."""
        limit = int(self.config.max_text_length)
        processor_limit = getattr(self.processor, "text_max_length", None)
        batch = self.processor(text=prompts, max_length=min(limit, processor_limit or limit), return_tensors="pt")
        return {"input_ids": batch["input_ids"].to(self.device)}

    def encode_images(self, images: list[PIL.Image.Image]) -> torch.Tensor:
        """RGB images -> visual tokens (B, 1, h, w)."""
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        return self.model.encode_videos(pixels.to(self.device))

    def encode_videos(self, videos: list[list[PIL.Image.Image]]) -> torch.Tensor:
        """Videos (equal frame counts) -> visual tokens (B, T, h, w)."""
        counts = sorted({len(v) for v in videos})
        if len(counts) > 1:
            raise ValueError(
                f"The videos of one call have different frame counts {counts}: trim them to one length or call the "
                "pipeline once per video."
            )
        pixels = self.processor(videos=videos, return_tensors="pt")["pixel_values"]
        return self.model.encode_videos(pixels.to(self.device))

    def encode_sketches(self, sketches: list[np.ndarray]) -> torch.Tensor:
        """Class maps (H, W) or (T, H, W) -> sketch tokens (B, T, hs, ws) through the image processor and VQ-GAN-Seg."""
        seg = self.sketch_vqgan
        num_classes = int(seg.num_classes)
        for index, sketch in enumerate(sketches):
            if sketch.size and int(sketch.max()) >= num_classes:
                raise ValueError(
                    f"Sketch {index} holds class id {int(sketch.max())} but the model's sketch VQ-GAN knows "
                    f"{num_classes} classes (ids 0..{num_classes - 1}): map the extra labels to known classes."
                )
        if sketches[0].ndim == 3 and len({len(s) for s in sketches}) > 1:
            counts = sorted({len(s) for s in sketches})
            raise ValueError(f"The video sketches of one call have different frame counts {counts}: call once per sketch.")
        maps = self.processor(sketches=list(sketches), return_tensors="pt")["sketch_maps"]
        tokens = self.model.encode_sketches(maps.to(self.device))
        max_grid = tuple(self.config.max_sketch_grid)
        if any(g > m for g, m in zip(tokens.shape[1:], max_grid)):
            raise ValueError(
                f"The sketch codes to a {tuple(tokens.shape[1:])} token grid but the model takes at most {max_grid}: "
                "give fewer frames."
            )
        return tokens.to(self.device)

    # ---------------------------------------------------------------------------------------------------------------
    # The four steps

    def preprocess(self, requests: list[NuwaRequest], plan: DecodingPlan) -> dict:
        """Requests -> model inputs for ``generate`` (one row per request)."""
        h, w = self.token_grid()
        inputs: dict[str, Any] = {"visual_grid": (plan.frames, h, w), "batch_size": len(requests)}
        if plan.condition == "text":
            inputs.update(self.encode_text([r.prompt for r in requests]))
        elif plan.condition == "sketch":
            inputs["sketch_tokens"] = self.encode_sketches([r.sketch for r in requests])
        elif plan.condition != "none":
            raise ValueError(f"unknown condition {plan.condition!r}")

        if plan.regions:
            tokens = self.encode_images([r.image for r in requests])
            masks = torch.stack([
                region_to_token_mask(r.region, r.image.size, (h, w), self.processor.image_processor) for r in requests
            ])
            for index, mask in enumerate(masks):
                if not bool(mask.any()):
                    raise ValueError(f"The region of input {index} covers no token: make the mask or box larger.")
            inputs["known_tokens"] = tokens
            inputs["generate_mask"] = masks[:, None].to(self.device)
        elif plan.known_frames:
            videos = [r.video[: plan.known_frames] for r in requests]
            inputs["first_frames"] = self.encode_videos(videos)
        return inputs

    def _forward(self, model_inputs: dict, **generate_kwargs) -> torch.Tensor:
        """Generate all rows; returns visual tokens (rows, T, h, w)."""
        visual_grid = model_inputs["visual_grid"]
        frames, h, w = visual_grid
        first_frames = model_inputs.get("first_frames")
        condition = {k: model_inputs[k] for k in ("input_ids", "sketch_tokens") if k in model_inputs}
        rows = model_inputs["batch_size"]
        trained_frames = self.max_frames
        known = first_frames.shape[1] if first_frames is not None else 0
        progress = generate_kwargs.pop("_progress", None)
        if frames > trained_frames:
            # More frames than the model was trained on: slide a window over time. The window sees at most the last
            # trained_frames given frames; earlier ones are put back in front.
            window = (trained_frames, h, w)
            earlier = max(known - trained_frames, 0)
            video = self.model.generate_long_video(
                **condition, visual_grid=window, num_frames=frames - earlier, first_frames=first_frames,
                condition_type=None if condition else "none", **generate_kwargs,
            )
            return torch.cat([first_frames[:, :earlier], video], dim=1) if earlier else video
        kwargs = dict(condition)
        if not condition:
            kwargs["batch_size"] = rows
        if first_frames is not None:
            known_tokens = torch.zeros(rows, frames, h, w, dtype=torch.long, device=self.device)
            known_tokens[:, :known] = first_frames
            mask = torch.zeros(frames, h, w, dtype=torch.bool, device=self.device)
            mask[known:] = True
            kwargs.update(known_tokens=known_tokens, generate_mask=mask)
        elif "known_tokens" in model_inputs:
            kwargs.update(known_tokens=model_inputs["known_tokens"], generate_mask=model_inputs["generate_mask"])
        if progress is not None:
            generate_kwargs["streamer"] = progress
        sequences = self.model.generate(**kwargs, visual_grid=visual_grid, **generate_kwargs)
        return self.model.sequences_to_grid(sequences, visual_grid)

    def decode_tokens(self, tokens: torch.Tensor) -> list:
        """Visual tokens (N, T, h, w) -> N PIL images (image tasks) or N frame lists (video tasks)."""
        decoded = self.processor.postprocess(self.model.decode_visual_tokens(tokens.to(self.device)), output_type="pil")
        if self.makes_video:
            return [list(item) if isinstance(item, (list, tuple)) else [item] for item in decoded]
        return [item[0] if isinstance(item, (list, tuple)) else item for item in decoded]

    def postprocess(self, samples: list, output_type: str = "pil", tokens: Optional[torch.Tensor] = None):
        """PIL samples -> the requested output type (one item per sample)."""
        if output_type == "pil":
            return samples
        if output_type == "tokens":
            return [t.cpu() if self.makes_video else t[0].cpu() for t in tokens]
        arrays = [
            np.stack([np.asarray(f, dtype=np.float32) / 255.0 for f in s]) if self.makes_video
            else np.asarray(s, dtype=np.float32) / 255.0
            for s in samples
        ]
        if output_type == "np":
            return arrays
        return [torch.from_numpy(a).movedim(-1, -3).contiguous() for a in arrays]

    # ---------------------------------------------------------------------------------------------------------------
    # The call

    def _options(self, call_options: dict) -> dict:
        options = {**self._forward_params, **{k: v for k, v in call_options.items() if v is not None}}
        unknown = sorted(set(options) - set(CALL_OPTIONS))
        if unknown:
            raise TypeError(f"Unexpected argument(s) {unknown}; known: {list(CALL_OPTIONS)}.")
        return _merge_generate_kwargs(options)

    def run(self, requests: list[NuwaRequest], plan: DecodingPlan, batched: bool, num_per_input: int,
            **call_options) -> Any:
        """Generate for ``requests`` as ``plan`` says and return outputs in the shape the user asked for.

        One input and one sample -> one item; one input and several samples -> a list; a batch -> a list per input
        (of one item, or of a list when ``num_per_input > 1``).
        """
        options = check_sampling_options(self._options(call_options))
        num_per_input = _check_count("The number of samples per input", num_per_input)
        allow_large = options.pop("allow_large", False)
        if not isinstance(allow_large, bool):
            raise TypeError(f"allow_large must be True or False, got {allow_large!r}.")
        output_type = options.pop("output_type", "pil")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        scorer = options.pop("scorer", None)
        scorer = self.scorer if scorer is None else CandidateScorer(scorer)
        num_candidates = options.pop("num_candidates", None)
        if num_candidates is None:
            num_candidates = 8 if scorer is not None else 1
        if num_candidates > 1 and scorer is None:
            raise ValueError(
                f"num_candidates={num_candidates} asks for reranking but no scorer is configured: pass scorer=... "
                "(e.g. a TextVisualDualEncoder or a callable scorer(candidates, prompt)), or num_candidates=1."
            )
        per_input = num_per_input * num_candidates
        batch_size = options.pop("batch_size", None)
        batch_size = batch_size if batch_size is not None else check_batch_size(self._batch_size or 8)
        generator = options.pop("generator", None)
        seed = options.pop("seed", None)
        if seed is not None and generator is not None:
            raise ValueError("Pass either seed= or generator=, not both.")
        group_seeds = None  # with a list of generators: one seed per input (or per row), each group sampled alone
        if isinstance(generator, (list, tuple)):
            group_seeds = _seeds_from_generators(generator, len(requests), per_input)
        elif generator is not None:
            if not isinstance(generator, torch.Generator):
                raise TypeError(
                    f"generator must be a torch.Generator or a list of them (one per input, or one per output row), "
                    f"got {type(generator).__name__}."
                )
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        generate_kwargs = {k: options[k] for k in GENERATION_OPTIONS if k in options}
        generate_kwargs.setdefault("do_sample", True)
        default_guidance = getattr(getattr(self.model, "generation_config", None), "guidance_scale", None)
        if "guidance_scale" not in generate_kwargs and plan.condition != "none" and default_guidance not in (None, 1.0):
            # The model folder's generation_config.json sets NUWA's default guidance for conditioned tasks.
            generate_kwargs["guidance_scale"] = float(default_guidance)
        if generate_kwargs.get("guidance_scale") is not None and plan.condition == "none":
            raise ValueError(
                "guidance_scale needs a condition to guide toward, but this call has none: add a prompt, or leave "
                "guidance_scale unset."
            )
        # Bounded work (nuwa_hf.pipelines.work_limits): checked before anything is encoded or generated.
        frames_argument = FRAMES_ARGUMENT.get(self.task_name, "num_frames")
        work_limits.check_frames(plan.frames, self.max_frames, frames_argument, allow_large)
        row_count = work_limits.check_rows(len(requests), per_input, num_candidates, allow_large)
        if hasattr(self.config, "decoder_layers"):
            h, w = self.token_grid()
            guided = generate_kwargs.get("guidance_scale") not in (None, 1.0)
            work_limits.check_chunk_memory(
                self.config, (min(plan.frames, self.max_frames), h, w), min(batch_size, row_count), guided, self.device,
                dtype_bytes=torch.finfo(self.model.dtype).bits // 8 if self.model.dtype.is_floating_point else 4,
                allow_large=allow_large,
            )

        model_inputs = self.preprocess(requests, plan)
        rows = _repeat_rows(model_inputs, per_input)
        if group_seeds is None:
            tokens = self._generate_in_chunks(rows, batch_size, seed, generate_kwargs)
        else:
            # diffusers' convention: each input (or row) is sampled from its own generator, so a batch gives exactly
            # what separate calls with the same generators give. The groups run one after another.
            size = rows["batch_size"] // len(group_seeds)
            tokens = torch.cat([
                self._generate_in_chunks(_slice_rows(rows, index * size, (index + 1) * size), batch_size, group_seed,
                                         generate_kwargs)
                for index, group_seed in enumerate(group_seeds)
            ])
        if plan.output_from_frame:
            tokens = tokens[:, plan.output_from_frame:]
        samples = self.decode_tokens(tokens) if output_type != "tokens" or scorer is not None else [None] * len(tokens)

        outputs = []
        for index, request in enumerate(requests):
            span = slice(index * per_input, (index + 1) * per_input)
            chosen = list(range(span.start, span.stop))
            if num_candidates > 1:
                scores = scorer(samples[span], request.prompt)
                order = sorted(range(per_input), key=lambda i: -scores[i])[:num_per_input]
                chosen = [span.start + i for i in order]
            items = self.postprocess([samples[i] for i in chosen], output_type, tokens[chosen])
            outputs.append(items[0] if num_per_input == 1 else items)
        return outputs if batched else outputs[0]

    @contextlib.contextmanager
    def _guidance_left_to_nuwa(self):
        """Hide ``guidance_scale`` of the model's generation config while generating.

        NUWA's ``generate`` takes guidance as its own argument; left in the generation config, transformers would also
        apply its decoder-only guidance, which does not work for an encoder-decoder. The pipeline passes the value as
        NUWA's argument instead (see :meth:`run`).
        """
        config = getattr(self.model, "generation_config", None)
        value = getattr(config, "guidance_scale", None)
        if value is None:
            yield
            return
        config.guidance_scale = None
        try:
            yield
        finally:
            config.guidance_scale = value

    def _steps(self, chunk: dict) -> int:
        """Decoding steps of one chunk: grid positions after the prefix known in every row (what generate samples)."""
        frames, h, w = chunk["visual_grid"]
        total = frames * h * w
        if "generate_mask" in chunk:
            wanted = chunk["generate_mask"].reshape(chunk["batch_size"], -1).any(dim=0)
            return total - int(wanted.float().argmax())
        if "first_frames" in chunk:
            return total - chunk["first_frames"].shape[1] * h * w
        return total

    def _generate_in_chunks(self, rows: dict, batch_size: int, seed: Optional[int], generate_kwargs: dict) -> torch.Tensor:
        from tqdm.auto import tqdm

        total_rows = rows["batch_size"]
        chunks = [_slice_rows(rows, start, min(start + batch_size, total_rows)) for start in range(0, total_rows, batch_size)]
        sliding = rows["visual_grid"][0] > self.max_frames
        config = {"desc": f"{self.task_name or 'NUWA'}: tokens", "leave": False, **self._progress_bar_config}
        outputs = []
        with _seeded(seed), self._guidance_left_to_nuwa(), torch.inference_mode(), tqdm(total=sum(self._steps(c) for c in chunks), **config) as bar:
            for chunk in chunks:
                kwargs = dict(generate_kwargs)
                if not sliding:
                    kwargs["_progress"] = _TokenProgress(bar)
                outputs.append(self.forward(chunk, **kwargs))
                if sliding:
                    bar.update(self._steps(chunk))
        return torch.cat(outputs)

    def forward(self, model_inputs, **forward_params):
        # transformers' forward moves every tensor of the inputs to the device; ours are already there.
        with self.device_placement():
            return self._forward(model_inputs, **forward_params)


def _repeat_rows(inputs: dict, times: int) -> dict:
    """Repeat every per-request tensor ``times`` times (request-major), so each request gets ``times`` rows."""
    out = dict(inputs)
    for key in ("input_ids", "sketch_tokens", "known_tokens", "generate_mask", "first_frames"):
        if key in out:
            out[key] = out[key].repeat_interleave(times, dim=0)
    out["batch_size"] = inputs["batch_size"] * times
    return out


def _seeds_from_generators(generators, num_inputs: int, per_input: int) -> list[int]:
    """One seed drawn from each generator of a list given as ``generator=``: one generator per input (all its samples
    and candidates come from it) or one per output row (``num_inputs * per_input``)."""
    if len(generators) not in (num_inputs, num_inputs * per_input):
        raise ValueError(
            f"generator is a list of {len(generators)}, but this call has {num_inputs} input(s) and {per_input} row(s) "
            f"per input: give one generator per input ({num_inputs}) or one per row ({num_inputs * per_input}), or a "
            "single torch.Generator."
        )
    for index, generator in enumerate(generators):
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator[{index}] must be a torch.Generator, got {type(generator).__name__}.")
    return [int(torch.randint(0, 2**62, (1,), generator=generator)) for generator in generators]


def _slice_rows(inputs: dict, start: int, stop: int) -> dict:
    out = dict(inputs)
    for key in ("input_ids", "sketch_tokens", "known_tokens", "generate_mask", "first_frames"):
        if key in out:
            out[key] = out[key][start:stop]
    out["batch_size"] = stop - start
    return out


@contextlib.contextmanager
def _seeded(seed: Optional[int]):
    """Seed torch's global generator for the call and restore its previous state afterwards."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield



OPTIONS_DOC = """
        Generation options (keyword arguments; defaults for every call can also be given to ``pipeline(...)``):
            seed (`int`): makes the call reproducible (torch's global generator is restored afterwards).
            generator (`torch.Generator` or a list of them): alternatively, a seed is drawn from it (successive calls
                differ). A list (diffusers' convention) gives each input, or each output row, its own generator: a
                batch then gives exactly what one call per input with the same generators gives.
            do_sample (`bool`, defaults to True): sample (NUWA's way); False decodes greedily.
            temperature (`float`), top_k (`int`), top_p (`float`): sampling controls; unset ones come from the model
                folder's generation_config.json.
            guidance_scale (`float`): classifier-free guidance, a finite number >= 1 (1 = off; > 1 follows the text or
                sketch more closely); needs a condition. The rules of every option: ``nuwa_hf.pipelines.sampling_options``.
            scorer: reranks candidates, keeping the best (the paper keeps the best of 60 by CLIP): an object with
                ``similarity(samples, texts)`` (e.g. ``nuwa_hf.evaluation.TextVisualDualEncoder``), the path of a
                saved scorer, or a callable ``scorer(candidates, prompt) -> scores``.
            num_candidates (`int`): candidates per output when a scorer is set (default 8).
            output_type (`str`, defaults to "pil"): "pil" (PIL images / lists of PIL frames), "np" (float32 in [0, 1],
                (H, W, 3) or (T, H, W, 3)), "pt" (float in [0, 1], (3, H, W) or (T, 3, H, W)), or "tokens" (the VQ-GAN
                token grid, (h, w) or (T, h, w)).
            batch_size (`int`, defaults to 8): rows (inputs x samples x candidates) generated together.
            allow_large (`bool`, defaults to False): go past the work limits (frames, candidates, rows per call, memory
                estimate; see ``nuwa_hf.pipelines.work_limits``) deliberately.

        Errors: ``ValueError`` (a value out of range; ``WorkLimitError`` past a work limit) or ``TypeError`` (a value of
        the wrong type, or an argument the task does not take), with a message that names the fix; ``FileNotFoundError``
        for a missing input file.
"""


def with_options_doc(function):
    """Append :data:`OPTIONS_DOC` to a task pipeline's ``__call__`` docstring."""
    function.__doc__ = (function.__doc__ or "").rstrip() + "\n" + OPTIONS_DOC
    return function
