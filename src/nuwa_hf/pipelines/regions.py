"""The region a zero-shot task regenerates (image completion, image manipulation), as a boolean token mask.

A region is one of:

* a shortcut (``"bottom half"``, ``"top left"``, ``"center"``, ``"all"`` ...: :data:`REGION_SHORTCUTS`), applied to the
  token grid;
* a box ``(left, top, right, bottom)``, as a tuple / list of four numbers or as text ``"left,top,right,bottom"``
  (``"0,0.5,1,1"``; the same text ``nuwa-hf generate --mask`` takes, read by the same :func:`parse_region_text`).
  The rule (:data:`BOX_RULE`), by value, never by Python type:

  - all four values in [0, 1] -> **fractions** of the frame: ``(0, 0, 1, 1)`` and ``(0.0, 0.0, 1.0, 1.0)`` are the
    whole image, ``(0, 0.5, 1, 1)`` the bottom half;
  - any value above 1 -> the whole box is in **pixels** of the input image: ``(0, 8, 16, 16)``; a value between 0 and 1
    in such a box is a pixel position too (``(0.5, 0, 8, 8)`` starts inside pixel 0), and pixel edges that fall inside
    a pixel cover that pixel;
  - the one box that cannot be written in pixels is a box inside the first pixel, ``(0, 0, 1, 1)`` in pixels (it reads
    as the whole image): give it as fractions ``(0, 0, 1/width, 1/height)`` or as a mask array;
* a mask image (PIL image in mode '1' / 'L', array, tensor, or a file path), white / True = regenerate.

:func:`region_to_token_mask` maps the region through the image processor's resize and crop onto the VQ-GAN token grid.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import PIL.Image
import torch

from ..media import is_grey

REGION_SHORTCUTS = (
    "top half", "bottom half", "left half", "right half", "center", "top left", "top right", "bottom left",
    "bottom right", "all",
)

# How a box is read (used in messages, the CLI's help and the docs; the module docstring has the full rule).
BOX_RULE = ("a box left,top,right,bottom: four numbers all in [0, 1] are fractions of the frame (0,0,1,1 = the whole "
            "image, 0,0.5,1,1 = the bottom half); if any is above 1 the box is in pixels (0,8,16,16)")

ACCEPTED_REGIONS = (f"one of {', '.join(repr(s) for s in REGION_SHORTCUTS)}; {BOX_RULE}, as a tuple (0, 0.5, 1, 1) "
                    "or text \"0,0.5,1,1\"; or a mask image (white = regenerate)")

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_region_text(text: str) -> Union[str, tuple]:
    """The text form of a region, shared by the Python API and ``nuwa-hf generate --mask``.

    ``"left,top,right,bottom"`` (commas and / or spaces, optional brackets: ``"0,0.5,1,1"``, ``"(0, 8, 16, 16)"``) ->
    a tuple of four numbers (ints where written as integers), read by the box rule (:data:`BOX_RULE`). Any other text
    (a shortcut such as ``"bottom half"``, a file path) is returned unchanged. Text made only of numbers but not four
    of them raises ``ValueError``.

    Example:
        >>> parse_region_text("0,0.5,1,1"), parse_region_text("bottom half")
        ((0, 0.5, 1, 1), 'bottom half')
    """
    parts = [part for part in re.split(r"[,\s]+", text.strip().strip("()[]").strip()) if part]
    if not parts or not all(_NUMBER.match(part) for part in parts):
        return text
    if len(parts) != 4:
        raise ValueError(f"The region {text!r} has {len(parts)} number(s); {BOX_RULE}.")
    return tuple(int(part) if re.fullmatch(r"[+-]?\d+", part) else float(part) for part in parts)


def _is_box(region: Any) -> bool:
    """A tuple / list of numbers (Python or numpy; not bools): a box (its length is checked by _box_mask)."""
    return isinstance(region, (tuple, list)) and all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in region)


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
        raise ValueError(f"Unknown region {name!r}. Use {ACCEPTED_REGIONS}.")
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
        if mask.mode == "RGBA":  # paint programs export PNGs with an alpha channel, opaque or not
            if np.asarray(mask.getchannel("A")).min() < 255:
                raise ValueError(
                    "The mask has transparent pixels, which do not say which part to regenerate (strokes painted on "
                    "a transparent layer, or transparent holes to fill, as some editing tools mean it): save the mask "
                    "without transparency, black and white (white = regenerate), e.g. flattened onto black."
                )
            mask = mask.convert("RGB")
        if mask.mode == "RGB":  # a black-and-white mask saved in colour (what most paint programs write)
            channels = np.asarray(mask)
            if is_grey(channels):
                return channels[..., 0] >= 128
        if mask.mode == "RGB":
            raise ValueError(
                "The mask is a PIL image in mode 'RGB' with colours other than greys; a mask is black and white (mode "
                "'1' or 'L', or greys in RGB), white = regenerate. Paint the region white on black (converting a "
                "coloured stroke to grayscale makes it a dark grey, which reads as black: not regenerated)."
            )
        if mask.mode not in ("1", "L", "LA", "P"):
            raise ValueError(
                f"The mask is a PIL image in mode {mask.mode!r}; a mask is black and white (mode '1' or 'L', or greys "
                "in RGB), white = regenerate. Convert it with `mask.convert('L')`, or save it in grayscale."
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


def _scaled_mask(pixels: np.ndarray, image_size: tuple[int, int], token_grid: tuple[int, int]) -> np.ndarray:
    """A mask ``(mh, mw)`` of another size than the image -> bool ``(height, width)`` of the image, when it has the
    image's shape (the same width : height, to within a pixel of the mask's rounding; e.g. drawn at the model's frame
    size for a larger picture): scaled, and an image pixel is in the region when any part of it is (a thin stroke
    survives shrinking). A mask of another shape could be meant stretched or cropped, so it is refused."""
    width, height = image_size
    mask_height, mask_width = pixels.shape
    if abs(mask_width * height / width - mask_height) > 1 and abs(mask_height * width / height - mask_width) > 1:
        raise ValueError(
            f"The mask is {mask_width}x{mask_height} (width x height) but the image is {width}x{height}, a different "
            f"shape: resize the mask to the image's size (nearest neighbour), or draw it with the image's shape (it "
            f"is then scaled to the image), or give it at the token grid's size {token_grid[1]}x{token_grid[0]}."
        )
    scaled = PIL.Image.fromarray(pixels.astype(np.uint8) * 255).resize((width, height), PIL.Image.BOX)
    return np.asarray(scaled) > 0


def _box_mask(box: Sequence[float], image_size: tuple[int, int]) -> np.ndarray:
    """A box (left, top, right, bottom) -> bool pixel mask (H, W) of the input image, by the box rule (BOX_RULE)."""
    width, height = image_size
    if len(box) != 4:
        raise ValueError(f"A box is (left, top, right, bottom), got {len(box)} numbers: {tuple(box)!r}; {BOX_RULE}.")
    values = [float(v) for v in box]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"The box {tuple(box)!r} holds NaN or infinite values; {BOX_RULE}.")
    fractions = all(0.0 <= v <= 1.0 for v in values)
    if fractions:
        values = [values[0] * width, values[1] * height, values[2] * width, values[3] * height]
    left, top, right, bottom = values
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        read_as = "fractions of the frame" if fractions else "pixels"
        raise ValueError(
            f"The box {tuple(box)!r} (read as {read_as}) does not fit the {width}x{height} image: give (left, top, "
            f"right, bottom) with left < right and top < bottom, either all in [0, 1] (fractions) or in pixels with "
            f"0 <= left < right <= {width} and 0 <= top < bottom <= {height}."
        )
    mask = np.zeros((height, width), dtype=bool)
    mask[int(math.floor(top)): int(math.ceil(bottom)), int(math.floor(left)): int(math.ceil(right))] = True
    return mask


def region_to_token_mask(region: Any, image_size: tuple[int, int], token_grid: tuple[int, int], image_processor) -> torch.Tensor:
    """The region to regenerate -> bool token mask ``(h, w)``, True = generate.

    Args:
        region: a shortcut (``"bottom half"``, ``"top half"``, ``"left half"``, ``"right half"``, ``"center"``,
            ``"top left"`` ..., ``"all"``), applied to the token grid; a box ``(left, top, right, bottom)`` or its text
            ``"left,top,right,bottom"``: fractions of the frame when all four values are in [0, 1] (``(0, 0, 1, 1)`` is
            the whole image), else pixels of the input image (see the module docstring); or a mask (PIL image in
            mode '1'/'L', array, tensor, or a path),
            white / True = regenerate, the size of the input image (it then gets the image's resize and crop), of
            the image's shape at another size (scaled to the image first: :func:`_scaled_mask`), or of the token
            grid itself. An RGBA mask is read when opaque; one with transparent pixels is refused (ambiguous).
        image_size: (width, height) of the input image as given (before the processor's resize and crop).
        token_grid: (h, w) of the VQ-GAN token grid.
        image_processor: the ``NuwaImageProcessor`` whose geometry the image went through.

    A token is regenerated when any pixel of its cell is in the region, so the edit always covers the region.
    """
    h, w = token_grid
    if region is None:
        raise ValueError("No region given: pass mask= as a shortcut such as 'bottom half', a box or a mask image.")
    if isinstance(region, str):
        region = parse_region_text(region)
    if isinstance(region, str) and not Path(region).suffix:
        return torch.from_numpy(_shortcut_mask(region, token_grid))
    if _is_box(region):
        pixels = _box_mask(region, image_size)
    else:
        pixels = _mask_array(region)
        if pixels.shape == (h, w) and (h, w) != (image_size[1], image_size[0]):
            return torch.from_numpy(pixels.copy())
        if pixels.shape != (image_size[1], image_size[0]):
            pixels = _scaled_mask(pixels, image_size, (h, w))
    processed = image_processor.preprocess_sketches(
        pixels.astype(np.int64), num_sketch_classes=2, return_tensors="np"
    )["sketch_maps"][0]
    crop_h, crop_w = processed.shape
    if crop_h % h or crop_w % w:
        raise ValueError(f"The processed mask ({crop_w}x{crop_h}) is not a multiple of the token grid {w}x{h}.")
    cells = processed.reshape(h, crop_h // h, w, crop_w // w).astype(bool)
    return torch.from_numpy(cells.any(axis=(1, 3)))


def token_mask_to_pixels(tokens: Any, size: tuple[int, int]) -> np.ndarray:
    """A token mask ``(h, w)`` (what :func:`region_to_token_mask` returns) -> bool pixels ``(height, width)`` of a
    picture of ``size`` (width, height) as the model sees it (or that picture enlarged): each token covers its cell of
    ``height // h`` x ``width // w`` pixels. For drawing the region a call regenerates over the picture.

    Raises:
        ValueError: ``size`` is not a multiple of the token grid.
    """
    tokens = np.asarray(tokens.numpy() if isinstance(tokens, torch.Tensor) else tokens, dtype=bool)
    if tokens.ndim != 2:
        raise ValueError(f"A token mask is (h, w), got shape {tokens.shape}.")
    width, height = size
    h, w = tokens.shape
    if height % h or width % w:
        raise ValueError(f"A {width}x{height} picture is not a whole number of the {w}x{h} token grid's cells.")
    return np.kron(tokens, np.ones((height // h, width // w), dtype=bool))


def grow_token_mask(tokens: torch.Tensor, border: int) -> torch.Tensor:
    """A token mask ``(h, w)`` (True = regenerate) grown by ``border`` tokens on every side, diagonals included (the
    ring of tokens around the region, clipped to the grid); ``border=0`` returns it unchanged. The boundary tokens of
    a region were encoded by the VQ-GAN seeing the region's pixels (its receptive field crosses token cells), so
    regenerating them lets the model continue the known part across the edge."""
    if isinstance(border, bool) or not isinstance(border, int) or border < 0:
        raise ValueError(f"border must be a whole number of tokens >= 0, got {border!r}.")
    if border == 0:
        return tokens
    grown = torch.nn.functional.max_pool2d(tokens.to(torch.float32)[None, None], 2 * border + 1, stride=1,
                                           padding=border)
    return grown[0, 0] > 0


def blank_pixels(pixel_values: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``pixel_values`` ``(..., 3, H, W)`` in [-1, 1] (the processor's output) with the pixels of the token mask
    ``tokens`` ``(h, w)`` (True = the region; each token covers its ``H // h`` x ``W // w`` cell) set to black (-1),
    as diffusers' inpainting blanks the masked image before encoding it. A new tensor.

    Raises:
        ValueError: the picture is not a whole number of the token grid's cells.
    """
    height, width = pixel_values.shape[-2:]
    pixels = torch.from_numpy(token_mask_to_pixels(tokens, (width, height))).to(pixel_values.device)
    return pixel_values.masked_fill(pixels, -1.0)
