"""Users' own captioned images: ``datasets``' ``imagefolder`` with a ``metadata.jsonl`` of captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import Dataset, IterableDataset, load_dataset
from PIL import Image

from ..frame_conversion import fit, normalize_size
from .user_folders import attach_decoder, read_metadata, resolve_folder


def to_rgb_array(image: Image.Image, size: tuple[int, int] | None) -> np.ndarray:
    """PIL image of any mode -> uint8 ``(H, W, 3)`` RGB, centre-cropped and resized (bicubic) to ``size`` if given.

    Transparency is laid over black (:func:`nuwa_hf.media.over_black`), as the pipelines read the same file: the
    colours a PNG keeps under its transparent pixels (white, or anything) are not part of the picture."""
    from ..media import to_pil_image

    return np.asarray(fit(to_pil_image(image), size, Image.Resampling.BICUBIC), dtype=np.uint8)


def load_image_folder(
    data_dir: str | Path,
    *,
    split: str | None = None,
    size: int | tuple[int, int] | None = None,
    streaming: bool = False,
) -> Dataset | IterableDataset:
    """Load captioned images from ``data_dir`` (or ``data_dir/split``) with ``load_dataset("imagefolder")``.

    The folder holds images and ``metadata.jsonl`` with one ``{"file_name": "0001.png", "text": "a caption"}`` per
    image (more keys become more columns). It is checked first, with line numbers in the errors.

    Args:
        data_dir: the folder, or the parent of split folders.
        split: a subfolder name or ``None`` for ``data_dir`` itself.
        size: int or ``(height, width)``: centre-crop and resize to it; ``None`` keeps each file's size.
        streaming: ``load_dataset(..., streaming=True)``: nothing is copied into the datasets cache.

    Returns:
        Examples ``{"image": uint8 ndarray (H, W, 3) RGB, "text": str, ...}``, decoded lazily on access
        (``ds.reset_format()`` gives back the raw ``datasets.Image`` column, i.e. PIL images).
    """
    folder = resolve_folder(data_dir, split)
    size = normalize_size(size)
    read_metadata(folder, ("file_name",))
    dataset = load_dataset("imagefolder", data_dir=str(folder), split="train", streaming=streaming)

    def decode_example(example: dict) -> dict:
        return {**example, "image": to_rgb_array(example["image"], size)}

    return attach_decoder(dataset, decode_example)
