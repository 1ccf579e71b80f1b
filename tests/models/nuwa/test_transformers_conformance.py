"""NUWA against the checks transformers runs on its own models (``ModelTesterMixin`` in tests/test_modeling_common.py
and ``GenerationTesterMixin`` in tests/generation/test_utils.py), written for NUWA's inputs, plus the user paths of
issue 18 (rows 1-5 and 12) done the way a transformers user does them.

Applicable mixin checks, by name: model_outputs_equivalence (return_dict vs tuples), attention_outputs,
hidden_states_output, retain_grad_hidden_states_attentions, save_load, determinism, batching_equivalence,
model_get_set_embeddings, resize_tokens_embeddings, correct_missing_keys (base <-> head), model_main_input_name,
gradient_checkpointing_enable_disable, training_gradient_checkpointing (reentrant and not), torch_compile, config
round trip, greedy/sample generate dict outputs (scores, logits, attentions, hidden states) with and without cache.
Not applicable, by design: inputs_embeds (the condition is text, sketch or nothing, each with its own grid), beam
search (refused with a clear error), left padding (prompts are padded to a fixed length), head masking / pruning
(gone from transformers 5).
"""

from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForSeq2SeqLM
from transformers.generation.utils import GenerateEncoderDecoderOutput
from transformers.modeling_outputs import ModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration, NuwaModel
from nuwa_hf.ops import nearby_attention_mask

CHECKPOINT = Path(__file__).resolve().parents[3] / "checkpoints" / "nuwa-tiny"
IMPLEMENTATIONS = ("nuwa_3dna", "sdpa", "eager")
GRID = (2, 3, 3)  # a 2-frame video: 18 decoder positions
TEXT_LENGTH = 16  # NuwaConfig.tiny().max_text_length: prompts are padded to it


@pytest.fixture(autouse=True)
def _one_thread(single_threaded_torch):
    yield


def tiny(model_class=NuwaForConditionalGeneration, seed=0, **overrides):
    torch.manual_seed(seed)
    return model_class(NuwaConfig.tiny(**overrides))


def batch(seed=0, size=2, grid=GRID):
    g = torch.Generator().manual_seed(seed)
    return dict(input_ids=torch.randint(1, 512, (size, 5), generator=g),
                labels=torch.randint(0, 64, (size, *grid), generator=g))


def base_inputs(seed=0, size=2, grid=GRID):
    """NuwaModel's inputs: the condition, <bos> + codes, and the grid."""
    inputs = batch(seed, size, grid)
    labels = inputs.pop("labels").flatten(1)
    inputs["decoder_input_ids"] = torch.cat([torch.full((size, 1), 64), labels[:, :-1]], dim=1)
    inputs["visual_grid"] = grid
    return inputs


# ---------------------------------------------------------------------------------------------------------------------
# Row 1: output_hidden_states / output_attentions, every attention implementation
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_row1_hidden_states_and_attentions_counts_and_shapes(implementation):
    model = tiny().eval()
    model.set_attn_implementation(implementation)
    config, length = model.config, GRID[0] * GRID[1] * GRID[2]
    out = model(**batch(), output_hidden_states=True, output_attentions=True)
    assert isinstance(out, Seq2SeqLMOutput)
    heads, d = config.num_attention_heads, config.hidden_size
    assert len(out.encoder_hidden_states) == config.encoder_layers + 1
    assert len(out.decoder_hidden_states) == config.decoder_layers + 1
    assert all(h.shape == (2, TEXT_LENGTH, d) for h in out.encoder_hidden_states)
    assert all(h.shape == (2, length, d) for h in out.decoder_hidden_states)
    # As in transformers: the last hidden state is the (normed) output.
    torch.testing.assert_close(out.encoder_hidden_states[-1], out.encoder_last_hidden_state)
    assert len(out.encoder_attentions) == config.encoder_layers
    assert len(out.decoder_attentions) == len(out.cross_attentions) == config.decoder_layers
    assert all(a.shape == (2, heads, TEXT_LENGTH, TEXT_LENGTH) for a in out.encoder_attentions)
    assert all(a.shape == (2, heads, length, length) for a in out.decoder_attentions)
    assert all(a.shape == (2, heads, length, TEXT_LENGTH) for a in out.cross_attentions)
    for weights in out.encoder_attentions + out.decoder_attentions + out.cross_attentions:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


