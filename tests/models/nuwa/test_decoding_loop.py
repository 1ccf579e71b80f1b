"""NUWA's decoding loop (sampling_nuwa.nuwa_sample, handed to transformers as ``custom_generate``) against
transformers' stock loop over the same NuwaDecodingCache, and against the module path: the same tokens for a seed in
every situation the stock loop serves, the same scores and logits, the same streamer calls, outputs users can keep."""

import inspect

import pytest
import torch
from transformers import LogitsProcessor, StoppingCriteria, StoppingCriteriaList

from nuwa_hf.models.nuwa import generation_nuwa, sampling_nuwa

TEXT = torch.tensor([[5, 17, 99, 3], [8, 2, 400, 11]])
SKETCH = torch.randint(0, 32, (2, 2, 3, 3), generator=torch.Generator().manual_seed(0))


def three_ways(model, seed=0, **kwargs):
    """NUWA's loop, transformers' loop over the same cache, and the module path (transformers' loop over forward)."""
    out = []
    for options in (dict(decoding_loop="nuwa"), dict(decoding_loop="transformers"), dict(fast_decoding=False)):
        torch.manual_seed(seed)
        out.append(model.generate(**kwargs, **options))
    return out


CASES = {
    "greedy": dict(input_ids=TEXT, do_sample=False),
    "sampled": dict(input_ids=TEXT, do_sample=True, top_k=16, temperature=1.3),
    "guidance shared (text)": dict(input_ids=TEXT, do_sample=True, top_p=0.9, guidance_scale=3.0),
    "guidance apart (sketch)": dict(sketch_tokens=SKETCH, do_sample=True, top_k=8, guidance_scale=2.0),
    "none condition": dict(batch_size=2, do_sample=True),
    "num_return_sequences": dict(input_ids=TEXT, do_sample=True, top_k=16, guidance_scale=2.0,
                                 num_return_sequences=3),
    "greedy with guidance": dict(input_ids=TEXT, do_sample=False, guidance_scale=2.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_both_loops_and_the_module_path_give_the_same_tokens(model, case):
    ours, stock, module = three_ways(model, seed=1, visual_grid=(2, 3, 4), **CASES[case])
    rows = 2 * CASES[case].get("num_return_sequences", 1)
    assert ours.shape == (rows, 25)
    assert torch.equal(ours, stock) and torch.equal(ours, module)
    if CASES[case].get("do_sample"):  # the seed matters: a different one samples other tokens
        torch.manual_seed(2)
        assert not torch.equal(ours, model.generate(visual_grid=(2, 3, 4), **CASES[case]))


def test_known_tokens_with_a_prefix_and_a_hole_are_the_same_on_both_loops(model):
    grid = (1, 6, 6)
    known = torch.randint(0, 64, (2, *grid), generator=torch.Generator().manual_seed(4))
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[0, 2:4, 1:5] = True  # a known prefix of 13 positions (pre-filled in one pass), known tokens after the hole
    ours, stock, module = three_ways(model, input_ids=TEXT, visual_grid=grid, known_tokens=known, generate_mask=mask,
                                     do_sample=True, top_k=12, guidance_scale=2.0, num_return_sequences=2)
    assert torch.equal(ours, stock) and torch.equal(ours, module)
    kept = ~mask.flatten()
    assert torch.equal(ours[:, 1:][:, kept], known.repeat_interleave(2, dim=0).flatten(1)[:, kept])


def test_per_row_generators_give_the_same_tokens_on_both_loops(model):
    def run(loop):
        generators = [torch.Generator().manual_seed(7), torch.Generator().manual_seed(8)]
        return model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, top_k=16, guidance_scale=2.0,
                              generator=generators, decoding_loop=loop)

    ours, stock = run("nuwa"), run("transformers")
    assert torch.equal(ours, stock)
    alone = model.generate(input_ids=TEXT[1:], visual_grid=(1, 4, 4), do_sample=True, top_k=16, guidance_scale=2.0,
                           generator=[torch.Generator().manual_seed(8)])
    assert torch.equal(ours[1:], alone)  # a row's tokens depend on its own generator only


def test_scores_and_logits_equal_the_stock_loops(model):
    kwargs = dict(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, top_k=8, guidance_scale=2.0,
                  return_dict_in_generate=True, output_scores=True, output_logits=True)
    ours, stock, module = three_ways(model, **kwargs)
    assert type(ours) is type(stock)
    assert torch.equal(ours.sequences, stock.sequences)
    assert len(ours.scores) == len(ours.logits) == 16
    assert torch.equal(torch.stack(ours.logits), torch.stack(stock.logits))  # same cache, same arithmetic
    assert torch.equal(torch.stack(ours.scores), torch.stack(stock.scores))
    torch.testing.assert_close(torch.stack(ours.logits), torch.stack(module.logits), atol=1e-5, rtol=1e-5)
    # Top-k 8 after guidance: each step's scores keep 8 finite entries per row.
    assert (torch.isfinite(torch.stack(ours.scores)).sum(-1) == 8).all()


def test_outputs_are_ordinary_tensors(model):
    """The steps run under torch.inference_mode; what generate() returns is not an inference tensor, so a user can
    write into it and use it with autograd as after transformers' loop."""
    out = model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), do_sample=True, return_dict_in_generate=True,
                         output_scores=True, output_logits=True)
    for tensor in (out.sequences, *out.scores, *out.logits):
        assert not tensor.is_inference()
    out.sequences[:, 1] = 0  # in place, outside inference mode: an error for an inference tensor
    out.logits[0].add_(1.0)


