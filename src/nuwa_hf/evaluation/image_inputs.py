"""Turn the many ways a user holds images and videos into one tensor layout the metrics agree on.

Accepted for a set of N images:
  * ``uint8`` arrays/tensors (values 0..255) or floating arrays/tensors with values in [0, 1];
  * shaped (N, H, W) (grayscale), (N, H, W, C) (channels last) or (N, C, H, W) (channels first), C in {1, 3};
  * a list of PIL images, or of per-image arrays of the shapes above without the N axis.
A set of N videos is the same with a time axis after N: (N, T, H, W), (N, T, H, W, C), (N, T, C, H, W), or a list.

Everything comes out as ``float32`` in [0, 1], channels first: images (N, C, H, W), videos (N, T, C, H, W).
"""

from __future__ import annotations

from typing import Any, List, Sequence

import numpy as np
import torch

# ITU-R 601 luma weights, the ones PIL uses for mode "L": a grayscale scorer sees what a PIL user would see.
_LUMA = torch.tensor([0.299, 0.587, 0.114])
_FLOAT_TOLERANCE = 1e-3


def _to_tensor(item: Any) -> torch.Tensor:
    if isinstance(item, torch.Tensor):
        return item.detach().cpu()
    if hasattr(item, "mode") and hasattr(item, "size") and hasattr(item, "convert"):  # a PIL image
        image = item if item.mode in ("L", "RGB") else item.convert("RGB")
        return torch.from_numpy(np.array(image, copy=True))
    return torch.from_numpy(np.array(item, copy=True))


def _stack(items: Any, what: str) -> torch.Tensor:
    """One tensor from a tensor, an array, or a list of per-sample items of equal shape."""
    if isinstance(items, (torch.Tensor, np.ndarray)):
        return _to_tensor(items)
    if isinstance(items, (list, tuple)):
        if len(items) == 0:
            raise ValueError(f"Got an empty list of {what}: pass at least one.")
        parts = [_stack(item, what) if isinstance(item, (list, tuple)) else _to_tensor(item) for item in items]
        shapes = {tuple(part.shape) for part in parts}
        if len(shapes) > 1:
            raise ValueError(
                f"All {what} must have the same shape, got {sorted(shapes)}: resize them to one size first."
            )
        return torch.stack(parts)
    raise TypeError(f"Expected {what} as a tensor, a numpy array or a list of them / PIL images, got {type(items)}.")


def _to_unit_float(values: torch.Tensor, what: str) -> torch.Tensor:
    if values.dtype == torch.uint8:
        return values.float() / 255.0
    if values.dtype == torch.bool:
        return values.float()
    if not torch.is_floating_point(values):
        raise TypeError(
            f"{what} have dtype {values.dtype}: pass uint8 (0..255) or floating point values in [0, 1]."
        )
    values = values.float()
    if values.numel() and (values.min() < -_FLOAT_TOLERANCE or values.max() > 1 + _FLOAT_TOLERANCE):
        raise ValueError(
            f"Floating point {what} must lie in [0, 1], got values in [{values.min():.3f}, {values.max():.3f}]. "
            "Divide 0..255 values by 255, or map [-1, 1] values with (x + 1) / 2."
        )
    return values.clamp(0.0, 1.0)


def _set_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) with C in {1, 3} -> (N, channels, H, W)."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    luma = _LUMA.to(images.dtype).view(1, 3, 1, 1)
    return (images * luma).sum(dim=1, keepdim=True)


def _layout_images(images: torch.Tensor, what: str) -> torch.Tensor:
    """(N, H, W) / (N, H, W, C) / (N, C, H, W) -> (N, C, H, W)."""
    if images.ndim == 3:
        return images.unsqueeze(1)
    if images.ndim != 4:
        raise ValueError(
            f"{what} must be shaped (N, H, W), (N, H, W, C) or (N, C, H, W), got {tuple(images.shape)}."
        )
    if images.shape[-1] in (1, 3):
        return images.permute(0, 3, 1, 2)
    if images.shape[1] in (1, 3):
        return images
    raise ValueError(f"{what} shaped {tuple(images.shape)} have no channel axis of size 1 or 3 (first or last).")


