"""Several tasks' datasets behind one index space, so that one ``Trainer`` run trains a task mixture.

Index layout: the examples of the first task come first, then the second task's, and so on. Every example comes back
as a dict with its task's name under ``"task"``; :class:`~nuwa_hf.training.TaskGroupedBatchSampler` makes sure a
batch never mixes tasks (nor, therefore, grid shapes).
"""

from __future__ import annotations

import bisect
from typing import Dict, Mapping, Tuple

from torch.utils.data import Dataset

from .tasks import NuwaTask, get_task

TASK_KEY = "task"
DROP_CONDITION_KEY = "drop_condition"


class TaskMixtureDataset(Dataset):
    """A map-style dataset over the examples of several tasks.

    Args:
        datasets: ordered mapping task name -> map-style dataset (``datasets.Dataset`` or anything with ``__len__`` and
            ``__getitem__`` returning a dict), raw or tokenised (see :func:`tokenize_task_dataset`).

    Keys: an int (the example) or an ``(int, bool)`` pair, the bool saying whether the example's condition is dropped
    for classifier-free guidance (the batch sampler decides that, so that it is reproducible and survives a resume).
    """

    def __init__(self, datasets: Mapping[str, object]):
        if not datasets:
            raise ValueError("TaskMixtureDataset needs at least one task dataset.")
        self.tasks: Tuple[NuwaTask, ...] = tuple(get_task(name) for name in datasets)
        self.datasets = tuple(datasets.values())
        for task, dataset in zip(self.tasks, self.datasets):
            if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
                raise TypeError(
                    f"the {task.name} dataset must be map-style (len() and [i]); got {type(dataset).__name__}. "
                    "Streaming datasets cannot be mixed by index: materialise or tokenise them first."
                )
            if len(dataset) == 0:
                raise ValueError(f"the {task.name} dataset is empty.")
        self.offsets = []
        total = 0
        for dataset in self.datasets:
            self.offsets.append(total)
            total += len(dataset)
        self._length = total

    @property
    def task_names(self) -> Tuple[str, ...]:
        return tuple(task.name for task in self.tasks)

    def task_sizes(self) -> Dict[str, int]:
        """Number of examples of each task, in order."""
        return {task.name: len(dataset) for task, dataset in zip(self.tasks, self.datasets)}

    def task_range(self, name: str) -> range:
        """Global indices of the examples of task ``name``."""
        position = self.task_names.index(get_task(name).name)
        start = self.offsets[position]
        return range(start, start + len(self.datasets[position]))

    def locate(self, index: int) -> Tuple[int, int]:
        """Global index -> (task position, index inside that task's dataset)."""
        if not 0 <= index < self._length:
            raise IndexError(f"index {index} out of range for a mixture of {self._length} examples.")
        position = bisect.bisect_right(self.offsets, index) - 1
        return position, index - self.offsets[position]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, key) -> dict:
        if isinstance(key, (tuple, list)):
            index, drop_condition = key
        else:
            index, drop_condition = key, False
        position, local = self.locate(int(index))
        example = dict(self.datasets[position][local])
        example[TASK_KEY] = self.tasks[position].name
        example[DROP_CONDITION_KEY] = bool(drop_condition)
        return example
