"""Sharded checkpoints with ``torch.distributed.checkpoint`` (DCP): each process writes its own shards.

A ``checkpoint-N`` folder of :class:`~nuwa_hf.training.sharded_trainer.ShardedNuwaTrainer` holds::

    sharded_state/            DCP: __<rank>_0.distcp written by every process, .metadata by the coordinator
                              (model weights under "model.", AdamW moments under "optimizer.", by parameter name)
    config.json               the model's architecture (the run is rebuilt from it when resuming)
    scheduler.pt, rng_state_<rank>.pth, trainer_state.json, ...   as in Trainer's checkpoints

and no consolidated weights: no process ever holds the whole model or optimizer state while saving. It is written in
the staging folder and published atomically like every NuwaTrainer checkpoint (:mod:`.checkpointing`).

DCP stores each tensor with its global shape and the offsets of every shard, and loading reads whatever slices the
loading process needs: a checkpoint written by 2 processes loads on 1 (whole tensors) or 8 (smaller shards), and one
written by a single unsharded process loads into a sharded model. :func:`consolidate_sharded_checkpoint` turns one
into an ordinary ``model.safetensors`` folder in a single process.
"""

from __future__ import annotations

import os
from typing import Optional

import torch
from torch import nn

SHARDED_STATE_DIRNAME = "sharded_state"


def sharded_state_path(checkpoint_dir: str) -> str:
    return os.path.join(checkpoint_dir, SHARDED_STATE_DIRNAME)


def is_sharded_checkpoint(checkpoint_dir: str) -> bool:
    """Whether ``checkpoint_dir`` holds a DCP state written by :func:`save_sharded_state`."""
    return os.path.isfile(os.path.join(sharded_state_path(checkpoint_dir), ".metadata"))


def save_sharded_state(model: nn.Module, optimizer: Optional[torch.optim.Optimizer], checkpoint_dir: str) -> None:
    """Write the model's and the optimizer's state, each process its own shards (a collective: call on all)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

    if optimizer is not None:
        model_state, optimizer_state = get_state_dict(model, optimizer)
        state = {"model": model_state, "optimizer": optimizer_state}
    else:
        state = {"model": get_model_state_dict(model)}
    dcp.save(state, checkpoint_id=sharded_state_path(checkpoint_dir))


def load_sharded_model(model: nn.Module, checkpoint_dir: str) -> None:
    """Load the weights of a sharded checkpoint into ``model`` (sharded or not, any number of processes)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    state = {"model": get_model_state_dict(model)}
    dcp.load(state, checkpoint_id=sharded_state_path(checkpoint_dir))
    set_model_state_dict(model, state["model"])


def load_sharded_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, checkpoint_dir: str) -> None:
    """Load the optimizer state of a sharded checkpoint (its moments resharded to this run's processes)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    path = sharded_state_path(checkpoint_dir)
    saved = set(dcp.FileSystemReader(path).read_metadata().state_dict_metadata)
    template = get_optimizer_state_dict(model, optimizer)  # state for every parameter (zero moments)
    # Parameters that had no gradient before the save (a task not yet drawn) had no AdamW state: they must start
    # without one here too (step 0), or their first update would use another bias correction than uninterrupted.
    template["state"] = {
        name: entry for name, entry in template["state"].items()
        if all(f"optimizer.state.{name}.{key}" in saved for key in entry)
    }
    state = {"optimizer": template}
    dcp.load(state, checkpoint_id=path)
    set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(strict=False))
    missing = [p for p in optimizer.state if not optimizer.state[p]]
    if missing:
        raise RuntimeError(f"{len(missing)} parameters got an empty optimizer state from {checkpoint_dir!r}.")


def consolidate_sharded_checkpoint(checkpoint_dir: str, output_dir: str, model_class=None) -> str:
    """Write a ``from_pretrained`` folder (``model.safetensors`` + ``config.json``) from a sharded checkpoint.

    Runs in one process without torch.distributed (DCP reads every shard); needs memory for the whole model.
    ``model_class`` defaults to ``NuwaForConditionalGeneration``. Returns ``output_dir``.
    """
    if not is_sharded_checkpoint(checkpoint_dir):
        raise ValueError(
            f"{checkpoint_dir!r} holds no {SHARDED_STATE_DIRNAME}/.metadata: not a sharded checkpoint (a checkpoint "
            "of ShardedNuwaTrainer / `nuwa-hf train --fsdp2`); an ordinary checkpoint already has model.safetensors."
        )
    if model_class is None:
        from ..models.nuwa import NuwaForConditionalGeneration as model_class
    config = model_class.config_class.from_pretrained(checkpoint_dir)
    model = model_class(config)
    load_sharded_model(model, checkpoint_dir)
    model.save_pretrained(output_dir)
    return output_dir
