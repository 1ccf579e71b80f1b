"""Pipeline tests use the session's tiny model folder (tests/conftest.py: ``tiny_model_folder``). Tiny tensors run much faster on one
thread (and the machine is shared), so the pipeline tests use one thread and restore the setting afterwards.
"""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def one_thread(single_threaded_torch):
    yield
