"""The final model of a training run is published as a whole, stale staging is cleared at start, and saved files are
readable by others (umask permissions, not safetensors' 0600) (issue 20, deliverable 1)."""

import json
import os

import pytest

from nuwa_hf.training import NuwaTaskCollator, NuwaTrainer, TaskMixtureDataset, nuwa_training_arguments
from nuwa_hf.training.checkpointing import (
    PUBLISH_JOURNAL,
    STAGING_DIRNAME,
    clear_stale_staging,
    finish_model_publish,
    publish_model_folder,
)
from nuwa_training_support import TEXT_LENGTH, make_tiny_model


def _usual_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _model_folder(root, version, shards=False):
    """A fake saved model: root files, a vqgan/ sub-folder, files written owner-only as safetensors does."""
    root.mkdir(parents=True)
    names = ["model-00001-of-00002.safetensors", "model.safetensors.index.json"] if shards else ["model.safetensors"]
    for name in ["config.json", *names]:
        (root / name).write_text(f"{name} {version}")
        os.chmod(root / name, 0o600)
    (root / "vqgan").mkdir()
    (root / "vqgan" / "model.safetensors").write_text(f"vqgan {version}")
    return root


def _contents(folder):
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()
            and STAGING_DIRNAME not in p.parts and not p.name.startswith("checkpoint")}


def test_publish_replaces_the_whole_model_and_drops_old_shards(tmp_path):
    target = tmp_path / "run"
    publish_model_folder(str(_model_folder(tmp_path / "old", "old", shards=True)), str(target))
    (target / "checkpoint-2").mkdir()  # the run folder also holds checkpoints: they stay
    publish_model_folder(str(_model_folder(tmp_path / "new", "new")), str(target))
    assert _contents(target) == {"config.json": "config.json new", "model.safetensors": "model.safetensors new",
                                 "vqgan/model.safetensors": "vqgan new"}
    assert (target / "checkpoint-2").is_dir()
    assert not (target / STAGING_DIRNAME).exists() or not os.listdir(target / STAGING_DIRNAME)
    assert all(p.stat().st_mode & 0o777 == _usual_mode() for p in target.rglob("*") if p.is_file())


@pytest.mark.parametrize("moved", [0, 1, 2])
def test_an_interrupted_publish_is_finished_at_the_next_start(tmp_path, moved, monkeypatch):
    """Die after ``moved`` of the entries were moved: clear_stale_staging completes the move, all new, nothing old."""
    target = tmp_path / "run"
    publish_model_folder(str(_model_folder(tmp_path / "old", "old")), str(target))
    staged = _model_folder(target / STAGING_DIRNAME / "model", "new")
    real_replace, real_rename, count = os.replace, os.rename, []

    def dying(move):
        def wrapper(source, destination):
            if str(source).startswith(str(staged)) and os.path.dirname(str(source)) == str(staged):
                if len(count) == moved:
                    raise KeyboardInterrupt("killed")
                count.append(source)
            return move(source, destination)
        return wrapper

    monkeypatch.setattr(os, "replace", dying(real_replace))
    monkeypatch.setattr(os, "rename", dying(real_rename))
    with pytest.raises(KeyboardInterrupt):
        publish_model_folder(str(staged), str(target))
    monkeypatch.setattr(os, "replace", real_replace)
    monkeypatch.setattr(os, "rename", real_rename)
    assert (target / STAGING_DIRNAME / PUBLISH_JOURNAL).is_file()
    (target / STAGING_DIRNAME / "deleting-checkpoint-4").mkdir()  # an interrupted rotation, too
    (target / STAGING_DIRNAME / "deleting-checkpoint-4" / "optimizer.pt").write_text("x")
    removed = clear_stale_staging(str(target))
    assert "deleting-checkpoint-4" in removed
    assert _contents(target) == {"config.json": "config.json new", "model.safetensors": "model.safetensors new",
                                 "vqgan/model.safetensors": "vqgan new"}
    assert not (target / STAGING_DIRNAME).exists()
    assert finish_model_publish(str(target)) is False  # nothing left to finish


def test_a_half_written_journal_is_ignored(tmp_path):
    target = _model_folder(tmp_path / "run", "old")
    (target / STAGING_DIRNAME).mkdir()
    (target / STAGING_DIRNAME / PUBLISH_JOURNAL).write_text('{"staged": "_incomplete_checkpoints/mo')
    assert finish_model_publish(str(target)) is False
    assert _contents(target)["model.safetensors"] == "model.safetensors old"
    json.dumps(clear_stale_staging(str(target)))
    assert not (target / STAGING_DIRNAME).exists()


def test_training_clears_stale_staging_and_saves_readable_files(tmp_path, token_datasets):
    stale = tmp_path / STAGING_DIRNAME / "deleting-checkpoint-9"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_text("orphan")
    args = nuwa_training_arguments(str(tmp_path), max_steps=2, per_device_train_batch_size=4, save_steps=2,
                                   logging_steps=1, disable_tqdm=True, use_cpu=True)
    trainer = NuwaTrainer(model=make_tiny_model(seed=0), args=args, train_dataset=TaskMixtureDataset(token_datasets),
                          data_collator=NuwaTaskCollator(max_text_length=TEXT_LENGTH))
    trainer.train()
    assert not stale.exists()
    trainer.save_model(str(tmp_path))
    for weights in (tmp_path / "model.safetensors", tmp_path / "checkpoint-2" / "model.safetensors"):
        assert weights.stat().st_mode & 0o777 == _usual_mode()
    assert not (tmp_path / STAGING_DIRNAME).exists() or not os.listdir(tmp_path / STAGING_DIRNAME)
