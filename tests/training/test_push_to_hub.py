"""push_to_hub through TrainingArguments: `train_nuwa.py --push-to-hub` uploads the final model folder (weights with
the VQ-GANs inside, processor) and the last checkpoint, never the staging or tokenizer-cache folders.

The Hub is the project's local Hub-compatible server (support.local_hub_server): the real huggingface_hub client talks
to it over HTTP, but it does not exercise the real Hub's LFS/Xet path for large files.
"""

import os
import subprocess
import sys

import pytest

from support.local_hub_server import LocalHubServer
from nuwa_training_support import REPO, tiny_run_args

TOKEN = "hf_training_test_token"


@pytest.mark.slow
def test_training_pushes_the_model_folder_and_the_last_checkpoint(tmp_path, vqgan_folders):
    output = tmp_path / "run"
    with LocalHubServer(token=TOKEN, max_seconds=300) as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN,
               "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        args = tiny_run_args(output, vqgan_folders, max_steps=2, extra=(
            "--tasks", "t2i,s2i", "--save-steps", "1", "--push-to-hub", "--hub-model-id", "tester/nuwa-tiny",
            "--hub-strategy", "checkpoint"))
        result = subprocess.run([sys.executable, str(REPO / "examples" / "train_nuwa.py"), *args], env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        files = hub.files("tester/nuwa-tiny")

    for name in ("config.json", "model.safetensors", "processor_config.json", "tokenizer.json",
                 "last-checkpoint/model.safetensors", "last-checkpoint/checkpoint_complete.json"):
        assert name in files, (name, sorted(files))
    assert files["model.safetensors"] == (output / "model.safetensors").read_bytes()
    assert not [p for p in files if p.startswith("_") or p.startswith("checkpoint-")], sorted(files)
