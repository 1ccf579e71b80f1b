"""FSDP2 on CPU processes (gloo) through the training entry point, and sharded checkpoints across process counts.

What must hold (tolerances: per-step logged losses 1e-4, every weight 1e-5 absolute; reduce-scatter and all-reduce
sum in another order than one process, nothing else differs):

- 2 sharded processes (``torchrun ... train_nuwa.py --fsdp2``) accumulating 2 micro-batches train like 1 process
  accumulating 4 (the same global batch): the same per-step losses (mixed tasks, gradient clipping active, the same
  learning-rate schedule) and the same final weights; with activation checkpointing too;
- each process holds about half of the trainable parameters, gradients and AdamW moments (measured after the first
  optimizer step);
- a sharded checkpoint written by 2 processes resumes on 1, one written by 1 resumes on 2, and a run whose rank 1 is
  SIGKILLed mid-way resumes on two "nodes" (two torchrun launches of one process, c10d rendezvous on 127.0.0.1): all
  three end where the uninterrupted run ends;
- a sharded checkpoint consolidates, in one process, into the final model's weights;
- frozen sub-modules that are not layers (the VQ-GANs, should the model hold them) stay whole on every process.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from nuwa_hf.training import consolidate_sharded_checkpoint, is_complete_checkpoint, main
from nuwa_training_support import REPO, rank_pid, tiny_run_args

LOSS_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-5
STEPS = 8
TORCHRUN = str(Path(sys.executable).parent / "torchrun")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
# One optimizer step = 4 batches of 2 of one task: 2 processes x 2 accumulated micro-batches (the sharded path then
# defers its reduce-scatter to the second) == 1 process x 4 accumulated micro-batches.
TWO_PROCESSES = ("--gradient-accumulation-steps", "2", "--task-block-size", "4")
ONE_PROCESS = ("--gradient-accumulation-steps", "4", "--task-block-size", "4")


def run_args(output_dir, vqgan_folders, extra=TWO_PROCESSES):
    return tiny_run_args(output_dir, vqgan_folders, max_steps=STEPS, extra=("--batch-size", "2", "--fsdp2", *extra))


def torchrun_command(output_dir, vqgan_folders, extra=()):
    return [TORCHRUN, "--standalone", "--nproc_per_node", "2", str(REPO / "examples" / "train_nuwa.py"),
            *run_args(output_dir, vqgan_folders, (*TWO_PROCESSES, *extra))]


def two_node_commands(output_dir, vqgan_folders, port):
    """Two torchrun launches of one process each, meeting at a c10d rendezvous on 127.0.0.1 (as two machines
    would at the first one's address)."""
    return [[TORCHRUN, "--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d", "--rdzv_id", "nuwa-test",
             "--rdzv_endpoint", f"127.0.0.1:{port}", "--node_rank", str(node),
             str(REPO / "examples" / "train_nuwa.py"), *run_args(output_dir, vqgan_folders)] for node in (0, 1)]


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(output_dir, vqgan_folders, extra=()):
    result = subprocess.run(torchrun_command(output_dir, vqgan_folders, extra), env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]


def step_losses(output_dir):
    state = json.loads((Path(output_dir) / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    return {entry["step"]: {k: v for k, v in entry.items() if k.startswith("loss") or k == "learning_rate"}
            for entry in state["log_history"] if "loss" in entry}


def assert_same_run(expected_dir, got_dir):
    expected, got = step_losses(expected_dir), step_losses(got_dir)
    assert sorted(got) == sorted(expected) == list(range(1, STEPS + 1))
    for step in expected:
        assert got[step].keys() == expected[step].keys(), (step, got[step], expected[step])
        for key in expected[step]:
            assert abs(got[step][key] - expected[step][key]) <= LOSS_TOLERANCE, (step, key, got[step], expected[step])
    a = load_file(str(Path(expected_dir) / "model.safetensors"))
    b = load_file(str(Path(got_dir) / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= WEIGHT_TOLERANCE, worst


def resume_copy(checkpoint, run_dir):
    """A fresh run folder holding only ``checkpoint`` (and the run's caption tokenizer), to resume from."""
    run_dir.mkdir()
    shutil.copytree(checkpoint, run_dir / checkpoint.name)
    shutil.copytree(checkpoint.parent / "_caption_tokenizer", run_dir / "_caption_tokenizer")


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory, vqgan_folders):
    """The same 8 steps on 2 sharded processes and on 1 process (checkpoints at 4 and 8)."""
    root = tmp_path_factory.mktemp("fsdp2")
    two, one = root / "two_processes", root / "one_process"
    torchrun(two, vqgan_folders)
    assert main(run_args(one, vqgan_folders, ONE_PROCESS)) == 0
    return {"two": two, "one": one, "root": root}


@pytest.mark.slow
def test_two_sharded_processes_train_like_one_process(reference_runs):
    two, one = reference_runs["two"], reference_runs["one"]
    summary = json.loads((two / "training_summary.json").read_text())
    assert summary["processes"] == 2 and summary["global_step"] == STEPS
    assert min(summary["visual_tokens_per_process"]) > 0
    single = json.loads((one / "training_summary.json").read_text())
    assert single["visual_tokens_per_process"] == [sum(summary["visual_tokens_per_process"])]

    assert_same_run(one, two)
    losses = step_losses(two)
    assert {key for entry in losses.values() for key in entry} >= {"loss_t2i", "loss_v2v", "loss_s2i"}  # mixed tasks
    state = json.loads((two / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    assert max(e["grad_norm"] for e in state["log_history"] if "grad_norm" in e) > 1.0  # clipping at 1.0 acted

    # Half of everything that trains, on each process (the dim-0 shards of odd sizes differ by a row).
    whole, halves = single["elements_per_process"][0], summary["elements_per_process"]
    assert len(halves) == 2
    for key in ("trainable_parameters", "gradients", "optimizer_state"):
        assert sum(h[key] for h in halves) == whole[key], key
        for h in halves:
            assert abs(h[key] / whole[key] - 0.5) < 0.03, (key, h[key], whole[key])
    assert whole["optimizer_state"] == 2 * whole["gradients"]  # AdamW: two moments per trained element


@pytest.mark.slow
def test_sharded_checkpoints_resume_on_another_number_of_processes(reference_runs, vqgan_folders):
    two, one, root = reference_runs["two"], reference_runs["one"], reference_runs["root"]
    for run in (two, one):
        checkpoint = run / "checkpoint-4"
        assert is_complete_checkpoint(str(checkpoint))
        assert (checkpoint / "sharded_state" / ".metadata").is_file()
        assert not (checkpoint / "model.safetensors").exists() and not (checkpoint / "optimizer.pt").exists()
    assert sorted(p.name for p in (two / "checkpoint-4" / "sharded_state").glob("*.distcp")) == [
        "__0_0.distcp", "__1_0.distcp"]  # each rank wrote its own shards

    two_to_one = root / "two_to_one"
    resume_copy(two / "checkpoint-4", two_to_one)
    assert main(run_args(two_to_one, vqgan_folders, ONE_PROCESS)) == 0
    assert json.loads((two_to_one / "training_summary.json").read_text())["resumed_from"].endswith("checkpoint-4")
    assert_same_run(two, two_to_one)

    one_to_two = root / "one_to_two"
    resume_copy(one / "checkpoint-4", one_to_two)
    torchrun(one_to_two, vqgan_folders, extra=("--activation-checkpointing",))  # recomputes, same numbers
    summary = json.loads((one_to_two / "training_summary.json").read_text())
    assert summary["resumed_from"].endswith("checkpoint-4") and summary["processes"] == 2
    assert_same_run(one, one_to_two)

    # Export: the sharded checkpoint of the last step, consolidated in this (non-distributed) process.
    exported = consolidate_sharded_checkpoint(str(two / f"checkpoint-{STEPS}"), str(root / "exported"))
    a, b = load_file(str(Path(exported) / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


@pytest.mark.slow
def test_sigkill_of_one_rank_then_resume_matches_the_uninterrupted_run(reference_runs, vqgan_folders):
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the rank's process")
    killed = reference_runs["root"] / "killed"
    launcher = subprocess.Popen(torchrun_command(killed, vqgan_folders), env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while not is_complete_checkpoint(str(killed / "checkpoint-4")):
            assert launcher.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline, "no checkpoint-4 within 240 s"
            time.sleep(0.02)
        os.kill(rank_pid(launcher.pid, 1), signal.SIGKILL)  # rank 1 only; torchrun then stops rank 0
        launcher.wait(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode != 0
    assert not (killed / "model.safetensors").exists()

    # Resume (--resume auto: the newest complete checkpoint) as two "nodes": two launches, one process each.
    nodes = [subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for command in two_node_commands(killed, vqgan_folders, free_port())]
    for node in nodes:
        _, stderr = node.communicate(timeout=300)
        assert node.returncode == 0, stderr[-4000:]
    summary = json.loads((killed / "training_summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["global_step"] == STEPS and summary["processes"] == 2
    assert is_complete_checkpoint(str(killed / f"checkpoint-{STEPS}"))  # the two-node run checkpointed too
    assert_same_run(reference_runs["two"], killed)


@pytest.mark.slow
def test_frozen_sub_modules_stay_whole_and_the_rest_is_halved(tmp_path):
    """shard_nuwa on a tiny NUWA that also holds a frozen conv stack, 2 processes, one training step."""
    result = subprocess.run(
        [TORCHRUN, "--standalone", "--nproc_per_node", "2", str(Path(__file__).parent / "fsdp2_shard_worker.py"),
         str(tmp_path)], env=ENV, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for report in ranks:
        assert report["plan"]["layer_units"] == ["model.encoder.layers.0", "model.decoder.layers.0"]
        assert all(name.startswith("frozen_tokenizer.") for name in report["plan"]["replicated"])
        assert len(report["plan"]["replicated"]) == 4
        assert report["frozen_are_plain_tensors"] and report["frozen_have_no_grad"]
        assert report["trainable_are_dtensors"]
        assert report["layer_weight_local_rows"] * 2 == report["layer_weight_rows"]
    assert ranks[0]["loss"] == ranks[1]["loss"]
    trainable = ranks[0]["full_parameters"] - ranks[0]["frozen_elements"]
    assert sum(r["trainable_parameters"] for r in ranks) == trainable
    for report in ranks:
        assert abs(report["trainable_parameters"] / trainable - 0.5) < 0.03
        # the frozen module is held whole by each rank, on top of its half of the rest
        assert report["parameters"] == report["trainable_parameters"] + report["frozen_elements"]
        assert report["optimizer_state"] == 2 * report["gradients"] > 0