def test_row1_attention_weights_are_the_3dna_attention_and_agree_across_implementations():
    model = tiny().eval()
    outputs = {}
    for implementation in IMPLEMENTATIONS:
        model.set_attn_implementation(implementation)
        outputs[implementation] = model(**batch(), output_hidden_states=True, output_attentions=True)
    reference = outputs["eager"]
    for implementation in ("nuwa_3dna", "sdpa"):
        for name in ("encoder_attentions", "decoder_attentions", "cross_attentions", "encoder_hidden_states",
                     "decoder_hidden_states"):
            for got, want in zip(outputs[implementation][name], reference[name]):
                torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    # Zero outside each query's causal 3DNA window, non-zero somewhere inside every row.
    window = nearby_attention_mask(GRID, GRID, model.config.visual_extent(GRID), causal=True)
    for weights in reference.decoder_attentions:
        assert float(weights.detach().masked_select(~window).abs().max()) == 0.0
        assert bool((weights.masked_fill(~window, 0).sum(-1) > 0.99).all())


def test_row1_base_model_returns_seq2seq_model_output_with_everything():
    model = tiny(NuwaModel).eval()
    out = model(**base_inputs(), output_hidden_states=True, output_attentions=True)
    assert isinstance(out, Seq2SeqModelOutput)
    assert out.last_hidden_state.shape == (2, 18, model.config.hidden_size)
    torch.testing.assert_close(out.decoder_hidden_states[-1], out.last_hidden_state)
    assert len(out.decoder_attentions) == len(out.cross_attentions) == model.config.decoder_layers
    assert len(out.encoder_attentions) == model.config.encoder_layers


def test_row1_flags_default_to_the_config():
    model = tiny(output_hidden_states=True).eval()
    model.set_attn_implementation("eager")
    model.config.output_attentions = True  # transformers allows it in config only for "eager"
    out = model(**batch())
    assert len(out.decoder_hidden_states) == 3 and len(out.decoder_attentions) == 2
    assert model(**batch(), output_attentions=False, output_hidden_states=False).decoder_attentions is None


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_retain_grad_hidden_states_attentions(implementation):
    model = tiny().train()
    model.set_attn_implementation(implementation)
    out = model(**batch(), output_hidden_states=True, output_attentions=True)
    hidden = (out.encoder_hidden_states[0], out.decoder_hidden_states[0])
    # Only "eager" computes its output from the weights it returns; the others' weights are computed beside the
    # kernel for inspection and carry no gradient from the loss.
    attentions = (out.decoder_attentions[0], out.cross_attentions[0], out.encoder_attentions[0])
    for tensor in hidden + attentions:
        tensor.retain_grad()
    out.loss.backward()
    for tensor in hidden + (attentions if implementation == "eager" else ()):
        assert tensor.grad is not None and float(tensor.grad.abs().sum()) > 0


# ---------------------------------------------------------------------------------------------------------------------
# Row 2: return_dict=False gives tuples, equal to the dict outputs
# ---------------------------------------------------------------------------------------------------------------------


def _assert_same(got, want):
    """``got`` (from return_dict=False) equals ``want.to_tuple()`` entry by entry, nested tuples included."""
    want = want.to_tuple() if isinstance(want, ModelOutput) else want
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _assert_same(g, w)
    elif isinstance(want, torch.Tensor):
        torch.testing.assert_close(got, want, atol=0, rtol=0)
    else:
        assert got is want


