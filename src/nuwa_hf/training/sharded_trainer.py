"""``ShardedNuwaTrainer``: :class:`NuwaTrainer` with FSDP2 sharding on any device and sharded (DCP) checkpoints.

How ``Trainer`` and accelerate are bypassed. accelerate enables FSDP only on GPU-like devices, so on CPU processes a
``--fsdp-config`` would silently become DDP (``NuwaTrainer`` refuses that). Here instead:

1. ``TrainingArguments`` carry no ``fsdp`` setting: accelerate sets up plain multi-process data parallelism (gloo on
   CPUs, NCCL on GPUs), which gives ``Trainer`` its process group, batch sharding and loss scaling.
2. After ``Trainer.__init__``, the model is sharded in place by :func:`~nuwa_hf.training.sharded.shard_nuwa`, and the
   trainer's ``is_distributed_loading_by_transformers`` flag is set: ``Trainer``'s path for models that arrive sharded
   (``from_pretrained(distributed_config=...)``). It then creates the optimizer on the local shards, prepares the
   model without a DDP wrapper, defers the reduce-scatter to the last gradient-accumulation micro-batch and joins all
   processes in the gathers of ``save_model``. ``Trainer`` refuses that path for resumable checkpoints (it cannot save
   the optimizer of such a model); this class saves them itself, with ``torch.distributed.checkpoint``
   (:mod:`.sharded_checkpoint`), and the flag is set after ``__init__``, past that check.
3. Gradient clipping goes through ``Trainer``'s DTensor-aware norm (``_mixed_mesh_grad_norm``: local norms, one
   all-reduce, the same clip coefficient on every process).

Gradients are reduce-scattered as an average over processes, like DDP's all-reduce, so ``Trainer``'s loss scaling by
the number of processes (``average_tokens_across_devices``) gives the same per-token mean gradient as one process.

Checkpoints: ``checkpoint-N/sharded_state`` (each process its shards) instead of ``model.safetensors`` /
``optimizer.pt``; they resume on any number of processes. The final ``save_model`` gathers the full weights once (to
the main process, on CPU) and writes an ordinary ``model.safetensors`` folder.
"""

from __future__ import annotations

import contextlib
import os
from typing import Optional, Sequence

import torch
import torch.distributed as dist
from transformers import TrainerCallback
from transformers.trainer import SCHEDULER_NAME

from .sharded import (
    DEFAULT_LAYER_CLASSES,
    ShardingPlan,
    checkpoint_layers,
    is_sharded,
    local_memory_report,
    shard_nuwa,
)
from .sharded_checkpoint import (
    is_sharded_checkpoint,
    load_sharded_model,
    load_sharded_optimizer,
    save_sharded_state,
)
from .trainer import NuwaTrainer


class _MeasureShardsCallback(TrainerCallback):
    """Counts, right after the first optimizer step (gradients and AdamW moments both present), the elements of
    parameters, gradients and optimizer state this process holds."""

    def __init__(self):
        self.report = None

    def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.report is None and model is not None:
            self.report = local_memory_report(model, optimizer)


