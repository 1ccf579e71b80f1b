"""NUWA's trainable tasks: what conditions the encoder and what the decoder learns to generate.

The paper pre-trains on a mixture of three tasks (T2I, T2V, V2V) and fine-tunes on the sketch tasks (S2I, S2V). The
three zero-shot tasks (image completion, text-guided image and video manipulation) need no training of their own:
they reuse a model trained on these five by teacher-forcing the known tokens at generation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

from ..tasks import TASKS as ALL_TASKS


@dataclass(frozen=True)
class NuwaTask:
    """One training task.

    Attributes:
        name: short lower-case code ("t2i", ...), used on the command line and in logs.
        condition: what the encoder reads: "text" (caption ids), "sketch" (VQ-GAN-Seg tokens) or "none" (the constant
            "None" condition of video prediction).
        visual: "image" (target grid (1, h, w)) or "video" (target grid (T, h, w)).
        stage: "pretraining" or "finetuning", as in the paper.
        description: one line for help texts.
    """

    name: str
    condition: str
    visual: str
    stage: str
    description: str

    @property
    def pixel_column(self) -> str:
        """Dataset column holding the target pixels: "image" (H, W, 3) or "video" (T, H, W, 3), uint8."""
        return self.visual

    @property
    def condition_columns(self) -> Tuple[str, ...]:
        """Dataset columns the condition is read from: ("text",), ("sketch",) or ()."""
        return {"text": ("text",), "sketch": ("sketch",), "none": ()}[self.condition]


# The five trainable tasks of the task table (nuwa_hf.tasks), by their lower-case code.
TASKS: Dict[str, NuwaTask] = {
    info.code.lower(): NuwaTask(info.code.lower(), info.condition, info.visual, info.stage, info.description)
    for info in ALL_TASKS if info.trainable
}
PRETRAINING_TASKS: Tuple[str, ...] = tuple(name for name, task in TASKS.items() if task.stage == "pretraining")
FINETUNING_TASKS: Tuple[str, ...] = tuple(name for name, task in TASKS.items() if task.stage == "finetuning")


def get_task(name: str) -> NuwaTask:
    """The task called ``name`` (case-insensitive); a clear error lists the known ones."""
    key = str(name).strip().lower()
    if key not in TASKS:
        zero_shot = [info.code.lower() for info in ALL_TASKS if not info.trainable]
        hint = (f" ({key} is zero-shot: it needs no training, a model trained on the others does it)"
                 if key in zero_shot else "")
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}{hint}.")
    return TASKS[key]


def parse_tasks(spec: str | Sequence[str]) -> Tuple[str, ...]:
    """``"t2i,t2v"`` or ``["t2i", "t2v"]`` or the shortcuts ``"pretraining"``, ``"finetuning"``, ``"all"`` -> names.

    Order is preserved and duplicates are rejected (a task weight is the way to repeat a task).
    """
    items = [s for s in (spec.split(",") if isinstance(spec, str) else spec)]
    names = []
    for item in items:
        key = str(item).strip().lower()
        if not key:
            continue
        expanded = {"pretraining": PRETRAINING_TASKS, "finetuning": FINETUNING_TASKS, "all": tuple(TASKS)}.get(key)
        for name in expanded or (get_task(key).name,):
            if name in names:
                raise ValueError(f"task {name!r} is listed twice in {spec!r}; use task weights to sample it more often.")
            names.append(name)
    if not names:
        raise ValueError(f"no task given in {spec!r}; choose from {', '.join(TASKS)} (or pretraining/finetuning/all).")
    return tuple(names)
