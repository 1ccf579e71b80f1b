"""Holding attribute combinations out of training, for compositional generalisation tests.

Each object a world draws (a digit, a shape) is a combination of attributes, e.g. ``{"digit": 3, "motion": "up then
down", "color": "red"}``. A held-out *pattern* is a partial combination such as ``{"digit": 3, "motion": "up then
down"}``; an object matches it when it agrees on every key the pattern names. Splits use the patterns so:

- ``"train"``, ``"validation"`` and ``"test"``: no object matches any pattern (seen combinations only);
- ``"test_held_out"``: one object per sample matches a pattern (the others are drawn from all combinations), so every
  caption contains at least one combination the training split never showed.

Objects are drawn uniformly from the enumerated allowed combinations, so there is no rejection loop, and a set of
patterns that leaves nothing to draw is reported up front.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

SPLITS = ("train", "validation", "test", "test_held_out")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {SPLITS}.")


def normalize_patterns(
    held_out: Sequence[Mapping[str, object]] | None, domains: Mapping[str, Sequence[object]]
) -> tuple[tuple[tuple[str, object], ...], ...]:
    """Validate held-out patterns against the attribute domains; return them as hashable sorted tuples.

    Raises:
        ValueError: a pattern is empty, names an attribute the world does not have, or a value outside its domain.
    """
    normalized = []
    for pattern in held_out or ():
        if not isinstance(pattern, Mapping) or not pattern:
            raise ValueError(f"A held-out pattern must be a non-empty dict such as {{'digit': 3}}; got {pattern!r}.")
        for key, value in pattern.items():
            if key not in domains:
                raise ValueError(f"Held-out pattern {dict(pattern)} names {key!r}; this world's attributes are {list(domains)}.")
            if value not in domains[key]:
                raise ValueError(f"Held-out pattern {dict(pattern)}: {value!r} is not a valid {key}; choose from {list(domains[key])}.")
        normalized.append(tuple(sorted(pattern.items())))
    return tuple(normalized)


class CombinationSampler:
    """Draws per-object attribute combinations for one split, honouring the held-out patterns.

    Args:
        domains: attribute name -> the values it can take (e.g. ``{"digit": range(10), "motion": MOTIONS}``).
        held_out: patterns as returned by :func:`normalize_patterns`.
        split: one of :data:`SPLITS`.
    """

    def __init__(self, domains: Mapping[str, Sequence[object]], held_out, split: str):
        check_split(split)
        names = list(domains)
        every = [dict(zip(names, values)) for values in itertools.product(*(domains[name] for name in names))]
        matches = [any(all(combo[key] == value for key, value in pattern) for pattern in held_out) for combo in every]
        self.every = every
        self.seen = [combo for combo, match in zip(every, matches) if not match]
        self.novel = [combo for combo, match in zip(every, matches) if match]
        self.split = split
        if split == "test_held_out" and not self.novel:
            raise ValueError("split='test_held_out' needs held_out patterns that match at least one combination, e.g. "
                             "held_out=[{'digit': 3, 'motion': 'up then down'}].")
        if split != "test_held_out" and not self.seen:
            raise ValueError("The held_out patterns cover every combination, so nothing is left to train on.")

    def draw(self, count: int, rng: np.random.Generator, distinct: str | None = None) -> list[dict]:
        """``count`` object combinations (dicts) for one sample.

        ``distinct`` names an attribute no two objects of the sample may share (e.g. ``"position"``); candidates are
        filtered before drawing, so the held-out rule still holds for every object.
        """
        pools = [self.novel] + [self.every] * (count - 1) if self.split == "test_held_out" else [self.seen] * count
        chosen: list[dict] = []
        for pool in pools:
            if distinct is not None:
                taken = {combo[distinct] for combo in chosen}
                pool = [combo for combo in pool if combo[distinct] not in taken]
                if not pool:
                    raise ValueError(f"Cannot give {count} objects distinct {distinct!r} values under these held_out "
                                     "patterns; draw fewer objects or hold out less.")
            chosen.append(dict(pool[int(rng.integers(len(pool)))]))
        if self.split == "test_held_out":
            chosen = [chosen[i] for i in rng.permutation(count)]
        return chosen
