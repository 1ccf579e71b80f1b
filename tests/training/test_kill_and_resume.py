"""Faults: training killed with SIGKILL mid-way resumes from the last complete checkpoint and ends in the state of an
uninterrupted run (same step count, same per-step losses and weights within the stated tolerance).

Tolerance: per-step logged losses within 1e-4 and every weight within 1e-5 (absolute). Data order, condition dropout
and the optimizer, scheduler and RNG states are all restored, so the two runs should agree up to float noise.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from nuwa_hf.training import is_complete_checkpoint, main
from nuwa_training_support import REPO, tiny_run_args

LOSS_TOLERANCE = 1e-4
WEIGHT_TOLERANCE = 1e-5


def step_losses(output_dir):
    state = json.loads((Path(output_dir) / "checkpoint-12" / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, vqgan_folders):
    reference = tmp_path / "uninterrupted"
    assert main(tiny_run_args(reference, vqgan_folders)) == 0

    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "train_nuwa.py"), *tiny_run_args(killed, vqgan_folders)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    deadline = time.time() + 240
    try:
        while not is_complete_checkpoint(str(killed / "checkpoint-4")):
            assert process.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline, "no checkpoint-4 within 240 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)  # mid-way: somewhere after step 4, before the end
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists() and not (killed / "checkpoint-12").exists()

    assert main(tiny_run_args(killed, vqgan_folders)) == 0  # --resume auto
    summary = json.loads((killed / "training_summary.json").read_text())
    assert summary["resumed_from"] is not None and summary["global_step"] == 12
    assert int(summary["resumed_from"].rsplit("-", 1)[1]) >= 4

    expected, resumed = step_losses(reference), step_losses(killed)
    assert sorted(resumed) == sorted(expected) == list(range(1, 13))
    for step in expected:
        assert abs(resumed[step] - expected[step]) <= LOSS_TOLERANCE, (step, resumed[step], expected[step])
    assert expected[12] < expected[1]  # and it did train

    a, b = load_file(str(reference / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= WEIGHT_TOLERANCE, worst
    # The final folder is a usable model: config, weights (VQ-GANs inside), tokenizer.
    for name in ("config.json", "processor_config.json", "tokenizer_config.json"):
        assert (killed / name).is_file(), name
    assert any(key.startswith("model.vqgan.") for key in b) and any(key.startswith("model.sketch_vqgan.") for key in b)
    from nuwa_hf import NuwaForConditionalGeneration
    from nuwa_hf.processing import NuwaProcessor

    processor = NuwaProcessor.from_pretrained(str(killed))
    model = NuwaForConditionalGeneration.from_pretrained(str(killed))
    config = model.config  # the text tokenizer's special ids never leak into the visual ones
    assert config.bos_token_id == config.pad_token_id == config.decoder_start_token_id == config.visual_vocab_size
    prompt = processor(text=["a red digit 3 at the top"], return_tensors="pt")["input_ids"]
    tokens = model.sequences_to_grid(model.generate(input_ids=prompt, visual_grid=(1, 4, 4), do_sample=False), (1, 4, 4))
    assert processor.postprocess(model.decode_visual_tokens(tokens), output_type="pt").shape[-2:] == (16, 16)
    # ... and ships no pickle: the training arguments are JSON.
    assert not (killed / "training_args.bin").exists() and (killed / "training_args.json").is_file()

    # Fine-tuning from it (the paper's S2V stage), with the VQ-GANs and tokenizer found in the folder itself.
    finetuned = tmp_path / "finetuned"
    assert main(["--output-dir", str(finetuned), "--init-from", str(killed), "--tasks", "s2v", "--num-samples", "8",
                 "--image-size", "16", "--num-frames", "2", "--batch-size", "4", "--max-steps", "2",
                 "--max-text-length", "12", "--no-progress"]) == 0
    summary = json.loads((finetuned / "training_summary.json").read_text())
    assert summary["grids"]["s2v"] == {"visual_grid": [2, 4, 4], "sketch_grid": [2, 4, 4]}
    assert (finetuned / "processor_config.json").is_file()
    assert NuwaForConditionalGeneration.from_pretrained(str(finetuned)).sketch_vqgan is not None