@pytest.mark.parametrize("model_class", [NuwaForConditionalGeneration, NuwaModel])
@pytest.mark.parametrize("flags", [{}, {"output_hidden_states": True}, {"output_attentions": True},
                                   {"output_hidden_states": True, "output_attentions": True}])
def test_row2_model_outputs_equivalence_tuple_and_dict(model_class, flags):
    model = tiny(model_class).eval()
    inputs = batch() if model_class is NuwaForConditionalGeneration else base_inputs()
    as_dict = model(**inputs, **flags)
    as_tuple = model(**inputs, **flags, return_dict=False)
    _assert_same(as_tuple, as_dict)
    if model_class is NuwaForConditionalGeneration:
        # Bart's order: loss, logits, ..., encoder_last_hidden_state, ...; attentions after hidden states.
        torch.testing.assert_close(as_tuple[0], as_dict.loss)
        torch.testing.assert_close(as_tuple[1], as_dict.logits)
    else:
        torch.testing.assert_close(as_tuple[0], as_dict.last_hidden_state)


def test_row2_config_return_dict_false_gives_tuples():
    model = tiny(return_dict=False).eval()
    out = model(**batch())
    assert isinstance(out, tuple) and out[1].shape == (2, 18, 64)
    assert isinstance(model(**batch(), return_dict=True), Seq2SeqLMOutput)


def test_encoder_outputs_in_tuple_form_are_accepted():
    model = tiny().eval()
    inputs = batch()
    encoder_tuple = model.get_encoder()(input_ids=inputs["input_ids"], output_attentions=True, return_dict=False)
    assert isinstance(encoder_tuple, tuple)
    direct = model(**inputs).logits
    reused = model(encoder_outputs=encoder_tuple, labels=inputs["labels"]).logits
    torch.testing.assert_close(reused, direct)
    with pytest.raises(TypeError, match="NuwaEncoderOutput"):
        model(encoder_outputs=(encoder_tuple[0],), labels=inputs["labels"])


# ---------------------------------------------------------------------------------------------------------------------
# Row 3: generate(output_attentions / output_hidden_states / output_scores / output_logits, return_dict_in_generate)
# ---------------------------------------------------------------------------------------------------------------------


def _check_generate_outputs(model, out, *, batch_size, grid, prompt_length, use_cache):
    config = model.config
    steps = grid[0] * grid[1] * grid[2] + 1 - prompt_length
    heads, d, n = config.num_attention_heads, config.hidden_size, config.visual_vocab_size
    assert isinstance(out, GenerateEncoderDecoderOutput)
    assert out.sequences.shape == (batch_size, prompt_length + steps)
    assert len(out.scores) == len(out.logits) == steps
    assert all(s.shape == (batch_size, n) for s in out.scores + out.logits)
    assert len(out.decoder_attentions) == len(out.cross_attentions) == len(out.decoder_hidden_states) == steps
    for step in range(steps):
        keys = prompt_length + step
        queries = (prompt_length if step == 0 else 1) if use_cache else keys
        assert len(out.decoder_attentions[step]) == len(out.cross_attentions[step]) == config.decoder_layers
        assert [a.shape for a in out.decoder_attentions[step]] == [(batch_size, heads, queries, keys)] * 2
        assert [a.shape for a in out.cross_attentions[step]] == [(batch_size, heads, queries, TEXT_LENGTH)] * 2
        assert [h.shape for h in out.decoder_hidden_states[step]] == [(batch_size, queries, d)] * 3
    assert len(out.encoder_attentions) == config.encoder_layers
    assert len(out.encoder_hidden_states) == config.encoder_layers + 1
    assert out.encoder_attentions[0].shape[1:] == (heads, TEXT_LENGTH, TEXT_LENGTH)


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no_cache"])
@pytest.mark.parametrize("do_sample", [False, True], ids=["greedy", "sample"])
def test_row3_generate_dict_outputs(use_cache, do_sample):
    model = tiny().eval()
    grid = (1, 2, 3)
    torch.manual_seed(0)
    out = model.generate(
        input_ids=batch()["input_ids"], visual_grid=grid, do_sample=do_sample, use_cache=use_cache,
        return_dict_in_generate=True, output_attentions=True, output_hidden_states=True, output_scores=True,
        output_logits=True,
    )
    _check_generate_outputs(model, out, batch_size=2, grid=grid, prompt_length=1, use_cache=use_cache)
    # The attentions are the model's: the last step's equal a full forward over the finished sequence.
    full = model(input_ids=batch()["input_ids"], labels=model.sequences_to_grid(out.sequences, grid),
                 output_attentions=True)
    keys = out.decoder_attentions[-1][0].shape[-1]
    torch.testing.assert_close(out.decoder_attentions[-1][0][:, :, -1], full.decoder_attentions[0][:, :, keys - 1, :keys])


