"""NuwaTrainer's behaviour through public hooks: sampler re-seeding (a callback), processor saving (save_model),
per-task losses and throughput in the logs."""

import hashlib
import os

from nuwa_training_support import make_tiny_model
from nuwa_hf.training import NuwaTaskCollator, NuwaTrainer, TaskMixtureDataset, nuwa_training_arguments
from nuwa_hf.training.checkpointing import is_complete_checkpoint
from nuwa_hf.training.trainer import TaskSamplerEpochCallback


class BatchRecordingTrainer(NuwaTrainer):
    def compute_loss(self, model, inputs, *args, **kwargs):
        digest = hashlib.sha256(inputs["labels"].numpy().tobytes()).hexdigest()[:12]
        self.batches.append((self.state.global_step + 1, inputs["task"], digest))
        return super().compute_loss(model, inputs, *args, **kwargs)


def _trainer(output_dir, token_datasets, max_steps):
    # 24 + 12 + 16 examples in batches of 4 -> 13 batches an epoch: steps 1-13 are epoch 0, 14-26 epoch 1.
    args = nuwa_training_arguments(
        str(output_dir), max_steps=max_steps, per_device_train_batch_size=4, logging_steps=5, save_steps=16,
        disable_tqdm=True, seed=0,
    )
    trainer = BatchRecordingTrainer(
        model=make_tiny_model(seed=0), args=args, train_dataset=TaskMixtureDataset(token_datasets),
        data_collator=NuwaTaskCollator(max_text_length=6),
    )
    trainer.batches = []
    return trainer


def test_a_run_resumed_mid_epoch_sees_the_batches_of_the_uninterrupted_run(tmp_path, token_datasets):
    full = _trainer(tmp_path / "full", token_datasets, max_steps=20)
    full.train()
    assert sum(isinstance(c, TaskSamplerEpochCallback) for c in full.callback_handler.callbacks) == 1
    first = _trainer(tmp_path / "resumed", token_datasets, max_steps=20)
    first.args.max_steps = 16  # stop right after the checkpoint of step 16 (epoch 1, 3 batches into it)
    first.train()
    checkpoint = tmp_path / "resumed" / "checkpoint-16"
    assert is_complete_checkpoint(str(checkpoint))
    resumed = _trainer(tmp_path / "resumed", token_datasets, max_steps=20)
    resumed.train(resume_from_checkpoint=True)
    assert resumed.task_sampler.epoch == 1
    assert resumed.batches == [b for b in full.batches if b[0] > 16]
    epoch0, epoch1 = full.batches[:13], full.batches[13:26]
    assert [b[2] for b in epoch0[:7]] != [b[2] for b in epoch1[:7]]  # the epochs really are re-seeded


def test_the_callback_sets_trainers_epoch_of_the_step(tmp_path, token_datasets):
    """The arithmetic Trainer uses to find the resumed epoch (it cannot reach the sampler itself on several
    processes): 13 batches an epoch, with and without gradient accumulation."""
    from types import SimpleNamespace

    trainer = _trainer(tmp_path, token_datasets, max_steps=1)
    trainer.get_train_dataloader()
    callback = TaskSamplerEpochCallback(trainer)
    for accumulation, global_step, epoch in ((1, 16, 1), (1, 13, 1), (1, 12, 0), (2, 7, 1), (2, 6, 0), (1, 40, 3)):
        trainer.task_sampler.set_epoch(99)
        callback.on_epoch_begin(SimpleNamespace(gradient_accumulation_steps=accumulation),
                                SimpleNamespace(global_step=global_step), None, train_dataloader=[None] * 13)
        assert trainer.task_sampler.epoch == epoch, (accumulation, global_step)


def test_processor_goes_with_checkpoints_and_the_model_and_logs_have_task_losses(tmp_path, token_datasets):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[PAD]": 0, "a": 1}, "[PAD]")),
                                        pad_token="[PAD]")
    args = nuwa_training_arguments(str(tmp_path), max_steps=4, per_device_train_batch_size=4, logging_steps=2,
                                   save_steps=2, disable_tqdm=True, seed=0)
    trainer = NuwaTrainer(model=make_tiny_model(seed=0), args=args, train_dataset=TaskMixtureDataset(token_datasets),
                          data_collator=NuwaTaskCollator(max_text_length=6), processing_class=tokenizer)
    trainer.train()
    trainer.save_model()
    for folder in (tmp_path / "checkpoint-4", tmp_path):
        assert (folder / "tokenizer_config.json").is_file() and (folder / "model.safetensors").is_file()
        assert len(AutoTokenizer.from_pretrained(folder)) == 2
    assert is_complete_checkpoint(str(tmp_path / "checkpoint-4"))
    assert not os.path.exists(tmp_path / "training_args.bin")  # a shared model folder gets JSON, not a pickle
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2
    assert all(entry["visual_tokens_per_second"] > 0 for entry in logged)
    assert all(any(key.startswith("loss_") for key in entry) for entry in logged)
