"""Say what was not understood (issue 28): prompt words the model never saw and inputs resized by more than 2x are
warned about once per call; strict=True makes them errors."""

import logging

import numpy as np
import PIL.Image
import pytest
from transformers import pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf.processing.vocabulary import known_words, unknown_words


@pytest.fixture(scope="module")
def t2i(tiny_model_folder):
    pipe = pipeline("nuwa-text-to-image", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "nuwa_hf.pipelines"]


def test_unknown_words_are_named_once_per_call(t2i, caplog):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    t2i(["a photo of a cat", "a photo of a cat", "a red digit 3"], seed=0, batch_size=1)
    said = warnings_of(caplog)
    assert len(said) == 1 and "'photo'" in said[0] and "'cat'" in said[0] and "'red'" not in said[0]
    caplog.clear()
    t2i("a red digit 3", seed=0)
    assert warnings_of(caplog) == []


def test_strict_makes_them_errors(t2i):
    with pytest.raises(ValueError, match=r"never saw in training: 'purple'.*strict=True"):
        t2i("a purple 3", strict=True)
    with pytest.raises(TypeError, match="strict must be True or False"):
        t2i("a red 3", strict="yes")


def test_the_known_words_come_from_the_tokenizer(t2i):
    words = known_words(t2i.tokenizer)
    assert {"red", "digit", "moving"} <= set(words) and "purple" not in words
    assert unknown_words(t2i.tokenizer, "A RED digit, up then down!") == []
    assert unknown_words(t2i.tokenizer, "a purple 3 on a sofa") == ["purple", "sofa"]


@pytest.mark.parametrize("size, warned", [((1, 1), True), ((50, 20), True), ((5000, 5000), True), ((20, 30), False)])
def test_inputs_resized_more_than_twice_are_named_with_the_size_used(tiny_model_folder, caplog, size, warned):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    pipe = pipeline("nuwa-image-completion", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    pipe(PIL.Image.fromarray(np.zeros((size[1], size[0], 3), dtype=np.uint8)), seed=0)
    said = [m for m in warnings_of(caplog) if "resized" in m]
    assert bool(said) == warned
    if warned:
        assert f"{size[0]}x{size[1]} pixels" in said[0] and "16x16" in said[0]
        with pytest.raises(ValueError, match="resized to 16x16"):
            pipe(PIL.Image.fromarray(np.zeros((size[1], size[0], 3), dtype=np.uint8)), strict=True)
