"""NUWA generate(): KV cache exactness, constrained decoding, guidance, sampling arguments, long videos, errors."""

import math

import pytest
import torch


TEXT = torch.tensor([[5, 17, 99, 3], [8, 2, 400, 11]])


@pytest.mark.parametrize("grid", [(1, 4, 5), (3, 3, 4)], ids=["image", "video"])
@pytest.mark.parametrize("condition", ["text", "sketch", "none"])
def test_cached_greedy_equals_uncached_token_for_token(model, grid, condition):
    kwargs = dict(visual_grid=grid, do_sample=False)
    if condition == "text":
        kwargs["input_ids"] = TEXT
    elif condition == "sketch":
        kwargs["sketch_tokens"] = torch.randint(0, 32, (2, 2, 3, 3), generator=torch.Generator().manual_seed(0))
    else:
        kwargs["batch_size"] = 2
    cached = model.generate(**kwargs)
    uncached = model.generate(use_cache=False, **kwargs)
    assert cached.shape == (2, 1 + grid[0] * grid[1] * grid[2])
    assert torch.equal(cached, uncached)
    assert (cached[:, 0] == model.config.visual_bos_token_id).all()


def test_cached_logits_equal_full_forward_at_every_step(model):
    grid = (2, 4, 4)
    torch.manual_seed(3)
    out = model.generate(input_ids=TEXT, visual_grid=grid, do_sample=True, top_k=10, return_dict_in_generate=True,
                         output_logits=True)
    step_logits = torch.stack(out.logits, dim=1)  # (B, 32, N) raw logits seen at each step
    full = model(input_ids=TEXT, labels=model.sequences_to_grid(out.sequences, grid)).logits
    torch.testing.assert_close(step_logits, full, atol=1e-4, rtol=1e-4)


def test_sampling_never_emits_special_ids_and_respects_top_k(model):
    torch.manual_seed(0)
    seq = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, temperature=5.0, top_p=0.99,
                         num_return_sequences=3)
    assert seq.shape == (6, 17)
    assert int(seq[:, 1:].max()) < model.config.visual_vocab_size
    torch.manual_seed(0)
    out = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, top_k=1, return_dict_in_generate=True,
                         output_logits=True)
    greedy_choice = torch.stack(out.logits, 1).argmax(-1)
    assert torch.equal(out.sequences[:, 1:], greedy_choice)  # top_k=1 sampling is greedy


def test_same_seed_same_sample_and_different_seed_differs(model):
    def sample(seed):
        torch.manual_seed(seed)
        return model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True)

    assert torch.equal(sample(1), sample(1))
    assert not torch.equal(sample(1), sample(2))


@pytest.mark.parametrize("seed", range(3))
def test_constrained_decoding_never_changes_a_known_token(model, seed):
    g = torch.Generator().manual_seed(seed)
    grid = (2, 4, 4)
    known = torch.randint(0, 64, (2, *grid), generator=g)
    mask = torch.rand(2, *grid, generator=g) < 0.5
    torch.manual_seed(seed)
    seq = model.generate(input_ids=TEXT, visual_grid=grid, known_tokens=known, generate_mask=mask, do_sample=True,
                         temperature=2.0)
    tokens = model.sequences_to_grid(seq, grid)
    assert torch.equal(tokens[~mask], known[~mask])
    # The generated part conditions on the known tokens: it equals teacher-forced greedy decoding position by position.
    greedy = model.generate(input_ids=TEXT, visual_grid=grid, known_tokens=known, generate_mask=mask, do_sample=False)
    logits = model(input_ids=TEXT, labels=model.sequences_to_grid(greedy, grid)).logits.argmax(-1).view(2, *grid)
    assert torch.equal(model.sequences_to_grid(greedy, grid)[mask], logits[mask])


def test_video_prediction_prefix_is_kept_and_prefilled(model):
    grid = (3, 4, 4)
    first = torch.randint(0, 64, (2, 1, 4, 4))
    known = torch.cat([first, torch.zeros(2, 2, 4, 4, dtype=torch.long)], 1)
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[1:] = True
    seq = model.generate(visual_grid=grid, known_tokens=known, generate_mask=mask, do_sample=False)
    tokens = model.sequences_to_grid(seq, grid)
    assert torch.equal(tokens[:, 0], first[:, 0])
    uncached = model.generate(visual_grid=grid, known_tokens=known, generate_mask=mask, do_sample=False, use_cache=False)
    assert torch.equal(seq, uncached)


def test_guidance_scale_one_equals_plain_sampling(model):
    torch.manual_seed(5)
    plain = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True)
    torch.manual_seed(5)
    guided = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, guidance_scale=1.0)
    assert torch.equal(plain, guided)


