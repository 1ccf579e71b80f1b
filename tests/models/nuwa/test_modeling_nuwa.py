"""NuwaConfig / NuwaForConditionalGeneration: loading, attention implementations, training signal, errors."""

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

import nuwa_hf
from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration, NuwaModel


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return NuwaForConditionalGeneration(NuwaConfig.tiny(**overrides))


def test_paper_preset_parameter_count_on_meta_device():
    config = NuwaConfig.paper()
    with torch.device("meta"):
        model = NuwaForConditionalGeneration(config)
    count = sum(p.numel() for p in model.parameters())
    d, ffn, n = 1280, 5120, 12288
    attention, mlp, norm = 4 * (d * d + d), 2 * d * ffn + ffn + d, 2 * d
    expected = (
        8 * (attention + mlp + 2 * norm) + 24 * (2 * attention + mlp + 3 * norm) + 2 * norm  # layers + final norms
        + 49408 * d + (77 + 1 + 1) * d + 12288 * d + (10 + 21 + 21) * d + d  # encoder embeddings + null condition
        + (n + 1) * d + (10 + 21 + 21) * d + d * n  # decoder embeddings + head
    )
    assert count == expected
    assert 0.85e9 < count < 0.98e9  # the paper reports 870M
    assert model.config.head_dim == 64 and model.config.num_attention_heads == 20


def test_save_load_round_trip_is_bit_exact_through_auto_classes(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    assert isinstance(AutoConfig.from_pretrained(tmp_path), NuwaConfig)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert type(loaded) is NuwaForConditionalGeneration
    assert loaded.config._attn_implementation == "nuwa_3dna"
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for name in state:
        assert torch.equal(state[name], loaded_state[name]), name
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is NuwaModel
    text, labels = torch.randint(0, 512, (2, 7)), torch.randint(0, 64, (2, 2, 4, 4))
    model.eval(), loaded.eval()
    torch.testing.assert_close(model(input_ids=text, labels=labels).logits, loaded(input_ids=text, labels=labels).logits,
                               atol=0, rtol=0)


def test_the_bare_model_from_automodel_names_the_class_that_generates(tmp_path):
    """AutoModel loads NuwaModel (no head, as BartModel); a user who calls generate() on it learns which class to load,
    instead of torch's "'NuwaModel' object has no attribute 'generate'"."""
    tiny_model().save_pretrained(tmp_path)
    base = AutoModel.from_pretrained(tmp_path)
    for call in (lambda: base.generate(input_ids=torch.randint(0, 512, (1, 5))), lambda: base.generate_visual()):
        with pytest.raises(TypeError, match=r"AutoModelForSeq2SeqLM\.from_pretrained.*pipeline\(") as raised:
            call()
        assert "NuwaForConditionalGeneration" in str(raised.value)
    generated = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).generate(
        input_ids=torch.randint(0, 512, (1, 5)), visual_grid=(1, 2, 2), do_sample=False)
    assert generated.shape == (1, 1 + 4)  # the class the message names does generate


@pytest.mark.parametrize("rope", [False, True], ids=["absolute", "rope-3d"])
@pytest.mark.parametrize("condition", ["text", "sketch", "none"])
def test_attention_implementations_agree_in_values_and_gradients(condition, rope):
    """3DNA backends (tiles in training), sdpa and eager (the dense reference mask); with 3D RoPE too (queries and
    keys rotated before any backend)."""
    model = tiny_model(dropout=0.0, rope_3d=rope)
    model.train()
    labels = torch.randint(0, 64, (2, 3, 4, 5))
    inputs = dict(labels=labels)
    if condition == "text":
        inputs["input_ids"] = torch.randint(0, 512, (2, 9))
    elif condition == "sketch":
        inputs["sketch_tokens"] = torch.randint(0, 32, (2, 2, 3, 3))
    results = {}
    for implementation in ("nuwa_3dna", "sdpa", "eager"):
        model.set_attn_implementation(implementation)
        model.zero_grad()
        out = model(**inputs)
        out.loss.backward()
        results[implementation] = (out.logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None])
    ref_logits, ref_grads = results["eager"]
    for implementation in ("nuwa_3dna", "sdpa"):
        logits, grads = results[implementation]
        torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-4)
        assert len(grads) == len(ref_grads)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)


def test_prompt_result_does_not_depend_on_batch_padding():
    model = tiny_model().eval()
    prompt = torch.randint(1, 512, (1, 5))
    labels = torch.randint(0, 64, (1, 1, 4, 4))
    alone = model(input_ids=prompt, labels=labels).logits
    padded = torch.cat([prompt, torch.zeros(1, 6, dtype=torch.long)], dim=1)  # as a longer batch would pad it
    torch.testing.assert_close(model(input_ids=padded, labels=labels).logits, alone)


def _overfit(model, inputs, steps=150):
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(steps):
        loss = model(**inputs).loss
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return first, loss.item()


@pytest.mark.parametrize("grid", [(1, 4, 4), (3, 4, 4)], ids=["image", "video"])
def test_tiny_model_overfits_a_few_token_grids(grid):
    model = tiny_model(seed=1)
    g = torch.Generator().manual_seed(2)
    inputs = dict(input_ids=torch.randint(0, 512, (4, 6), generator=g), labels=torch.randint(0, 64, (4, *grid), generator=g))
    first, last = _overfit(model, inputs)
    assert last < 0.1 * first, (first, last)


