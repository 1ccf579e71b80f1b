"""Work, code and an H100 roofline of the fused 3DNA GPU kernel (kernels/nuwa_3dna), computed on a CPU machine.

Everything printed under "measured" is computed exactly here: the (query, key) pairs each kernel multiplies come
from the Python mirror of the kernels' loop bounds (which tests/ops/test_gpu_kernel.py checks against the kernels'
own visit counters), and the instruction counts, registers and spills come from the kernels compiled to sm_80 and
sm_90 cubins with the ptxas bundled in triton. The H100 times under "on paper" are a roofline model built from those
numbers and public H100 SXM5 figures: no GPU was used, and none of those times is measured.

    python benchmarks/bench_gpu_kernel.py              # 10x21x21, head_dim 64, bf16, 3x3x3 and 7x7x7 windows
    python benchmarks/bench_gpu_kernel.py --plans-only # computed / allowed pairs of the tile plans, several grids
"""

from __future__ import annotations

import argparse
import math
import os

import torch

from nuwa_hf import nearby_attention_mask
from nuwa_hf.ops import gpu_kernel

# H100 SXM5, public figures. The clock is the one at which 132 SMs x 4096 dense fp16/bf16 FLOP per clock (4 tensor
# cores x 512 FMA) give the advertised 989 TFLOPS.
H100 = dict(sms=132, clock=1.83e9, tensor_flop_per_clk_per_sm=4096, issue_per_clk_per_sm=4, hbm_bytes_per_s=3.35e12)
DENSE_FLASH_UTILISATION = 0.5  # what a good dense FlashAttention reaches at head_dim 64 (assumption, stated as such)


