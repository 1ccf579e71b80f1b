"""examples/train_vqgan.py runs end to end on generated data and on a folder of pictures."""

import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from PIL import Image

from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "train_vqgan.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_vqgan_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A micro model: 16x16 pictures -> 4x4 tokens, 32 codes, 16-32 channels; no evaluation during the few steps.
MICRO = ["--image-size", "16", "--grid-size", "4", "--codebook-size", "32", "--base-channels", "16",
         "--max-channels", "32", "--eval-every", "0"]


def test_example_trains_a_vqgan_on_a_folder_of_pictures(example, tmp_path):
    pictures = tmp_path / "pictures" / "nested"
    pictures.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(pictures / f"{index}.png")
    output = tmp_path / "run"
    metrics = example.main(["--data-dir", str(tmp_path / "pictures"), *MICRO, "--steps", "3", "--batch-size", "4",
                            "--save-every", "2", "--output-dir", str(output)])
    assert metrics["step"] == 3 and "psnr" in metrics and "perplexity" in metrics
    model = NuwaVQGAN.from_pretrained(output)
    assert model.token_grid_size(16, 16) == (4, 4)
    assert (output / "checkpoint-2").is_dir()
    assert Image.open(output / "reconstructions.png").size == (16 * 1, 16 * 2)
    assert json.loads((output / "training_log.json").read_text())["history"]


def test_example_trains_a_sketch_vqgan_on_generated_maps(example, tmp_path):
    metrics = example.main(["--model", "seg", "--synthetic", "40", *MICRO, "--steps", "2", "--batch-size", "8",
                            "--save-every", "0", "--output-dir", str(tmp_path)])
    assert "pixel_accuracy" in metrics and "frequency_weighted_iou" in metrics
    assert NuwaSegVQGAN.from_pretrained(tmp_path).num_classes == 4


def test_example_rejects_missing_data_folder(example, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        example.main(["--data-dir", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "run")])
