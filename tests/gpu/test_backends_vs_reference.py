"""Every fast 3DNA backend on the device against the one reference (``nuwa_hf.nearby_attention_reference``, float64).

Marked ``cuda``: on a CUDA device the paper's grids (10x21x21 video, 1x32x32 image, 77-token text, cross-attention,
decoding slices) in float32 and bfloat16; under ``TRITON_INTERPRET=1`` on the CPU the same cases on tiny grids, float32
for the kernel, in a few seconds (tests/support/cuda_mode.py; ``benchmarks/gpu_check.sh`` runs both ways, and
tests/benchmarks/test_gpu_check.py runs it on the CPU in CI). Skipped otherwise.

The kernel is called as ``gpu_kernel.load_kernel().nearby_attention`` (its default launch configuration on a GPU;
16x16 blocks in the interpreter, so tiny grids still span many tiles and key blocks) and through the public dispatch.
Errors are max abs errors of the output and dQ/dK/dV against the float64 reference on the same rounded inputs,
allowed up to ``TOLERANCE x max(1, reference magnitude)``; each test records its errors (and torch SDPA's with the
dense mask in the same dtype, a yardstick) for the GPU check's JSON.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from nuwa_hf import nearby_attention, nearby_attention_mask, nearby_attention_reference
from nuwa_hf.ops import gpu_kernel, select_backend
from support.cuda_mode import DEVICE, KERNEL_DTYPES, MODE, TINY

pytestmark = pytest.mark.cuda
pytest.importorskip("triton")

# (name, query_grid, key_grid, extent, causal, (query_offset, num_queries, num_keys) or None)
FULL_CASES = [
    ("video_self_causal", (10, 21, 21), (10, 21, 21), (3, 3, 3), True, None),
    ("video_self", (10, 21, 21), (10, 21, 21), (3, 3, 3), False, None),
    ("image_self_causal", (1, 32, 32), (1, 32, 32), (1, 3, 3), True, None),
    ("video_to_text_cross", (10, 21, 21), (77, 1, 1), (None, 1, 1), False, None),
    ("video_decode_step", (10, 21, 21), (10, 21, 21), (3, 3, 3), True, (2205, 1, 2206)),
    ("image_self", (1, 32, 32), (1, 32, 32), (1, 3, 3), False, None),
    ("image_to_sketch_cross", (1, 32, 32), (1, 21, 21), (1, 3, 3), False, None),
    ("video_decode_block", (10, 21, 21), (10, 21, 21), (3, 3, 3), True, (3000, 64, 3064)),
    ("text_self", (77, 1, 1), (77, 1, 1), (None, 1, 1), False, None),
    ("video_self_causal_7x7x7", (10, 21, 21), (10, 21, 21), (7, 7, 7), True, None),
]
TINY_CASES = [
    ("video_self_causal", (2, 3, 4), (2, 3, 4), (3, 3, 3), True, None),
    ("video_self", (2, 3, 4), (2, 3, 4), (3, 3, 3), False, None),
    ("image_self_causal", (1, 4, 5), (1, 4, 5), (1, 3, 3), True, None),
    ("video_to_text_cross", (2, 3, 4), (5, 1, 1), (None, 1, 1), False, None),
    ("video_decode_step", (2, 3, 4), (2, 3, 4), (3, 3, 3), True, (10, 1, 11)),
    ("image_to_sketch_cross", (1, 4, 5), (1, 3, 3), (1, 3, 3), False, None),
]
CASES = TINY_CASES if TINY else FULL_CASES
SHAPE = (1, 2, 16) if TINY else (2, 4, 64)  # (batch, heads, head_dim)
BLOCKS = {"block_m": 16, "block_n": 16} if MODE == "interpreter" else {}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TOLERANCE = {"fp32": 1e-5, "bf16": 2e-2, "fp16": 6e-3}
# The torch backends (the fallbacks on a CUDA device without the kernel) on the tiny cases, both dtypes.
TORCH_BACKENDS = {"block_sparse": True, "window_gather": True, "cpu_inference": False}  # name -> differentiable
NAMES = ("out", "dq", "dk", "dv")


def _inputs(case, dtype_name, seed):
    name, query_grid, key_grid, extent, causal, decode = case
    offset, num_queries, num_keys = decode if decode else (None, math.prod(query_grid), math.prod(key_grid))
    batch, heads, dim = SHAPE
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, n, dim, generator=g).to(DEVICE, DTYPES[dtype_name])
               for n in (num_queries, num_keys, num_keys))
    grad_out = torch.randn(batch, heads, num_queries, dim, generator=g).to(DEVICE, DTYPES[dtype_name])
    kwargs = dict(query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, query_offset=offset)
    return q, k, v, grad_out, kwargs


def _values_and_grads(fn, q, k, v, grad_out, differentiable=True):
    if not differentiable:
        with torch.no_grad():
            return (fn(q, k, v),)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    out = fn(*leaves)
    return (out, *torch.autograd.grad(out, leaves, grad_out))


def _reference(case, dtype_name, seed):
    """float64 output and gradients on the same dtype-rounded inputs."""
    q, k, v, grad_out, kwargs = _inputs(case, dtype_name, seed)
    return _values_and_grads(lambda *t: nearby_attention_reference(*t, **kwargs), q.double(), k.double(), v.double(),
                             grad_out.double())


def _errors(got, want):
    errors = {n: (g.double() - w).abs().max().item() for n, g, w in zip(NAMES, got, want)}
    magnitude = {n: w.abs().max().item() for n, w in zip(NAMES, want)}
    return errors, magnitude


def _check(errors, magnitude, dtype_name):
    tol = TOLERANCE[dtype_name]
    bad = {n: e for n, e in errors.items() if e > tol * max(1.0, magnitude[n])}
    assert not bad, f"errors above {tol:g} x max(1, |reference|): {bad} (all: {errors}, magnitudes {magnitude})"


def _sdpa_yardstick(case, q, k, v, grad_out, kwargs, want):
    """torch SDPA with the dense 3DNA mask in the same dtype, against the same reference: what 'good' looks like."""
    try:
        mask = nearby_attention_mask(kwargs["query_grid"], kwargs["key_grid"], kwargs["extent"], kwargs["causal"],
                                     query_offset=kwargs["query_offset"] or 0, num_queries=q.shape[2],
                                     num_keys=k.shape[2], device=q.device)
        got = _values_and_grads(lambda *t: F.scaled_dot_product_attention(*t, attn_mask=mask), q, k, v, grad_out)
        return _errors(got, want)[0]
    except Exception as exc:  # noqa: BLE001 (a yardstick only)
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}


@pytest.fixture(scope="module")
def kernel():
    return gpu_kernel.load_kernel()


def _case_ids(case):
    return case[0]


@pytest.mark.parametrize("dtype_name", KERNEL_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=_case_ids)
def test_triton_kernel_matches_reference(kernel, case, dtype_name, record):
    """Forward and backward of the fused kernel: causal and not, self and cross, decoding slices."""
    assert kernel.is_interpreted() == (MODE == "interpreter")
    seed = CASES.index(case)
    q, k, v, grad_out, kwargs = _inputs(case, dtype_name, seed)
    got = _values_and_grads(lambda *t: kernel.nearby_attention(*t, **kwargs, **BLOCKS), q, k, v, grad_out)
    assert got[0].dtype == q.dtype and got[0].shape == q.shape
    want = _reference(case, dtype_name, seed)
    errors, magnitude = _errors(got, want)
    record(kind="correctness", backend="triton", case=case[0], dtype=dtype_name, query_grid=case[1],
           key_grid=case[2], extent=case[3], causal=case[4], decode=case[5], shape_bhd=SHAPE, errors=errors,
           reference_magnitude=magnitude, sdpa_same_dtype_errors=_sdpa_yardstick(case, q, k, v, grad_out, kwargs,
                                                                                  want),
           tolerance=TOLERANCE[dtype_name], blocks=BLOCKS or "default launch configuration")
    _check(errors, magnitude, dtype_name)


@pytest.mark.parametrize("case", CASES[:4], ids=_case_ids)
def test_triton_kernel_fp16(kernel, case, record):
    """float16 inputs, float32 accumulation (the interpreter runs it too, unlike bfloat16)."""
    dtype_name, seed = "fp16", 100 + CASES.index(case)
    q, k, v, grad_out, kwargs = _inputs(case, dtype_name, seed)
    got = _values_and_grads(lambda *t: kernel.nearby_attention(*t, **kwargs), q, k, v, grad_out)
    errors, magnitude = _errors(got, _reference(case, dtype_name, seed))
    record(kind="correctness", backend="triton", case=case[0], dtype=dtype_name, errors=errors)
    _check(errors, magnitude, dtype_name)


@pytest.mark.parametrize("dtype_name", ["fp32", "bf16"])
@pytest.mark.parametrize("backend", sorted(TORCH_BACKENDS))
@pytest.mark.parametrize("case", TINY_CASES, ids=_case_ids)
def test_torch_backends_match_reference_on_the_device(case, backend, dtype_name, record):
    """The other backends on the device's tensors (on a GPU: what runs where the kernel cannot be loaded)."""
    seed = 200 + TINY_CASES.index(case)
    q, k, v, grad_out, kwargs = _inputs(case, dtype_name, seed)
    differentiable = TORCH_BACKENDS[backend]
    got = _values_and_grads(lambda *t: nearby_attention(*t, **kwargs, backend=backend), q, k, v, grad_out,
                            differentiable)
    want = _values_and_grads(lambda *t: nearby_attention_reference(*t, **kwargs), q.double(), k.double(), v.double(),
                             grad_out.double(), differentiable)
    errors, magnitude = _errors(got, want)
    record(kind="correctness", backend=backend, case=case[0], dtype=dtype_name, errors=errors)
    _check(errors, magnitude, dtype_name)


