"""GPU tests of the nuwa_3dna kernel for kernel-builder's CI (``nix run .#ci-test``), self-contained: the Hub
package cannot import nuwa_hf, so the dense reference mask is rebuilt here from the definition.

The CPU proof of the same kernel (Triton interpreter, many more cases) lives in nuwa-hf's tests/ops/test_gpu_kernel.py.
"""

import math

import pytest
import torch

import nuwa_3dna

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="the kernel runs on CUDA GPUs")


def dense_mask(query_grid, key_grid, extent, causal, device):
    """mask[i, j]: query raster i may see key raster j (NUWA's 3DNA, windows cut off at the borders)."""
    qi = torch.arange(math.prod(query_grid), device=device)
    kj = torch.arange(math.prod(key_grid), device=device)
    ok = torch.ones(len(qi), len(kj), dtype=torch.bool, device=device)
    q_div, k_div = (query_grid[1] * query_grid[2], query_grid[2]), (key_grid[1] * key_grid[2], key_grid[2])
    q_coords = (qi // q_div[0], (qi // q_div[1]) % query_grid[1], qi % query_grid[2])
    k_coords = (kj // k_div[0], (kj // k_div[1]) % key_grid[1], kj % key_grid[2])
    for qc, kc, q_size, k_size, e in zip(q_coords, k_coords, query_grid, key_grid, extent):
        if e is not None:
            ok &= (kc[None, :] - (qc * k_size // q_size)[:, None]).abs() <= e // 2
    if causal:
        ok &= kj[None, :] <= qi[:, None]
    return ok


def reference(q, k, v, query_grid, key_grid, extent, causal):
    scores = (q.double() @ k.double().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~dense_mask(query_grid, key_grid, extent, causal, q.device), float("-inf"))
    return torch.softmax(scores, -1) @ v.double()


@pytest.mark.kernels_ci
@pytest.mark.parametrize("dtype,atol", [(torch.float16, 3e-3), (torch.bfloat16, 2e-2), (torch.float32, 1e-4)])
@pytest.mark.parametrize(
    "query_grid,key_grid,extent,causal",
    [
        ((10, 21, 21), (10, 21, 21), (3, 3, 3), True),
        ((4, 16, 16), (4, 16, 16), (3, 5, 5), False),
        ((4, 16, 16), (77, 1, 1), (None, 1, 1), False),
        ((4, 16, 16), (2, 7, 9), (1, 3, 3), False),
    ],
)
def test_forward_and_backward_against_dense_reference(dtype, atol, query_grid, key_grid, extent, causal):
    g = torch.Generator(device="cuda").manual_seed(0)
    lq, lk = math.prod(query_grid), math.prod(key_grid)
    q, k, v = (torch.randn(2, 4, n, 64, device="cuda", generator=g).to(dtype).requires_grad_() for n in (lq, lk, lk))
    out = nuwa_3dna.nearby_attention(q, k, v, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = reference(q64, k64, v64, query_grid, key_grid, extent, causal)
    torch.testing.assert_close(out.double(), ref, atol=atol, rtol=0)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), grad)
    want = torch.autograd.grad(ref, (q64, k64, v64), grad.double())
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, atol=4 * atol, rtol=0)
