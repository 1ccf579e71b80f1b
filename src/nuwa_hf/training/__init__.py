"""Multi-task NUWA training on ``transformers.Trainer``: tasks, token caching, collator, batch sampler, crash-safe
checkpoints, and the ``nuwa-hf train`` entry point (:func:`main`).

Typical use from Python::

    from nuwa_hf.training import (NuwaTaskCollator, NuwaTrainer, TaskMixtureDataset, nuwa_training_arguments,
                                  tokenize_task_dataset)
    grids = {"t2i": tokenize_task_dataset(images, "t2i", visual_tokenizer=vqgan, text_tokenizer=tok, max_text_length=24),
             "v2v": tokenize_task_dataset(videos, "v2v", visual_tokenizer=vqgan)}
    trainer = NuwaTrainer(model=model, args=nuwa_training_arguments("runs/x", max_steps=500),
                          train_dataset=TaskMixtureDataset(grids), data_collator=NuwaTaskCollator(text_tokenizer=tok,
                          max_text_length=24), condition_dropout=0.1)
    trainer.train()

Needs the ``train`` extra (accelerate, which transformers' ``Trainer`` requires, and datasets, which holds the token
cache): ``pip install "nuwa-hf[train]"``.
"""

from ..lazy_imports import require

for _package in ("accelerate", "datasets"):
    require(_package, "nuwa_hf.training (multi-task training on transformers' Trainer)")

from .arguments import (  # noqa: E402
    NuwaDataArguments,
    NuwaHubArguments,
    NuwaModelArguments,
    NuwaRunArguments,
    NuwaTokenizerArguments,
    parse_arguments,
)
from .checkpointing import (
    CHECKPOINT_MARKER,
    complete_checkpoints,
    is_complete_checkpoint,
    last_complete_checkpoint,
)
from .collator import NuwaTaskCollator
from .main import build_parser, main
from .mixture import TaskMixtureDataset
from .recipe import PAPER_RECIPE, nuwa_training_arguments
from .sampler import TaskGroupedBatchSampler
from .sharded import local_memory_report, shard_nuwa
from .sharded_checkpoint import consolidate_sharded_checkpoint, is_sharded_checkpoint
from .sharded_trainer import ShardedNuwaTrainer
from .tasks import FINETUNING_TASKS, PRETRAINING_TASKS, TASKS, NuwaTask, get_task, parse_tasks
from .token_cache import tokenize_task_dataset
from .trainer import NuwaTrainer

__all__ = [
    "CHECKPOINT_MARKER",
    "FINETUNING_TASKS",
    "NuwaDataArguments",
    "NuwaHubArguments",
    "NuwaModelArguments",
    "NuwaRunArguments",
    "NuwaTokenizerArguments",
    "NuwaTask",
    "NuwaTaskCollator",
    "NuwaTrainer",
    "PAPER_RECIPE",
    "PRETRAINING_TASKS",
    "ShardedNuwaTrainer",
    "TASKS",
    "TaskGroupedBatchSampler",
    "TaskMixtureDataset",
    "build_parser",
    "complete_checkpoints",
    "consolidate_sharded_checkpoint",
    "get_task",
    "is_complete_checkpoint",
    "is_sharded_checkpoint",
    "last_complete_checkpoint",
    "local_memory_report",
    "main",
    "nuwa_training_arguments",
    "parse_arguments",
    "parse_tasks",
    "shard_nuwa",
    "tokenize_task_dataset",
]
