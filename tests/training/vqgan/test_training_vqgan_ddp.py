"""VQ-GAN training on two processes (torchrun, gloo on CPU): each rank trains on its own shard, weights stay equal."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow
def test_two_processes_train_on_different_data_and_end_with_identical_weights(tmp_path):
    environment = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    output_dir, report_dir = tmp_path / "run", tmp_path / "reports"
    report_dir.mkdir()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        str(output_dir),
        str(report_dir),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert completed.returncode == 0, completed.stderr[-3000:]
    reports = [json.loads((report_dir / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    assert [report["rank"] for report in reports] == [0, 1]
    # Gradients and codebook restarts are synchronised: both ranks hold the same model ...
    assert reports[0]["weights"] == reports[1]["weights"]
    assert reports[0]["restarted"] == reports[1]["restarted"] and reports[0]["restarted"][0] > 0
    # ... although each saw its own batches (their local discriminator losses differ).
    assert reports[0]["discriminator_losses"][1:] != reports[1]["discriminator_losses"][1:]
    # Only one process wrote the checkpoint and the final model.
    assert sorted(p.name for p in output_dir.iterdir()) == [
        "checkpoint-2",
        "config.json",
        "diffusion_pytorch_model.safetensors",
        "training_log.json",
    ]
