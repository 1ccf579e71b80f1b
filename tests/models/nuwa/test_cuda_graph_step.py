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


def test_a_capture_that_raises_midway_falls_back_and_is_not_retried(monkeypatch, caplog):
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(NuwaConfig.tiny()).eval()  # its own: no cache kept from another test
    tried = []

    def broken(self, tokens):
        tried.append(1)
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(NuwaCudaGraphStep, "capture", broken)
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.models.nuwa.sampling_nuwa"):
        fallback = []
        for _ in range(2):  # the second call reuses the cache, whose capture already failed
            torch.manual_seed(2)
            fallback.append(model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, cuda_graph=True))
    torch.manual_seed(2)
    eager = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True)
    assert torch.equal(fallback[0], eager) and torch.equal(fallback[1], eager)
    assert len(tried) == 1  # tried once, not at every call
    assert [r.getMessage() for r in caplog.records if "stream is capturing" in r.getMessage()] != []
    assert len([r for r in caplog.records if "capture failed" in r.getMessage()]) == 1


def test_the_graph_is_chosen_on_cuda_only_and_the_switch_turns_it_off(model, monkeypatch):
    used = []
    original = NuwaCudaGraphStep.__call__
    monkeypatch.setattr(NuwaCudaGraphStep, "__call__", lambda self, tokens: used.append(1) or original(self, tokens))
    monkeypatch.setattr(NuwaCudaGraphStep, "capture", lambda self, tokens: None)

    def tries(**kwargs):
        used.clear()
        model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), **kwargs)
        return min(len(used), 1)  # whether the steps went through the graph step

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


class RecordedGraph:
    """A CPU stand-in for a captured ``torch.cuda.CUDAGraph``: it remembers the address of every tensor the cache's
    steps read when it is "captured" and, at each replay, checks they are all still there before running the static
    step over the same buffers. A real graph would silently read stale memory where a refill rebound a tensor."""

    def __init__(self, step):
        self.step, self.addresses = step, self.read(step)
        self.replays = 0

    @staticmethod
    def read(step) -> list:
        cache = step.cache
        tensors = [step.ids, step.position, cache.position_table, cache.self_index, cache.self_bias]
        for state in cache.layer_states:
            tensors += [state["kv"], state["cross_kv"], *(state["qkv"] or ()), *state.get("cross_folded", ())[:3]]
        return [t.data_ptr() for t in tensors]

    def replay(self):
        assert self.read(self.step) == self.addresses, "a tensor the graph reads moved"
        self.replays += 1
        self.step.logits = self.step.cache.static_decode(self.step.ids, self.step.position)[:, 0]


@pytest.fixture
def recorded(monkeypatch):
    graphs = []

    def capture(self, tokens):
        self.graph = RecordedGraph(self)
        graphs.append(self.graph)

    monkeypatch.setattr(NuwaCudaGraphStep, "capture", capture)
    return graphs


def fresh_model(**overrides):
    torch.manual_seed(0)
    return NuwaForConditionalGeneration(NuwaConfig.tiny(**overrides)).eval()


@pytest.mark.parametrize("sampling", [dict(do_sample=False), dict(do_sample=True, top_k=16, guidance_scale=3.0)],
                         ids=["greedy", "guidance"])
def test_calls_of_the_same_shapes_replay_one_graph_with_each_calls_own_tokens(sampling, recorded):
    """Three prompts, one capture: the second and third calls refill the first call's cache in place (the recorded
    graph checks every address it reads) and give the tokens and logits of eager decoding for their own prompts."""
    model = fresh_model()
    prompts = [TEXT, torch.tensor([[7, 7, 300, 1], [60, 2, 9, 44]]), TEXT.flip(0)]
    for prompt in prompts:
        out = {}
        for graph in (True, False):
            torch.manual_seed(3)
            out[graph] = model.generate(input_ids=prompt, visual_grid=(2, 3, 3), cuda_graph=graph,
                                        return_dict_in_generate=True, output_logits=True, **sampling)
        assert torch.equal(out[True].sequences, out[False].sequences)
        torch.testing.assert_close(torch.stack(out[True].logits), torch.stack(out[False].logits), atol=1e-5,
                                   rtol=1e-5)
    assert len(recorded) == 1 and recorded[0].replays == 3 * (2 * 3 * 3 - 1)


def test_weights_updated_in_place_are_read_and_replaced_ones_rebuild_the_cache(recorded):
    model = fresh_model()

    def both():
        out = {}
        for graph in (True, False):
            torch.manual_seed(5)
            out[graph] = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), cuda_graph=graph, do_sample=True,
                                        top_k=16, guidance_scale=2.0)
        return out

    first = both()
    with torch.no_grad():  # an optimiser step: the same tensors, new values
        for p in model.get_decoder().parameters():
            p.add_(torch.randn_like(p) * 0.05)
    updated = both()
    assert len(recorded) == 1  # the same cache and graph
    assert torch.equal(updated[True], updated[False]) and not torch.equal(updated[True], first[True])
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().flip(0).clone())  # a new tensor
    replaced = both()
    assert len(recorded) == 2  # a new cache, captured again
    assert torch.equal(replaced[True], replaced[False])


def test_another_grid_or_batch_gets_its_own_cache_and_a_busy_cache_is_not_shared(recorded):
    from nuwa_hf.models.nuwa import decoding_nuwa

    model = fresh_model()
    model.generate(input_ids=TEXT, visual_grid=(1, 3, 3), cuda_graph=True)
    model.generate(input_ids=TEXT[:1], visual_grid=(1, 3, 3), cuda_graph=True)  # another batch
    model.generate(input_ids=TEXT[:1], visual_grid=(1, 4, 3), cuda_graph=True)  # another grid
    model.generate(input_ids=TEXT[:1], visual_grid=(1, 4, 3), cuda_graph=True)  # reused
    assert len(recorded) == 3
    kept = decoding_nuwa._REUSED[model].cache
    slot = decoding_nuwa._REUSED[model]
    with slot.lock:  # another thread's call holds the model's cache
        torch.manual_seed(1)
        busy = model.generate(input_ids=TEXT[:1], visual_grid=(1, 4, 3), cuda_graph=True, do_sample=True)
    assert len(recorded) == 4 and slot.cache is kept  # its own cache and graph; the kept one untouched
    torch.manual_seed(1)
    assert torch.equal(busy, model.generate(input_ids=TEXT[:1], visual_grid=(1, 4, 3), cuda_graph=False,
                                            do_sample=True))


def test_a_model_with_a_kept_cache_still_deep_copies_and_is_freed():
    import copy
    import gc
    import weakref

    from nuwa_hf.models.nuwa import decoding_nuwa

    model = fresh_model()
    model.generate(input_ids=TEXT, visual_grid=(1, 3, 3), cuda_graph=True)  # on the CPU: capture fails, cache kept
    assert model in decoding_nuwa._REUSED
    twin = copy.deepcopy(model)
    assert twin not in decoding_nuwa._REUSED
    gone = weakref.ref(model)
    del model, twin
    gc.collect()
    assert gone() is None  # the kept cache does not keep its model alive
