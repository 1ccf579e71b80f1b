"""``NuwaTrainer``: ``transformers.Trainer`` for NUWA's task mixture, with crash-safe checkpoints.

What it adds to ``Trainer``:

- a :class:`TaskGroupedBatchSampler` over a :class:`TaskMixtureDataset` (one task and grid per batch, condition
  dropout decided reproducibly), re-seeded every epoch, also in the epoch a resumed run starts in
  (:class:`TaskSamplerEpochCallback`);
- training with ``"nuwa_3dna_train"`` attention when the model uses its default ``"nuwa_3dna"``: the same values
  through the fastest exact kernel per grid (:mod:`nuwa_hf.training.fast_attention`), restored after ``train()``;
- per-task losses (``loss_t2i``, ...) and visual-token throughput (``visual_tokens_per_second``) in the logs;
- checkpoints written into a staging folder and renamed into place with a completion marker
  (:mod:`nuwa_hf.training.checkpointing`); ``train(resume_from_checkpoint=True)`` only resumes from complete ones;
- the final model published as a whole (:func:`~nuwa_hf.training.checkpointing.publish_model_folder`), and what a
  crashed save left in the staging area cleared when a run starts;
- a full disk during a save raises ``nuwa_hf.file_io.WriteSpaceError`` naming the checkpoint folder and the space it
  needs, with the half-written staging folder removed.

Loss scaling: ``NuwaForConditionalGeneration.forward`` takes ``**kwargs``, so ``Trainer`` passes
``num_items_in_batch`` (the visual tokens of the whole optimiser step, summed over gradient-accumulation micro-batches
and over processes) and the model returns a summed cross-entropy divided by it. Gradients are therefore the
per-token mean of the step whatever the accumulation or the number of processes.
"""

from __future__ import annotations

import os
import time
import weakref
from collections import defaultdict
from functools import partial
from typing import Dict, Mapping, Optional, Union

import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, seed_worker

from .checkpointing import (
    CHECKPOINT_MARKER,
    STAGING_DIRNAME,
    clear_stale_staging,
    clear_staging,
    is_complete_checkpoint,
    last_complete_checkpoint,
    publish_checkpoint,
    publish_model_folder,
    rotate_complete_checkpoints,
    staging_path,
)
from ..file_io import is_out_of_space, space_error
from .fast_attention import TRAINING_ATTENTION
from .mixture import TASK_KEY, TaskMixtureDataset
from .sampler import TaskGroupedBatchSampler


