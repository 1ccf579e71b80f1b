"""The command-line tests run on the session's tiny untrained model folder (16x16 pixels, 4x4 tokens, 3 frames)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def cli_model_folder(tiny_model_folder):
    return tiny_model_folder  # the same folder the pipeline tests use (tests/conftest.py), built once


@pytest.fixture(scope="session")
def cli_folder_without_vqgan(folder_without_vqgan):
    return folder_without_vqgan


@pytest.fixture(autouse=True)
def one_thread(single_threaded_torch):
    yield
