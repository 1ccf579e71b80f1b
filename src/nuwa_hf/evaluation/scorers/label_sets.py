"""Labels as sets: a sample may show one attribute value or several (two digits, two motions, three colours).

A per-sample label is an id, a name, or a list of ids/names (the built-in worlds store lists, one entry per object).
It becomes a 0/1 presence row over the K known values. A prediction is judged by "set match": the k highest-scoring
values, with k the number of distinct true values, must be exactly the true set. For one label per sample this is
plain top-1 accuracy.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
import torch


def _values_of(label: Any) -> list:
    if isinstance(label, (str, numbers.Integral)) or np.ndim(label) == 0:
        return [label.item() if hasattr(label, "item") else label]
    return [value.item() if hasattr(value, "item") else value for value in label]


def label_presence(labels: Any, names: Sequence[str]) -> torch.Tensor:
    """Per-sample labels (ids in [0, K), names from ``names``, or lists of either) -> float (N, K) 0/1 presence."""
    if isinstance(labels, (torch.Tensor, np.ndarray)) and np.asarray(labels).ndim == 1:
        labels = np.asarray(labels).tolist()
    labels = list(labels)
    presence = torch.zeros(len(labels), len(names))
    for row, label in enumerate(labels):
        values = _values_of(label)
        if not values:
            raise ValueError(f"Sample {row} has an empty label list: every sample needs at least one label.")
        for value in values:
            if isinstance(value, str):
                if value not in names:
                    raise ValueError(f"Unknown label {value!r}: expected one of {list(names)}.")
                index = list(names).index(value)
            elif isinstance(value, numbers.Integral):
                index = int(value)
                if not 0 <= index < len(names):
                    raise ValueError(f"Label id {index} is outside [0, {len(names)}) ({list(names)}).")
            else:
                raise TypeError(f"Labels must be ints, strings or lists of them, got {type(value).__name__}.")
            presence[row, index] = 1.0
    return presence


def label_set_matches(scores: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """bool (N,): whether the k top-scoring values of each row are exactly its k present values."""
    if scores.shape != presence.shape:
        raise ValueError(f"Scores {tuple(scores.shape)} and labels {tuple(presence.shape)} do not line up.")
    counts = presence.sum(dim=1).long()
    ranks = scores.argsort(dim=1, descending=True).argsort(dim=1)  # rank 0 = highest score
    chosen = (ranks < counts[:, None]).float()
    return (chosen == presence).all(dim=1)


def most_common_set_rate(presence: torch.Tensor) -> float:
    """Set-match accuracy of always answering the most frequent label set: the chance level for set matching."""
    if len(presence) == 0:
        return float("nan")
    _, counts = torch.unique(presence, dim=0, return_counts=True)
    return float(counts.max()) / len(presence)
