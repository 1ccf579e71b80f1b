"""Every 3DNA backend against the one reference, plus the semantics of the reference itself."""

import itertools
import math

import pytest
import torch

from nuwa_hf import nearby_attention, nearby_attention_mask, nearby_attention_reference
from nuwa_hf.ops import BACKENDS, select_backend

CPU_BACKENDS = ["block_sparse", "cpu_inference", "window_gather"]
DIFFERENTIABLE = ["block_sparse", "window_gather"]

# (query_grid, key_grid, extent, causal): odd grids, text, images, videos, cross grids that do not divide.
CASES = [
    ((3, 5, 7), (3, 5, 7), (3, 3, 3), True),
    ((3, 5, 7), (3, 5, 7), (3, 3, 3), False),
    ((3, 5, 7), (3, 5, 7), (1, 5, 3), True),
    ((77, 1, 1), (77, 1, 1), (None, 1, 1), False),  # text encoder self-attention: all text
    ((77, 1, 1), (77, 1, 1), (None, 1, 1), True),
    ((1, 8, 8), (1, 8, 8), (1, 3, 3), True),  # image decoder
    ((4, 8, 8), (4, 8, 8), (3, 3, 3), True),  # video decoder
    ((4, 8, 8), (77, 1, 1), (None, 1, 1), False),  # cross-attention to text
    ((4, 8, 8), (2, 3, 5), (3, 3, 3), False),  # cross-attention to a smaller sketch grid, non-dividing
    ((2, 3, 5), (4, 8, 8), (1, 3, 3), False),  # to a larger grid
    ((3, 5, 7), (3, 5, 7), (None, None, None), False),  # all-None: full attention
    ((2, 6, 4), (2, 6, 4), (None, 5, None), True),
]


def _inputs(query_grid, key_grid, seed, dtype=torch.float32, batch=2, heads=3, dim=16):
    g = torch.Generator().manual_seed(seed)
    lq, lk = math.prod(query_grid), math.prod(key_grid)
    q = torch.randn(batch, heads, lq, dim, generator=g, dtype=dtype)
    k = torch.randn(batch, heads, lk, dim, generator=g, dtype=dtype)
    v = torch.randn(batch, heads, lk, dim, generator=g, dtype=dtype)
    return q, k, v


