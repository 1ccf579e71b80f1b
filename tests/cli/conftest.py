"""The command-line tests run on the session's tiny untrained model folder (16x16 pixels, 4x4 tokens, 3 frames)."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def cli_model_folder(tiny_model_folder):
    return tiny_model_folder  # the same folder the pipeline tests use (tests/conftest.py), built once


@pytest.fixture(scope="session")
def cli_folder_without_vqgan(folder_without_vqgan):
    return folder_without_vqgan


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