@pytest.mark.parametrize("use_cache", [True, False])
def test_guidance_combines_conditional_and_null_logits(model, use_cache):
    grid, scale = (1, 4, 4), 3.0
    # Guidance is a logits processor (issue 19): as in transformers, `logits` are the model's raw (conditional) logits
    # and `scores` the processed ones; greedy decoding adds no warper after it.
    out = model.generate(input_ids=TEXT, visual_grid=grid, do_sample=False, guidance_scale=scale,
                         return_dict_in_generate=True, output_logits=True, output_scores=True, use_cache=use_cache)
    labels = model.sequences_to_grid(out.sequences, grid)
    cond = model(input_ids=TEXT, labels=labels).logits
    null_text = torch.full_like(TEXT, model.config.text_pad_token_id)
    null = model(input_ids=null_text, labels=labels).logits
    torch.testing.assert_close(torch.stack(out.logits, 1), cond, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.stack(out.scores, 1), null + scale * (cond - null), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("path", ["fast", "module", "uncached"])
def test_negative_prompt_ids_replace_the_null_prompt_in_guidance(model, path):
    """Guidance against a negative prompt: scores = neg + s * (cond - neg), neg being the logits under the negative
    text; one negative for the batch or one per row, on every decoding path, with num_return_sequences too."""
    grid, scale = (1, 4, 4), 3.0
    negative = torch.tensor([[7, 7, 300, 2]])
    options = {"fast": {}, "module": {"fast_decoding": False}, "uncached": {"use_cache": False}}[path]
    out = model.generate(input_ids=TEXT, visual_grid=grid, do_sample=False, guidance_scale=scale,
                         negative_prompt_ids=negative, return_dict_in_generate=True, output_logits=True,
                         output_scores=True, **options)
    labels = model.sequences_to_grid(out.sequences, grid)
    cond = model(input_ids=TEXT, labels=labels).logits
    neg = model(input_ids=negative.expand(2, -1), labels=labels).logits
    torch.testing.assert_close(torch.stack(out.scores, 1), neg + scale * (cond - neg), atol=1e-4, rtol=1e-4)
    plain = model.generate(input_ids=TEXT, visual_grid=grid, do_sample=False, guidance_scale=scale, **options)
    assert not torch.equal(out.sequences, plain)  # the negative changed what was drawn
    per_row = model.generate(input_ids=TEXT, visual_grid=grid, do_sample=True, top_k=1, guidance_scale=scale,
                             negative_prompt_ids=negative.expand(2, -1).clone(), num_return_sequences=2, **options)
    assert torch.equal(per_row[::2], out.sequences) and torch.equal(per_row[1::2], out.sequences)


def test_negative_prompt_ids_errors_name_the_fix(model):
    negative = torch.tensor([[7, 7, 300, 2]])
    with pytest.raises(ValueError, match="guidance_scale > 1"):
        model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), guidance_scale=1.0, negative_prompt_ids=negative)
    with pytest.raises(ValueError, match="need a text condition"):
        model.generate(sketch_tokens=torch.zeros(2, 2, 3, 3, dtype=torch.long), visual_grid=(1, 4, 4),
                       guidance_scale=3.0, negative_prompt_ids=negative)
    with pytest.raises(ValueError, match=r"batch 1 or 2"):
        model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), guidance_scale=3.0,
                       negative_prompt_ids=negative.expand(3, -1))