def test_row3_generate_with_known_prefix_guidance_and_several_sequences():
    model = tiny().eval()
    grid, prefix = (2, 2, 2), 3
    known = torch.randint(0, 64, (2, *grid), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(grid, dtype=torch.bool)
    mask.view(-1)[:prefix] = False  # the first 3 tokens are known: one pre-fill pass of <bos> + 3
    torch.manual_seed(0)
    out = model.generate(
        input_ids=batch()["input_ids"], visual_grid=grid, known_tokens=known, generate_mask=mask, guidance_scale=2.0,
        do_sample=True, num_return_sequences=2, return_dict_in_generate=True, output_attentions=True,
        output_hidden_states=True, output_scores=True, output_logits=True,
    )
    _check_generate_outputs(model, out, batch_size=4, grid=grid, prompt_length=1 + prefix, use_cache=True)
    assert torch.equal(out.sequences[:, 1:1 + prefix], known.flatten(1)[:, :prefix].repeat_interleave(2, 0))


# ---------------------------------------------------------------------------------------------------------------------
# Row 4: gradient checkpointing
# ---------------------------------------------------------------------------------------------------------------------


def _loss_and_grads(model, inputs):
    model.zero_grad()
    torch.manual_seed(123)  # the same dropout masks with and without checkpointing
    loss = model(**inputs).loss
    loss.backward()
    return loss.detach(), {name.removeprefix("_orig_mod."): p.grad.clone() for name, p in model.named_parameters()
                           if p.grad is not None}


@pytest.mark.parametrize("use_reentrant", [False, True], ids=["non_reentrant", "reentrant"])
def test_row4_gradient_checkpointing_gives_the_same_loss_and_gradients(use_reentrant):
    model = tiny(dropout=0.1, attention_dropout=0.1).train()  # paper-scale training uses dropout
    inputs = batch()
    loss, grads = _loss_and_grads(model, inputs)
    calls = []
    model.model.decoder.layers[0].self_attn.register_forward_hook(lambda *args: calls.append(1))
    with pytest.warns(FutureWarning):  # transformers 5.25 renamed it activation_checkpointing_enable
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
    assert model.is_activation_checkpointing
    assert all(layer.gradient_checkpointing for layer in model.model.encoder.layers + model.model.decoder.layers)
    calls.clear()
    checkpointed_loss, checkpointed_grads = _loss_and_grads(model, inputs)
    assert len(calls) == 2  # the layer ran again in the backward pass: it was checkpointed
    torch.testing.assert_close(checkpointed_loss, loss, atol=0, rtol=0)
    assert checkpointed_grads.keys() == grads.keys()
    for name in grads:
        torch.testing.assert_close(checkpointed_grads[name], grads[name], atol=1e-6, rtol=1e-5, msg=name)


def test_gradient_checkpointing_enable_disable_and_generation_under_it():
    model = tiny()
    assert model.supports_gradient_checkpointing and not model.is_activation_checkpointing
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing
    # generate() in train mode with checkpointing on: no gradients, so layers run normally with the cache.
    model.train()
    seq = model.generate(input_ids=batch()["input_ids"], visual_grid=(1, 2, 2), do_sample=False)
    model.eval()
    assert torch.equal(seq, model.generate(input_ids=batch()["input_ids"], visual_grid=(1, 2, 2), do_sample=False))
    model.activation_checkpointing_disable()
    assert not model.is_activation_checkpointing
    assert not any(layer.gradient_checkpointing for layer in model.model.decoder.layers)


# ---------------------------------------------------------------------------------------------------------------------
# Row 5: input embeddings are the text table; resize_token_embeddings resizes it and nothing visual
# ---------------------------------------------------------------------------------------------------------------------


def test_model_get_set_embeddings():
    model = tiny()
    text_table = model.model.encoder.text_embedding.tokens
    assert model.get_input_embeddings() is text_table and model.model.get_input_embeddings() is text_table
    assert model.get_output_embeddings() is model.lm_head
    assert model.get_decoder().get_input_embeddings() is model.model.decoder.embedding.tokens
    replacement = nn.Embedding(512, 64)
    model.set_input_embeddings(replacement)
    assert model.model.encoder.text_embedding.tokens is replacement


@pytest.mark.parametrize("model_class", [NuwaForConditionalGeneration, NuwaModel])
def test_resize_tokens_embeddings_touches_only_the_text_table(model_class):
    model = tiny(model_class).eval()
    inputs = batch() if model_class is NuwaForConditionalGeneration else base_inputs()
    visual = {name: p.clone() for name, p in model.named_parameters() if "text_embedding" not in name}
    old = model.get_input_embeddings().weight.clone()
    before = model(**inputs)[0]
    for size in (512 + 10, 512 - 15):
        table = model.resize_token_embeddings(size)
        assert table.weight.shape == (size, 64) and model.config.text_vocab_size == size
        keep = min(size, old.shape[0])
        torch.testing.assert_close(model.get_input_embeddings().weight[:keep], old[:keep])
        model(**inputs)  # the next forward works
    table = model.resize_token_embeddings(pad_to_multiple_of=8)
    assert table.weight.shape[0] % 8 == 0 and model.config.text_vocab_size == table.weight.shape[0]
    for name, p in model.named_parameters():
        if "text_embedding" not in name:
            assert torch.equal(p, visual[name]), name
    if model_class is NuwaForConditionalGeneration:
        assert model.lm_head.weight.shape == (64, 64)
        model.tie_weights()  # nothing to tie: the head predicts visual codes
        assert model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    # The ids the resize kept give the same output as before.
    torch.testing.assert_close(model(**inputs)[0], before)


def test_resize_refuses_to_drop_the_pad_token_and_the_decoder_vocabulary():
    model = tiny(text_pad_token_id=9)
    with pytest.raises(ValueError, match="pad token"):
        model.resize_token_embeddings(5)
    with pytest.raises(ValueError, match="codebook"):
        model.get_decoder().resize_token_embeddings(100)


@pytest.mark.skipif(not (CHECKPOINT / "config.json").is_file(), reason="checkpoints/nuwa-tiny not present")
def test_row5_tokenizer_add_tokens_then_resize_then_forward_and_reload(tmp_path):
    from transformers import AutoTokenizer

    import nuwa_hf  # noqa: F401

    tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT)
    model = AutoModelForSeq2SeqLM.from_pretrained(CHECKPOINT).eval()
    head = model.lm_head.weight.clone()
    assert tokenizer.add_tokens(["<zorblax>", "<quux>"]) == 2
    ids = tokenizer(["a <zorblax> digit"], return_tensors="pt").input_ids
    assert int(ids.max()) >= model.config.text_vocab_size
    with pytest.raises(ValueError, match="resize_token_embeddings"):
        model(input_ids=ids, labels=torch.zeros(1, 1, 2, 2, dtype=torch.long))
    model.resize_token_embeddings(len(tokenizer))
    assert model.config.text_vocab_size == len(tokenizer)
    assert torch.equal(model.lm_head.weight, head)
    logits = model(input_ids=ids, labels=torch.zeros(1, 1, 2, 2, dtype=torch.long)).logits
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    assert reloaded.config.text_vocab_size == len(tokenizer)
    torch.testing.assert_close(reloaded(input_ids=ids, labels=torch.zeros(1, 1, 2, 2, dtype=torch.long)).logits, logits)