class TaskSamplerEpochCallback(TrainerCallback):
    """Re-seeds the trainer's :class:`TaskGroupedBatchSampler` at every epoch start, the resumed epoch included.

    ``Trainer`` sets the epoch on the sampler it can reach, but when several processes resume mid-epoch, accelerate's
    ``skip_first_batches`` wraps the sharded batch sampler once more and hides ours (``SkipBatchSampler`` ->
    ``BatchSamplerShard`` -> ours); ``on_epoch_begin`` runs before that epoch's first batch is drawn. The epoch is
    Trainer's own: ``global_step // update steps per epoch`` (exact integers).
    """

    def __init__(self, trainer: "NuwaTrainer"):
        self._trainer = weakref.ref(trainer)  # no cycle trainer -> handler -> callback -> trainer

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        trainer = self._trainer()
        sampler = trainer.task_sampler if trainer is not None else None
        if sampler is None or train_dataloader is None:
            return
        batches = len(train_dataloader)
        accumulation = args.gradient_accumulation_steps
        updates_per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
        sampler.set_epoch(state.global_step // updates_per_epoch)


class NuwaTrainer(Trainer):
    """``Trainer`` for NUWA's multi-task training (see the module docstring).

    Args (beyond ``Trainer``'s):
        task_batch_sizes: per-task batch sizes (task -> int); default ``args.per_device_train_batch_size`` for all.
        task_weights: relative share of batches per task; default: in proportion to the tasks' dataset sizes.
        condition_dropout: probability of the null condition (classifier-free guidance), one float or per task.
        task_block_size: consecutive batches of one task; default: the number of processes (all processes train the
            same task in each step).
        training_attention: ``"auto"`` (default): a model on its default ``"nuwa_3dna"`` attention trains with
            ``"nuwa_3dna_train"`` (the same 3DNA values, the fastest exact kernel per grid, see
            :mod:`nuwa_hf.training.fast_attention`) and gets its own back after ``train()``; ``None`` keeps the
            model's implementation; another name sets that implementation for training.

    ``processing_class`` (the text tokenizer, or a processor) is saved with every checkpoint and the final model, and
    pushed with them, but kept away from ``Trainer``'s special-token alignment: that would overwrite the model's
    ``bos/pad/decoder_start_token_id`` (VISUAL ids: the <bos> is id N of the visual codebook) with the text
    tokenizer's ids.
    """

    def __init__(
        self,
        *args,
        task_batch_sizes: Optional[Mapping[str, int]] = None,
        task_weights: Optional[Mapping[str, float]] = None,
        condition_dropout: Union[float, Mapping[str, float]] = 0.1,
        task_block_size: Optional[int] = None,
        training_attention: Optional[str] = "auto",
        processing_class=None,
        **kwargs,
    ):
        super().__init__(*args, processing_class=None, **kwargs)
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched > 1 and self.args.world_size != launched:
            raise RuntimeError(
                f"{launched} processes were launched but Trainer set up {self.args.world_size}: each would train alone. "
                "On CPUs pass use_cpu=True (nuwa_training_arguments does when no GPU is visible); with accelerate use "
                "`accelerate launch --multi_gpu --num_processes N` or torchrun, not `--cpu`."
            )
        self.nuwa_processing_class = processing_class
        if self.args.fsdp and not self.is_fsdp_enabled:
            # accelerate turns FSDP on only for GPU-like devices; elsewhere the model would quietly be replicated.
            raise RuntimeError(
                "FSDP was requested (fsdp / fsdp_config) but accelerate did not enable it: it shards only on GPUs "
                "(CUDA, XPU, NPU, ...). On CPUs drop the FSDP settings and train with plain DDP (torchrun)."
            )
        self.task_batch_sizes = dict(task_batch_sizes) if task_batch_sizes else None
        self.task_weights = dict(task_weights) if task_weights else None
        self.condition_dropout = condition_dropout
        self.task_block_size = task_block_size
        if training_attention not in (None, "auto") and not isinstance(training_attention, str):
            raise TypeError(f"training_attention must be 'auto', None or an attention name, got {training_attention!r}.")
        self.training_attention = training_attention
        self.task_sampler: Optional[TaskGroupedBatchSampler] = None
        self._staging_root: Optional[str] = None
        self._task_loss = defaultdict(lambda: [0.0, 0])
        self._visual_tokens_since_log = 0
        self.visual_tokens_trained = 0  # this process, this train() call
        self._last_log_time: Optional[float] = None
        self.add_callback(TaskSamplerEpochCallback(self))

    # ----------------------------------------------------------------------------------------------------------------
    # Data

    def get_train_dataloader(self) -> DataLoader:
        if not isinstance(self.train_dataset, TaskMixtureDataset):
            return super().get_train_dataloader()
        args = self.args
        batch_size = self.task_batch_sizes or args.per_device_train_batch_size
        if self.task_batch_sizes:
            batch_size = {name: self.task_batch_sizes.get(name, args.per_device_train_batch_size)
                          for name in self.train_dataset.task_names}
        self.task_sampler = TaskGroupedBatchSampler(
            self.train_dataset,
            batch_size,
            task_weights=self.task_weights,
            condition_dropout=self.condition_dropout,
            block_size=self.task_block_size or self.accelerator.num_processes,
            seed=args.data_seed if args.data_seed is not None else args.seed,
        )
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self.task_sampler,
            collate_fn=self.data_collator,
            num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory,
            persistent_workers=args.dataloader_persistent_workers and args.dataloader_num_workers > 0,
            prefetch_factor=args.dataloader_prefetch_factor if args.dataloader_num_workers > 0 else None,
            worker_init_fn=partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
        )
        # accelerate shards the batches over processes: batch i goes to process i % num_processes.
        return self.accelerator.prepare(loader)

    # ----------------------------------------------------------------------------------------------------------------
    # Loss bookkeeping

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        task = inputs.pop(TASK_KEY, None)
        labels = inputs.get("labels")
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training and labels is not None:
            self._visual_tokens_since_log += int(labels.numel())
            self.visual_tokens_trained += int(labels.numel())
            if task is not None:
                # The returned loss is normalised by the whole step's token count; log each task's own mean instead.
                with torch.no_grad():
                    logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[1]
                    mean = torch.nn.functional.cross_entropy(
                        logits.detach().float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
                    )
                entry = self._task_loss[task]
                entry[0] = entry[0] + mean  # a tensor: no device sync per step, only at logging
                entry[1] += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        if "loss" in logs:
            logs.update(self._drain_training_stats())
        super().log(logs, start_time)

    def _drain_training_stats(self) -> Dict[str, float]:
        """Per-task mean losses and visual tokens/s since the last log, summed over processes."""
        # The same list on every process (the reduce below needs matching shapes).
        names = list(self.train_dataset.task_names) if isinstance(self.train_dataset, TaskMixtureDataset) else []
        stats = torch.tensor(
            [[float(self._task_loss[n][0]), self._task_loss[n][1]] for n in names]
            + [[float(self._visual_tokens_since_log), 0.0]],
            dtype=torch.float64, device=self.args.device,
        )
        if self.accelerator.num_processes > 1:
            # Every process logs at the same step (Trainer gathers the loss there too), so this reduce is matched.
            stats = self.accelerator.reduce(stats, reduction="sum")
        now = time.time()
        logs = {}
        for row, name in enumerate(names):
            total, count = stats[row].tolist()
            if count:
                logs[f"loss_{name}"] = total / count
        tokens = int(stats[-1, 0].item())
        if self._last_log_time is not None and now > self._last_log_time:
            logs["visual_tokens_per_second"] = round(tokens / (now - self._last_log_time), 1)
        self._last_log_time = now
        self._task_loss.clear()
        self._visual_tokens_since_log = 0
        return logs

    # ----------------------------------------------------------------------------------------------------------------
    # Training entry: resume only from complete checkpoints

    def train(self, resume_from_checkpoint: Union[str, bool, None] = None, trial=None, **kwargs):
        # What a crashed save left behind (staged checkpoints, deleting-checkpoint-N folders, a half-published model)
        # is finished or removed before anything else looks at the run folder.
        if self.args.should_save:
            clear_stale_staging(self.args.output_dir)
        self.accelerator.wait_for_everyone()
        if resume_from_checkpoint is True:
            found = last_complete_checkpoint(self.args.output_dir)
            if found is None:
                raise ValueError(
                    f"no complete checkpoint in {self.args.output_dir!r} to resume from (checkpoint folders without "
                    f"{CHECKPOINT_MARKER} were interrupted mid-save and are skipped); train without resuming."
                )
            resume_from_checkpoint = found
        elif resume_from_checkpoint:
            path = os.fspath(resume_from_checkpoint)
            if not is_complete_checkpoint(path):
                raise ValueError(
                    f"{path!r} is not a complete checkpoint (no valid {CHECKPOINT_MARKER}: the save was interrupted, "
                    "or the folder was not written by NuwaTrainer); resume from another checkpoint-N folder."
                )
            resume_from_checkpoint = path
        self._last_log_time = time.time()
        restore = self._use_training_attention()
        try:
            return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)
        finally:
            if restore is not None:
                self.model.set_attn_implementation(restore)

    def _use_training_attention(self) -> Optional[str]:
        """Switch the model to the training attention (see ``training_attention``); returns what to restore."""
        wanted = self.training_attention
        config = getattr(self.model, "config", None)
        current = getattr(config, "_attn_implementation", None)
        if wanted is None or config is None or not hasattr(self.model, "set_attn_implementation"):
            return None
        if wanted == "auto":
            if current != "nuwa_3dna":
                return None
            wanted = TRAINING_ATTENTION
        if wanted == current:
            return None
        self.model.set_attn_implementation(wanted)
        return current

    # ----------------------------------------------------------------------------------------------------------------
    # Crash-safe saving

    def _get_output_dir(self, trial) -> str:
        """Private override kept: no public hook chooses where Trainer writes a checkpoint (here: the staging area)."""
        if self._staging_root is not None:
            return self._staging_root
        return super()._get_output_dir(trial)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Private override kept: Trainer calls it inside its checkpoint save, before the folder is published; no
        callback can hold back that upload (``on_push_begin`` only fires for ``push_to_hub``)."""
        if self._staging_root is not None:
            return  # pushed after the folder is published (an upload running in the background must not see it move)
        if self.args.should_save and self.nuwa_processing_class is not None:
            self.nuwa_processing_class.save_pretrained(self.args.output_dir)
        super()._push_from_checkpoint(checkpoint_folder)

    def _save_checkpoint(self, model, trial) -> None:
        """Private override kept: ``on_save`` runs after Trainer has already rotated (deleted) old checkpoints, too
        late to publish the new one atomically first; no public hook wraps the save itself."""
        run_dir = self._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save:
            clear_staging(run_dir, name)
        self.accelerator.wait_for_everyone()
        self._staging_root = os.path.join(run_dir, STAGING_DIRNAME)
        try:
            super()._save_checkpoint(model, trial)
        except Exception as error:
            if not is_out_of_space(error):
                raise
            # A full disk: nothing half-written stays (the staged folder never got its final name anyway).
            written = staging_path(run_dir, name)
            space = space_error(error, os.path.join(run_dir, name), "the checkpoint", self._checkpoint_bytes(), written)
            if self.args.should_save:
                clear_staging(run_dir, name)
            raise space from error
        finally:
            self._staging_root = None
        # Every process has written its part (each one its RNG state) before the folder is published.
        self.accelerator.wait_for_everyone()
        final = os.path.join(run_dir, name)
        if self.args.should_save:
            publish_checkpoint(staging_path(run_dir, name), final, self.state.global_step)
            if self.state.best_global_step:
                best = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.best_global_step}")
                if os.path.isdir(best):
                    self.state.best_model_checkpoint = best
            rotate_complete_checkpoints(run_dir, self.args.save_total_limit, keep=self.state.best_model_checkpoint)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub:
            self._push_from_checkpoint(final)

    def _checkpoint_bytes(self) -> int:
        """About what one checkpoint takes: the weights, and the optimizer state (twice the weights for Adam)."""
        weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
        optimizer = 0
        if self.optimizer is not None:
            for state in self.optimizer.state_dict().get("state", {}).values():
                optimizer += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
        return weights + optimizer

    def _save_processor(self, output_dir: Optional[str]) -> None:
        if self.args.should_save and self.nuwa_processing_class is not None:
            self.nuwa_processing_class.save_pretrained(output_dir if output_dir is not None else self.args.output_dir)

    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False) -> None:
        """The model, its VQ-GANs and the processor; a final save (outside checkpoints) is published as a whole."""
        # The processor first: the model card written with the first save then lists the tokenizer's prompt words.
        if self._staging_root is not None:  # inside _save_checkpoint: already staged
            self._save_processor(output_dir)
            super().save_model(output_dir, _internal_call)
            return
        target = output_dir if output_dir is not None else self.args.output_dir
        staged = os.path.join(target, STAGING_DIRNAME, "model")
        if self.args.should_save:
            clear_staging(target, "model")
        self.accelerator.wait_for_everyone()
        try:
            self._save_processor(staged)
            super().save_model(staged, _internal_call=True)
        except Exception as error:
            if not is_out_of_space(error):
                raise
            weights = sum(p.numel() * p.element_size() for p in self.model.parameters())
            space = space_error(error, target, "the final model", weights, staged)
            if self.args.should_save:
                clear_staging(target, "model")
            raise space from error
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            # Trainer also writes training_args.bin, a pickle: a model folder meant to be shared gets JSON instead.
            pickled_args = os.path.join(staged, "training_args.bin")
            if os.path.exists(pickled_args):
                os.remove(pickled_args)
                with open(os.path.join(staged, "training_args.json"), "w", encoding="utf-8") as handle:
                    handle.write(self.args.to_json_string())
            publish_model_folder(staged, target)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)
