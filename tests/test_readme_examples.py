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
    # Image completion: both calls return the input's own pixels outside the region and its 2-pixel seam, the rows of
    # the regenerated ring (rows 12-15 of the 32-pixel picture) included; the region itself differs between them.
    completed, as_given = (np.asarray(namespace[name]) for name in ("completed", "as_given"))
    assert np.array_equal(completed[:14], np.asarray(picture)[:14]) and np.array_equal(as_given[:14], completed[:14])
    assert not np.array_equal(completed[16:], as_given[16:])


def test_the_model_cards_example_runs_without_a_warning(monkeypatch, caplog):
    """The shipped card's "How to use" block (the template's, model_cards/nuwa-tiny.md) is the first thing a Hub
    visitor runs: it runs as written on the shipped folder, and its prompts are ones the model knows (no notice)."""
    import logging

    text = (REPO / "checkpoints" / "nuwa-tiny" / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    template = (REPO / "model_cards" / "nuwa-tiny.md").read_text(encoding="utf-8")
    assert blocks[0] == re.findall(r"```python\n(.*?)```", template, re.S)[0].replace(
        "{{ repo_path }}", "checkpoints/nuwa-tiny")  # the rendered block is the template's
    monkeypatch.chdir(REPO)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace = {}
    try:
        with caplog.at_level(logging.WARNING, logger="nuwa_hf"):
            exec(compile(blocks[0], "checkpoints/nuwa-tiny/README.md", "exec"), namespace)
    finally:
        torch.set_num_threads(previous)
    assert isinstance(namespace["image"], PIL.Image.Image) and namespace["image"].size == (32, 32)
    assert len(namespace["frames"]) == 6 and all(isinstance(f, PIL.Image.Image) for f in namespace["frames"])
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("nuwa_hf")]
