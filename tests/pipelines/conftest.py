"""A tiny untrained NUWA model folder (NUWA + VQ-GAN + VQ-GAN-Seg + processor), built once per test session.

16x16 pixels -> 4x4 tokens, 3 frames: every generation is at most 48 tokens. Tiny tensors run much faster on one
thread (and the machine is shared), so the pipeline tests use one thread and restore the setting afterwards.
"""

import os
import shutil

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory):
    import nuwa_hf  # noqa: F401  (registers the model)
    from nuwa_hf.pipelines.tiny_model_folder import save_untrained_tiny_model

    return str(save_untrained_tiny_model(tmp_path_factory.mktemp("nuwa") / "tiny", image_size=16, grid_size=4,
                                         max_frames=3, seed=0))


@pytest.fixture(scope="session")
def folder_without_vqgan(tiny_model_folder, tmp_path_factory):
    target = tmp_path_factory.mktemp("nuwa") / "no-vqgan"
    shutil.copytree(tiny_model_folder, target)
    shutil.rmtree(target / "vqgan")
    return str(target)


@pytest.fixture(scope="session")
def folder_without_sketch_vqgan(tiny_model_folder, tmp_path_factory):
    target = tmp_path_factory.mktemp("nuwa") / "no-vqgan-seg"
    shutil.copytree(tiny_model_folder, target)
    shutil.rmtree(target / "vqgan_seg")
    return str(target)


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
