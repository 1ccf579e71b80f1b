"""3DNA backends against dense attention, in one process: time ratios and peak memory.

For each grid (window 3x3x3, causal, batch 1, 4 heads, head_dim 64, fp32) it measures, forward and forward+backward:
  sdpa_dense_mask  scaled_dot_product_attention with the dense 3DNA boolean mask (the baseline of the ratios)
  sdpa_is_causal   plain causal SDPA (a different, denser attention; the usual speed yardstick)
  block_sparse     nuwa_hf training path (differentiable)
  cpu_inference    nuwa_hf inference path (forward only)
  window_gather    nuwa_hf per-query gather (decode path; shown for whole grids for completeness)
Times are medians of --repeats runs after one warm-up. Peak memory is the increase of the process's peak resident
set size while one call runs, measured in a fresh subprocess (Linux /proc), so runs do not see each other's memory.

Run:  python benchmarks/bench_nearby_attention.py [--grids 4x8x8 8x16x16 10x21x21] [--repeats 5] [--with-flex]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from nuwa_hf import nearby_attention, nearby_attention_mask

EXTENT = (3, 3, 3)


def make_fn(name, grid, q, k, v, mask):
    if name == "sdpa_dense_mask":
        return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if name == "sdpa_is_causal":
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if name == "flex_compiled":
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        T, H, W = grid

        def mask_mod(b, h, qi, ki):
            qt, qh, qw = qi // (H * W), (qi // W) % H, qi % W
            kt, kh, kw = ki // (H * W), (ki // W) % H, ki % W
            near = ((qt - kt).abs() <= 1) & ((qh - kh).abs() <= 1) & ((qw - kw).abs() <= 1)
            return near & (ki <= qi)

        L = q.shape[2]
        block_mask = create_block_mask(mask_mod, None, None, L, L, device="cpu", BLOCK_SIZE=32)
        compiled = torch.compile(flex_attention)
        return lambda: compiled(q, k, v, block_mask=block_mask)
    return lambda: nearby_attention(q, k, v, query_grid=grid, key_grid=grid, extent=EXTENT, causal=True, backend=name)


def run(name, grid, mode, repeats):
    """Median seconds of one call (mode 'fwd' or 'fwd+bwd')."""
    torch.manual_seed(0)
    L = grid[0] * grid[1] * grid[2]
    needs_grad = mode == "fwd+bwd"
    q, k, v = (torch.randn(1, 4, L, 64, requires_grad=needs_grad) for _ in range(3))
    mask = nearby_attention_mask(grid, grid, EXTENT, True) if name == "sdpa_dense_mask" else None
    fn = make_fn(name, grid, q, k, v, mask)

    def once():
        if needs_grad:
            fn().sum().backward()
            q.grad = k.grad = v.grad = None
        else:
            with torch.no_grad():
                fn()

    once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(field)


def _measure_memory_here(name, grid, mode):
    """Peak RSS increase (MB) of one call in this process (run in a fresh subprocess)."""
    torch.manual_seed(0)
    L = grid[0] * grid[1] * grid[2]
    needs_grad = mode == "fwd+bwd"
    q, k, v = (torch.randn(1, 4, L, 64, requires_grad=needs_grad) for _ in range(3))
    mask = nearby_attention_mask(grid, grid, EXTENT, True) if name == "sdpa_dense_mask" else None
    fn = make_fn(name, grid, q, k, v, mask)
    if name in ("block_sparse", "cpu_inference", "flex_compiled"):
        with torch.no_grad():
            fn()  # tile plans / compilation are cached set-up, not per-call memory
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _status_kb("VmRSS")
    if needs_grad:
        fn().sum().backward()
    else:
        with torch.no_grad():
            fn()
    return (_status_kb("VmHWM") - base) / 1024


def peak_memory_mb(name, grid, mode):
    """Peak RSS increase of one call, measured in a fresh interpreter (fork would deadlock OpenMP threads)."""
    spec = "x".join(str(g) for g in grid)
    result = subprocess.run(
        [sys.executable, __file__, "--measure-memory", name, spec, mode], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", nargs="+", default=["4x8x8", "8x16x16", "10x21x21"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--with-flex", action="store_true", help="also compiled FlexAttention (forward; ~30 s compile)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 is steadier on a busy machine)")
    parser.add_argument("--measure-memory", nargs=3, metavar=("NAME", "GRID", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.measure_memory:
        name, spec, mode = args.measure_memory
        print(_measure_memory_here(name, tuple(int(x) for x in spec.split("x")), mode))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; window {EXTENT}, causal, batch 1, 4 heads, "
          f"head_dim 64, fp32; median of {args.repeats}")
    names = ["sdpa_dense_mask", "sdpa_is_causal", "block_sparse", "cpu_inference", "window_gather"]
    rows = []
    for spec in args.grids:
        grid = tuple(int(x) for x in spec.split("x"))
        for mode in ("fwd", "fwd+bwd"):
            cand = [n for n in names if not (mode == "fwd+bwd" and n == "cpu_inference")]
            if args.with_flex and mode == "fwd":
                cand.append("flex_compiled")
            base = None
            for name in cand:
                sec = run(name, grid, mode, args.repeats)
                base = sec if name == "sdpa_dense_mask" else base
                mem = peak_memory_mb(name, grid, mode)
                rows.append((spec, mode, name, sec * 1e3, base / sec, mem))
                print(f"{spec:>9s} {mode:8s} {name:16s} {sec * 1e3:9.2f} ms  {base / sec:6.1f}x vs dense mask  "
                      f"peak +{mem:7.1f} MB", flush=True)
    print("\n| grid | pass | implementation | median ms | speed-up vs dense mask | peak memory (MB) |")
    print("|---|---|---|---|---|---|")
    for spec, mode, name, ms, ratio, mem in rows:
        print(f"| {spec} | {mode} | {name} | {ms:.2f} | {ratio:.1f}x | {mem:.0f} |")


if __name__ == "__main__":
    main()