def flex_block_sparse_pairs(query_grid, extent, causal, block=128) -> int:
    """Pairs a raster-order block-sparse kernel (FlexAttention with a block mask, 128 x 128) computes: every block of
    the dense mask that holds at least one allowed pair."""
    mask = nearby_attention_mask(query_grid, query_grid, extent, causal)
    n = mask.shape[0]
    padded = math.ceil(n / block) * block
    full = torch.zeros(padded, padded, dtype=torch.bool)
    full[:n, :n] = mask
    blocks = full.view(padded // block, block, padded // block, block).any(dim=(1, 3))
    return int(blocks.sum()) * block * block


# Computed / allowed pairs of the box-walking kernel before the tile plans (issue 31 item 2), 64x64 bf16 blocks, as
# its own visit counters and mirror reported them: the baseline the plans are measured against.
BOX_WALK_PAIRS = {((10, 21, 21), (3, 3, 3), True): 819_200, ((10, 21, 21), (3, 3, 3), False): 1_048_576,
                  ((10, 21, 21), (7, 7, 7), True): 2_207_744, ((10, 21, 21), (7, 7, 7), False): 3_436_544}
PLAN_GRIDS = [((10, 21, 21), (3, 3, 3)), ((10, 21, 21), (7, 7, 7)), ((1, 32, 32), (1, 11, 11)),
              ((4, 16, 16), (3, 5, 5)), ((16, 16, 16), (3, 3, 3))]
PLAN_BLOCKS = [(64, 64), (32, 32), (16, 16), (8, 8), (4, 8)]


def plan_ratios() -> None:
    """Computed / allowed (query, key) pairs of the planned kernels, per grid and block sizes (CPU only)."""
    from nuwa_hf.ops import tile_plan

    print("# Tile plans: computed / allowed pairs per (batch, head); forward (dQ walks the same lists) and dK/dV")
    print("# blocks >= 16 multiply on tensor cores, smaller ones on CUDA cores\n")
    for grid, extent in PLAN_GRIDS:
        for causal in (True, False):
            cells = []
            for block_m, block_n in PLAN_BLOCKS:
                r = tile_plan.pair_report(grid, grid, extent, causal, block_m, block_n)
                cells.append(f"{block_m}x{block_n} {r['ratio']:.2f}/{r['dkdv_ratio']:.2f}")
            before = BOX_WALK_PAIRS.get((grid, extent, causal))
            allowed = tile_plan.pair_report(grid, grid, extent, causal, 64, 64)["allowed_pairs"]
            note = f"; box walk before: {before / allowed:.2f}" if before else ""
            print(f"{grid} {extent} causal={causal}: allowed {allowed:,}{note}; " + ", ".join(cells))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, nargs=3, default=(10, 21, 21))
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--capability", type=int, default=90, help="GPU compute capability to plan and compile for")
    parser.add_argument("--plans-only", action="store_true", help="only the tile plans' pair ratios (no compiler)")
    args = parser.parse_args()
    plan_ratios()
    if args.plans_only:
        return
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("run without TRITON_INTERPRET=1: this script compiles the kernels for real GPUs")

    kernel = gpu_kernel.load_kernel()
    aot = __import__(kernel.__name__ + "._aot", fromlist=["compile_kernel"])
    grid, head_dim, capability = tuple(args.grid), args.head_dim, args.capability
    n = math.prod(grid)
    query = torch.empty(1, 1, n, head_dim, dtype=torch.bfloat16, device="meta")
    clock_rate = H100["sms"] * H100["clock"]

    print(f"# 3DNA on a {grid} grid ({n} tokens), head_dim {head_dim}, bf16, planned and compiled for "
          f"sm_{capability}; per (batch, head)\n")
    for extent in ((3, 3, 3), (7, 7, 7)):
        for causal in (True, False):
            plan = kernel.make_plan(query, query, query_grid=grid, key_grid=grid, extent=extent, causal=causal,
                                    scale=None, query_offset=None, capability=capability)
            work = kernel.work(plan)
            config = plan.config
            dq_blocks = sum(work.dq_key_blocks)
            dq_pairs = work.dq_pairs
            dense = n * n if not causal else n * (n + 1) // 2
            flex = flex_block_sparse_pairs(grid, extent, causal)
            info = {name: aot.compile_kernel(name, capability, dtype=torch.bfloat16, head_dim=head_dim,
                                             query_grid=grid, extent=extent, causal=causal)
                    for name in aot.KERNELS}
            blocks = {"forward": sum(work.forward_key_blocks), "backward_dq": dq_blocks,
                      "backward_dkdv": sum(work.dkdv_query_blocks)}
            issue_clk = {name: blocks[name] * info[name].num_warps * info[name].loop_instructions
                         / H100["issue_per_clk_per_sm"] for name in blocks}
            fwd_flop = 4 * head_dim * work.forward_pairs
            bwd_flop = 2 * head_dim * (3 * dq_pairs + 4 * work.dkdv_pairs)
            io_bytes = 4 * n * head_dim * 2 + 4 * n  # Q, K, V, O in bf16 + the fp32 log-sum-exp
            print(f"## extent {extent}, causal={causal}: query tile {plan.query_tile}, key tile {plan.key_tile}, "
                  f"blocks {config.block_m}x{config.block_n} (dQ x{config.dq_block_n}, dK/dV {config.dkdv_block_m}"
                  f"x{config.block_n})")
            print("measured (exact counts, compiled code):")
            print(f"  allowed pairs            {work.allowed_pairs:>12,}  ({work.allowed_pairs / dense:.2%} of dense)")
            print(f"  forward pairs computed   {work.forward_pairs:>12,}  ({work.forward_pairs / dense:.2%} of dense, "
                  f"{work.forward_pairs / work.allowed_pairs:.1f}x allowed)")
            print(f"  dQ / dK,dV pairs         {dq_pairs:>12,} / {work.dkdv_pairs:,}")
            print(f"  FlexAttention 128x128 block-sparse pairs {flex:,} ({flex / dense:.1%} of dense)")
            print(f"  dense (causal: lower triangle) pairs     {dense:,}")
            for name, i in info.items():
                print(f"  {name:14s} sm_{capability}: {i.registers} registers, {i.stack_bytes} B stack, "
                      f"{i.shared_bytes} B shared, {i.num_warps} warps, inner loop {i.loop_instructions} SASS "
                      f"instructions per thread, {blocks[name]} inner-loop passes")
            print("on paper (H100 SXM5 roofline from the counts above; NOT measured):")
            fwd_tensor = fwd_flop / (H100["tensor_flop_per_clk_per_sm"] * clock_rate)
            fwd_issue = issue_clk["forward"] / clock_rate
            hbm = io_bytes / H100["hbm_bytes_per_s"]
            bwd_tensor = bwd_flop / (H100["tensor_flop_per_clk_per_sm"] * clock_rate)
            bwd_issue = (issue_clk["backward_dq"] + issue_clk["backward_dkdv"]) / clock_rate
            bwd_hbm = 2 * hbm + 3 * n * head_dim * 2 / H100["hbm_bytes_per_s"]  # + dO, dQ, dK, dV
            dense_fwd = 4 * head_dim * dense / (989e12 * DENSE_FLASH_UTILISATION)
            dense_bwd = 2.5 * dense_fwd
            flex_fwd = 4 * head_dim * flex / (989e12 * DENSE_FLASH_UTILISATION)
            print(f"  3DNA kernel forward:  tensor {fwd_tensor * 1e6:.2f} us, instruction issue "
                  f"{fwd_issue * 1e6:.2f} us, HBM {hbm * 1e6:.2f} us -> ~{max(fwd_tensor, fwd_issue, hbm) * 1e6:.2f}"
                  f"-{(fwd_issue + hbm) * 1e6:.2f} us")
            print(f"  3DNA kernel backward: tensor {bwd_tensor * 1e6:.2f} us, instruction issue "
                  f"{bwd_issue * 1e6:.2f} us, HBM {bwd_hbm * 1e6:.2f} us -> ~{max(bwd_tensor, bwd_issue, bwd_hbm) * 1e6:.2f}"
                  f"-{(bwd_issue + bwd_hbm) * 1e6:.2f} us")
            print(f"  dense FlashAttention at {DENSE_FLASH_UTILISATION:.0%} of 989 TFLOPS: forward "
                  f"{dense_fwd * 1e6:.2f} us, backward {dense_bwd * 1e6:.2f} us; block-sparse Flex forward "
                  f"{flex_fwd * 1e6:.2f} us")
            print(f"  (the time per head assumes enough heads x batch to fill {H100['sms']} SMs: this kernel "
                  f"launches {len(work.forward_key_blocks)} programs per head)\n")


if __name__ == "__main__":
    main()
