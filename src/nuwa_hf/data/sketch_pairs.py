"""Users' own sketch/image pairs: a segmentation map (class-index PNG) beside each image, for sketch-to-image.

Folder layout (``datasets``' ``imagefolder`` convention: every ``*_file_name`` key becomes an image column):

    data_dir/metadata.jsonl   {"file_name": "images/0001.jpg", "sketch_file_name": "sketches/0001.png", "text": "..."}
    data_dir/images/...       RGB images
    data_dir/sketches/...     single-channel PNGs whose pixel values ARE class indices (mode L, P, I;16 or I)

``"text"`` is optional (all lines or none). A colour-coded RGB map is refused: convert it to indices first (for
instance with a palette, mode "P").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from datasets import Dataset, IterableDataset, load_dataset
from PIL import Image

from ..frame_conversion import fit, normalize_size
from .image_folder import to_rgb_array
from .user_folders import attach_decoder, read_metadata, resolve_folder

SKETCH_MODES = ("L", "P", "I;16", "I")


def sketch_to_array(sketch: Image.Image, size: tuple[int, int] | None, num_classes: int | None) -> np.ndarray:
    """Class-index PIL image -> int64 ``(H, W)``; resized with nearest neighbour; values checked against num_classes."""
    name = getattr(sketch, "filename", None) or "a sketch"
    if sketch.mode not in SKETCH_MODES:
        raise ValueError(f"{name} has mode {sketch.mode}; sketches must be class-index images ({SKETCH_MODES}).")
    classes = np.asarray(fit(sketch, size, Image.Resampling.NEAREST)).astype(np.int64)
    if num_classes is not None and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"{name} has class {int(classes.max())}, outside 0..{num_classes - 1} (num_classes="
                         f"{num_classes}).")
    return classes


def load_sketch_pairs(
    data_dir: str | Path,
    *,
    split: str | None = None,
    num_classes: int | None = None,
    size: int | tuple[int, int] | None = None,
    streaming: bool = False,
) -> Dataset | IterableDataset:
    """Load sketch/image pairs (see the module docstring for the layout).

    Args:
        data_dir: the folder, or the parent of split folders.
        split: a subfolder name or ``None``.
        num_classes: when given, every sketch value must lie in ``0..num_classes-1`` (checked as examples decode).
        size: int or ``(height, width)``: centre-crop and resize both (image bicubic, sketch nearest).
        streaming: stream with ``load_dataset(..., streaming=True)``.

    Returns:
        Examples ``{"image": uint8 (H, W, 3), "sketch": int64 (H, W), "text": str (if given), ...}``, decoded lazily.

    Raises:
        ValueError / FileNotFoundError at once for a bad folder or metadata, a sketch that is not single-channel, or an
        image and sketch of different sizes (checked from the file headers, without decoding).
    """
    folder = resolve_folder(data_dir, split)
    size = normalize_size(size)
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
    rows = read_metadata(folder, ("file_name", "sketch_file_name"), text_required=False)
    for row in rows:
        with Image.open(folder / row["file_name"]) as image, Image.open(folder / row["sketch_file_name"]) as sketch:
            if sketch.mode not in SKETCH_MODES:
                raise ValueError(f"{row['sketch_file_name']} has mode {sketch.mode}; sketches must be class-index "
                                 f"images ({SKETCH_MODES}), not colour-coded.")
            if image.size != sketch.size:
                raise ValueError(f"{row['file_name']} is {image.size} but its sketch {row['sketch_file_name']} is "
                                 f"{sketch.size} (width, height); they must match pixel for pixel.")
    dataset = load_dataset("imagefolder", data_dir=str(folder), split="train", streaming=streaming)

    def decode_example(example: dict) -> dict:
        return {**example, "image": to_rgb_array(example["image"], size),
                "sketch": sketch_to_array(example["sketch"], size, num_classes)}

    return attach_decoder(dataset, decode_example)
