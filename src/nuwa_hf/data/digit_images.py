"""Text-to-image digits: MNIST digits placed on a 3x3 grid, coloured, with captions from templates.

Each sample shows one (or more) digits, each with a colour from :data:`attributes.COLORS` and a place from
:data:`attributes.POSITIONS`, on black. The caption describes every digit with one template drawn per sample, e.g.
"a red digit 3 at the top left" or "the blue number seven at the center and a green digit 1 at the bottom".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from datasets import Array3D, ClassLabel, Dataset, Features, IterableDataset, List, Value

from .attributes import COLORS, DIGIT_WORDS, POSITION_CENTERS, POSITIONS
from .captions import DIGIT_CAPTION_TEMPLATES, SINGLE_DIGIT_CAPTION_TEMPLATES  # noqa: F401  (defined here before)
from .digit_sprites import DigitPool, paste_max
from .held_out import CombinationSampler, check_split, normalize_patterns
from .world_dataset import build_world_dataset, check_positive, iterate_indices, sample_rng

WORLD = "digit_images"
MNIST_SPLIT_OF = {"train": "train", "validation": "validation", "test": "test", "test_held_out": "test"}

def _place(position: str, image_size: int, sprite_size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left corner for a sprite centred on ``position``'s grid point, jittered by up to 4% of the canvas."""
    center_row, center_col = POSITION_CENTERS[position]
    jitter = 0.04 * image_size
    corner = []
    for center in (center_row, center_col):
        value = center * image_size - sprite_size / 2 + rng.uniform(-jitter, jitter)
        corner.append(int(np.clip(np.rint(value), 0, image_size - sprite_size)))
    return corner[0], corner[1]


def _generate(shards: list[tuple[int, int]], config: dict) -> Iterator[dict]:
    size, sprite_size = config["image_size"], config["digit_size"]
    pool = DigitPool(MNIST_SPLIT_OF[config["split"]], sprite_size)
    domains = {"digit": tuple(range(10)), "color": COLORS[1:] if config["colored"] else ("white",),
               "position": POSITIONS}
    sampler = CombinationSampler(domains, config["held_out"], config["split"])
    templates = config["templates"]
    for index in iterate_indices(shards):
        rng = sample_rng(config["seed"], WORLD, config["split"], index)
        count = int(rng.choice(config["num_digits"]))
        objects = sampler.draw(count, rng, distinct="position")  # one digit per grid cell
        image = np.zeros((size, size, 3), dtype=np.uint8)
        template = templates[int(rng.integers(len(templates)))]
        phrases = []
        for obj in objects:
            top, left = _place(obj["position"], size, sprite_size, rng)
            paste_max(image, pool.draw(obj["digit"], rng), top, left, obj["color"])
            phrases.append(template.format(color=f"{obj['color']} " if config["colored"] else "", digit=obj["digit"],
                                           color_name=obj["color"], word=DIGIT_WORDS[obj["digit"]],
                                           position=obj["position"]))
        yield {
            "image": image,
            "text": " and ".join(phrases),
            "digits": [obj["digit"] for obj in objects],
            "color": [obj["color"] for obj in objects],
            "position": [obj["position"] for obj in objects],
        }


def digit_images(
    split: str = "train",
    num_samples: int = 1000,
    *,
    seed: int = 0,
    image_size: int = 64,
    digit_size: int | None = None,
    num_digits: int | Sequence[int] = 1,
    colored: bool = True,
    templates: Sequence[str] = DIGIT_CAPTION_TEMPLATES,
    held_out: Sequence[Mapping[str, object]] | None = None,
    streaming: bool = False,
    num_proc: int | None = None,
) -> Dataset | IterableDataset:
    """Captioned digit images for text-to-image, deterministic from ``seed``.

    Args:
        split: ``"train"`` / ``"validation"`` / ``"test"`` / ``"test_held_out"`` (MNIST train / validation / test /
            test digits; the last holds only samples with a held-out combination).
        num_samples, seed, streaming, num_proc: as in :func:`nuwa_hf.data.captioned_moving_mnist`.
        image_size: side of the square image (64; tiny models use 32).
        digit_size: sprite side; default ``round(0.34 * image_size)`` (22 at 64) so 3 digits fit across.
        num_digits: digits per image (1..9, each in its own grid cell), or a sequence to draw from per sample.
        colored: colour the digits (and name the colour); ``False`` draws white digits with no colour word.
        templates: caption templates with fields ``{color}``, ``{color_name}``, ``{digit}``, ``{word}``,
            ``{position}``; one is drawn per sample and applied to every digit, phrases joined with " and ".
            :data:`SINGLE_DIGIT_CAPTION_TEMPLATES` are phrasings of one digit without its place.
        held_out: patterns over ``"digit"``, ``"color"``, ``"position"``, e.g. ``[{"digit": 7, "color": "red"}]``.

    Returns:
        Rows with ``"image"`` uint8 ``(image_size, image_size, 3)``, ``"text"`` str, and per digit (D of them):
        ``"digits"`` int64 ``(D,)``, ``"color"`` int64 ``(D,)`` (:data:`attributes.COLORS` index), ``"position"``
        int64 ``(D,)`` (:data:`attributes.POSITIONS` index). Formats as in :mod:`nuwa_hf.data.world_dataset`.
    """
    check_split(split)
    check_positive(num_samples=num_samples, image_size=image_size)
    digit_size = int(round(0.34 * image_size)) if digit_size is None else digit_size
    check_positive(digit_size=digit_size)
    if digit_size >= image_size:
        raise ValueError(f"digit_size={digit_size} must be smaller than image_size={image_size}.")
    counts = (num_digits,) if isinstance(num_digits, (int, np.integer)) else tuple(int(n) for n in num_digits)
    if not counts or any(not 1 <= n <= len(POSITIONS) for n in counts):
        raise ValueError(f"num_digits must be between 1 and {len(POSITIONS)} (one per grid cell), got {num_digits!r}.")
    templates = tuple(templates)
    if not templates:
        raise ValueError("templates must contain at least one caption template.")
    for template in templates:
        try:
            template.format(color="red ", color_name="red", digit=3, word="three", position="top")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"Caption template {template!r} is invalid ({error!r}); allowed fields are "
                             "{color}, {color_name}, {digit}, {word}, {position}.") from error
    domains = {"digit": tuple(range(10)), "color": COLORS[1:] if colored else ("white",), "position": POSITIONS}
    patterns = normalize_patterns(held_out, domains)
    CombinationSampler(domains, patterns, split)
    DigitPool(MNIST_SPLIT_OF[split], digit_size)
    config = {"split": split, "seed": int(seed), "image_size": int(image_size), "digit_size": int(digit_size),
              "num_digits": counts, "colored": bool(colored), "templates": templates, "held_out": patterns}
    features = Features({
        "image": Array3D((image_size, image_size, 3), "uint8"),
        "text": Value("string"),
        "digits": List(Value("int64")),
        "color": List(ClassLabel(names=list(COLORS))),
        "position": List(ClassLabel(names=list(POSITIONS))),
    })
    return build_world_dataset(world=WORLD, generate=_generate, config=config, features=features,
                               num_samples=num_samples, streaming=streaming, num_proc=num_proc)
