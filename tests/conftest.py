"""Test-wide settings (no Hub access) and the tiny untrained model folder shared by the pipeline and CLI tests."""

import os
import shutil

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
    from nuwa_hf.pipelines.tiny_model_folder import save_untrained_tiny_model

    return str(save_untrained_tiny_model(tmp_path_factory.mktemp("nuwa") / "tiny", image_size=16, grid_size=4,
                                         max_frames=3, seed=0))


def _copy_without(folder, subfolder, tmp_path_factory):
    target = tmp_path_factory.mktemp("nuwa") / f"no-{subfolder}"
    shutil.copytree(folder, target)
    shutil.rmtree(target / subfolder)
    return str(target)


@pytest.fixture(scope="session")
def folder_without_vqgan(tiny_model_folder, tmp_path_factory):
    return _copy_without(tiny_model_folder, "vqgan", tmp_path_factory)


@pytest.fixture(scope="session")
def folder_without_sketch_vqgan(tiny_model_folder, tmp_path_factory):
    return _copy_without(tiny_model_folder, "vqgan_seg", tmp_path_factory)