@pytest.mark.parametrize("causal", [True, False])
def test_public_dispatch_runs_the_kernel(causal):
    """``nearby_attention(backend="triton")`` (and ``"auto"`` on a GPU) with default tiles, a custom scale, batch 2
    and head_dim 24, against the reference; the loss is out**2 summed, so gradients reach several units."""
    grid = (2, 4, 5) if TINY else (4, 16, 16)
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 2, math.prod(grid), 24, generator=g).to(DEVICE) for _ in range(3))
    kw = dict(query_grid=grid, key_grid=grid, extent=(3, 3, 3), causal=causal, scale=0.3)
    if MODE == "cuda":
        assert gpu_kernel.kernel_available() and select_backend(q, k, v, None) == "triton"
    for backend in ("triton", "auto") if MODE == "cuda" else ("triton",):
        leaf = q.clone().requires_grad_()
        out = nearby_attention(leaf, k, v, backend=backend, **kw)
        (grad,) = torch.autograd.grad(out.square().sum(), leaf)
        ref_leaf = q.double().requires_grad_()
        ref = nearby_attention_reference(ref_leaf, k.double(), v.double(), **kw)
        (ref_grad,) = torch.autograd.grad(ref.square().sum(), ref_leaf)
        assert (out.double() - ref).abs().max().item() < 1e-5
        assert (grad.double() - ref_grad).abs().max().item() < 1e-5 * max(1.0, ref_grad.abs().max().item())


def test_strided_heads_are_read_through_their_strides(kernel):
    """Heads split off a (B, L, NH, D) projection: non-contiguous inputs, as the model passes them."""
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 24, 2, 16, generator=g).to(DEVICE).transpose(1, 2) for _ in range(3))
    kw = dict(query_grid=(2, 3, 4), key_grid=(2, 3, 4), extent=(3, 3, 1), causal=True)
    assert not q.is_contiguous()
    out = kernel.nearby_attention(q, k, v, **kw, **BLOCKS)
    assert (out - nearby_attention_reference(q, k, v, **kw)).abs().max().item() < 1e-5
