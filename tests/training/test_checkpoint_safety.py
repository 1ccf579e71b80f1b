"""Crash-safe checkpoints: a save that dies half-way leaves no checkpoint that looks complete, resume picks the newest
complete one, damaged folders are refused, rotation keeps the newest."""

import os
import shutil

import pytest

from nuwa_hf.training import (
    CHECKPOINT_MARKER,
    NuwaTaskCollator,
    NuwaTrainer,
    TaskMixtureDataset,
    complete_checkpoints,
    is_complete_checkpoint,
    last_complete_checkpoint,
    nuwa_training_arguments,
)
from nuwa_training_support import TEXT_LENGTH, make_tiny_model


class SimulatedCrash(RuntimeError):
    pass


def _trainer(output_dir, token_datasets, max_steps, **overrides):
    args = nuwa_training_arguments(
        str(output_dir), max_steps=max_steps, per_device_train_batch_size=4, save_steps=2, logging_steps=1,
        disable_tqdm=True, use_cpu=True, **overrides,
    )
    return NuwaTrainer(model=make_tiny_model(seed=0), args=args, train_dataset=TaskMixtureDataset(token_datasets),
                       data_collator=NuwaTaskCollator(max_text_length=TEXT_LENGTH))


def test_crash_in_the_middle_of_a_save_leaves_no_complete_looking_checkpoint(tmp_path, token_datasets, monkeypatch):
    trainer = _trainer(tmp_path, token_datasets, max_steps=6)
    original = NuwaTrainer._save_rng_state
    saves = []

    def crash_on_second_save(self, output_dir):
        saves.append(output_dir)
        if len(saves) == 2:  # model weights and optimizer already written, RNG state and trainer state not yet
            assert os.path.isfile(os.path.join(output_dir, "model.safetensors"))
            raise SimulatedCrash("power cut")
        return original(self, output_dir)

    monkeypatch.setattr(NuwaTrainer, "_save_rng_state", crash_on_second_save)
    with pytest.raises(SimulatedCrash):
        trainer.train()
    assert not os.path.exists(tmp_path / "checkpoint-4")  # the half-written folder never got its final name
    assert last_complete_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-2")
    assert CHECKPOINT_MARKER not in os.listdir(tmp_path / "_incomplete_checkpoints" / "checkpoint-4")

    monkeypatch.setattr(NuwaTrainer, "_save_rng_state", original)
    resumed = _trainer(tmp_path, token_datasets, max_steps=6)
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == 6
    assert [step for step, _ in complete_checkpoints(str(tmp_path))] == [2, 4, 6]
    assert not os.path.exists(tmp_path / "_incomplete_checkpoints" / "checkpoint-4")  # the leftover was cleared


def test_damaged_or_unmarked_checkpoints_are_never_resumed(tmp_path, token_datasets):
    trainer = _trainer(tmp_path, token_datasets, max_steps=2)
    trainer.train()
    good = tmp_path / "checkpoint-2"
    assert is_complete_checkpoint(str(good))

    truncated = tmp_path / "checkpoint-8"  # e.g. a copy interrupted half-way
    shutil.copytree(good, truncated)
    with open(truncated / "model.safetensors", "r+b") as handle:
        handle.truncate(100)
    unmarked = tmp_path / "checkpoint-9"  # e.g. written by a plain Trainer that was killed
    shutil.copytree(good, unmarked)
    os.remove(unmarked / CHECKPOINT_MARKER)

    assert not is_complete_checkpoint(str(truncated)) and not is_complete_checkpoint(str(unmarked))
    assert last_complete_checkpoint(str(tmp_path)) == str(good)
    for bad in (truncated, unmarked):
        with pytest.raises(ValueError, match="not a complete checkpoint"):
            _trainer(tmp_path, token_datasets, max_steps=4).train(resume_from_checkpoint=str(bad))


def test_rotation_keeps_the_newest_complete_checkpoints(tmp_path, token_datasets):
    trainer = _trainer(tmp_path, token_datasets, max_steps=6, save_total_limit=2)
    trainer.train()
    assert [step for step, _ in complete_checkpoints(str(tmp_path))] == [4, 6]
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith("checkpoint-")) == ["checkpoint-4", "checkpoint-6"]
