"""Teacher-forced condition gains (nuwa_hf.evaluation.condition_gain): the arithmetic, the swaps, and a model that
ignores its condition scoring exactly zero."""

import numpy as np
import pytest
import torch

from nuwa_hf.evaluation import condition_gain as cg


def test_summary_is_the_mean_swap_cost_and_the_share_of_true_wins():
    true = torch.tensor([1.0, 5.0])
    swapped = torch.tensor([[3.0, 2.0], [4.0, 9.0]])  # example 0 wins both; example 1 loses to the first swap
    row = cg._summary(true, swapped)
    assert row["gain"] == pytest.approx(((2 + 1) / 2 + (-1 + 4) / 2) / 2)
    assert row["true_lowest"] == 0.5 and row["chance"] == pytest.approx(1 / 3, abs=1e-3) and row["examples"] == 2


def test_removing_a_shape_paints_the_surrounding_background_over_it():
    sketch = np.zeros((8, 8), dtype=np.int64) + 1  # grass
    sketch[:2] = 0  # some brick
    sketch[3:6, 3:6] = 4  # a square
    out = cg._background_under(sketch, np.isin(sketch, cg.SHAPE_CLASSES))
    assert not np.isin(out, cg.SHAPE_CLASSES).any() and (out[3:6, 3:6] == 1).all() and (out[:2] == 0).all()


@pytest.fixture(scope="module")
def tiny(tiny_model_folder):
    from nuwa_hf import NuwaForConditionalGeneration, NuwaProcessor

    return NuwaForConditionalGeneration.from_pretrained(tiny_model_folder), NuwaProcessor.from_pretrained(tiny_model_folder)


def test_report_has_every_attribute_with_its_chance(tiny):
    model, processor = tiny
    report = cg.condition_gains(model, processor, ["t2i", "t2v", "s2i"], num_examples=6, image_size=16, num_frames=3)
    assert set(report["t2i"]) == {"digit", "colour", "seconds"}
    assert set(report["t2v"]) == {"digit", "colour", "motion", "seconds"}
    assert set(report["s2i"]) == {"shape_class", "shape_present", "seconds"}
    assert report["t2i"]["digit"]["chance"] == 0.1 and report["t2v"]["motion"]["chance"] == 0.25
    assert report["s2i"]["shape_class"]["chance"] == pytest.approx(1 / 3, abs=1e-3)
    assert all(np.isfinite(row["gain"]) for task in report.values() for row in task.values() if isinstance(row, dict))
    assert "t2v: digit" in cg.format_gains(report)


def test_a_model_that_ignores_its_condition_gains_nothing(tiny):
    model, processor = tiny
    deaf = type(model).from_pretrained(model.name_or_path)
    with torch.no_grad():
        for layer in deaf.model.decoder.layers:  # no cross-attention output: the condition cannot reach the tokens
            layer.cross_attn.out_proj.weight.zero_()
            layer.cross_attn.out_proj.bias.zero_()
    listening = cg.condition_gains(model, processor, ["t2i"], num_examples=6, image_size=16)["t2i"]
    ignored = cg.condition_gains(deaf, processor, ["t2i"], num_examples=6, image_size=16)["t2i"]
    assert ignored["digit"]["gain"] == 0 and ignored["colour"]["gain"] == 0 and ignored["digit"]["true_lowest"] == 0
    assert listening["digit"]["gain"] != 0


def test_unknown_task_is_named():
    with pytest.raises(ValueError, match="no condition gain for task 'i2i'"):
        cg.condition_gains(None, None, ["i2i"])
