"""The collator of NUWA's multi-task training: a list of examples of ONE task -> the model's keyword arguments.

Examples are either tokenised already (columns ``labels`` / ``input_ids`` / ``sketch_tokens``, see
:func:`tokenize_task_dataset`: the fast path) or raw (``image``/``video`` uint8 pixels, ``text``, ``sketch`` class
maps): the collator then runs the VQ-GAN, the VQ-GAN-Seg and the text tokenizer on the batch.

Output (B = batch size):

    labels         (B, T, h, w)           visual tokens; every position is predicted (no -100)
    input_ids      (B, max_text_length)   text tasks; a dropped condition is an all-padding prompt
    sketch_tokens  (B, Ts, hs, ws)        sketch tasks; absent when the batch's condition is dropped ("None" condition)
    task           str                    the task's name (the trainer removes it before calling the model)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .mixture import DROP_CONDITION_KEY, TASK_KEY
from .tasks import get_task
from .token_cache import INPUT_IDS, LABELS, SKETCH_TOKENS, encode_task_batch, token_grid_columns


def _stack_tokens(values, name: str) -> torch.Tensor:
    arrays = [np.asarray(v) for v in values]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(
            f"{name} of one batch have different shapes {sorted(shapes)}: a batch must hold one task at one grid size. "
            "Use TaskGroupedBatchSampler, or give each grid size its own task dataset."
        )
    return torch.from_numpy(np.stack(arrays)).long()


@dataclass
class NuwaTaskCollator:
    """Collate examples of one task into model inputs (see the module docstring for shapes).

    Args:
        text_tokenizer: tokenises raw captions (not needed for tokenised examples).
        visual_tokenizer: VQ-GAN for raw pixels.
        sketch_tokenizer: VQ-GAN-Seg for raw class maps.
        max_text_length: prompt length; must equal the model's ``config.max_text_length``.
        text_pad_token_id: the pad id, which builds the null prompt; defaults to the tokenizer's pad id (then 0).
        default_task: task of examples without a ``"task"`` key (single-task datasets used without the mixture).
    """

    text_tokenizer: Any = None
    visual_tokenizer: Any = None
    sketch_tokenizer: Any = None
    max_text_length: int = 77
    text_pad_token_id: Optional[int] = None
    default_task: Optional[str] = None

    def __post_init__(self):
        if self.text_pad_token_id is None:
            pad = getattr(self.text_tokenizer, "pad_token_id", None)
            self.text_pad_token_id = int(pad) if pad is not None else 0

    def __call__(self, examples: List[Dict[str, Any]]) -> Dict[str, Any]:
        if not examples:
            raise ValueError("cannot collate an empty batch.")
        names = {example.get(TASK_KEY, self.default_task) for example in examples}
        if None in names:
            raise ValueError("examples carry no 'task' key: wrap the datasets in TaskMixtureDataset or set default_task.")
        if len(names) != 1:
            raise ValueError(
                f"a batch mixes tasks {sorted(names)}; NUWA takes one condition type and grid per batch. "
                "Use TaskGroupedBatchSampler."
            )
        task = get_task(names.pop())
        dropped = [bool(example.get(DROP_CONDITION_KEY, False)) for example in examples]

        if all(column in examples[0] for column in token_grid_columns(task)):
            batch = {column: _stack_tokens([e[column] for e in examples], column) for column in token_grid_columns(task)}
        else:
            raw = {column: [e[column] for e in examples] for column in examples[0] if column not in (TASK_KEY, DROP_CONDITION_KEY)}
            batch = encode_task_batch(
                raw, task, visual_tokenizer=self.visual_tokenizer, sketch_tokenizer=self.sketch_tokenizer,
                text_tokenizer=self.text_tokenizer, max_text_length=self.max_text_length,
            )

        labels = batch[LABELS]
        if labels.dim() == 3:  # (B, h, w) image grids stored without a time axis
            labels = labels[:, None]
        out: Dict[str, Any] = {LABELS: labels, TASK_KEY: task.name}
        if task.condition == "text":
            input_ids = batch[INPUT_IDS]
            if input_ids.shape[1] != self.max_text_length:
                raise ValueError(
                    f"tokenised prompts have {input_ids.shape[1]} ids but max_text_length={self.max_text_length}; "
                    "re-tokenise with the model's max_text_length."
                )
            drop = torch.tensor(dropped)
            if drop.any():
                input_ids = input_ids.clone()
                input_ids[drop] = self.text_pad_token_id
            out[INPUT_IDS] = input_ids
        elif task.condition == "sketch":
            # One condition type per batch: a dropped sketch batch becomes a "None"-condition batch.
            if len(set(dropped)) > 1:
                raise ValueError("sketch condition dropout must be decided per batch (the sampler does so).")
            if not dropped[0]:
                sketch = batch[SKETCH_TOKENS]
                out[SKETCH_TOKENS] = sketch[:, None] if sketch.dim() == 3 else sketch
        return out
