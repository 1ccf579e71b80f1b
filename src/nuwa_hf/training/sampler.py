"""A batch sampler for a task mixture: one task (hence one grid shape) per batch, reproducible from (seed, epoch).

It also decides, per example, whether the condition is dropped for classifier-free guidance. Making that a sampling
decision (rather than a random draw in the collator) keeps it a pure function of (seed, epoch, position): a resumed run
sees exactly the batches, and the dropped conditions, of the uninterrupted one.

Several processes: every process builds the same sampler; ``accelerate`` (through ``Trainer``) hands batch ``i`` to
process ``i % num_processes``. Batches come in blocks of ``block_size`` consecutive batches of one task; with
``block_size = num_processes`` (``NuwaTrainer``'s default) all processes train the same task in every step, so none
waits for another's larger grid. A single process with ``gradient_accumulation_steps = k`` and ``block_size = k``
sees exactly the batches of ``k`` processes.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np
from torch.utils.data import Sampler

from .mixture import TaskMixtureDataset

# Salt of the random stream that orders the blocks (task streams use their position in the mixture).
_ORDER_STREAM = 1_000_003


def _per_task(value, names, what: str, cast) -> Dict[str, object]:
    if isinstance(value, Mapping):
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"{what} names tasks {sorted(unknown)} that are not in the mixture {list(names)}.")
        missing = set(names) - set(value)
        if missing and what != "task weights":
            raise ValueError(f"{what} lacks tasks {sorted(missing)}; give a value for every task {list(names)}.")
        return {name: cast(value[name]) if name in value else None for name in names}
    return {name: cast(value) for name in names}


class TaskGroupedBatchSampler(Sampler[List[Tuple[int, bool]]]):
    """Yields batches of ``(index, drop_condition)`` pairs of a :class:`TaskMixtureDataset`, one task per batch.

    An epoch holds, for each task k, ``m_k`` batches of ``batch_size[k]`` examples drawn without replacement from
    reshuffled passes over the task's examples:

    - without ``task_weights``, ``m_k = n_k // batch_size[k]`` (each example at most once per epoch);
    - with ``task_weights``, the same total number of batches is split in proportion to the weights (a task can then
      repeat examples within an epoch, or see only part of them).

    Each ``m_k`` is rounded down to a multiple of ``block_size`` (at least ``block_size``).

    Args:
        mixture: the dataset.
        batch_size: examples per batch, one int or a mapping task -> int (e.g. more images than videos per batch).
        task_weights: optional mapping task -> relative share of batches.
        condition_dropout: probability of replacing a condition by the null condition (classifier-free guidance):
            per example for text (an all-padding prompt), per batch for sketches (the "None" condition; the model takes
            one condition type per batch). Tasks with the "None" condition are unaffected.
        block_size: consecutive batches drawn from the same task (see the module docstring).
        seed: base seed; epoch ``e`` uses streams derived from ``(seed, e)``.
        shuffle: shuffle examples and batch order (False keeps dataset order, tasks one after another).
    """

    def __init__(
        self,
        mixture: TaskMixtureDataset,
        batch_size: Union[int, Mapping[str, int]],
        *,
        task_weights: Optional[Mapping[str, float]] = None,
        condition_dropout: Union[float, Mapping[str, float]] = 0.0,
        block_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
    ):
        names = mixture.task_names
        self.mixture = mixture
        self.batch_sizes = _per_task(batch_size, names, "batch sizes", int)
        for name, size in self.batch_sizes.items():
            if size < 1:
                raise ValueError(f"batch size of task {name!r} must be >= 1, got {size}.")
        self.condition_dropout = _per_task(condition_dropout, names, "condition dropout", float)
        for name, p in self.condition_dropout.items():
            if not 0.0 <= p < 1.0:
                raise ValueError(f"condition dropout of task {name!r} must lie in [0, 1), got {p}.")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}.")
        self.block_size = int(block_size)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.epoch = 0
        sizes = mixture.task_sizes()
        for name in names:
            if sizes[name] < self.batch_sizes[name]:
                raise ValueError(
                    f"task {name!r} has {sizes[name]} examples, fewer than its batch size {self.batch_sizes[name]}; "
                    "generate more examples or lower the batch size."
                )
        natural = {name: sizes[name] // self.batch_sizes[name] for name in names}
        if task_weights is None:
            counts = dict(natural)
        else:
            weights = _per_task(task_weights, names, "task weights", float)
            weights = {name: (0.0 if w is None else w) for name, w in weights.items()}
            if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"task weights must be >= 0 with a positive sum, got {weights}.")
            total = sum(natural.values())
            norm = sum(weights.values())
            counts = {name: (max(1, round(total * w / norm)) if w > 0 else 0) for name, w in weights.items()}
        W = self.block_size
        self.batches_per_task = {name: (max(W, (c // W) * W) if c > 0 else 0) for name, c in counts.items()}
        # One shape per batch is the whole point; it is also what accelerate's batch sharding needs to stay simple.
        uniform = set(self.batch_sizes.values())
        self.batch_size = uniform.pop() if len(uniform) == 1 else None
        self.drop_last = True

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches ``__iter__`` yields (``Trainer`` calls this at every epoch start)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return sum(self.batches_per_task.values())

    def _task_batches(self, position: int, name: str) -> List[List[int]]:
        indices = self.mixture.task_range(name)
        size = self.batch_sizes[name]
        needed = self.batches_per_task[name] * size
        rng = np.random.default_rng([self.seed, self.epoch, position])
        stream: List[int] = []
        while len(stream) < needed:
            # Whole passes only (each reshuffled); the remainder of the last pass is dropped.
            order = rng.permutation(len(indices)) if self.shuffle else np.arange(len(indices))
            usable = (len(indices) // size) * size
            stream.extend(int(indices.start + i) for i in order[:usable])
        return [stream[i : i + size] for i in range(0, needed, size)]

    def __iter__(self) -> Iterator[List[Tuple[int, bool]]]:
        W = self.block_size
        blocks = []  # (task name, [W batches])
        for position, name in enumerate(self.mixture.task_names):
            batches = self._task_batches(position, name)
            blocks.extend((name, batches[i : i + W]) for i in range(0, len(batches), W))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, _ORDER_STREAM]).permutation(len(blocks))
            blocks = [blocks[i] for i in order]
        tasks = {task.name: task for task in self.mixture.tasks}
        for block_number, (name, batches) in enumerate(blocks):
            p = self.condition_dropout[name]
            condition = tasks[name].condition
            for offset, batch in enumerate(batches):
                yield self._with_dropout(batch, condition, p, block_number * W + offset)

    def _with_dropout(self, batch: List[int], condition: str, p: float, batch_number: int) -> List[Tuple[int, bool]]:
        if p == 0.0 or condition == "none":
            return [(i, False) for i in batch]
        rng = np.random.default_rng([self.seed, self.epoch, batch_number, 7])
        if condition == "sketch":
            dropped = bool(rng.random() < p)
            return [(i, dropped) for i in batch]
        return [(i, bool(d)) for i, d in zip(batch, rng.random(len(batch)) < p)]
