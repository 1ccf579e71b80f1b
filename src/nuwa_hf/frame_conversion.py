"""Bringing user images, video frames and sketches to the model's form: transparency laid over black
(:func:`over_black`), then one size (:func:`fit`: centre-crop to the target aspect, then resize).

The lowest of the picture modules (Pillow only): :mod:`nuwa_hf.media` (users' files) and the data loaders
(:mod:`nuwa_hf.data.video_decoding`, the folder readers) both use it.
"""

from __future__ import annotations

from PIL import Image


def over_black(image: Image.Image) -> Image.Image:
    """A picture with transparency -> RGB laid over opaque black (what the web page does with its uploads, and the
    built-in worlds' background). The colours a file keeps under transparent pixels are no part of the picture (paint
    programs keep white, or anything, there), so they are never shown; half-transparent pixels are blended."""
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")


def normalize_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``None``, an int side, or ``(height, width)`` -> ``(height, width)`` or ``None``."""
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}.")
    return int(size[0]), int(size[1])


def fit(image: Image.Image, size: tuple[int, int] | None, resample: Image.Resampling) -> Image.Image:
    """Centre-crop ``image`` to the aspect ratio of ``size`` (height, width), then resize to it.

    ``resample`` must be ``Image.Resampling.NEAREST`` for class-index sketches (no interpolated, invalid classes).
    """
    if size is None or image.size == (size[1], size[0]):
        return image
    return image.resize((size[1], size[0]), resample, box=crop_box(image.size, size))


def crop_box(source_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The part of a ``(width, height)`` picture that :func:`fit` keeps for ``size`` (height, width): the largest
    centred box with the target aspect ratio, as ``(left, top, right, bottom)``."""
    height, width = size
    source_width, source_height = source_size
    if source_width * height > source_height * width:
        crop_width, crop_height = round(source_height * width / height), source_height
    else:
        crop_width, crop_height = source_width, round(source_width * height / width)
    left, top = (source_width - crop_width) // 2, (source_height - crop_height) // 2
    return left, top, left + crop_width, top + crop_height
