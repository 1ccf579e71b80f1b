"""Turning a per-sample generator into a cached ``datasets.Dataset`` or a streaming ``datasets.IterableDataset``.

Every built-in world is a function ``generate(shards, config)`` that yields one dict per sample index in the given
``(start, stop)`` shards, drawing all randomness from :func:`sample_rng` ``(seed, world, split, index)``. Hence:

- sample ``i`` is the same whatever ``num_samples`` is, whether streamed or not, and however the shards are split
  between processes (``num_proc``) or DataLoader workers;
- the cache key can be computed without running anything: it is the world, its config, the number of samples and a
  hash of this package's data source files (editing the generators invalidates old caches).

How the arrays come out (documented once here, referred to by every world):

- ``Dataset`` (default): returned with ``.with_format("numpy", dtype=None)``. ``ds[i]["video"]`` is a numpy array of the
  stored dtype (uint8 for pixels, int64 for sketches and positions), ``ds[i]["text"]`` a ``str`` (``numpy.str_``),
  list columns are int64 arrays, and ``ds[a:b]`` stacks a column into one array when shapes agree. ``dtype=None``
  matters: datasets' numpy and torch formats otherwise widen every integer array to int64 (8x the memory for pixels).
  For torch tensors use ``ds.with_format("torch", dtype=None)``; ``ds.with_format(None)`` gives plain Python lists.
- ``IterableDataset`` (``streaming=True``): examples come unformatted, which for these features means numpy arrays of
  the stored dtype for image/video/sketch/positions, Python ints in lists for the attribute columns, ``str`` text.
  (``IterableDataset.with_format("numpy")`` would widen integers to int64.)
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from datasets import Dataset, Features, IterableDataset

from ..file_io import cache_subdir

SHARD_SIZE = 64  # samples per generator shard: the unit of parallelism for num_proc and DataLoader workers


def sample_rng(seed: int, world: str, split: str, index: int) -> np.random.Generator:
    """The random generator of one sample: a pure function of (seed, world, split, index)."""
    return np.random.default_rng([int(seed), zlib.crc32(world.encode()), zlib.crc32(split.encode()), int(index)])


def iterate_indices(shards: list[tuple[int, int]]) -> Iterator[int]:
    for start, stop in shards:
        yield from range(start, stop)


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def world_fingerprint(world: str, config: dict, num_samples: int) -> str:
    """A stable cache key for one world configuration (64 hex characters)."""
    payload = json.dumps({"world": world, "config": config, "num_samples": num_samples, "code": _source_hash()},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def build_world_dataset(
    *,
    world: str,
    generate: Callable[..., Iterator[dict]],
    config: dict,
    features: Features,
    num_samples: int,
    streaming: bool,
    num_proc: int | None,
) -> Dataset | IterableDataset:
    """Run ``generate(shards=..., config=config)`` through ``datasets``; see the module docstring for formats.

    ``config`` must be JSON-serialisable (it is part of the cache key) and must not contain lists at its top level
    (datasets would try to split them between processes); tuples inside it are fine.
    """
    check_positive(num_samples=num_samples)
    shards = [(start, min(start + SHARD_SIZE, num_samples)) for start in range(0, num_samples, SHARD_SIZE)]
    gen_kwargs = {"shards": shards, "config": config}
    if streaming:
        return IterableDataset.from_generator(generate, features=features, gen_kwargs=gen_kwargs)
    dataset = Dataset.from_generator(
        generate,
        features=features,
        gen_kwargs=gen_kwargs,
        cache_dir=str(cache_subdir("worlds")),
        num_proc=num_proc,
        fingerprint=world_fingerprint(world, config, num_samples),
    )
    return dataset.with_format("numpy", dtype=None)
