"""Decoding over a NuwaDecodingCache (the decoder's modules reading it) against the plain forward, and generate()'s
fast path against the module path: same logits up to float rounding, same sampled tokens for a seed, in every
decoding situation."""

import functools

import pytest
import torch

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.models.nuwa.decoding_nuwa import NuwaDecodingCache, NuwaDecodingStep

TEXT = torch.tensor([[5, 17, 99, 3], [8, 2, 400, 11]])


def tiny_model(**overrides):
    torch.manual_seed(0)
    return NuwaForConditionalGeneration(NuwaConfig.tiny(**overrides)).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def condition_kwargs(condition: str) -> dict:
    if condition == "text":
        return {"input_ids": TEXT}
    if condition == "sketch":
        return {"sketch_tokens": torch.randint(0, 32, (2, 2, 3, 3), generator=torch.Generator().manual_seed(0))}
    return {"condition_type": "none", "batch_size": 2}


@pytest.mark.parametrize("extents", ["paper", "whole"], ids=["windowed", "whole-grid"])
@pytest.mark.parametrize("grid", [(1, 4, 5), (3, 3, 4)], ids=["image", "video"])
@pytest.mark.parametrize("condition", ["text", "sketch", "none"])
def test_step_logits_equal_the_model_forward(grid, condition, extents):
    """A prefill of 3 ids, then one id per call: every position's logits equal the full forward over the sequence."""
    overrides = {} if extents == "paper" else {"image_extent": (None, None, None), "video_extent": (None, None, None)}
    model = tiny_model(**overrides)
    total = grid[0] * grid[1] * grid[2]
    ids = torch.randint(0, 64, (2, total), generator=torch.Generator().manual_seed(1))
    ids[:, 0] = model.config.visual_bos_token_id
    kwargs = condition_kwargs(condition)
    full = model(**{k: v for k, v in kwargs.items() if k != "batch_size"}, decoder_input_ids=ids,
                 visual_grid=grid).logits
    encoded = model.encode_condition(**kwargs)
    step = NuwaDecodingStep(model, encoded, grid)
    pieces = [step(ids[:, :3])] + [step(ids[:, p:p + 1]) for p in range(3, total)]
    assert step.position == total
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("extents", ["paper", "whole"], ids=["windowed", "whole-grid"])
@pytest.mark.parametrize("condition", ["text", "sketch"])
def test_static_step_equals_the_step_and_compiles_as_one_graph(condition, extents):
    """static_step (fixed shapes, the position a tensor: what CUDA graphs need) gives the step's logits at every
    position; torch.compile(fullgraph=True) traces it without a graph break, and the traced step agrees too."""
    overrides = {} if extents == "paper" else {"video_extent": (None, None, None)}
    model = tiny_model(**overrides)
    grid = (2, 3, 4)
    total = grid[0] * grid[1] * grid[2]
    ids = torch.randint(0, 64, (2, total), generator=torch.Generator().manual_seed(5))
    ids[:, 0] = model.config.visual_bos_token_id
    encoded = model.encode_condition(**condition_kwargs(condition))
    step, static = NuwaDecodingStep(model, encoded, grid), NuwaDecodingStep(model, encoded, grid)
    position = torch.zeros(1, dtype=torch.long)
    for p in range(total):
        position.fill_(p)
        torch.testing.assert_close(static.static_step(ids[:, p:p + 1], position), step(ids[:, p:p + 1]),
                                   atol=1e-5, rtol=1e-5)
    torch._dynamo.reset()
    compiled = torch.compile(NuwaDecodingStep(model, encoded, grid).static_step, fullgraph=True, backend="eager")
    reference = NuwaDecodingStep(model, encoded, grid)
    for p in range(4):
        position.fill_(p)
        torch.testing.assert_close(compiled(ids[:, p:p + 1], position), reference(ids[:, p:p + 1]),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 8])
def test_folded_and_unfolded_cross_attention_agree(model, batch, monkeypatch):
    """Small batches fold the cross-attention projections into the condition, large ones do not: same logits."""
    text = torch.randint(0, 500, (batch, 6), generator=torch.Generator().manual_seed(2))
    encoded = model.encode_condition(input_ids=text)
    ids = torch.randint(0, 64, (batch, 8), generator=torch.Generator().manual_seed(3))
    outputs = {}
    for fold in (True, False):
        monkeypatch.setattr(NuwaDecodingCache, "_folding_pays", lambda self, length, fold=fold: fold)
        step = NuwaDecodingStep(model, encoded, (1, 4, 4))
        assert ("cross_folded" in step.layers[0]) is fold
        outputs[fold] = torch.cat([step(ids[:, p:p + 1]) for p in range(8)], dim=1)
    torch.testing.assert_close(outputs[True], outputs[False], atol=1e-5, rtol=1e-5)


def test_folding_is_chosen_for_small_batches_only(model):
    encoded = model.encode_condition(input_ids=TEXT[:1])
    assert "cross_folded" in NuwaDecodingStep(model, encoded, (1, 4, 4)).layers[0]
    encoded = model.encode_condition(input_ids=TEXT[:1].repeat(64, 1))
    assert "cross_folded" not in NuwaDecodingStep(model, encoded, (1, 4, 4)).layers[0]


