"""Visual-tokenizer tests run single-threaded: tiny convolutions gain little from a second thread, and on a shared
machine two OpenMP threads mostly wait on each other."""

import pytest
import torch


@pytest.fixture(autouse=True)
def single_threaded_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