# ---------------------------------------------------------------------------------------------------------------------
# Row 12: torch.compile(fullgraph=True), misspelt arguments, dummy_inputs
# ---------------------------------------------------------------------------------------------------------------------


def test_row12_torch_compile_fullgraph_forward_and_backward():
    # aot_eager traces the whole forward and backward into one graph each (fullgraph: any break is an error)
    # without inductor's code generation, which takes a minute on 2 CPU cores and is not what is checked here.
    model = tiny()
    inputs = batch()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(**inputs).logits, model(**inputs).logits, atol=1e-5, rtol=1e-4)
    model.train()
    loss, grads = _loss_and_grads(model, inputs)
    compiled_loss, compiled_grads = _loss_and_grads(compiled, inputs)
    torch.testing.assert_close(compiled_loss, loss, atol=1e-5, rtol=1e-5)
    for name in grads:
        torch.testing.assert_close(compiled_grads[name], grads[name], atol=1e-5, rtol=1e-4, msg=name)
    # Eager calls keep the value checks the compiled graph leaves out.
    with pytest.raises(ValueError, match="visual codes"):
        model(input_ids=inputs["input_ids"], labels=torch.full((2, 1, 2, 2), 64))


@pytest.mark.parametrize("model_class", [NuwaForConditionalGeneration, NuwaModel])
def test_row12_misspelt_argument_raises_type_error_naming_the_valid_ones(model_class):
    model = tiny(model_class)
    typo, meant = ("lables", "labels") if model_class is NuwaForConditionalGeneration else ("visual_gird", "visual_grid")
    with pytest.raises(TypeError, match=rf"'{typo}' \(did you mean '{meant}'\?\).*Valid arguments: input_ids") as error:
        model(**base_inputs(), **{typo: None})
    assert "decoder_input_ids" in str(error.value)
    with pytest.raises(TypeError, match="visual_gird"):
        model.get_encoder()(input_ids=torch.ones(1, 3, dtype=torch.long), visual_gird=(1, 2, 2))


