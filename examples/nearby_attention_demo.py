"""3D Nearby Attention on a NUWA-sized video grid: every backend against the reference, and their speed.

Run: python examples/nearby_attention_demo.py
"""

import time

import torch

from nuwa_hf import nearby_attention

torch.manual_seed(0)
grid = (10, 21, 21)  # the paper's video grid: 10 frames of 21 x 21 tokens
q, k, v = (torch.randn(1, 4, 10 * 21 * 21, 64) for _ in range(3))
with torch.no_grad():
    ref = nearby_attention(q, k, v, query_grid=grid, key_grid=grid, extent=(3, 3, 3), causal=True, backend="reference")
    for backend in ("block_sparse", "cpu_inference", "window_gather"):
        start = time.perf_counter()
        out = nearby_attention(q, k, v, query_grid=grid, key_grid=grid, extent=(3, 3, 3), causal=True, backend=backend)
        ms = (time.perf_counter() - start) * 1000
        print(f"{backend:14s} max |diff| vs reference = {(out - ref).abs().max().item():.2e}   first call {ms:7.1f} ms")
