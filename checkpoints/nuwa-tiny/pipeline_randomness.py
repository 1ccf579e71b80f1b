"""Random streams of a pipeline call. Every input is sampled from its own ``torch.Generator``, so an input's outputs
never depend on the batch it shares or on torch's global generators:

- ``seed=s``: input number ``i`` of the call (0 for a single input, counted in order over a list, a dataset or a
  generator of inputs) is sampled from ``torch.Generator().manual_seed(s + i)``; so the second prompt of
  ``pipe(["a red 7", "a blue 3"], seed=0)`` gives what ``pipe("a blue 3", seed=1)`` gives, whatever ``batch_size``;
- ``generator=g`` (one ``torch.Generator``): one seed ``s`` is drawn from ``g`` per call, then as ``seed=s``;
- ``generator=[g0, g1, ...]``: one per input (all of its outputs drawn from it) or one per output row (diffusers'
  convention);
- neither: torch's global generator (``torch.manual_seed`` before the call), rows of a batch sharing it.
"""

from __future__ import annotations

from typing import Any

import torch

from .pipeline_sampling_options import MAX_SEED


class SeededInput:
    """One input of a seeded call and the seed of its own generator (``seed + position``); ``preprocess`` unwraps it."""

    __slots__ = ("item", "seed")

    def __init__(self, item: Any, seed: int):
        self.item, self.seed = item, int(seed)

    def __reduce__(self):  # picklable for DataLoader workers
        return (SeededInput, (self.item, self.seed))


class _SeededDataset(torch.utils.data.Dataset):
    """A map-style dataset whose row ``i`` comes with the seed ``base + i`` (DataLoader workers keep working)."""

    def __init__(self, dataset, base: int):
        self.dataset, self.base = dataset, base

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return SeededInput(self.dataset[index], input_seed(self.base, index))


def input_seed(base: int, position: int) -> int:
    """The seed of input ``position`` of a call with ``seed=base``: ``base + position`` (wrapping past the largest)."""
    return (int(base) + int(position)) % (MAX_SEED + 1)


def with_input_seeds(inputs: Any, base: int) -> Any:
    """The call's inputs with each one's seed attached, in the same form (one input, a list, a torch dataset, or an
    iterator), so transformers' ``Pipeline.__call__`` treats them as it would the bare inputs."""
    if isinstance(inputs, list):
        return [SeededInput(item, input_seed(base, index)) for index, item in enumerate(inputs)]
    if isinstance(inputs, torch.utils.data.Dataset) and not isinstance(inputs, torch.utils.data.IterableDataset):
        return _SeededDataset(inputs, base)
    if hasattr(inputs, "__next__") or isinstance(inputs, torch.utils.data.IterableDataset):
        return (SeededInput(item, input_seed(base, index)) for index, item in enumerate(inputs))
    return SeededInput(inputs, base)


def seed_from(generator: Any, what: str) -> int:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{what} must be a torch.Generator, got {type(generator).__name__}.")
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def generators_of(seeds: list[int], repeat: int = 1) -> list[torch.Generator]:
    """One CPU generator per seed, each listed ``repeat`` times (the rows of one input draw from it in turn)."""
    out = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(int(seed))
        out.extend([generator] * repeat)
    return out
