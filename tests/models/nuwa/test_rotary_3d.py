"""3D rotary position embeddings (config.rope_3d): scores depend on offsets, the fast decoding step computes the same
model, and the option is saved with the config. (Every attention implementation against the eager reference, with
RoPE: tests/models/nuwa/test_modeling_nuwa.py.)"""

import pytest
import torch

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.models.nuwa.decoding_nuwa import NuwaDecodingStep
from nuwa_hf.ops import apply_rotary, rotary_3d_tables

TEXT = torch.tensor([[5, 17, 99, 3], [8, 2, 400, 11]])


def rope_model(**overrides):
    torch.manual_seed(0)
    return NuwaForConditionalGeneration(NuwaConfig.tiny(rope_3d=True, **overrides)).eval()


def raster(grid, t, h, w):
    return (t * grid[1] + h) * grid[2] + w


@pytest.mark.parametrize("shift", [(1, 0, 0), (0, 2, 0), (0, 0, 3), (1, 1, 1)])
def test_scores_depend_only_on_the_offset_between_query_and_key(shift):
    """The same q and k vectors placed at (p, p') and at (p + s, p' + s) give the same score: a relative position
    code. Scores for different offsets differ (the rotation is not the identity)."""
    grid, head_dim = (4, 6, 7), 16
    cos, sin = rotary_3d_tables(grid, head_dim, 100.0, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    q, k = torch.randn(head_dim, generator=generator, dtype=torch.float64), torch.randn(head_dim, generator=generator,
                                                                                         dtype=torch.float64)

    def score(query_at, key_at):
        i, j = raster(grid, *query_at), raster(grid, *key_at)
        return apply_rotary(q[None], cos[i:i + 1], sin[i:i + 1])[0] @ apply_rotary(k[None], cos[j:j + 1], sin[j:j + 1])[0]

    query_at, key_at = (1, 2, 3), (0, 1, 1)
    moved = lambda position: tuple(a + b for a, b in zip(position, shift))  # noqa: E731
    torch.testing.assert_close(score(query_at, key_at), score(moved(query_at), moved(key_at)))
    assert not torch.allclose(score(query_at, key_at), score(query_at, moved(key_at)))


def test_rotation_keeps_norms_and_position_zero_is_the_identity():
    cos, sin = rotary_3d_tables((3, 4, 5), 12, 100.0)
    x = torch.randn(2, 3, 60, 12)
    rotated = apply_rotary(x, cos, sin)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rotated[:, :, 0], x[:, :, 0])


def test_rope_is_off_by_default_and_changes_the_model_when_on():
    assert NuwaConfig.tiny().rope_3d is False
    torch.manual_seed(0)
    plain = NuwaForConditionalGeneration(NuwaConfig.tiny()).eval()
    rotary = rope_model()
    rotary.load_state_dict(plain.state_dict())  # same weights, no new parameters
    labels = torch.randint(0, 64, (2, 2, 3, 3))
    assert not torch.allclose(plain(input_ids=TEXT, labels=labels).logits, rotary(input_ids=TEXT, labels=labels).logits)


@pytest.mark.parametrize("extents", ["paper", "whole"], ids=["windowed", "whole-grid"])
@pytest.mark.parametrize("grid", [(1, 4, 5), (3, 3, 4)], ids=["image", "video"])
def test_decoding_step_and_static_step_equal_the_forward(grid, extents):
    """The fast decoding step rotates each new key once before it enters the buffers: a prefill of 3 ids then one id
    per call gives the full forward's logits, and static_step (the CUDA-graph form) gives the step's."""
    overrides = {} if extents == "paper" else {"image_extent": (None, None, None), "video_extent": (None, None, None)}
    model = rope_model(**overrides)
    total = grid[0] * grid[1] * grid[2]
    ids = torch.randint(0, 64, (2, total), generator=torch.Generator().manual_seed(1))
    ids[:, 0] = model.config.visual_bos_token_id
    full = model(input_ids=TEXT, decoder_input_ids=ids, visual_grid=grid).logits
    encoded = model.encode_condition(input_ids=TEXT)
    step = NuwaDecodingStep(model, encoded, grid)
    pieces = [step(ids[:, :3])] + [step(ids[:, p:p + 1]) for p in range(3, total)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    static, position = NuwaDecodingStep(model, encoded, grid), torch.zeros(1, dtype=torch.long)
    for p in range(total):
        position.fill_(p)
        torch.testing.assert_close(static.static_step(ids[:, p:p + 1], position), full[:, p:p + 1],
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("guidance", [None, 3.0])
def test_generate_samples_the_same_tokens_on_the_fast_and_module_paths(guidance):
    model = rope_model()
    out = {}
    for fast in (True, False):
        torch.manual_seed(0)
        out[fast] = model.generate(input_ids=TEXT, visual_grid=(2, 4, 4), do_sample=True, top_k=16,
                                   guidance_scale=guidance, fast_decoding=fast)
    assert torch.equal(out[True], out[False])


def test_rope_is_saved_with_the_config_and_checked(tmp_path):
    model = rope_model(rope_theta=50.0)
    model.save_pretrained(tmp_path)
    loaded = NuwaForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.rope_3d is True and loaded.config.rope_theta == 50.0
    labels = torch.randint(0, 64, (1, 1, 4, 4))
    torch.testing.assert_close(loaded(input_ids=TEXT[:1], labels=labels).logits,
                               model(input_ids=TEXT[:1], labels=labels).logits, atol=0, rtol=0)
    with pytest.raises(ValueError, match="rope_3d needs an even head size"):
        NuwaConfig.tiny(hidden_size=16, num_attention_heads=4, rope_3d=True)