def test_images_and_videos_share_one_model():
    model = tiny_model().eval()
    text = torch.randint(0, 512, (1, 4))
    image = model(input_ids=text, labels=torch.randint(0, 64, (1, 1, 8, 8)))
    video = model(input_ids=text, labels=torch.randint(0, 64, (1, 4, 8, 8)))
    assert image.logits.shape == (1, 64, 64) and video.logits.shape == (1, 256, 64)


def test_trainer_style_loss_normalisation():
    model = tiny_model().eval()
    labels = torch.randint(0, 64, (2, 1, 4, 4))
    labels[0, 0, 0, :2] = -100
    mean = model(labels=labels).loss
    summed = model(labels=labels, num_items_in_batch=torch.tensor(10)).loss
    torch.testing.assert_close(summed, mean * 30 / 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(labels=torch.zeros(1, 5, 4, 4, dtype=torch.long)), r"larger than the model allows"),
        (dict(labels=torch.zeros(1, 1, 9, 4, dtype=torch.long)), r"larger than the model allows"),
        (dict(labels=torch.zeros(1, 1, 4, 4, dtype=torch.long), input_ids=torch.zeros(1, 17, dtype=torch.long)),
         "longer than max_text_length"),
        (dict(labels=torch.zeros(1, 1, 4, 4, dtype=torch.long), input_ids=torch.zeros(1, 3, dtype=torch.long),
              sketch_tokens=torch.zeros(1, 1, 2, 2, dtype=torch.long)), "not both"),
        (dict(labels=torch.zeros(1, 1, 4, 4, dtype=torch.long), condition_type="audio"), "unknown condition_type"),
        (dict(labels=torch.zeros(1, 1, 4, 4, dtype=torch.long), condition_type="text"), "needs input_ids"),
        (dict(labels=torch.zeros(1, 1, 4, 4, dtype=torch.long), input_ids=torch.zeros(1, 3, dtype=torch.long),
              condition_type="sketch"), "does not take text"),
        (dict(labels=torch.full((1, 1, 4, 4), 64)), r"visual codes in \[0, 64\)"),
        (dict(labels=torch.zeros(1, 1, 4, 4, dtype=torch.long), sketch_tokens=torch.full((1, 1, 2, 2), 99)),
         r"sketch tokens must lie in \[0, 32\)"),
        (dict(labels=torch.zeros(1, 1, 4, 4, dtype=torch.long), sketch_tokens=torch.zeros(1, 5, 2, 2, dtype=torch.long)),
         "sketch grid"),
        (dict(labels=torch.zeros(4, dtype=torch.long)), r"labels must be \(B, T, H, W\)"),
    ],
)
def test_clear_errors(kwargs, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=message):
        model(**kwargs)


def test_config_validation_errors():
    with pytest.raises(ValueError, match="divisible"):
        NuwaConfig.tiny(hidden_size=65)
    with pytest.raises(ValueError, match="odd"):
        NuwaConfig.tiny(video_extent=(3, 2, 3))
    with pytest.raises(ValueError, match="positive ints"):
        NuwaConfig.tiny(max_visual_grid=(0, 4, 4))


def test_registration_happens_on_import():
    assert AutoConfig.for_model("nuwa").__class__ is NuwaConfig
    assert nuwa_hf.NuwaConfig is NuwaConfig


def test_saved_folder_holds_data_only_and_names_code_only_when_asked(tmp_path):
    """Issue 29: save_pretrained writes no code and no auto_map; remote_code= names a code repository's classes
    (loading such a folder without trust_remote_code still uses the installed classes). The remote-code load itself,
    in a process without nuwa_hf: tests/hub/test_hub_end_to_end.py."""
    import json

    from huggingface_hub import ModelCard

    model = tiny_model(seed=4).eval()
    model.save_pretrained(tmp_path / "plain")
    files = sorted(path.name for path in (tmp_path / "plain").iterdir())
    assert files == ["README.md", "checksums.json", "config.json", "generation_config.json", "model.safetensors"]
    config = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert "auto_map" not in config and "custom_pipelines" not in config
    assert ModelCard.load(tmp_path / "plain" / "README.md").data.library_name == "nuwa-hf"

    model.save_pretrained(tmp_path / "pointing", remote_code="someone/nuwa-hf-code")
    assert not list((tmp_path / "pointing").glob("*.py"))
    config = json.loads((tmp_path / "pointing" / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSeq2SeqLM"].startswith("someone/nuwa-hf-code--v")
    assert config["auto_map"]["AutoModelForSeq2SeqLM"].endswith("/modeling_nuwa.NuwaForConditionalGeneration")
    assert "auto_map" not in model.config.to_dict(), "the references are written to the folder, not kept"
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "pointing")
    assert type(reloaded) is NuwaForConditionalGeneration
    expected = model.generate(input_ids=torch.tensor([[1, 2, 3]]), visual_grid=(2, 3, 3), do_sample=False)
    assert torch.equal(reloaded.generate(input_ids=torch.tensor([[1, 2, 3]]), visual_grid=(2, 3, 3), do_sample=False),
                       expected)
