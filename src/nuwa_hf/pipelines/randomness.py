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

from typing import Any, Callable

import torch

from .sampling_options import MAX_SEED, check_seed


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


def with_call_randomness(inputs: Any, options: dict, defaults: dict, rows_per_input: Callable[[], int]) -> Any:
    """A pipeline call's ``seed=`` / ``generator=`` (taken out of ``options``; ``defaults``: those given to
    ``pipeline(...)``) applied to its inputs: a list of generators dealt out to the inputs
    (:func:`deal_out_generators`), a single generator drawn once for a seed, and a seed turned into one per input
    (:func:`with_input_seeds`)."""
    if options.get("seed") is None and options.get("generator") is None:
        for name in ("seed", "generator"):  # a default given to pipeline(...) counts as given to the call
            if defaults.get(name) is not None:
                options[name] = defaults[name]
    generator = options.pop("generator", None)
    if options.get("seed") is not None and generator is not None:
        raise ValueError("Pass either seed= or generator=, not both.")
    if isinstance(generator, (list, tuple)):
        inputs = deal_out_generators(inputs, list(generator), rows_per_input())
    elif generator is not None:
        options["seed"] = seed_from(generator, "generator")  # one draw per call, then as seed=
    if options.get("seed") is not None:
        inputs = with_input_seeds(inputs, check_seed(options.pop("seed")))
    return inputs


def deal_out_generators(inputs: Any, generators: list, rows: int) -> Any:
    """diffusers' convention: a list of generators, one per input (all its outputs come from it) or one per output
    row (``rows`` per input: outputs x candidates). Each goes into its input's request dict."""
    single = not isinstance(inputs, list)
    items = [inputs] if single else inputs
    if not all(isinstance(item, (dict, str)) for item in items):
        raise TypeError(
            "generator= as a list needs the inputs as a list (or one input); for a dataset or a generator of "
            "inputs pass a single torch.Generator or seed=."
        )
    count = len(items)
    if len(generators) not in (count, count * rows):
        raise ValueError(
            f"generator is a list of {len(generators)}, but this call has {count} input(s) and {rows} row(s) "
            f"per input: give one generator per input ({count}) or one per row ({count * rows}), or a single "
            "torch.Generator."
        )
    for index, generator in enumerate(generators):
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator[{index}] must be a torch.Generator, got {type(generator).__name__}.")
    step = len(generators) // count
    dealt = []
    for index, item in enumerate(items):
        own = generators[index] if step == 1 else generators[index * step:(index + 1) * step]
        item = {"prompt": item} if isinstance(item, str) else dict(item)
        dealt.append({**item, "generator": own})
    return dealt[0] if single else dealt
