"""Procedural coloured shapes with exact segmentation maps, for VQ-GAN smoke training, demos and tests.

Every sample is drawn with PIL from a seeded generator: a background with a colour gradient and one to three filled
shapes (ellipse, rectangle, triangle) in random colours. The same geometry is drawn into a class map without
anti-aliasing, so the sketch is exact. The project's larger data worlds live in `nuwa_hf.data`; this module exists so
that the visual tokenizers can be trained and tested on their own.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw


SHAPE_CLASSES = ("background", "ellipse", "rectangle", "triangle")


def render_shapes(
    rng: np.random.Generator, image_size: int = 32, max_shapes: int = 3
) -> tuple[Image.Image, np.ndarray]:
    """
    Draw one sample.

    Returns:
        `(image, class_map)`: an RGB `PIL.Image` of `image_size x image_size` and a `(image_size, image_size)` uint8
        array of class ids (indices into [`SHAPE_CLASSES`]); later shapes cover earlier ones in both.
    """
    start, end = rng.integers(0, 256, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, image_size)[:, None, None]
    background = (start * (1 - ramp) + end * ramp).astype(np.uint8)
    image = Image.fromarray(np.repeat(background, image_size, axis=1), mode="RGB")
    class_map = Image.new("L", (image_size, image_size), 0)
    draw_image, draw_map = ImageDraw.Draw(image), ImageDraw.Draw(class_map)
    min_side = max(4, image_size // 5)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        shape_class = int(rng.integers(1, len(SHAPE_CLASSES)))
        width, height = rng.integers(min_side, image_size // 2 + min_side, size=2)
        left = int(rng.integers(-min_side // 2, image_size - width + min_side // 2))
        top = int(rng.integers(-min_side // 2, image_size - height + min_side // 2))
        box = (left, top, left + int(width), top + int(height))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        for draw, fill in ((draw_image, colour), (draw_map, shape_class)):
            if shape_class == 1:
                draw.ellipse(box, fill=fill)
            elif shape_class == 2:
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon([(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=fill)
    return image, np.asarray(class_map, dtype=np.uint8)


def generate_shapes(num_samples: int, image_size: int = 32, seed: int = 0, max_shapes: int = 3):
    """
    Draw `num_samples` samples from one seed.

    Returns:
        `(images, class_maps)`: a list of RGB `PIL.Image` and a `(num_samples, image_size, image_size)` uint8 array.
    """
    rng = np.random.default_rng(seed)
    images, maps = [], []
    for _ in range(num_samples):
        image, class_map = render_shapes(rng, image_size, max_shapes)
        images.append(image)
        maps.append(class_map)
    return images, np.stack(maps) if maps else np.zeros((0, image_size, image_size), np.uint8)


class ShapesDataset(torch.utils.data.Dataset):
    """
    Map-style dataset of procedural shapes, held in memory.

    Args:
        num_samples (`int`): dataset size.
        image_size (`int`, defaults to 32): side of the square samples.
        seed (`int`, defaults to 0): the same seed always gives the same samples.
        kind (`str`, defaults to `"image"`): `"image"` yields `(3, H, W)` floats in `[-1, 1]`; `"sketch"` yields
            `(H, W)` long class maps with `len(SHAPE_CLASSES)` classes.
    """

    num_classes = len(SHAPE_CLASSES)

    def __init__(self, num_samples: int, image_size: int = 32, seed: int = 0, kind: str = "image"):
        if kind not in ("image", "sketch"):
            raise ValueError(f"`kind` must be 'image' or 'sketch', got {kind!r}.")
        images, maps = generate_shapes(num_samples, image_size, seed)
        self.kind = kind
        if kind == "image":
            pixels = (
                np.stack([np.asarray(image) for image in images])
                if images
                else np.zeros((0, image_size, image_size, 3))
            )
            self.samples = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        else:
            self.samples = torch.from_numpy(maps).long()

    def __len__(self) -> int:
        return self.samples.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.samples[index]