def test_past_key_values_is_accepted_as_the_older_name_of_cache():
    from nuwa_hf.models.nuwa import make_generation_cache

    model = tiny().eval()

    cache = make_generation_cache(model.config.decoder_layers, (1, 2, 2))
    bos = torch.full((2, 1), 64)
    out = model(input_ids=batch()["input_ids"], decoder_input_ids=bos, visual_grid=(1, 2, 2), past_key_values=cache)
    assert out.cache is cache and cache.get_seq_length() == 1


@pytest.mark.parametrize("model_class", [NuwaForConditionalGeneration, NuwaModel])
def test_row12_dummy_inputs_run(model_class):
    model = tiny(model_class).eval()
    out = model(**model.dummy_inputs)
    assert out[0].shape[:2] == (2, 4)
    encoder = model.get_encoder()
    assert encoder(**encoder.dummy_inputs).last_hidden_state.shape == (2, TEXT_LENGTH, 64)
    decoder = model.get_decoder()
    assert decoder(**decoder.dummy_inputs).last_hidden_state.shape == (2, 4, 64)


# ---------------------------------------------------------------------------------------------------------------------
# The rest of ModelTesterMixin that applies
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_class", [NuwaForConditionalGeneration, NuwaModel])
def test_save_load_and_determinism(model_class, tmp_path):
    model = tiny(model_class).eval()
    inputs = batch() if model_class is NuwaForConditionalGeneration else base_inputs()
    first, second = model(**inputs)[0], model(**inputs)[0]
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    model.save_pretrained(tmp_path)
    loaded = model_class.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(**inputs)[0], first, atol=1e-5, rtol=0)