def test_long_video_slides_past_the_trained_length(model):
    grid = (3, 4, 4)
    video = model.generate_long_video(input_ids=TEXT, visual_grid=grid, num_frames=6, do_sample=False)
    assert video.shape == (2, 6, 4, 4)
    first_window = model.sequences_to_grid(model.generate(input_ids=TEXT, visual_grid=grid, do_sample=False), grid)
    assert torch.equal(video[:, :3], first_window)
    # Frame 4 is the greedy continuation of frames 2-3 as known tokens.
    known = torch.cat([video[:, 1:3], torch.zeros(2, 1, 4, 4, dtype=torch.long)], 1)
    mask = torch.zeros(grid, dtype=torch.bool)
    mask[2] = True
    nxt = model.sequences_to_grid(
        model.generate(input_ids=TEXT, visual_grid=grid, known_tokens=known, generate_mask=mask, do_sample=False), grid
    )
    assert torch.equal(video[:, 3], nxt[:, 2])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(visual_grid=(9, 4, 4)), "larger than the model allows"),
        (dict(visual_grid=(1, 4)), "triple"),
        (dict(visual_grid=(1, 4, 4), max_new_tokens=3), "does not match visual_grid"),
        (dict(max_new_tokens=20), "not a whole number of 8x8-token frames"),
        (dict(visual_grid=(1, 4, 4), num_beams=2), "beam search is not supported"),
        (dict(visual_grid=(1, 4, 4), max_length=17), "max_length is set by visual_grid"),
        (dict(visual_grid=(1, 4, 4), known_tokens=torch.zeros(2, 1, 4, 4, dtype=torch.long)), "needs both"),
        (dict(visual_grid=(1, 4, 4), known_tokens=torch.zeros(2, 1, 3, 3, dtype=torch.long),
              generate_mask=torch.ones(1, 3, 3, dtype=torch.bool)), "to match visual_grid"),
        (dict(visual_grid=(1, 4, 4), known_tokens=torch.zeros(2, 1, 4, 4, dtype=torch.long),
              generate_mask=torch.ones(1, 4, 4)), "boolean"),
        (dict(visual_grid=(1, 4, 4), known_tokens=torch.zeros(2, 1, 4, 4, dtype=torch.long),
              generate_mask=torch.zeros(1, 4, 4, dtype=torch.bool)), "nothing to generate"),
        (dict(visual_grid=(1, 4, 4), known_tokens=torch.full((2, 1, 4, 4), 70),
              generate_mask=torch.ones(1, 4, 4, dtype=torch.bool).index_fill(1, torch.tensor([0]), False)),
         "visual codes"),
        (dict(visual_grid=(1, 4, 4), batch_size=3), "inconsistent batch sizes"),
    ],
)
def test_bad_generation_arguments(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.generate(input_ids=TEXT, **kwargs)


def test_generate_takes_its_grid_from_max_new_tokens_known_tokens_or_the_config(model):
    """transformers users pass max_new_tokens, or nothing: the grid follows (whole frames of the model's grid)."""
    height, width = model.config.max_visual_grid[1:]
    torch.manual_seed(0)
    image = model.generate(input_ids=TEXT, max_new_tokens=height * width, do_sample=False)
    torch.manual_seed(0)
    same = model.generate(input_ids=TEXT, visual_grid=(1, height, width), do_sample=False)
    assert torch.equal(image, same) and image.shape[-1] == 1 + height * width
    everything = model.generate(input_ids=TEXT, do_sample=False)
    assert everything.shape[-1] == 1 + math.prod(model.config.max_visual_grid)
    known = model.sequences_to_grid(image, (1, height, width))
    mask = torch.zeros(1, height, width, dtype=torch.bool)
    mask[:, height // 2:] = True
    completed = model.generate(input_ids=TEXT, known_tokens=known, generate_mask=mask, do_sample=False)
    assert torch.equal(model.sequences_to_grid(completed, (1, height, width))[:, :, : height // 2],
                       known[:, :, : height // 2])


def test_guidance_without_condition_is_an_error(model):
    with pytest.raises(ValueError, match="needs a condition"):
        model.generate(visual_grid=(1, 4, 4), batch_size=1, guidance_scale=3.0)


def test_guidance_scale_saved_in_generation_config_is_the_default(model, tmp_path):
    model.generation_config.guidance_scale = 2.5
    try:
        torch.manual_seed(0)
        by_default = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True)
        torch.manual_seed(0)
        explicit = model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), do_sample=True, guidance_scale=2.5)
        assert torch.equal(by_default, explicit)
        # The "None" condition has nothing to guide toward: the default does not apply there.
        assert model.generate(visual_grid=(1, 4, 4), batch_size=1, do_sample=False).shape == (1, 17)
    finally:
        model.generation_config.guidance_scale = None


def test_decoding_steps_make_no_value_checks_and_guidance_is_a_logits_processor(model, monkeypatch):
    """Issue 19 point 7: the per-token forward runs no host-side range check (a device-to-host sync per token on a
    GPU), and guidance / forcing are logits processors that a caller's own processors follow."""
    from transformers import LogitsProcessor

    from nuwa_hf.models.nuwa import NuwaGuidanceLogitsProcessor, NuwaKnownTokensLogitsProcessor
    from nuwa_hf.models.nuwa import modeling_nuwa

    checks = []
    original = modeling_nuwa._check_ids_in_range
    monkeypatch.setattr(modeling_nuwa, "_check_ids_in_range", lambda *a, **k: checks.append(1) or original(*a, **k))
    seen = []

    class Record(LogitsProcessor):
        def __call__(self, input_ids, scores):
            seen.append(scores.clone())
            return scores

    known = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    mask = torch.ones(1, 4, 4, dtype=torch.bool)
    mask[0, 1, 1] = False  # grid position 5 is known (not a prefix, so every position is a decoding step)
    model.generate(input_ids=TEXT, visual_grid=(1, 4, 4), known_tokens=known, generate_mask=mask, do_sample=False,
                   guidance_scale=2.0, logits_processor=[Record()])
    assert len(checks) <= 2, f"{len(checks)} range checks for 16 decoding steps (only the condition is checked)"
    assert len(seen) == 16
    forced = seen[5]  # position 5 is known: the forcing ran before the caller's processor
    assert torch.isinf(forced).sum(dim=-1).tolist() == [forced.shape[-1] - 1] * 2
    assert not torch.isinf(seen[4]).any()
    assert issubclass(NuwaGuidanceLogitsProcessor, LogitsProcessor)
    assert issubclass(NuwaKnownTokensLogitsProcessor, LogitsProcessor)