def both_paths(model, seed=0, **kwargs):
    out = {}
    for fast in (True, False):
        torch.manual_seed(seed)
        out[fast] = model.generate(fast_decoding=fast, **kwargs)
    return out[True], out[False]


# Guidance needs a condition (the "None" condition has no opposite), so it runs with text and sketches. Text shares
# one step between the conditional and the null rows; sketches (null = the "None" condition) decode them apart.
@pytest.mark.parametrize("condition, guidance", [("text", None), ("sketch", None), ("none", None), ("text", 3.0),
                                                 ("sketch", 3.0)])
def test_generate_samples_the_same_tokens_on_both_paths(model, condition, guidance):
    fast, reference = both_paths(model, **condition_kwargs(condition), visual_grid=(2, 4, 4), do_sample=True,
                                 top_k=16, temperature=1.3, guidance_scale=guidance, num_return_sequences=2)
    assert fast.shape == (4, 33)
    assert torch.equal(fast, reference)


def test_constrained_decoding_is_the_same_on_both_paths(model):
    """Image completion: a known prefix (fed in one pass), a masked window in the middle, known tokens after it."""
    grid = (1, 6, 6)
    known = torch.randint(0, 64, (2, *grid), generator=torch.Generator().manual_seed(4))
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[0, 2:4, 1:5] = True
    fast, reference = both_paths(model, input_ids=TEXT, visual_grid=grid, known_tokens=known, generate_mask=mask,
                                 do_sample=True, top_p=0.9, guidance_scale=2.0)
    assert torch.equal(fast, reference)
    kept = ~mask.flatten()
    assert torch.equal(fast[:, 1:][:, kept], known.flatten(1)[:, kept])


def test_scores_and_logits_are_returned_on_the_fast_path(model):
    fast, reference = both_paths(model, input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, top_k=8,
                                 return_dict_in_generate=True, output_scores=True, output_logits=True)
    assert torch.equal(fast.sequences, reference.sequences)
    assert len(fast.scores) == len(fast.logits) == 16
    torch.testing.assert_close(torch.stack(fast.logits), torch.stack(reference.logits), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(fast.scores), torch.stack(reference.scores), atol=1e-5, rtol=1e-5)


def test_the_module_path_is_used_where_the_step_cannot_serve(model):
    """Attentions and hidden states come from the modules, so asking for them still works (fast_decoding or not)."""
    out = model.generate(input_ids=TEXT, visual_grid=(1, 2, 2), do_sample=False, return_dict_in_generate=True,
                         output_attentions=True, output_hidden_states=True)
    assert len(out.decoder_attentions) == 4 and len(out.decoder_hidden_states[0]) == 1 + model.config.decoder_layers


def test_forward_hooks_on_the_model_still_see_every_step(model):
    """A hooked model decodes through its forward (the module path), so the hook fires once per token as users of
    transformers expect; without the hook the same tokens come from the fast step."""
    calls = []
    handle = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        hooked = model.generate(input_ids=TEXT, visual_grid=(1, 3, 3), do_sample=False)
    finally:
        handle.remove()
    assert len(calls) == 9  # the prefill (<bos>) and one call per further token
    assert torch.equal(hooked, model.generate(input_ids=TEXT, visual_grid=(1, 3, 3), do_sample=False))


@pytest.mark.parametrize("fast", [True, False])
def test_a_streamer_gets_every_token_on_both_paths(model, fast):
    streamed, ended = [], []

    class Streamer:
        def put(self, value):
            streamed.append(value)

        def end(self):
            ended.append(True)

    seq = model.generate(input_ids=TEXT[:1], visual_grid=(1, 2, 2), do_sample=False, streamer=Streamer(),
                         fast_decoding=fast)
    assert torch.equal(seq, model.generate(input_ids=TEXT[:1], visual_grid=(1, 2, 2), do_sample=False))
    assert len(streamed) == 5 and ended == [True]  # the prompt, then one put per token
    assert torch.equal(torch.cat([v.reshape(-1) for v in streamed]), seq[0])


def test_a_pipeline_gives_the_same_image_on_both_paths():
    """The shipped checkpoint through the text-to-image pipeline, seeded, default guidance: identical tokens."""
    from transformers import pipeline

    pipe = pipeline("nuwa-text-to-image", model="checkpoints/nuwa-tiny")
    fast = pipe(["a red 7", "green five"], seed=3, output_type="tokens")
    model = pipe.model
    pipe.model.generate = functools.partial(type(model).generate, model, fast_decoding=False)
    try:
        reference = pipe(["a red 7", "green five"], seed=3, output_type="tokens")
    finally:
        del pipe.model.generate
    assert len(fast) == len(reference) == 2
    for a, b in zip(fast, reference):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))


