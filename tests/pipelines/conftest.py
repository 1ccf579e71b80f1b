"""Pipeline tests use the session's tiny model folder (tests/conftest.py: ``tiny_model_folder``). Tiny tensors run much faster on one
thread (and the machine is shared), so the pipeline tests use one thread and restore the setting afterwards.
"""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