def as_float_images(images: Any, channels: int = 3, what: str = "images") -> torch.Tensor:
    """A set of images as float32 (N, channels, H, W) in [0, 1]; ``channels`` is 1 (luma) or 3 (gray is repeated)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}.")
    stacked = _stack(images, what)
    laid_out = _layout_images(stacked, what)
    return _set_channels(_to_unit_float(laid_out, what), channels).contiguous()


def as_float_videos(videos: Any, channels: int = 3, what: str = "videos") -> torch.Tensor:
    """A set of videos as float32 (N, T, channels, H, W) in [0, 1]."""
    stacked = _stack(videos, what)
    if stacked.ndim not in (4, 5):
        raise ValueError(
            f"{what} must be shaped (N, T, H, W), (N, T, H, W, C) or (N, T, C, H, W), got {tuple(stacked.shape)}. "
            "For a single video add the N axis (video[None])."
        )
    num_videos, num_frames = stacked.shape[:2]
    frames = as_float_images(stacked.reshape(num_videos * num_frames, *stacked.shape[2:]), channels, what)
    return frames.reshape(num_videos, num_frames, *frames.shape[1:])


def as_uint8_images(images: Any, what: str = "images") -> np.ndarray:
    """A set of images as uint8 (N, H, W, 3), the layout image files and ``datasets.Image`` use.

    Floating point values in [0, 1] are rounded to the nearest 8-bit level (what saving the image would do).
    """
    floats = as_float_images(images, channels=3, what=what)
    return (floats * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def as_label_maps(maps: Any, what: str = "label maps") -> torch.Tensor:
    """Integer class maps (N, H, W) as int64. Accepts arrays, tensors or lists of (H, W) maps / PIL "L"/"I" images."""
    stacked = _stack(maps, what)
    if torch.is_floating_point(stacked):
        if not torch.equal(stacked, stacked.round()):
            raise TypeError(f"{what} must hold integer class ids, got non-integer floats.")
    if stacked.ndim == 2:
        stacked = stacked.unsqueeze(0)
    if stacked.ndim != 3:
        raise ValueError(f"{what} must be shaped (N, H, W) (one class id per pixel), got {tuple(stacked.shape)}.")
    return stacked.long()


def frames_of(videos: torch.Tensor) -> torch.Tensor:
    """(N, T, C, H, W) -> (N*T, C, H, W): every frame as an image, in video order."""
    return videos.reshape(-1, *videos.shape[2:])


def paired_pictures(generated: Any, reference: Any, videos: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired image sets, or paired video sets frame by frame (``videos``) -> two float (N, 3, H, W) tensors in
    [0, 1] of equal length (N frames for videos); raises naming the set that is not paired one to one."""
    convert, kind = (as_float_videos, "videos") if videos else (as_float_images, "images")
    first, second = convert(generated, what=f"generated {kind}"), convert(reference, what=f"reference {kind}")
    check_same_count(first, second, "generated", "reference")
    return (frames_of(first), frames_of(second)) if videos else (first, second)


def split_into_batches(count: int, batch_size: int) -> List[slice]:
    """Slices covering range(count) in order, each at most ``batch_size`` long."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    return [slice(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]


def as_texts(texts: Any, what: str = "texts") -> List[str]:
    """A list of strings; a single string is refused because it is almost always a mistake."""
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a list of strings, got one string: wrap it in a list.")
    texts = list(texts)
    bad = [type(text).__name__ for text in texts if not isinstance(text, str)]
    if bad:
        raise TypeError(f"{what} must all be strings, got {sorted(set(bad))}.")
    return texts


def check_same_count(first: Sequence, second: Sequence, first_name: str, second_name: str) -> None:
    """Raise if two paired collections differ in length."""
    if len(first) != len(second):
        raise ValueError(
            f"{first_name} and {second_name} must be paired one to one, got {len(first)} and {len(second)}."
        )