def _brute_force_mask(query_grid, key_grid, extent, causal):
    """The paper's definition written as plainly as possible, loop by loop (independent of geometry.py)."""
    T, H, W = query_grid
    T2, H2, W2 = key_grid
    mask = torch.zeros(T * H * W, T2 * H2 * W2, dtype=torch.bool)
    for t, h, w in itertools.product(range(T), range(H), range(W)):
        centre = (t * T2 // T, h * H2 // H, w * W2 // W)
        qi = (t * H + h) * W + w
        for t2, h2, w2 in itertools.product(range(T2), range(H2), range(W2)):
            ki = (t2 * H2 + h2) * W2 + w2
            ok = all(e is None or abs(c2 - c) <= e // 2 for c2, c, e in zip((t2, h2, w2), centre, extent))
            if causal and ki > qi:
                ok = False
            mask[qi, ki] = ok
    return mask


@pytest.mark.parametrize("case", CASES, ids=str)
def test_reference_mask_is_the_papers_window(case):
    query_grid, key_grid, extent, causal = case
    assert torch.equal(nearby_attention_mask(query_grid, key_grid, extent, causal), _brute_force_mask(*case))


def test_window_is_cut_off_at_borders_not_clamped():
    # A corner query of an 8x8 image with a 3x3 window sees 4 keys (cut off), not 9 (clamped as in NATTEN).
    mask = nearby_attention_mask((1, 8, 8), (1, 8, 8), (1, 3, 3), causal=False)
    assert mask[0].sum() == 4 and mask[9].sum() == 9


def test_causal_window_sees_above_right_neighbour():
    # The paper's window keeps the above-right token; a window shifted fully backwards (nuwa-pytorch) drops it.
    mask = nearby_attention_mask((1, 8, 8), (1, 8, 8), (1, 3, 3), causal=True)
    q = 3 * 8 + 3
    assert mask[q, 2 * 8 + 4] and not mask[q, 3 * 8 + 4]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_backend_matches_reference_values(backend, case):
    query_grid, key_grid, extent, causal = case
    q, k, v = _inputs(query_grid, key_grid, seed=hash(case) % 1000)
    kwargs = dict(query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal)
    ref = nearby_attention_reference(q, k, v, **kwargs)
    with torch.no_grad():
        out = nearby_attention(q, k, v, backend=backend, **kwargs)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", DIFFERENTIABLE)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_backend_matches_reference_gradients(backend, case):
    query_grid, key_grid, extent, causal = case
    q, k, v = _inputs(query_grid, key_grid, seed=7)
    kwargs = dict(query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal)
    grads = []
    for fn in (nearby_attention_reference, lambda *a, **kw: nearby_attention(*a, backend=backend, **kw)):
        leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
        out = fn(*leaves, **kwargs)
        out.backward(torch.ones_like(out) + torch.arange(out.numel()).view_as(out) % 3)
        grads.append([x.grad for x in leaves])
    for got, want in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_all_none_extent_is_full_attention():
    q, k, v = _inputs((3, 5, 7), (2, 2, 3), seed=1)
    full = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    for backend in CPU_BACKENDS + ["reference"]:
        out = nearby_attention(q, k, v, query_grid=(3, 5, 7), key_grid=(2, 2, 3), extent=(None, None, None),
                               backend=backend)
        torch.testing.assert_close(out, full, atol=1e-5, rtol=1e-5)


def test_seeded_random_sweep_against_reference():
    """Random grids, extents and causality; every CPU backend, values and (for training paths) gradients."""
    rng = torch.Generator().manual_seed(1234)

    def rand(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=rng))

    for trial in range(25):
        query_grid = (rand(1, 4), rand(1, 6), rand(1, 6))
        causal = trial % 2 == 0
        key_grid = query_grid if causal else (rand(1, 4), rand(1, 6), rand(1, 6))
        extent = tuple(None if rand(0, 4) == 0 else 2 * rand(0, 2) + 1 for _ in range(3))
        q, k, v = _inputs(query_grid, key_grid, seed=trial, heads=2, dim=8)
        kwargs = dict(query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal)
        ref = nearby_attention_reference(q, k, v, **kwargs)
        for backend in CPU_BACKENDS:
            with torch.no_grad():
                out = nearby_attention(q, k, v, backend=backend, **kwargs)
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5, msg=lambda m: f"{backend} {kwargs}: {m}")
        leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
        nearby_attention(*leaves, backend="block_sparse", **kwargs).sum().backward()
        ref_leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
        nearby_attention_reference(*ref_leaves, **kwargs).sum().backward()
        for a, b in zip(leaves, ref_leaves):
            torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["window_gather", "block_sparse", "cpu_inference", "reference"])
def test_decoding_slices_match_full_grid(backend):
    """KV-cached decoding: queries offset..offset+n against a key prefix equal the full computation's rows."""
    grid = (3, 4, 5)
    q, k, v = _inputs(grid, grid, seed=3)
    full = nearby_attention_reference(q, k, v, query_grid=grid, key_grid=grid, extent=(3, 3, 3), causal=True)
    for offset, n in [(0, 1), (7, 1), (21, 5), (59, 1)]:
        out = nearby_attention(q[:, :, offset:offset + n], k[:, :, :offset + n], v[:, :, :offset + n],
                               query_grid=grid, key_grid=grid, extent=(3, 3, 3), causal=True,
                               query_offset=offset, backend=backend)
        torch.testing.assert_close(out, full[:, :, offset:offset + n], atol=1e-5, rtol=1e-5)
    # Cross-attention decoding: a slice of queries against the whole key grid.
    kq, kk, kv = _inputs(grid, (2, 2, 2), seed=4)
    full = nearby_attention_reference(kq, kk, kv, query_grid=grid, key_grid=(2, 2, 2), extent=(1, 3, 3))
    out = nearby_attention(kq[:, :, 10:12], kk, kv, query_grid=grid, key_grid=(2, 2, 2), extent=(1, 3, 3),
                           query_offset=10, backend=backend)
    torch.testing.assert_close(out, full[:, :, 10:12], atol=1e-5, rtol=1e-5)


