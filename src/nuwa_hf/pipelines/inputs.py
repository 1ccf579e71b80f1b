"""One input of a pipeline call, normalised: prompts, images, videos and sketches in the forms users give them.

Every function takes what a user may pass (a PIL image, a path, an array, a list of frames, ...) and returns a clean
value or raises an error that names the fix. The task pipelines use them to tell one input from a batch of inputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..media import _decoded_rgb, has_alpha, load_image, load_sketch, load_sketch_video, load_video, over_black


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
        if image.mode.startswith("I;16"):  # a 16-bit picture (a 16-bit PNG opens so): scaled to 8 bits, not clipped
            image = _decoded_rgb(image)
        if image.mode in ("I", "F"):
            raise ValueError(
                f"The {what} is a single-channel {image.mode!r} image (32-bit integer / float), which looks like a "
                "class map or a depth map, not a picture: pass an RGB image (`image.convert('RGB')` after scaling to "
                "0..255), or use a sketch pipeline for class maps."
            )
        if has_alpha(image):
            image = over_black(image)  # transparent areas are black, never the colours a file keeps under them
    try:
        return load_image(image)
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
        return load_video(video)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{what.capitalize()}: {error}") from None


def as_sketch_list(sketches: Any, video: bool, what: str = "sketch",
                   num_classes: int | None = None) -> tuple[list[np.ndarray], bool]:
    """Image sketches ``(H, W)`` / video sketches ``(T, H, W)`` (or lists of them) -> (list of int64 arrays, batched).

    With ``num_classes`` (the model's sketch classes), colour pictures (PIL images, files) are read as drawings in the
    class colours (``media.read_sketch_drawing``: anti-aliased edges read, other colours refused with the palette)."""
    single_ndim = 3 if video else 2

    def loader(item):
        if video:
            return load_sketch_video(item, num_classes=num_classes, fill=None)
        return load_sketch(item, num_classes=num_classes)

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
            f"a sketch is a class-index map {'(T, H, W)' if single_ndim == 3 else '(H, W)'} of integer class ids. A "
            "drawing in the class colours is read when given as a PIL image or a file (`Image.fromarray(array)`). A "
            "batch of maps is given as a list of them."
        )


def with_prompts(items: list, items_batched: bool, prompt: Any, what: str) -> tuple[list, list[str], bool]:
    """Inputs and their prompts, one of each per input: a single input or prompt is repeated to match the other list.
    Returns (items, prompts, batched)."""
    prompts, prompts_batched = as_prompt_list(prompt)
    count = max(len(items), len(prompts))
    return broadcast(items, count, what), broadcast(prompts, count, "prompt"), items_batched or prompts_batched


def broadcast(values: list, count: int, what: str) -> list:
    """A single value is repeated for every input; a list must have one value per input."""
    if len(values) == count:
        return values
    if len(values) == 1:
        return values * count
    raise ValueError(f"Got {len(values)} {what}s for {count} inputs: give one {what} or one per input.")


# --------------------------------------------------------------------------------------------------------------------
# One input (what a task's make_request reads from a request dict or a stream of inputs)


def one_prompt(value: Any, what: str = "prompt") -> str:
    """One prompt: a non-empty string."""
    if not isinstance(value, str):
        raise TypeError(f"The {what} must be a string, got {type(value).__name__}.")
    if not value.strip():
        raise ValueError(f"The {what} is empty: describe what to generate, e.g. 'the digit 3'.")
    return value


def _nested_numbers(value: Any, ndims: tuple) -> Any:
    """A nested list of numbers (how 🤗 datasets stores an array column) -> the array; anything else unchanged."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        try:
            array = np.asarray(value)
        except ValueError:
            return value
        if array.ndim in ndims and array.dtype.kind in "biuf":
            return array
    return value


def one_image(value: Any, what: str = "image") -> PIL.Image.Image:
    """One image (PIL, path, array ``(H, W, 3)``) -> RGB PIL image."""
    value = _nested_numbers(value, (2, 3))
    images, batched = as_image_list(value, what)
    if batched:
        raise ValueError(f"Expected one {what} for this input, got {len(images)}: give one per input.")
    return images[0]


def one_video(value: Any, what: str = "video") -> list[PIL.Image.Image]:
    """One video (path, list of frames, array ``(T, H, W, 3)``, an image) -> list of RGB PIL frames."""
    value = _nested_numbers(value, (4,))
    videos, batched = as_video_list(value, what)
    if batched:
        raise ValueError(f"Expected one {what} for this input, got {len(videos)}: give one per input.")
    return videos[0]


def one_sketch(value: Any, video: bool, what: str = "sketch", num_classes: int | None = None) -> np.ndarray:
    """One class-index map ``(H, W)`` (or ``(T, H, W)`` with ``video``) -> int64 array (``num_classes``: as in
    :func:`as_sketch_list`)."""
    value = _nested_numbers(value, (3,) if video else (2,))
    sketches, batched = as_sketch_list(value, video=video, what=what, num_classes=num_classes)
    if batched:
        raise ValueError(f"Expected one {what} for this input, got {len(sketches)}: give one per input.")
    return sketches[0]


def as_region_list(mask: Any, count: int) -> list:
    """One region, or a list with one region per image (a list of 4 numbers is one box, not four regions)."""
    from .regions import _is_box

    if isinstance(mask, list) and len(mask) == count and not _is_box(mask):
        return list(mask)
    return [mask]
