"""Fixtures of the training tests: tiny tokenised task datasets, tiny random VQ-GAN folders."""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import pytest
import torch

from nuwa_training_support import make_token_dataset


@pytest.fixture
def token_datasets():
    return {
        "t2i": make_token_dataset("t2i", 24, seed=1),
        "v2v": make_token_dataset("v2v", 12, seed=2),
        "s2i": make_token_dataset("s2i", 16, seed=3),
    }


@pytest.fixture(scope="session")
def vqgan_folders(tmp_path_factory):
    """Randomly initialised tiny VQ-GANs (16x16 frames -> 4x4 tokens), saved as users would pass them to the CLI."""
    from nuwa_hf.data import NUM_SCENE_CLASSES
    from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN

    root = tmp_path_factory.mktemp("vqgans")
    torch.manual_seed(0)
    NuwaVQGAN.tiny(image_size=16, grid_size=4, codebook_size=32, base_channels=16, max_channels=32).save_pretrained(
        root / "vqgan"
    )
    NuwaSegVQGAN.tiny(
        num_classes=NUM_SCENE_CLASSES, image_size=16, grid_size=4, codebook_size=16, base_channels=16, max_channels=32
    ).save_pretrained(root / "sketch_vqgan")
    return {"vqgan": str(root / "vqgan"), "sketch_vqgan": str(root / "sketch_vqgan")}
