"""A tiny untrained NUWA model folder for the command-line tests (16x16 pixels, 4x4 tokens, 3 frames)."""

import os
import shutil

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def cli_model_folder(tmp_path_factory):
    import nuwa_hf  # noqa: F401
    from nuwa_hf.pipelines.tiny_model_folder import save_untrained_tiny_model

    return str(save_untrained_tiny_model(tmp_path_factory.mktemp("cli") / "tiny", image_size=16, grid_size=4,
                                         max_frames=3, seed=0))


@pytest.fixture(scope="session")
def cli_folder_without_vqgan(cli_model_folder, tmp_path_factory):
    target = tmp_path_factory.mktemp("cli") / "no-vqgan"
    shutil.copytree(cli_model_folder, target)
    shutil.rmtree(target / "vqgan")
    return str(target)


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
