"""Issue 28 item 4d: running a finished ``nuwa-hf train`` again (same --output-dir, --resume auto) keeps the run's real
training_summary.json. It used to train no step and rewrite the summary with ``train_loss 0.0``."""

import json
import logging
import os

from nuwa_hf.cli import main as cli_main
from nuwa_hf.training.main import SUMMARY_FILE
from nuwa_training_support import tiny_run_args


def _summary(folder):
    return json.loads((folder / SUMMARY_FILE).read_text())


def _model_files(folder):
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}


def test_rerunning_a_finished_run_keeps_its_summary_and_model(tmp_path, vqgan_folders, caplog):
    run = tmp_path / "run"
    argv = ["train", *tiny_run_args(run, vqgan_folders, max_steps=2)]
    assert cli_main(argv) == 0
    first, model = _summary(run), _model_files(run)
    assert first["global_step"] == 2 and first["train_loss"] > 0
    with caplog.at_level(logging.INFO, logger="nuwa_hf.training"):
        assert cli_main(argv) == 0  # the user's second, identical command
    assert _summary(run) == first, "the summary of the finished run is kept as it was"
    assert _summary(run)["train_loss"] == first["train_loss"] != 0.0
    assert _model_files(run) == model
    assert "is a finished run" in caplog.text and "raise --max-steps" in caplog.text

    # Raising --max-steps still continues the run from its checkpoint, with a real loss for the new steps.
    assert cli_main(["train", *tiny_run_args(run, vqgan_folders, max_steps=3)]) == 0
    more = _summary(run)
    assert more["global_step"] == 3 and more["resumed_from"].endswith("checkpoint-2") and more["train_loss"] > 0


def test_a_run_stopped_after_its_last_checkpoint_is_finished_without_training(tmp_path, vqgan_folders):
    """Without the summary (a run stopped after its last checkpoint, before the end), the rerun trains no step: not one
    past --max-steps (what resuming did: checkpoint-3 of a 2-step run), and it reports the loss as unknown (null),
    never 0.0; the final model is written from the checkpoint's weights."""
    run = tmp_path / "run"
    argv = tiny_run_args(run, vqgan_folders, max_steps=2)
    assert cli_main(["train", *argv]) == 0
    model = _model_files(run)
    os.remove(run / SUMMARY_FILE)
    os.remove(run / "model.safetensors")
    assert cli_main(["train", *argv]) == 0
    again = _summary(run)
    assert again["global_step"] == 2 and again["train_loss"] is None
    assert again["last_logged_losses"]["loss"] > 0
    assert not (run / "checkpoint-3").exists()
    assert _model_files(run) == model