class ShardedNuwaTrainer(NuwaTrainer):
    """:class:`NuwaTrainer` that shards the model with FSDP2 across the launched processes (see the module docstring).

    Args (beyond ``NuwaTrainer``'s):
        activation_checkpointing: recompute each layer's activations in backward.
        reshard_after_forward: free each layer's gathered weights after its forward (full sharding, the default).
        layer_classes: the modules that are shard units of their own.

    On one process (no ``torch.distributed``) the model stays whole; checkpoints still use the sharded format, so a
    run can move between 1 and N processes.
    """

    def __init__(
        self,
        *args,
        activation_checkpointing: bool = False,
        reshard_after_forward: bool = True,
        layer_classes: Sequence[str] = DEFAULT_LAYER_CLASSES,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            raise ValueError(
                "ShardedNuwaTrainer shards the model itself: drop fsdp / fsdp_config / deepspeed from the training "
                "arguments (or use NuwaTrainer with them on GPUs)."
            )
        self.sharding_plan: Optional[ShardingPlan] = None
        if dist.is_available() and dist.is_initialized() and self.args.world_size > 1:
            self.sharding_plan = shard_nuwa(
                self.model, layer_classes=layer_classes, reshard_after_forward=reshard_after_forward,
                activation_checkpointing=activation_checkpointing,
            )
            # Trainer's path for a model that arrives sharded (see the module docstring, point 2).
            self.is_distributed_loading_by_transformers = True
        elif activation_checkpointing:
            checkpoint_layers(self.model, layer_classes)
        self._shard_measure = _MeasureShardsCallback()
        self.add_callback(self._shard_measure)

    def elements_per_process(self):
        """Per process (index = rank): elements of parameters, gradients and optimizer state it held after its
        first optimizer step (see :func:`~nuwa_hf.training.sharded.local_memory_report`). A collective."""
        report = self._shard_measure.report
        if not (dist.is_available() and dist.is_initialized()):
            return [report]
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, report)
        return gathered

    @property
    def is_model_sharded(self) -> bool:
        return self.sharding_plan is not None

    # ----------------------------------------------------------------------------------------------------------------
    # Training step details

    @contextlib.contextmanager
    def _defer_fsdp_gradient_reduction(self):
        """Private override kept: Trainer's version reads config.distributed_config, which a model sharded here does
        not have, and no public hook replaces the no-sync context of accumulation micro-batches."""
        self.model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            self.model.set_requires_gradient_sync(True)

    def _has_mixed_mesh_grads(self, model) -> bool:
        """Private override kept: the only switch to Trainer's DTensor-aware gradient norm (full_tensor of the
        reduced norm) for a model sharded outside accelerate."""
        return self.is_model_sharded or super()._has_mixed_mesh_grads(model)

    # ----------------------------------------------------------------------------------------------------------------
    # Saving

    def _save(self, output_dir: Optional[str] = None, state_dict=None) -> None:
        """Private override kept: Trainer.save_model cannot hand _save the full state dict gathered from a model
        sharded outside accelerate, nor leave the weights out of a checkpoint that holds them in sharded_state."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self._staging_root is not None:
            # Inside a checkpoint: the weights go to sharded_state with the optimizer; keep the config (to rebuild
            # the model when resuming) and the processor.
            if self.args.should_save:  # (NuwaTrainer.save_model adds the processor)
                os.makedirs(output_dir, exist_ok=True)
                self.accelerator.unwrap_model(self.model).config.save_pretrained(output_dir)
            return
        if self.is_model_sharded and state_dict is None:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            # A collective: every process sends its shards, the main process receives the full tensors on CPU.
            state_dict = get_model_state_dict(
                self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
            )
        if not self.args.should_save:
            return
        super()._save(output_dir, state_dict=state_dict)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        """Private override kept: no public hook saves the optimizer of a checkpoint (here: sharded, with DCP)."""
        save_sharded_state(self.model, self.optimizer, output_dir)
        if self.args.should_save and self.lr_scheduler is not None:
            torch.save(self.lr_scheduler.state_dict(), os.path.join(output_dir, SCHEDULER_NAME))

    # ----------------------------------------------------------------------------------------------------------------
    # Resuming

    def _check_sharded(self, checkpoint: str) -> None:
        if not is_sharded_checkpoint(checkpoint):
            raise ValueError(
                f"{checkpoint!r} is not a sharded checkpoint (no sharded_state/): it was written without --fsdp2. "
                "Resume it without --fsdp2 (NuwaTrainer), or start a new sharded run from its weights (--init-from "
                "a folder with model.safetensors)."
            )

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Private override kept: no public hook loads a resumed checkpoint's weights (here: sharded, with DCP)."""
        self._check_sharded(resume_from_checkpoint)
        load_sharded_model(model if model is not None else self.model, resume_from_checkpoint)

    def _load_optimizer_and_scheduler(self, checkpoint: Optional[str]) -> None:
        """Private override kept: no public hook loads a resumed optimizer (here: sharded, with DCP)."""
        if checkpoint is None:
            return
        self._check_sharded(checkpoint)
        load_sharded_optimizer(self.model, self.optimizer, checkpoint)
        scheduler = os.path.join(checkpoint, SCHEDULER_NAME)
        if os.path.isfile(scheduler):
            self.lr_scheduler.load_state_dict(torch.load(scheduler, weights_only=True))


__all__ = ["ShardedNuwaTrainer", "is_sharded"]