def test_auto_backend_choice():
    q, k, v = _inputs((2, 3, 3), (2, 3, 3), seed=0)
    assert select_backend(q, k, v, None) == "cpu_inference"
    assert select_backend(q.requires_grad_(), k, v, None) == "block_sparse"
    assert select_backend(q[:, :, :1], k, v, 4) == "window_gather"
    with torch.no_grad():
        assert select_backend(q, k, v, None) == "cpu_inference"


def test_backends_registry_names():
    assert {"reference", "block_sparse", "cpu_inference", "window_gather", "triton"} <= set(BACKENDS)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(extent=(2, 3, 3)), "even"),
        (dict(extent=(3, 3)), "triple"),
        (dict(extent=(3, 0, 3)), "positive odd"),
        (dict(query_grid=(2, 3, 4), key_grid=(2, 3, 4)), "does not match query_grid"),
        (dict(key_grid=(2, 2, 2)), "causal=True needs the query grid and key grid to be the same"),
        (dict(query_grid=(2, 3, -3)), "positive ints"),
        (dict(backend="nope"), "unknown 3DNA backend"),
        (dict(query_offset=-1), "non-negative"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    q, k, v = _inputs((2, 3, 3), (2, 3, 3), seed=0)
    args = dict(query_grid=(2, 3, 3), key_grid=(2, 3, 3), extent=(3, 3, 3), causal=True)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        nearby_attention(q, k, v, **args)


def test_bad_tensors_raise_clear_errors():
    q, k, v = _inputs((2, 3, 3), (2, 3, 3), seed=0)
    args = dict(query_grid=(2, 3, 3), key_grid=(2, 3, 3), extent=(3, 3, 3))
    with pytest.raises(ValueError, match="floating-point"):
        nearby_attention(q.long(), k, v, **args)
    with pytest.raises(ValueError, match="batch, heads and head_dim"):
        nearby_attention(q[:1], k, v, **args)
    with pytest.raises(ValueError, match="batch, heads and head_dim"):
        nearby_attention(q[:, :2], k, v, **args)
    with pytest.raises(ValueError, match="batch, heads and head_dim"):
        nearby_attention(q[..., :8], k, v, **args)
    with pytest.raises(ValueError, match="same shape"):
        nearby_attention(q, k, v[..., :8], **args)
    with pytest.raises(ValueError, match=r"\(batch, heads, length, head_dim\)"):
        nearby_attention(q[0], k, v, **args)
    with pytest.raises(ValueError, match="key length"):
        nearby_attention(q, k[:, :, :5], v[:, :, :5], **args)
    with pytest.raises(ValueError, match="share a dtype"):
        nearby_attention(q.double(), k, v, **args)


def test_cpu_inference_refuses_gradients():
    q, k, v = _inputs((2, 3, 3), (2, 3, 3), seed=0)
    with pytest.raises(ValueError, match="forward-only"):
        nearby_attention(q.requires_grad_(), k, v, query_grid=(2, 3, 3), key_grid=(2, 3, 3), extent=(3, 3, 3),
                         backend="cpu_inference")


@pytest.mark.parametrize("backend", ["window_gather", "block_sparse", "reference"])
def test_cached_plans_made_in_inference_mode_still_serve_autograd(backend):
    grid = (2, 5, 3)  # a grid no other test uses, so its plans are first built here, inside inference_mode
    q, k, v = _inputs(grid, grid, seed=11)
    kwargs = dict(query_grid=grid, key_grid=grid, extent=(3, 3, 3), causal=True, backend=backend)
    with torch.inference_mode():
        nearby_attention(q, k, v, **kwargs)
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    nearby_attention(*leaves, **kwargs).sum().backward()
    assert all(x.grad is not None for x in leaves)


def test_scratch_buffers_made_in_inference_mode_still_serve_no_grad_calls():
    """cpu_inference reuses scratch buffers; one made inside inference_mode (a transformers pipeline) must not be
    written by a later call under no_grad (model.generate in the same process), which torch refuses."""
    grid = (2, 5, 4)  # a grid no other test uses, so its buffers are first made here, inside inference_mode
    q, k, v = _inputs(grid, grid, seed=12)
    kwargs = dict(query_grid=grid, key_grid=grid, extent=(3, 3, 3), causal=True, backend="cpu_inference")
    with torch.inference_mode():
        first = nearby_attention(q, k, v, **kwargs)
    with torch.no_grad():
        again = nearby_attention(q, k, v, **kwargs)
    assert torch.equal(first, again)
