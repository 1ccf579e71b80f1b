"""A user fine-tunes a trained model on a folder of their own captioned pictures, from the command line, then
generates with the saved folder: the words of their captions must stay in the prompts, and a caption column under
another name must be refused with the fix."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

# words the tiny model folder's captions (support.tiny_model_folder.TINY_CAPTIONS) never had
USER_WORDS = ("cat", "dog")


def write_user_folder(folder, caption_key="text", count=8):
    """Pictures as people have them (square and not, RGB and RGBA, larger than the model's frames) and a
    metadata.jsonl naming each with its caption under ``caption_key``."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        size = [(24, 24), (20, 30), (40, 28), (16, 16)][i % 4]
        pixels = rng.integers(0, 256, (size[1], size[0], 4 if i % 3 == 0 else 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
        lines.append(json.dumps({"file_name": f"{i:03d}.png",
                                 caption_key: f"a {'red' if i % 2 else 'blue'} {USER_WORDS[i % 2]}"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def finetune_argv(tiny_model_folder, data, out, max_steps=2):
    return ["train", "--tasks", "t2i", "--train-data", f"t2i={data}", "--init-from", tiny_model_folder,
            "--output-dir", str(out), "--image-size", "16", "--max-text-length", "16", "--batch-size", "4",
            "--max-steps", str(max_steps), "--save-steps", "1", "--no-progress", "--threads", "1"]


def test_finetuned_folder_keeps_the_users_caption_words_in_prompts(tiny_model_folder, tmp_path, caplog):
    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from transformers import pipeline

    from nuwa_hf.cli import main as cli

    base_record = json.loads(open(f"{tiny_model_folder}/tokenizer_config.json").read())["caption_words"]
    assert not set(USER_WORDS) & set(base_record)  # the premise: the base model never had these words

    out = tmp_path / "finetuned"
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.training"):
        assert cli(finetune_argv(tiny_model_folder, write_user_folder(tmp_path / "pictures"), out)) == 0

    # the user is told which of their words the tokenizer splits, and into what
    notice = next(r.getMessage() for r in caplog.records if "new to the tokenizer" in r.getMessage())
    for word in USER_WORDS:
        assert f"{word!r} -> " in notice
    # the saved folder and its checkpoints record the run's caption words beside the base model's
    for folder in (out, out / "checkpoint-2"):
        record = json.loads((folder / "tokenizer_config.json").read_text())["caption_words"]
        assert set(record) == set(base_record) | set(USER_WORDS) | {"a", "red", "blue"}
        assert record == sorted(record)
        # and the model card, where the pipelines' unknown-word warning sends people, lists them
        card = (folder / "README.md").read_text()
        assert "## Prompt words" in card
        assert all(word in card.split("## Prompt words")[1] for word in USER_WORDS)

    # generation with the fine-tuned model reads "cat": strict=True refuses prompts with words the model never saw
    t2i = pipeline("nuwa-text-to-image", model=str(out))
    image = t2i("a red cat", seed=0, strict=True)
    assert isinstance(image, Image.Image)
    with pytest.raises(ValueError, match="purple"):  # a word neither run's captions had is still unknown
        t2i("a purple cat", seed=0, strict=True)


def test_finetuning_a_folder_without_a_record_records_the_words_it_knew_and_the_users(tiny_model_folder, tmp_path,
                                                                                     caplog):
    """A folder whose tokenizer has no caption_words record (saved before the record existed, or a stock
    CLIPTokenizer): the fine-tuned folder gets one, holding the words the old tokenizer's whole-word tokens made known
    and the user's caption words, so its pipelines keep "cat" in prompts."""
    import shutil

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from transformers import AutoTokenizer, pipeline

    from nuwa_hf.cli import main as cli
    from nuwa_hf.processing.vocabulary import unknown_words, whole_word_rule_words

    old = tmp_path / "old-folder"
    shutil.copytree(tiny_model_folder, old)
    config = json.loads((old / "tokenizer_config.json").read_text())
    del config["caption_words"]
    (old / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = AutoTokenizer.from_pretrained(old)
    known_before = whole_word_rule_words(tokenizer)
    assert known_before and unknown_words(tokenizer, "a red cat") == ["cat"]

    out = tmp_path / "finetuned"
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.training"):
        assert cli(finetune_argv(str(old), write_user_folder(tmp_path / "pictures"), out)) == 0
    assert any("has no caption_words record" in r.getMessage() for r in caplog.records)
    for folder in (out, out / "checkpoint-2"):
        record = json.loads((folder / "tokenizer_config.json").read_text())["caption_words"]
        assert set(record) == set(known_before) | set(USER_WORDS) | {"a", "red", "blue"}
        assert all(word in (folder / "README.md").read_text().split("## Prompt words")[1] for word in USER_WORDS)
    t2i = pipeline("nuwa-text-to-image", model=str(out))
    assert isinstance(t2i("a red cat", seed=0, strict=True), Image.Image)
    with pytest.raises(ValueError, match="purple"):
        t2i("a purple cat", seed=0, strict=True)


def test_resuming_a_finetuning_run_keeps_the_same_record(tiny_model_folder, tmp_path):
    """The record is rebuilt the same way when the run resumes, so checkpoints and the final folder agree."""
    from nuwa_hf.cli import main as cli

    data, out = write_user_folder(tmp_path / "pictures"), tmp_path / "finetuned"
    assert cli(finetune_argv(tiny_model_folder, data, out, max_steps=1)) == 0
    first = json.loads((out / "checkpoint-1" / "tokenizer_config.json").read_text())["caption_words"]
    assert "cat" in first
    assert cli(finetune_argv(tiny_model_folder, data, out, max_steps=2)) == 0  # resumes from checkpoint-1
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["resumed_from"].endswith("checkpoint-1")
    assert json.loads((out / "tokenizer_config.json").read_text())["caption_words"] == first


def test_a_folder_of_pictures_that_are_not_square_is_told_their_edges_are_cut(tiny_model_folder, tmp_path, caplog):
    """64x48 pictures are centre-cropped to 48x48 before they are resized: the run says so once, with how many, their
    size and the fix. A folder of square pictures (of any size) is not warned about."""
    from nuwa_hf.cli import main as cli
    from nuwa_hf.training.main import warn_about_cropped_pictures

    data = tmp_path / "wide"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(data / f"{i}.png")
    (data / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"{i}.png", "text": "a red cat"}) + "\n"
                                                 for i in range(8)))
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.training"):
        assert cli(finetune_argv(tiny_model_folder, data, tmp_path / "out", max_steps=1)) == 0
    notices = [r.getMessage() for r in caplog.records if "not square" in r.getMessage()]
    assert len(notices) == 1
    assert f"8 picture(s) of --train-data t2i={data} are not square (width x height: 64x48 (8)" in notices[0]
    assert "centre-crops each to its middle square before resizing it to 16x16" in notices[0]
    assert "pad them to squares yourself" in notices[0]

    square = tmp_path / "square"
    square.mkdir()
    for i, side in enumerate((16, 24, 40)):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(square / f"{i}.png")
    (square / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"{i}.png", "text": "a red cat"}) + "\n"
                                                   for i in range(3)))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.training"):
        assert warn_about_cropped_pictures({"t2i": str(square)}, 16) == {}
        assert warn_about_cropped_pictures({"t2i": str(data)}, 16) == {"t2i": 8}
    assert sum("not square" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("key", ["caption", "prompt"])
def test_a_caption_under_another_key_is_refused_with_the_fix(tiny_model_folder, tmp_path, capsys, key):
    from nuwa_hf.cli import main as cli

    data = write_user_folder(tmp_path / "pictures", caption_key=key)
    assert cli(finetune_argv(tiny_model_folder, data, tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert "metadata.jsonl:1 needs a 'text' string" in error
    assert f"It has {key!r} instead: rename that key to 'text'" in error


def step_losses(output_dir, step):
    state = json.loads((output_dir / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_ctrl_c_saves_the_step_it_stopped_at_and_the_same_command_resumes_from_it(tiny_model_folder, tmp_path, stop):
    """Ctrl-C (or a scheduler's SIGTERM) mid-run: the step in progress ends, checkpoint-<that step> is written
    complete, nothing of a finished run is written, and the exit code says it stopped; rerunning resumes there and
    gives the per-step losses of a run that was never stopped."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from nuwa_hf.cli import main as cli
    from nuwa_hf.training import is_complete_checkpoint
    from nuwa_training_support import REPO

    data, out = write_user_folder(tmp_path / "pictures"), tmp_path / "stopped"
    # a constant learning rate: the schedule does not depend on --max-steps, so the stopped run can be finished with a
    # small --max-steps and compared with a run that was never stopped
    options = ["--lr-scheduler", "constant", "--warmup-ratio", "0", "--logging-steps", "1", "--save-steps", "1000"]
    # SIGINT as Ctrl-C sends it: to the whole process group, DataLoader workers included
    workers = ["--num-workers", "1"] if stop == "SIGINT" else []
    argv = [*finetune_argv(tiny_model_folder, data, out, max_steps=100000), *options, *workers]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "nuwa_hf.cli", *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    deadline, logged = time.time() + 240, 0
    try:
        for line in process.stdout:  # the steps' log lines ({'loss': ...}) show the run is under way
            logged += "'loss'" in line
            if logged >= 3:
                break
            assert time.time() < deadline, "no training steps within 240 s"
        os.killpg(process.pid, getattr(signal, stop))
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + getattr(signal, stop), output
    assert output.count(f"{stop} received") == 1, output  # said once, by the training process

    checkpoints = sorted(path for path in out.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and is_complete_checkpoint(str(checkpoints[0])), output
    step = int(checkpoints[0].name.split("-")[1])
    assert step >= 3 and f"stopped by {stop} at step {step} of --max-steps 100000" in output
    assert max(step_losses(out, step)) == step  # the checkpoint holds the last step the run logged: nothing lost
    assert not (out / "model.safetensors").exists() and not (out / "training_summary.json").exists()
    assert not (out / "_incomplete_checkpoints").exists()

    # the same command (here with the end moved close) resumes from that step ...
    finish = [*finetune_argv(tiny_model_folder, data, out, max_steps=step + 2), *options]
    assert cli(finish) == 0
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["resumed_from"].endswith(f"checkpoint-{step}") and summary["global_step"] == step + 2
    # ... and ends where a run that was never stopped ends
    reference = tmp_path / "reference"
    assert cli([*finetune_argv(tiny_model_folder, data, reference, max_steps=step + 2), *options]) == 0
    for name in (out, reference):  # --save-steps 1000: the final step's checkpoint is the end of training's
        assert is_complete_checkpoint(str(name / f"checkpoint-{step + 2}"))
    expected, resumed = step_losses(reference, step + 2), step_losses(out, step + 2)
    assert sorted(resumed) == sorted(expected) == list(range(1, step + 3))
    for number in expected:
        assert abs(resumed[number] - expected[number]) <= 1e-4, (number, resumed[number], expected[number])


def start_torchrun(tiny_model_folder, data, out, options):
    """A 2-process (gloo) fine-tuning run under torchrun, started in its own session as from a terminal; returns the
    launcher once three steps have been logged, and the output read so far."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from nuwa_training_support import REPO

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).parent / "torchrun")
    argv = [*finetune_argv(tiny_model_folder, data, out, max_steps=100000)[1:], *options]
    command = [torchrun, "--standalone", "--nproc_per_node", "2", str(REPO / "examples" / "train_nuwa.py"), *argv]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)
    deadline, logged, lines = time.time() + 240, 0, []
    for line in launcher.stdout:
        lines.append(line)
        logged += "'loss'" in line
        if logged >= 3:
            break
        assert time.time() < deadline, "no training steps within 240 s"
    return launcher, "".join(lines)


@pytest.mark.slow
def test_ctrl_c_under_torchrun_saves_one_checkpoint_of_every_process_and_the_same_command_resumes(
        tiny_model_folder, tmp_path):
    """Two DDP processes (gloo): Ctrl-C to torchrun (which passes SIGINT on to both), or SIGTERM to one worker only,
    stops both at the same step with one complete checkpoint holding both processes' state; the same torchrun
    command resumes from it."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from nuwa_hf.training import is_complete_checkpoint
    from nuwa_training_support import REPO, rank_pid

    data = write_user_folder(tmp_path / "pictures")
    options = ["--lr-scheduler", "constant", "--warmup-ratio", "0", "--logging-steps", "1", "--save-steps", "1000"]
    for case in ("ctrl-c", "one worker"):
        out = tmp_path / case.replace(" ", "-")
        launcher, output = start_torchrun(tiny_model_folder, data, out, options)
        try:
            if case == "ctrl-c":
                os.kill(launcher.pid, signal.SIGINT)
            else:
                os.kill(rank_pid(launcher.pid, 1), signal.SIGTERM)  # a scheduler stopping one process
            output += launcher.communicate(timeout=120)[0]
        finally:
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait()
        stop = "SIGINT" if case == "ctrl-c" else "SIGTERM"
        checkpoints = sorted(out.glob("checkpoint-*"))
        assert len(checkpoints) == 1 and is_complete_checkpoint(str(checkpoints[0])), output[-4000:]
        step = int(checkpoints[0].name.split("-")[1])
        assert (checkpoints[0] / "rng_state_0.pth").is_file() and (checkpoints[0] / "rng_state_1.pth").is_file()
        assert step >= 3 and max(step_losses(out, step)) == step, output[-4000:]  # nothing trained was lost
        assert output.count(f"stopped by {stop} at step {step} of --max-steps 100000") == 1, output[-4000:]
        if case == "one worker":  # rank 0 was not signalled: it stopped because rank 1 was
            assert output.count("SIGTERM received:") == 1 and "SIGTERM received by another process" in output
        else:  # torchrun passed the SIGINT on to both workers
            assert output.count("SIGINT received:") == 2
        assert not (out / "model.safetensors").exists() and not (out / "training_summary.json").exists()

    # the same command, the end moved close, resumes from the checkpoint
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    argv = [*finetune_argv(tiny_model_folder, data, out, max_steps=step + 1)[1:], *options]
    result = subprocess.run([str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2",
                             str(REPO / "examples" / "train_nuwa.py"), *argv], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["resumed_from"].endswith(f"checkpoint-{step}") and summary["global_step"] == step + 1
    assert summary["processes"] == 2


def test_pushing_a_finetuning_run_folder_shares_the_model_and_not_the_training_state(tiny_model_folder, tmp_path):
    """`nuwa-hf push RUN_FOLDER repo` (the run folder holds the final model beside checkpoint-N/ folders of optimizer,
    scheduler and RNG pickles) uploads the model only, says what it left out, and the repository loads back into a
    pipeline that reads the user's caption words."""
    import os
    import subprocess
    import sys

    from nuwa_hf.cli import main as cli
    from nuwa_training_support import REPO
    from support.local_hub_server import LocalHubServer

    out = tmp_path / "finetuned"
    assert cli(finetune_argv(tiny_model_folder, write_user_folder(tmp_path / "pictures"), out)) == 0
    assert (out / "checkpoint-1" / "optimizer.pt").is_file()
    with LocalHubServer(token="hf_test", max_seconds=300) as hub:
        env = dict(os.environ, HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.url, HF_TOKEN="hf_test", HF_HUB_DISABLE_XET="1",
                   OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf_home"),
                   PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
        pushed = subprocess.run([sys.executable, "-m", "nuwa_hf.cli", "push", str(out), "tester/cats"], env=env,
                                capture_output=True, text=True, timeout=300)
        assert pushed.returncode == 0, pushed.stderr
        assert "left out: checkpoint-1/, checkpoint-2/" in pushed.stderr
        uploaded = set(hub.files("tester/cats"))
        assert {"config.json", "model.safetensors", "tokenizer_config.json", "processor_config.json"} <= uploaded
        assert not any(name.startswith(("checkpoint-", "_")) or name.endswith((".pt", ".pth", ".bin"))
                       for name in uploaded), sorted(uploaded)

        load = ("import nuwa_hf; from transformers import pipeline; "
                "image = pipeline('nuwa-text-to-image', model='tester/cats')('a red cat', seed=0, strict=True); "
                "print('size', image.size)")
        loaded = subprocess.run([sys.executable, "-c", load], env=env, capture_output=True, text=True, timeout=300)
        assert loaded.returncode == 0 and "size (16, 16)" in loaded.stdout, loaded.stderr[-3000:]


def test_a_folder_of_split_folders_on_the_command_line_names_the_folder_to_give(tiny_model_folder, tmp_path, capsys):
    """datasets' layout with a train/ split: the command line has no split option, so the error names the path."""
    from nuwa_hf.cli import main as cli

    parent = tmp_path / "pictures"
    parent.mkdir()
    write_user_folder(parent / "train")
    assert cli(finetune_argv(tiny_model_folder, parent, tmp_path / "out")) == 2
    assert f"--train-data TASK={parent / 'train'}" in capsys.readouterr().err
