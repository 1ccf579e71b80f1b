"""Test-wide settings (no Hub access) and the tiny untrained model folder shared by the pipeline and CLI tests."""

import os
import shutil
import sys

import pytest
import torch

# tests/support/ (the loopback Hub server, the tiny model folder) is importable as `support` from every test folder.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_runtest_setup(item):
    """Tests marked ``cuda`` run on a CUDA device or in Triton's interpreter, else are skipped (support/cuda_mode.py)."""
    if item.get_closest_marker("cuda") is not None:
        from support.cuda_mode import MODE, SKIP_REASON

        if MODE is None:
            pytest.skip(SKIP_REASON)


@pytest.fixture
def single_threaded_torch():
    """One torch thread for the test, restored afterwards. Tiny tensors gain little from a second thread, and on a
    shared machine two OpenMP threads mostly wait on each other. Folders of tiny-model tests request it from an
    autouse fixture of their conftest."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory):
    """NUWA + VQ-GAN + VQ-GAN-Seg + processor, untrained: 16x16 pixels -> 4x4 tokens, 3 frames (at most 48 tokens per
    generation). Built once per test session."""
    import nuwa_hf  # noqa: F401  (registers the model)
    from support.tiny_model_folder import save_untrained_tiny_model

    return str(save_untrained_tiny_model(tmp_path_factory.mktemp("nuwa") / "tiny", image_size=16, grid_size=4,
                                         max_frames=3, seed=0))


@pytest.fixture(scope="module")
def pipes(tiny_model_folder):
    """``pipes(task)``: the tiny folder's pipeline for ``task``, built on first use and kept for the module."""
    from transformers import pipeline

    cache = {}

    def get(task):
        if task not in cache:
            cache[task] = pipeline(task, model=tiny_model_folder)
            cache[task].set_progress_bar_config(disable=True)
        return cache[task]

    return get


def write_legacy_layout(folder, target) -> str:
    """Rewrite a current model folder in the old layout (nuwa-hf <= 0.1): the VQ-GANs out of the model into vqgan/ and
    vqgan_seg/ (diffusers folders), config.json without their sub-configs. What users' old checkpoints look like."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    from nuwa_hf.models.nuwa import NuwaForConditionalGeneration

    folder, target = Path(folder), Path(target)
    shutil.copytree(folder, target)
    model = NuwaForConditionalGeneration.from_pretrained(folder)
    for module, subfolder in ((model.vqgan, "vqgan"), (model.sketch_vqgan, "vqgan_seg")):
        if module is not None:
            module.save_pretrained(target / subfolder, safe_serialization=True)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith(("model.vqgan.", "model.sketch_vqgan."))},
              target / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config.pop("vqgan_config"), config.pop("sketch_vqgan_config")
    (target / "config.json").write_text(json.dumps(config))
    (target / "checksums.json").unlink()  # old folders had no checksum manifest
    return str(target)


def _tiny_folder_without(name, tmp_path_factory, **kwargs):
    from support.tiny_model_folder import save_untrained_tiny_model

    return str(save_untrained_tiny_model(tmp_path_factory.mktemp("nuwa") / f"no-{name}", image_size=16, grid_size=4,
                                         max_frames=3, seed=0, **kwargs))


@pytest.fixture(scope="session")
def folder_without_vqgan(tmp_path_factory):
    """A model folder whose model has no VQ-GAN (config.vqgan_config is None)."""
    return _tiny_folder_without("vqgan", tmp_path_factory, with_vqgan=False)


@pytest.fixture(scope="session")
def folder_without_sketch_vqgan(tmp_path_factory):
    """A model folder whose model has a VQ-GAN but no sketch VQ-GAN."""
    return _tiny_folder_without("sketch-vqgan", tmp_path_factory, with_sketch_vqgan=False)


@pytest.fixture(scope="session")
def legacy_model_folder(tiny_model_folder, tmp_path_factory):
    """The tiny model folder in the old layout (VQ-GANs in vqgan/ and vqgan_seg/)."""
    return write_legacy_layout(tiny_model_folder, tmp_path_factory.mktemp("nuwa") / "legacy")
