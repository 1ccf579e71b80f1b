"""The CUDA-graph decoding path (decoding_nuwa.NuwaCudaGraphStep in NUWA's loop), everything a CPU can check: the
static step over fixed buffers gives the eager step's tokens, its inputs are written in place with fixed shapes, the
switch and the automatic choice, and the logged eager fallback when capture fails. The captured graph itself is
checked on a GPU (tests/gpu/test_cuda_graph_decoding.py)."""

import logging

import pytest
import torch

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.models.nuwa.decoding_nuwa import NuwaCudaGraphStep, NuwaDecodingCache

TEXT = torch.tensor([[5, 17, 99, 3], [8, 2, 400, 11]])
SKETCH = torch.randint(0, 32, (2, 2, 3, 3), generator=torch.Generator().manual_seed(0))


@pytest.fixture
def uncaptured(monkeypatch):
    """Capture as a no-op that records its call: the loop then runs the static step eagerly over the same buffers
    (what a replay runs, on the CPU)."""
    captures = []
    monkeypatch.setattr(NuwaCudaGraphStep, "capture", lambda self, tokens: captures.append(self))
    return captures


CASES = {
    "greedy": dict(input_ids=TEXT, do_sample=False),
    "sampled, guidance in the same rows": dict(input_ids=TEXT, do_sample=True, top_k=16, guidance_scale=3.0,
                                               num_return_sequences=2),
    "sketch, guidance apart": dict(sketch_tokens=SKETCH, do_sample=True, top_p=0.9, guidance_scale=2.0),
    "whole-grid window": dict(input_ids=TEXT, do_sample=True, top_k=16, whole=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_static_step_gives_the_eager_tokens(case, uncaptured):
    kwargs = dict(CASES[case])
    model = NuwaForConditionalGeneration(NuwaConfig.tiny(video_extent=(None, None, None))).eval() \
        if kwargs.pop("whole", False) else None
    if model is None:
        torch.manual_seed(0)
        model = NuwaForConditionalGeneration(NuwaConfig.tiny()).eval()
    out = {}
    for graph in (True, False):
        torch.manual_seed(4)
        out[graph] = model.generate(visual_grid=(2, 3, 4), cuda_graph=graph, return_dict_in_generate=True,
                                    output_logits=True, **kwargs)
    assert len(uncaptured) == 1  # one capture per call, for the first step after the prefill
    assert torch.equal(out[True].sequences, out[False].sequences)
    torch.testing.assert_close(torch.stack(out[True].logits), torch.stack(out[False].logits), atol=1e-5, rtol=1e-5)


def test_known_tokens_and_a_prefix_through_the_static_step(model, uncaptured):
    grid = (1, 6, 6)
    known = torch.randint(0, 64, (2, *grid), generator=torch.Generator().manual_seed(4))
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[0, 2:4, 1:5] = True
    out = {}
    for graph in (True, False):
        torch.manual_seed(1)
        out[graph] = model.generate(input_ids=TEXT, visual_grid=grid, known_tokens=known, generate_mask=mask,
                                    do_sample=True, guidance_scale=2.0, cuda_graph=graph)
    assert torch.equal(out[True], out[False])


def test_the_graph_inputs_are_fixed_buffers_written_in_place(model, uncaptured, monkeypatch):
    """Every step reads the same id buffer and the same position tensor, with the same shapes, the position's value
    the step's decoder position: what lets one captured graph serve every token."""
    seen = []
    original = NuwaDecodingCache.static_decode

    def spy(self, ids, position):
        seen.append((ids.data_ptr(), tuple(ids.shape), position.data_ptr(), tuple(position.shape), int(position),
                     ids[:, 0].clone()))
        return original(self, ids, position)

    monkeypatch.setattr(NuwaDecodingCache, "static_decode", spy)
    torch.manual_seed(0)
    out = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, guidance_scale=2.0, cuda_graph=True)
    assert len(seen) == 15  # the prefill (<bos>) is eager; then one static step per further token
    assert len({entry[:4] for entry in seen}) == 1  # the same buffers and shapes at every step
    assert seen[0][1] == (4, 1)  # 2 rows and their 2 null rows (guidance shares the pass)
    assert [entry[4] for entry in seen] == list(range(1, 16))
    for p, entry in enumerate(seen, start=1):  # each step was fed the token chosen before it, in every row group
        assert torch.equal(entry[5], out[:, p].repeat(2))


def test_capture_failure_decodes_eagerly_with_the_reason_logged(model, caplog):
    """On the CPU a real capture fails (no CUDA device): a warning says so, and the tokens are the eager steps'."""
    out = {}
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.models.nuwa.sampling_nuwa"):
        for graph in (True, False):
            torch.manual_seed(2)
            out[graph] = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, top_k=8,
                                        cuda_graph=graph)
    assert torch.equal(out[True], out[False])
    warnings = [r.getMessage() for r in caplog.records if "CUDA graph capture failed" in r.getMessage()]
    assert len(warnings) == 1 and "CUDA device" in warnings[0] and "cuda_graph=False" in warnings[0]


def test_a_capture_that_raises_midway_falls_back(model, monkeypatch, caplog):
    def broken(self, tokens):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(NuwaCudaGraphStep, "capture", broken)
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.models.nuwa.sampling_nuwa"):
        torch.manual_seed(2)
        fallback = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, cuda_graph=True)
    torch.manual_seed(2)
    assert torch.equal(fallback, model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True))
    assert any("stream is capturing" in r.getMessage() for r in caplog.records)


def test_the_graph_is_chosen_on_cuda_only_and_the_switch_turns_it_off(model, monkeypatch):
    built = []
    original = NuwaCudaGraphStep.__init__
    monkeypatch.setattr(NuwaCudaGraphStep, "__init__", lambda self, cache: built.append(1) or original(self, cache))
    monkeypatch.setattr(NuwaCudaGraphStep, "capture", lambda self, tokens: None)

    def tries(**kwargs):
        built.clear()
        model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), **kwargs)
        return len(built)

    assert tries() == 0  # a CPU model: eager by default
    assert tries(cuda_graph=True) == 1
    assert tries(cuda_graph=True, decoding_loop="transformers") == 0  # transformers' loop steps eagerly
    model.generation_config.cuda_graph = True
    try:
        assert tries() == 1  # the model's generation config asks for it
        assert tries(cuda_graph=False) == 0  # the call's switch wins
    finally:
        del model.generation_config.cuda_graph


def test_the_graph_step_outside_the_loop_matches_decode_next(model):
    """Driven by hand: the uncaptured graph step's logits equal decode_next's at every position, and its buffers stay
    the same tensors."""
    encoded = model.encode_condition(input_ids=TEXT)
    eager, static = NuwaDecodingCache(model, encoded, (1, 3, 4)), NuwaDecodingCache(model, encoded, (1, 3, 4))
    bos = torch.full((2, 1), model.config.visual_bos_token_id)
    with torch.no_grad():
        eager.decode(bos)
        static.decode(bos)
        step = NuwaCudaGraphStep(static)
        ids, position = step.ids, step.position
        tokens = torch.randint(0, 64, (11, 2), generator=torch.Generator().manual_seed(3))
        for p in range(11):
            torch.testing.assert_close(step(tokens[p]), eager.decode_next(tokens[p]), atol=1e-5, rtol=1e-5)
            assert step.ids is ids and step.position is position and int(position) == p + 1
        assert static.position == eager.position == 12
        with pytest.raises(ValueError, match="do not fit the visual grid"):
            step(tokens[0])
