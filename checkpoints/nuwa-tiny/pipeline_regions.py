"""The region a zero-shot task regenerates (image completion, image manipulation), as a boolean token mask.

A region is a shortcut (``"bottom half"``), a box ``(left, top, right, bottom)`` in pixels or fractions, or a mask
image; :func:`region_to_token_mask` maps it through the image processor's resize and crop onto the VQ-GAN token grid.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch

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
