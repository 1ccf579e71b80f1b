"""3DNA on a 10x21x21 grid (extent 3x3x3, head_dim 64): the Triton kernel vs dense SDPA with the 3DNA mask vs compiled
FlexAttention with a block mask of the same windows; forward and forward+backward, fp32 and bf16, one process.

Per row: median ms (harness.time_call) and the CUDA-graph replay time, first call (compiles), max abs error against the
reference, useful TFLOP/s (only allowed (query, key) pairs: 4*D per pair forward, 14*D forward+backward), fraction
of the H200 spec peak, lower bound of HBM traffic as a fraction of its bandwidth, speed-up vs dense SDPA.
Tiny (no CUDA): a 2x3x4 grid, the kernel in Triton's interpreter, Flex uncompiled and forward only.

    python benchmarks/time_attention.py [--tiny] [--out DIR]
"""

import math
import time

import harness
import torch
import torch._dynamo
from bench_gpu_kernel import flex_block_sparse_pairs
from bench_nearby_attention import make_fn
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from nuwa_hf import nearby_attention, nearby_attention_mask, nearby_attention_reference
from nuwa_hf.ops import gpu_kernel
from nuwa_hf.ops.geometry import axis_window, unravel


def flex_mask_mod(query_grid, key_grid, extent, causal, device):
    """FlexAttention mask_mod of the 3DNA rule: per axis the inclusive key window ``geometry.axis_window`` gives for the
    query's coordinate, plus ``key <= query`` when causal (``geometry.allowed`` builds in place: vmap cannot trace
    it)."""
    bounds = [axis_window(q, k, e, device=device) for q, k, e in zip(query_grid, key_grid, extent)]

    def mask_mod(b, h, q_idx, kv_idx):
        ok = kv_idx <= q_idx if causal else kv_idx >= 0
        for qc, kc, (lo, hi) in zip(unravel(q_idx, query_grid), unravel(kv_idx, key_grid), bounds):
            ok = ok & (kc >= lo[qc]) & (kc <= hi[qc])
        return ok

    return mask_mod