@pytest.mark.parametrize("loop", ["nuwa", "transformers"])
def test_a_streamer_gets_the_prompt_every_token_and_the_end(model, loop):
    calls = []

    class Streamer:
        def put(self, value):
            calls.append(value.clone())

        def end(self):
            calls.append("end")

    torch.manual_seed(0)
    seq = model.generate(input_ids=TEXT, visual_grid=(1, 2, 3), do_sample=True, streamer=Streamer(),
                         decoding_loop=loop)
    assert calls[-1] == "end" and len(calls) == 1 + 6 + 1
    assert torch.equal(calls[0], seq[:, :1])  # the prompt (<bos>), put by transformers' generate
    assert torch.equal(torch.stack(calls[1:-1], dim=1), seq[:, 1:])  # then each step's (B,) tokens


def test_the_default_fast_path_runs_nuwas_loop_and_the_switch_runs_transformers(model, monkeypatch):
    calls = []
    original = sampling_nuwa.nuwa_sample
    monkeypatch.setattr(generation_nuwa, "nuwa_sample", lambda *a, **k: calls.append(1) or original(*a, **k))
    model.generate(input_ids=TEXT, visual_grid=(1, 2, 2))
    assert calls == [1]
    model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), decoding_loop="transformers")
    model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), fast_decoding=False)  # the module path: transformers' loop
    assert calls == [1]


def test_processor_signatures_are_read_once_per_call_not_per_step(model, monkeypatch):
    reads = []
    original = inspect.signature
    monkeypatch.setattr(sampling_nuwa.inspect, "signature", lambda f, *a, **k: reads.append(f) or original(f, *a, **k))
    model.generate(input_ids=TEXT, visual_grid=(2, 4, 4), do_sample=True, top_k=8, guidance_scale=2.0)
    processors = [type(f.__self__).__name__ for f in reads if isinstance(getattr(f, "__self__", None), LogitsProcessor)]
    assert sorted(processors) == ["NuwaGuidanceLogitsProcessor", "TopKLogitsWarper"]  # 32 steps: one read each
    reads.clear()
    model.generate(input_ids=TEXT, visual_grid=(2, 4, 4), do_sample=True, top_k=8, guidance_scale=2.0,
                   decoding_loop="transformers")
    assert sum(isinstance(getattr(f, "__self__", None), LogitsProcessor) for f in reads) == 2 * 32  # (the stock loop)


def test_a_callers_stopping_criterion_stops_both_loops_alike(model):
    class AfterFive(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), input_ids.shape[1] >= 6, dtype=torch.bool)

    outputs = []
    for loop in ("nuwa", "transformers"):
        torch.manual_seed(3)
        outputs.append(model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, decoding_loop=loop,
                                      stopping_criteria=StoppingCriteriaList([AfterFive()])))
    assert outputs[0].shape == (2, 6)  # <bos> and five tokens
    assert torch.equal(outputs[0], outputs[1])


def test_a_callers_processor_sees_the_ids_so_far_on_both_loops(model):
    seen = {}

    class Record(LogitsProcessor):
        def __init__(self, key):
            self.key = key

        def __call__(self, input_ids, scores):
            seen.setdefault(self.key, []).append(input_ids.clone())
            return scores

    for loop in ("nuwa", "transformers"):
        torch.manual_seed(0)
        model.generate(input_ids=TEXT, visual_grid=(1, 3, 3), do_sample=True, decoding_loop=loop,
                       logits_processor=[Record(loop)])
    assert [ids.shape[1] for ids in seen["nuwa"]] == list(range(1, 10))
    assert all(torch.equal(a, b) for a, b in zip(seen["nuwa"], seen["transformers"]))


def test_bad_loop_arguments_name_the_fix(model):
    with pytest.raises(ValueError, match="decoding_loop must be one of"):
        model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), decoding_loop="fast")

    class NeedsMore(LogitsProcessor):
        def __call__(self, input_ids, scores, extra):
            return scores

    with pytest.raises(ValueError, match="NeedsMore"):
        model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), logits_processor=[NeedsMore()])
    with pytest.raises(ValueError, match="decoding_loop='transformers'"):
        model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), do_sample=False, penalty_alpha=0.6, top_k=4)
