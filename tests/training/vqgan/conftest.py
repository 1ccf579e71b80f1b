"""Visual-tokenizer tests run single-threaded: tiny convolutions gain little from a second thread, and on a shared
machine two OpenMP threads mostly wait on each other."""

import pytest


@pytest.fixture(autouse=True)
def one_thread(single_threaded_torch):
    yield