def main():
    args = harness.parse_args(__doc__)
    run = harness.Run("attention", args, spec=harness.H200_SPEC)
    cuda, device = run.cuda, "cuda" if run.cuda else "cpu"
    grid, extent, dim = ((2, 3, 4), (3, 3, 3), 16) if run.tiny else ((10, 21, 21), (3, 3, 3), 64)
    cases = ([(1, 2, "fp32", True)] + ([(1, 2, "bf16", True)] if cuda else []) if run.tiny else
             [(4, 16, "bf16", True), (1, 8, "bf16", True), (4, 16, "fp32", True), (1, 8, "fp32", True),
              (4, 16, "bf16", False), (4, 16, "fp32", False)])
    length, kernel = math.prod(grid), gpu_kernel.load_kernel()
    capability = 10 * torch.cuda.get_device_capability()[0] + torch.cuda.get_device_capability()[1] if cuda else None
    for option in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                   "accumulated_cache_size_limit"):  # one compiled Flex per (shape, dtype, grad mode): more than 8
        if hasattr(torch._dynamo.config, option):
            setattr(torch._dynamo.config, option, max(64, getattr(torch._dynamo.config, option)))
    flex = torch.compile(flex_attention, dynamic=False) if cuda else flex_attention
    run.data.update(grid=grid, extent=extent, head_dim=dim, interpreted=bool(kernel.is_interpreted()), cases=[])
    for batch, heads, dtype_name, causal in cases:
        if not run.time_left():
            run.data["cases"].append({"batch": batch, "heads": heads, "dtype": dtype_name, "skipped": "budget"})
            continue
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
        mask = nearby_attention_mask(grid, grid, extent, causal, device=device)
        start = time.time()
        block_mask = create_block_mask(flex_mask_mod(grid, grid, extent, causal, device), None, None, length, length,
                                       device=device)
        meta = torch.empty(batch, heads, length, dim, dtype=dtype, device="meta")
        plan = kernel.make_plan(meta, meta, query_grid=grid, key_grid=grid, extent=extent, causal=causal, scale=None,
                                query_offset=None, capability=capability)
        work, allowed = kernel.work(plan), int(mask.sum())
        run.data["cases"].append(dict(
            batch=batch, heads=heads, dtype=dtype_name, causal=causal, flex_block_mask_build_s=time.time() - start,
            allowed_pairs=allowed, dense_pairs=length * (length + 1) // 2 if causal else length * length,
            flex_block_pairs_128=flex_block_sparse_pairs(grid, extent, causal), triton_work=dict(
                forward_pairs=work.forward_pairs, dkdv_pairs=work.dkdv_pairs, query_tile=plan.query_tile,
                key_tile=plan.key_tile, block_m=plan.config.block_m, block_n=plan.config.block_n)))
        g = torch.Generator().manual_seed(batch * 100 + heads)
        q, k, v, dout = (torch.randn(batch, heads, length, dim, generator=g).to(device, dtype) for _ in range(4))
        reference = nearby_attention_reference(q.float(), k.float(), v.float(), query_grid=grid, key_grid=grid,
                                               extent=extent, causal=causal)
        for pass_name in ("fwd", "fwd+bwd"):
            grad = pass_name == "fwd+bwd"
            qq, kk, vv = (t.clone().requires_grad_(grad) for t in (q, k, v))
            impls = {"sdpa_dense_mask": make_fn("sdpa_dense_mask", grid, qq, kk, vv, mask),
                     "triton": lambda: nearby_attention(qq, kk, vv, query_grid=grid, key_grid=grid, extent=extent,
                                                        causal=causal, backend="triton"),
                     "flex": lambda: flex(qq, kk, vv, block_mask=block_mask)}
            rows = []
            for impl, forward in impls.items():
                row = dict(batch=batch, heads=heads, dtype=dtype_name, causal=causal, impl=impl, **{"pass": pass_name})
                if not run.time_left() or (impl == "flex" and grad and not cuda):
                    rows.append(run.add(**row, skipped="no Flex backward on CPU" if run.time_left() else "budget"))
                    continue
                fn = (lambda f=forward: torch.autograd.grad(f(), (qq, kk, vv), dout)) if grad else forward
                try:
                    start = time.time()
                    with torch.set_grad_enabled(grad):
                        out = forward()  # the first call compiles (Flex) / JIT-compiles (Triton)
                        if grad:
                            torch.autograd.grad(out, (qq, kk, vv), dout)
                        harness.sync()
                        row.update(first_call_s=time.time() - start,
                                   check_max_abs_err=(out.detach().float() - reference).abs().max().item())
                        row.update(run.time(fn, graph=True))
                    best = row["graph_ms"] or row["ms"]
                    flops = (14 if grad else 4) * dim * allowed * batch * heads
                    peak = harness.H200_SPEC["fp32_tflops" if dtype_name == "fp32" else "bf16_dense_tflops"]
                    row.update(useful_tflops=flops / (best * 1e-3) / 1e12, tflops_from="graph_ms" if row["graph_ms"]
                               else "ms", fraction_of_spec_peak=flops / (best * 1e-3) / 1e12 / peak,
                               # Q, K, V, O once (forward); + dO, dQ, dK, dV and Q, K, V, O again (backward)
                               min_hbm_fraction=(12 if grad else 4) * q.numel() * q.element_size() / (best * 1e-3)
                               / (harness.H200_SPEC["hbm_tb_per_s"] * 1e12))
                except Exception as exc:  # noqa: BLE001 (one implementation's failure is recorded)
                    row["error"] = harness.error_text(exc)
                rows.append(run.add(**row))
            harness.ratios(rows, baseline=rows[0])
            run.save()
    run.done()


if __name__ == "__main__":
    main()
