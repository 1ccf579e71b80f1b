"""Beyond one process: the training script under torchrun with 2 CPU processes (DDP over gloo).

Both ranks must train (each its own half of the batches), and the run must behave exactly as one process that
accumulates the same two batches per step (gradient_accumulation_steps=2, task blocks of 2): same per-step losses and
final weights within float tolerance (all-reduce sums in another order: 1e-4 on losses, 1e-4 on weights).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from nuwa_hf.training import main
from nuwa_training_support import REPO, tiny_run_args

TOLERANCE = 1e-4


def _losses(output_dir, step):
    state = json.loads((Path(output_dir) / f"checkpoint-{step}" / "trainer_state.json").read_text())
    return {entry["step"]: {k: v for k, v in entry.items() if k.startswith("loss")}
            for entry in state["log_history"] if "loss" in entry}


@pytest.mark.slow
def test_two_process_ddp_trains_both_ranks_like_one_process_with_accumulation(tmp_path, vqgan_folders):
    steps = 8
    ddp = tmp_path / "ddp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", str(REPO / "examples" / "train_nuwa.py"),
         *tiny_run_args(ddp, vqgan_folders, max_steps=steps, extra=("--batch-size", "2"))],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, "\n".join(l for l in result.stderr.splitlines() if "Error" in l or "error" in l)[-3000:]
    summary = json.loads((ddp / "training_summary.json").read_text())
    assert summary["processes"] == 2 and summary["global_step"] == steps
    per_rank = summary["visual_tokens_per_process"]
    assert len(per_rank) == 2 and min(per_rank) > 0  # both ranks trained
    assert (ddp / f"checkpoint-{steps}" / "rng_state_0.pth").is_file()
    assert (ddp / f"checkpoint-{steps}" / "rng_state_1.pth").is_file()

    single = tmp_path / "single"
    assert main(tiny_run_args(single, vqgan_folders, max_steps=steps, extra=(
        "--batch-size", "2", "--gradient-accumulation-steps", "2", "--task-block-size", "2"))) == 0
    single_summary = json.loads((single / "training_summary.json").read_text())
    assert single_summary["visual_tokens_per_process"] == [sum(per_rank)]  # the same batches, on one process

    expected, got = _losses(single, steps), _losses(ddp, steps)
    assert sorted(got) == sorted(expected) == list(range(1, steps + 1))
    for step in expected:  # the step loss and each task's own mean (summed over both ranks)
        assert got[step].keys() == expected[step].keys(), (step, got[step], expected[step])
        for key in expected[step]:
            assert abs(got[step][key] - expected[step][key]) <= TOLERANCE, (step, key, got[step], expected[step])
    a, b = load_file(str(single / "model.safetensors")), load_file(str(ddp / "model.safetensors"))
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= TOLERANCE, worst
