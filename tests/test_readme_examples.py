"""The README's Python examples run as written (issue 28: docs match behaviour), in order, in one namespace, as a
reader pasting them into one session would. The only names given beforehand are what the prose asks the reader to
bring: ``my_image`` (their own picture) and ``image`` (any picture)."""

import os
import re
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def python_blocks():
    text = (REPO / "README.md").read_text()
    return [(text[:m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


def test_the_readme_has_examples():
    assert len(python_blocks()) >= 5


def test_every_readme_example_runs(monkeypatch):
    monkeypatch.chdir(REPO)  # the examples name checkpoints/nuwa-tiny relative to the repository
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    picture = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    namespace = {"my_image": picture, "image": picture}
    try:
        for line, code in python_blocks():
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as error:  # name the block that failed
                pytest.fail(f"the README example at line {line} fails: {type(error).__name__}: {error}")
    finally:
        torch.set_num_threads(previous)
    assert isinstance(namespace["pictures"][0], PIL.Image.Image)
    assert namespace["video_tokens"].shape == (2, 4, 8, 8)
