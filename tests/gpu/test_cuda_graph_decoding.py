"""generate() on a CUDA device decodes through a captured CUDA graph (decoding_nuwa.NuwaCudaGraphStep) and gives the
eager steps' tokens. Marked ``cuda``: on a CUDA device the graph is really captured and replayed; under Triton's
interpreter on the CPU (which has no CUDA graphs) the same tests run the uncaptured static step over the same fixed
buffers, so benchmarks/gpu_check.sh's CPU run exercises them too. The CPU checks of the path's pieces (buffers,
positions, fallback, switch) are in tests/models/nuwa/test_cuda_graph_step.py."""

import logging

import pytest
import torch

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.models.nuwa.decoding_nuwa import NuwaCudaGraphStep
from support.cuda_mode import DEVICE, MODE, SKIP_REASON

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(MODE is None, reason=SKIP_REASON)]


def build(dtype=torch.float32, **overrides):
    torch.manual_seed(0)
    return NuwaForConditionalGeneration(NuwaConfig.tiny(**overrides)).eval().to(DEVICE, dtype)


@pytest.fixture
def captures(monkeypatch):
    """One entry per capture: True when a graph was recorded (on a CUDA device). Under the interpreter capture is a
    no-op (entry None), so the loop runs the static step itself over the same buffers."""
    done = []
    original = NuwaCudaGraphStep.capture

    def spy(self, tokens):
        if MODE != "cuda":
            done.append(None)
            return
        original(self, tokens)
        done.append(self.graph is not None)

    monkeypatch.setattr(NuwaCudaGraphStep, "capture", spy)
    return done


@pytest.mark.parametrize("sampling", [dict(do_sample=False), dict(do_sample=True, top_k=16),
                                      dict(do_sample=True, top_k=16, guidance_scale=3.0, num_return_sequences=2)],
                         ids=["greedy", "sampled", "guidance"])
@pytest.mark.parametrize("extents", ["windowed", "whole-grid"])
def test_graph_replay_gives_the_eager_tokens(sampling, extents, captures, caplog):
    model = build(**({} if extents == "windowed" else {"video_extent": (None, None, None)}))
    text = torch.tensor([[5, 17, 99, 3], [8, 2, 400, 11]], device=DEVICE)
    out = {}
    with caplog.at_level(logging.WARNING):
        for graph in (True, False):
            torch.manual_seed(0)
            out[graph] = model.generate(input_ids=text, visual_grid=(2, 4, 4), cuda_graph=graph,
                                        return_dict_in_generate=True, output_logits=True, **sampling)
    assert captures == [True if MODE == "cuda" else None], [r.getMessage() for r in caplog.records]  # no fallback
    error = (torch.stack(out[True].logits) - torch.stack(out[False].logits)).abs().max().item()
    assert torch.equal(out[True].sequences, out[False].sequences)
    assert error < 1e-4


def test_graph_is_the_default_on_cuda_and_works_in_bfloat16(captures):
    model = build(torch.bfloat16)
    text = torch.tensor([[5, 17, 99, 3]], device=DEVICE)
    torch.manual_seed(0)
    # the default on a GPU; asked for under the interpreter (a CPU model)
    graphed = model.generate(input_ids=text, visual_grid=(1, 4, 4), do_sample=False,
                             cuda_graph=None if DEVICE == "cuda" else True)
    assert captures == [True if MODE == "cuda" else None]
    eager = model.generate(input_ids=text, visual_grid=(1, 4, 4), do_sample=False, cuda_graph=False)
    assert graphed.shape == eager.shape == (1, 17)
    assert (graphed[:, 1:] < model.config.visual_vocab_size).all()


def test_later_calls_replay_the_first_calls_graph_with_their_own_prompts(captures):
    """One capture for three calls of the same shapes: the kept cache is refilled in place for each prompt, and the
    replayed graph (a real one on a GPU) gives each prompt's eager tokens."""
    model = build()
    prompts = [torch.tensor([[5, 17, 99, 3]], device=DEVICE), torch.tensor([[60, 2, 9, 44]], device=DEVICE),
               torch.tensor([[7, 7, 300, 1]], device=DEVICE)]
    for prompt in prompts:
        out = {}
        for graph in (True, False):
            torch.manual_seed(0)
            out[graph] = model.generate(input_ids=prompt, visual_grid=(2, 4, 4), cuda_graph=graph, do_sample=True,
                                        top_k=16, guidance_scale=3.0)
        assert torch.equal(out[True], out[False])
    # on a GPU one capture serves the three calls; under the interpreter nothing is captured, so each call tries
    assert captures == ([True] if MODE == "cuda" else [None] * 3)