def test_correct_missing_keys_between_base_and_head_model(tmp_path):
    base = tiny(NuwaModel, seed=3)
    base.save_pretrained(tmp_path / "base")
    head, info = NuwaForConditionalGeneration.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert set(info["missing_keys"]) == {"lm_head.weight"} and not info["unexpected_keys"]
    for name, p in base.state_dict().items():
        assert torch.equal(head.model.state_dict()[name], p), name
    head.save_pretrained(tmp_path / "head")
    base_again, info = NuwaModel.from_pretrained(tmp_path / "head", output_loading_info=True)
    assert not info["missing_keys"]
    torch.testing.assert_close(base_again(**base_inputs())[0], head.model(**base_inputs())[0])


def test_batching_equivalence():
    model = tiny().eval()
    inputs = batch(size=3)
    together = model(**inputs, output_hidden_states=True)
    for row in range(3):
        alone = model(**{k: v[row:row + 1] for k, v in inputs.items()}, output_hidden_states=True)
        torch.testing.assert_close(alone.logits, together.logits[row:row + 1], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(alone.decoder_hidden_states[1],
                                   together.decoder_hidden_states[1][row:row + 1], atol=1e-5, rtol=1e-4)


def test_main_input_name_and_forward_signature():
    import inspect

    for model_class in (NuwaForConditionalGeneration, NuwaModel):
        names = list(inspect.signature(model_class.forward).parameters)[1:]
        assert names[0] == model_class.main_input_name == "input_ids"
        assert names[:2] == ["input_ids", "attention_mask"]
        for expected in ("decoder_input_ids", "encoder_outputs", "cache", "output_attentions",
                         "output_hidden_states", "return_dict", "decoder_attention_mask"):
            assert expected in names


def test_config_round_trip(tmp_path):
    config = NuwaConfig.tiny(video_extent=(3, 1, 3), text_vocab_size=600)
    config.save_pretrained(tmp_path)
    loaded = NuwaConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.num_hidden_layers == config.decoder_layers and loaded.is_encoder_decoder
    assert NuwaConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()


@pytest.mark.parametrize("model_class", [NuwaForConditionalGeneration, NuwaModel])
def test_use_cache_starts_a_cache_that_continues_decoding(model_class):
    """As in Bart: use_cache=True without a cache returns one; feeding the next token with it gives the same output as
    running the whole prefix again. Without use_cache (or with labels) no cache is made."""
    torch.manual_seed(0)
    model = tiny(model_class).eval()
    ids = batch()["input_ids"]
    prefix = torch.tensor([[64, 3, 7], [64, 1, 2]])
    first = model(input_ids=ids, decoder_input_ids=prefix[:, :2], visual_grid=(1, 2, 2), use_cache=True)
    assert first.cache is not None and first.cache.get_seq_length() == 2
    step = model(input_ids=ids, decoder_input_ids=prefix[:, 2:], visual_grid=(1, 2, 2), cache=first.cache)
    whole = model(input_ids=ids, decoder_input_ids=prefix, visual_grid=(1, 2, 2))
    assert whole.cache is None
    key = "logits" if model_class is NuwaForConditionalGeneration else "last_hidden_state"
    torch.testing.assert_close(step[key][:, -1], whole[key][:, -1], rtol=1e-5, atol=1e-5)
    if model_class is NuwaForConditionalGeneration:
        labels = torch.tensor([[3, 7, 1, 0], [1, 2, 0, 0]])
        assert model(input_ids=ids, labels=labels, visual_grid=(1, 2, 2), use_cache=True).cache is None