def test_bfloat16_models_decode_on_the_fast_path():
    """In bf16 the step's masks and folded matrices follow the model's dtype; logits stay within bf16 rounding of the
    module path's."""
    model = tiny_model().to(torch.bfloat16)
    kwargs = dict(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=False, guidance_scale=2.0,
                  return_dict_in_generate=True, output_logits=True)
    fast = model.generate(fast_decoding=True, **kwargs)
    reference = model.generate(fast_decoding=False, **kwargs)
    assert fast.sequences.shape == (2, 17)
    first_fast, first_reference = fast.logits[0], reference.logits[0]  # same prefix (<bos>): comparable
    torch.testing.assert_close(first_fast, first_reference, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("condition", ["text", "sketch"])
def test_the_model_forward_over_a_decoding_cache_equals_the_plain_forward(model, condition):
    """The model's own forward, handed a NuwaDecodingCache (what generate() does each step), gives the logits of the
    plain forward over the whole sequence: a prefill of 3 ids, then one id per call."""
    grid = (2, 3, 4)
    total = grid[0] * grid[1] * grid[2]
    ids = torch.randint(0, 64, (2, total), generator=torch.Generator().manual_seed(4))
    ids[:, 0] = model.config.visual_bos_token_id
    kwargs = condition_kwargs(condition)
    full = model(**kwargs, decoder_input_ids=ids, visual_grid=grid).logits
    cache = NuwaDecodingCache(model, model.encode_condition(**kwargs), grid)
    with torch.no_grad():
        pieces = [model(decoder_input_ids=ids[:, :3], cache=cache)]
        pieces += [model(decoder_input_ids=ids[:, p:p + 1], cache=cache) for p in range(3, total)]
    assert all(type(piece).__name__ == "NuwaDecodingOutput" and piece.cache is cache for piece in pieces)
    assert cache.get_seq_length() == total
    torch.testing.assert_close(torch.cat([piece.logits for piece in pieces], dim=1), full, atol=1e-5, rtol=1e-5)


def test_guidance_rows_decode_the_null_condition_in_the_same_pass(model):
    """A cache over conditional + null rows (guidance_rows) returns the conditional logits and keeps the null rows'
    last logits: each equal to a cache of its own."""
    encoded = model.encode_condition(input_ids=TEXT)
    null = model.null_condition_like("text", 2, "cpu")
    both = type(encoded)(last_hidden_state=torch.cat([encoded.last_hidden_state, null.last_hidden_state]),
                         condition_grid=encoded.condition_grid, condition_type=encoded.condition_type)
    shared = NuwaDecodingCache(model, both, (1, 4, 4), guidance_rows=2)
    alone = NuwaDecodingCache(model, encoded, (1, 4, 4))
    null_alone = NuwaDecodingCache(model, null, (1, 4, 4))
    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        for p in range(16):
            logits = shared.decode(ids[:, p:p + 1])
            torch.testing.assert_close(logits, alone.decode(ids[:, p:p + 1]), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(shared.null_logits, null_alone.decode(ids[:, p:p + 1])[:, -1], atol=1e-5,
                                       rtol=1e-5)


def test_generation_overrides_no_private_generation_mixin_method():
    """Decoding goes through transformers' own loop: NUWA overrides only public hooks (generate,
    prepare_inputs_for_generation), never a private GenerationMixin method such as _sample."""
    from transformers import GenerationMixin

    from nuwa_hf.models.nuwa.generation_nuwa import NuwaGenerationMixin

    overridden = [name for cls in NuwaForConditionalGeneration.__mro__ if cls.__module__.startswith("nuwa_hf")
                  for name in vars(cls) if name.startswith("_") and not name.startswith("__")
                  and hasattr(GenerationMixin, name)]
    assert overridden == []
    assert "prepare_inputs_for_generation" in vars(NuwaGenerationMixin)


def test_adapter_wrapped_projections_are_run_not_bypassed():
    """A projection that is not a plain nn.Linear (as an adapter such as LoRA makes it) keeps its own forward on the
    decoding path: no fused q/k/v and no folded cross-attention read its bare weight, so the logits still equal the
    plain forward's."""

    class Adapted(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) * 1.5 + 0.01

    model = tiny_model()
    for layer in model.get_decoder().layers:
        for attention in (layer.self_attn, layer.cross_attn):
            for name in ("q_proj", "out_proj"):
                old = getattr(attention, name)
                new = Adapted(old.in_features, old.out_features)
                new.load_state_dict(old.state_dict())
                setattr(attention, name, new)
    model.eval()
    grid = (1, 4, 4)
    ids = torch.randint(0, 64, (1, 16), generator=torch.Generator().manual_seed(8))
    ids[:, 0] = model.config.visual_bos_token_id
    full = model(input_ids=TEXT[:1], decoder_input_ids=ids, visual_grid=grid).logits
    step = NuwaDecodingStep(model, model.encode_condition(input_ids=TEXT[:1]), grid)
    assert step.layers[0]["qkv"] is None and "cross_folded" not in step.layers[0]
    torch.testing.assert_close(torch.cat([step(ids[:, p:p + 1]) for p in range(16)], dim=1), full, atol=1e-5,
                               rtol=1e-5)
