"""One prepared check of NUWA's 3D Nearby Attention on a GPU machine: correctness, timing and cached generation.

Run it through ``benchmarks/gpu_check.sh`` (which installs carried wheels and sets PYTHONPATH); directly:

    python benchmarks/gpu_check.py --out DIR [--tiny] [--budget SECONDS] [--sections environment,correctness,...]

Sections, each written to ``DIR/gpu_check.json`` (and ``DIR/gpu_check.md``) as soon as it ends:

environment   nvidia-smi, python/torch/triton/transformers versions, the device (in this process).
correctness   the fused Triton kernel (kernels/nuwa_3dna, as ``tests/ops/test_gpu_kernel.py`` loads it) against the one
              reference, ``nuwa_hf.nearby_attention_reference`` in float64: output and dQ/dK/dV, causal and not, the
              paper's grids (10x21x21 video, 1x32x32 image, 77-token text), cross-attention and decoding slices,
              float32 and bfloat16. torch's own SDPA in the same dtype is measured against the same reference as a
              yardstick.
timing        on 10x21x21: the Triton kernel (``nearby_attention(backend="triton")``) vs dense SDPA with the 3DNA
              boolean mask (``bench_nearby_attention.make_fn("sdpa_dense_mask")``) vs compiled FlexAttention with a
              block mask built from the same per-axis windows (``nuwa_hf.ops.geometry.axis_window``); forward and
              forward+backward, fp32 and bf16; milliseconds (triton.testing.do_bench, and do_bench_cudagraph for the
              GPU time without launch overhead), TFLOP/s counting only allowed (query, key) pairs, ratio vs dense SDPA.
generation    KV-cached generation of a 10x21x21 video with a paper-like 20.9M-parameter preset: time per token, first
              vs last frame (``bench_generate.StepClock``); torch.compile / CUDA graphs are probed, not faked.

Every section runs in its own subprocess with a time budget, so a crash or a hang in one is recorded (error text,
exit code) and the others still run. ``--tiny`` (or GPU_CHECK_TINY=1, or no CUDA device) uses tiny grids; without
CUDA the kernel runs in Triton's interpreter (TRITON_INTERPRET=1, float32 only), which is how
``tests/benchmarks/test_gpu_check.py`` runs this file on a CPU.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"
for _path in (str(SRC), str(HERE)):  # nuwa_hf from this checkout; the bench_* modules beside this file
    if _path not in sys.path:
        sys.path.insert(0, _path)

SECTIONS = ("environment", "correctness", "timing", "generation")
JSON_NAME, MD_NAME = "gpu_check.json", "gpu_check.md"

# NVIDIA H200 SXM data-sheet figures (spec, not measured): dense (no sparsity) bf16 tensor-core throughput, fp32 on
# CUDA cores (the kernel's fp32 path multiplies in IEEE fp32, not TF32), HBM3e bandwidth.
H200_SPEC = {"bf16_dense_tflops": 989.0, "fp32_tflops": 67.0, "hbm_tb_per_s": 4.8,
             "source": "NVIDIA H200 SXM data sheet (spec figures, not measured)"}

# The paper-like preset: NuwaConfig.paper() (49,408-token CLIP text vocabulary, 77 text tokens, a 10x21x21 visual
# grid, the paper's extents) narrowed to width 256 (4 heads of 64), 4 encoder + 4 decoder layers, and 1,024-code
# visual and sketch codebooks: 20.86M parameters. benchmarks/bench_generate.py itself builds NuwaConfig.tiny().
PAPER_LIKE = dict(hidden_size=256, num_attention_heads=4, encoder_layers=4, decoder_layers=4, intermediate_size=1024,
                  visual_vocab_size=1024, sketch_vocab_size=1024)

# (name, query_grid, key_grid, extent, causal, (query_offset, num_queries, num_keys) or None), most important first:
# a time budget cuts the tail.
FULL_CORRECTNESS = [
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
TINY_CORRECTNESS = [
    ("video_self_causal", (2, 3, 4), (2, 3, 4), (3, 3, 3), True, None),
    ("video_self", (2, 3, 4), (2, 3, 4), (3, 3, 3), False, None),
    ("image_self_causal", (1, 4, 5), (1, 4, 5), (1, 3, 3), True, None),
    ("video_to_text_cross", (2, 3, 4), (5, 1, 1), (None, 1, 1), False, None),
    ("video_decode_step", (2, 3, 4), (2, 3, 4), (3, 3, 3), True, (10, 1, 11)),
]
# Max abs error allowed, relative to max(1, largest reference magnitude) of that output or gradient.
TOLERANCE = {"fp32": 1e-5, "bf16": 2e-2}


def mode_config(tiny: bool, cuda: bool) -> dict:
    """Every size the sections use, for the real run and for the tiny (CPU interpreter or quick GPU) run."""
    if not tiny:
        return dict(
            correctness=FULL_CORRECTNESS, correctness_shape=(2, 4, 64), dtypes=("fp32", "bf16"), blocks={},
            # (batch, heads, dtype, causal), most important first
            timing_grid=(10, 21, 21), timing_extent=(3, 3, 3), head_dim=64,
            timing_cases=[(4, 16, "bf16", True), (1, 8, "bf16", True), (4, 16, "fp32", True), (1, 8, "fp32", True),
                          (4, 16, "bf16", False), (4, 16, "fp32", False)],
            flex_compile=True, generation_grid=(10, 21, 21), generation_warmup_grid=(2, 21, 21), generation_runs=2,
            paper_like=True, text_length=16,
            budgets={"correctness": 100, "timing": 160, "generation": 120}, total_budget=420,
        )
    dtypes = ("fp32", "bf16") if cuda else ("fp32",)  # the interpreter's numpy has no bfloat16
    return dict(
        correctness=TINY_CORRECTNESS, correctness_shape=(1, 2, 16), dtypes=dtypes,
        blocks={"block_m": 16, "block_n": 16},  # many tiles and key blocks even on tiny grids, as in the kernel tests
        timing_grid=(2, 3, 4), timing_extent=(3, 3, 3), head_dim=16,
        timing_cases=[(1, 2, dtype, True) for dtype in dtypes],
        flex_compile=cuda, generation_grid=(2, 3, 3), generation_warmup_grid=(1, 3, 3), generation_runs=1,
        paper_like=False, text_length=5,
        budgets={"correctness": 120, "timing": 90, "generation": 90}, total_budget=300,
    )


def dtype_of(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def write_json(path: Path, data) -> None:
    """Atomic: a reader (or a kill mid-write) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def error_text(exc: BaseException, limit: int = 4000) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text[-limit:]


# ---- importing nuwa_hf -------------------------------------------------------------------------------------------

def import_nuwa_hf(record: dict):
    """``import nuwa_hf`` as a user would, and record where from and which optional packages it loaded.

    The package's light core imports torch, transformers, safetensors and huggingface_hub only (diffusers when a model
    with VQ-GANs is built, which no section does), so a machine with torch, triton and transformers runs every section
    without extra wheels. Returns the ``nuwa_hf.ops`` module.
    """
    import nuwa_hf
    import nuwa_hf.ops as ops

    record["nuwa_hf_import"] = {"ok": True, "from": str(Path(nuwa_hf.__file__).parent),
                                "optional_loaded": [name for name in ("diffusers", "datasets", "evaluate", "gradio")
                                                    if name in sys.modules]}
    return ops


# ---- section: environment (runs in the driver process; never imports triton) -----------------------------------

def run_command(args, timeout=30) -> dict:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        return {"rc": done.returncode, "stdout": done.stdout.strip()[-2000:], "stderr": done.stderr.strip()[-1000:]}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def section_environment(config: dict, record: dict) -> None:
    import platform

    record["python"] = sys.version.split()[0]
    record["executable"] = sys.executable
    record["platform"] = platform.platform()
    record["triton_interpret"] = os.environ.get("TRITON_INTERPRET", "0")
    record["wheels_installed"] = os.environ.get("GPU_CHECK_INSTALLED", "")
    record["pythonpath"] = os.environ.get("PYTHONPATH", "")
    if shutil.which("nvidia-smi"):
        record["nvidia_smi"] = run_command([
            "nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit",
            "--format=csv,noheader"])
        record["nvidia_smi_L"] = run_command(["nvidia-smi", "-L"])
    else:
        record["nvidia_smi"] = {"error": "nvidia-smi not found"}
    versions = {}
    for name in ("torch", "triton", "transformers", "diffusers", "datasets", "huggingface_hub", "accelerate",
                 "safetensors", "tokenizers", "numpy", "torchvision"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    record["versions"] = versions
    import torch

    record["torch"] = torch.__version__
    record["torch_cuda"] = torch.version.cuda
    record["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        record["device"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                            "sms": props.multi_processor_count, "memory_gib": round(props.total_memory / 2**30, 1)}
    else:
        record["device"] = {"name": "cpu", "threads": torch.get_num_threads()}
    record["allow_tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32


# ---- section: correctness ----------------------------------------------------------------------------------------

def correctness_case(ops, kernel, case, dtype_name, shape, blocks, device, seed) -> dict:
    """Max abs errors of the kernel's output and gradients vs the float64 reference on the same (rounded) inputs,
    plus torch SDPA (dense 3DNA mask, same dtype) against the same reference as a yardstick."""
    import torch
    import torch.nn.functional as F

    name, query_grid, key_grid, extent, causal, decode = case
    dtype = dtype_of(dtype_name)
    batch, heads, dim = shape
    query_offset, num_queries, num_keys = decode if decode else (None, math.prod(query_grid), math.prod(key_grid))
    g = torch.Generator(device="cpu").manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, n, dim, generator=g).to(device=device, dtype=dtype)
               for n in (num_queries, num_keys, num_keys))
    grad_out = torch.randn(batch, heads, num_queries, dim, generator=g).to(device=device, dtype=dtype)
    kw = dict(query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, query_offset=query_offset)

    qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
    out = kernel.nearby_attention(qg, kg, vg, **kw, **blocks)
    grads = torch.autograd.grad(out, (qg, kg, vg), grad_out)

    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = ops.nearby_attention_reference(q64, k64, v64, **kw)
    ref_grads = torch.autograd.grad(ref, (q64, k64, v64), grad_out.double())
    names = ("out", "dq", "dk", "dv")
    errors = {n: (got.double() - want).abs().max().item()
              for n, got, want in zip(names, (out, *grads), (ref, *ref_grads))}
    magnitude = {n: want.abs().max().item() for n, want in zip(names, (ref, *ref_grads))}

    yardstick = {}
    try:
        mask = ops.nearby_attention_mask(query_grid, key_grid, extent, causal, query_offset=query_offset or 0,
                                         num_queries=num_queries, num_keys=num_keys, device=device)
        qs, ks, vs = (t.clone().requires_grad_() for t in (q, k, v))
        sdpa = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=mask)
        sdpa_grads = torch.autograd.grad(sdpa, (qs, ks, vs), grad_out)
        yardstick = {n: (got.double() - want).abs().max().item()
                     for n, got, want in zip(names, (sdpa, *sdpa_grads), (ref, *ref_grads))}
    except Exception as exc:  # noqa: BLE001 (a yardstick only)
        yardstick = {"error": error_text(exc, 500)}

    tol = TOLERANCE[dtype_name]
    passed = all(errors[n] <= tol * max(1.0, magnitude[n]) for n in names)
    return {
        "case": name, "dtype": dtype_name, "query_grid": query_grid, "key_grid": key_grid, "extent": extent,
        "causal": causal, "query_offset": query_offset, "num_queries": num_queries, "num_keys": num_keys,
        "shape_bhd": [batch, heads, dim], "errors": errors, "reference_magnitude": magnitude,
        "sdpa_same_dtype_errors": yardstick, "tolerance": f"{tol:g} x max(1, reference magnitude)",
        "passed": bool(passed),
    }


def section_correctness(config: dict, record: dict, save, deadline: float) -> None:
    import torch

    ops = import_nuwa_hf(record)
    from nuwa_hf.ops import gpu_kernel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    kernel = gpu_kernel.load_kernel()
    record.update(device=device, interpreted=bool(kernel.is_interpreted()),
                  reference="nuwa_hf.nearby_attention_reference (float64)",
                  kernel_call="gpu_kernel.load_kernel().nearby_attention(q, k, v, ...)" + (
                      f" with {config['blocks']}" if config["blocks"] else " with the default launch config"),
                  dtypes=list(config["dtypes"]), cases=[])
    if device == "cpu":
        record["notes"] = "Triton interpreter on CPU tensors: float32 only (its numpy has no bfloat16)."
    seed = 0
    for case in config["correctness"]:
        for dtype_name in config["dtypes"]:
            seed += 1
            entry = {"case": case[0], "dtype": dtype_name}
            if time.time() > deadline:
                entry["skipped"] = "time budget"
            else:
                start = time.time()
                try:
                    entry = correctness_case(ops, kernel, case, dtype_name, config["correctness_shape"],
                                             config["blocks"], device, seed)
                except Exception as exc:  # noqa: BLE001 (one case's failure is recorded, the rest still run)
                    entry["error"] = error_text(exc)
                entry["wall_s"] = round(time.time() - start, 2)
                if device == "cuda":
                    torch.cuda.empty_cache()
            record["cases"].append(entry)
            print(f"[correctness] {entry['case']} {entry['dtype']}: "
                  f"{entry.get('errors', entry.get('skipped') or 'ERROR')}", flush=True)
            save()
    ran = [c for c in record["cases"] if "errors" in c]
    record["max_errors"] = {
        d: {n: max(c["errors"][n] for c in ran if c["dtype"] == d) for n in ("out", "dq", "dk", "dv")}
        for d in config["dtypes"] if any(c["dtype"] == d for c in ran)
    }
    record["failed_cases"] = [f"{c['case']}/{c['dtype']}" for c in record["cases"]
                              if c.get("error") or c.get("passed") is False]
    record["skipped_cases"] = [f"{c['case']}/{c['dtype']}" for c in record["cases"] if c.get("skipped")]
    record["passed"] = bool(ran) and not record["failed_cases"]


# ---- section: timing ---------------------------------------------------------------------------------------------

def flex_mask_mod(query_grid, key_grid, extent, causal, device):
    """FlexAttention mask_mod of the 3DNA rule: per axis, the inclusive key window ``geometry.axis_window`` gives for
    the query's coordinate, plus ``key <= query`` when causal. (``geometry.allowed`` itself builds its result in
    place, which flex's vmap cannot trace, so the same windows are read from its per-axis helper.)"""
    from nuwa_hf.ops.geometry import axis_window, unravel

    bounds = [axis_window(q, k, e, device=device) for q, k, e in zip(query_grid, key_grid, extent)]

    def mask_mod(b, h, q_idx, kv_idx):
        ok = kv_idx <= q_idx if causal else kv_idx >= 0
        for qc, kc, (lo, hi) in zip(unravel(q_idx, query_grid), unravel(kv_idx, key_grid), bounds):
            ok = ok & (kc >= lo[qc]) & (kc <= hi[qc])
        return ok

    return mask_mod


def time_ms(fn, cuda: bool, reps: int = 2) -> dict:
    """{'eager_ms': per-call time with launches from Python, 'graph_ms': GPU time replayed from a CUDA graph}."""
    if not cuda:
        fn()
        samples = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - start) * 1e3)
        return {"eager_ms": statistics.median(samples), "graph_ms": None, "timer": "perf_counter (CPU)"}
    import triton.testing

    result = {"eager_ms": triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median"),
              "timer": "triton.testing.do_bench (median, L2 flushed) / do_bench_cudagraph (median)"}
    try:
        result["graph_ms"] = triton.testing.do_bench_cudagraph(fn, rep=50, return_mode="median")
    except Exception as exc:  # noqa: BLE001 (capture can fail; the eager time still stands)
        result["graph_ms"] = None
        result["graph_error"] = error_text(exc, 600)
    return result


def section_timing(config: dict, record: dict, save, deadline: float) -> None:
    import torch

    ops = import_nuwa_hf(record)
    import bench_gpu_kernel
    import bench_nearby_attention
    from nuwa_hf.ops import gpu_kernel

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    kernel = gpu_kernel.load_kernel()
    capability = (lambda major, minor: 10 * major + minor)(*torch.cuda.get_device_capability()) if cuda else None
    grid, extent, dim = config["timing_grid"], config["timing_extent"], config["head_dim"]
    length = math.prod(grid)
    record.update(
        device=device, grid=grid, extent=extent, head_dim=dim, interpreted=bool(kernel.is_interpreted()),
        spec=H200_SPEC, rows=[], cases=[],
        flop_convention=("useful FLOPs count only the (query, key) pairs the 3DNA mask allows, per (batch, head): "
                         "forward 4*D per pair (QK^T and PV), forward+backward 14*D per pair (backward = 2.5x "
                         "forward: five matmuls); dense SDPA and Flex get the same count, so TFLOP/s ratios are "
                         "time ratios"),
        implementations={
            "triton": "nuwa_hf.nearby_attention(..., backend='triton'): the fused kernel through the public dispatch",
            "sdpa_dense_mask": "bench_nearby_attention.make_fn('sdpa_dense_mask'): F.scaled_dot_product_attention "
                               "with the dense boolean 3DNA mask (nuwa_hf.nearby_attention_mask)",
            "flex": "torch.compile(flex_attention) with create_block_mask(mask_mod from geometry.axis_window), "
                    "128x128 blocks" if config["flex_compile"] else
                    "flex_attention without torch.compile (tiny CPU run: exercises the mask, not the speed)",
        },
        check="max |impl - nuwa_hf.nearby_attention_reference| on the float32-upcast inputs, forward",
    )
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    if config["flex_compile"]:
        import torch._dynamo

        # One compiled variant per (shape, dtype, grad mode): more than dynamo's default of 8 recompiles, past which
        # it would silently fall back to the unfused eager flex_attention.
        for option in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                       "accumulated_cache_size_limit"):
            if hasattr(torch._dynamo.config, option):
                setattr(torch._dynamo.config, option, max(64, getattr(torch._dynamo.config, option)))
        flex = torch.compile(flex_attention, dynamic=False)
    else:
        flex = flex_attention
    masks, block_masks, pair_counts = {}, {}, {}
    for batch, heads, dtype_name, causal in config["timing_cases"]:
        case = {"batch": batch, "heads": heads, "dtype": dtype_name, "causal": causal}
        record["cases"].append(case)
        if time.time() > deadline:
            case["skipped"] = "time budget"
            save()
            continue
        try:
            dtype = dtype_of(dtype_name)
            if causal not in masks:
                masks[causal] = ops.nearby_attention_mask(grid, grid, extent, causal, device=device)
                start = time.time()
                block_masks[causal] = create_block_mask(
                    flex_mask_mod(grid, grid, extent, causal, device), None, None, length, length, device=device)
                pair_counts[causal] = {
                    "flex_block_mask_build_s": round(time.time() - start, 3),
                    "allowed_pairs": int(masks[causal].sum()),
                    "dense_pairs": length * length if not causal else length * (length + 1) // 2,
                    "flex_block_pairs_128": bench_gpu_kernel.flex_block_sparse_pairs(grid, extent, causal),
                }
            mask, block_mask = masks[causal], block_masks[causal]
            allowed = pair_counts[causal]["allowed_pairs"]
            case.update(pair_counts[causal])
            meta = torch.empty(batch, heads, length, dim, dtype=dtype, device="meta")
            plan = kernel.make_plan(meta, meta, query_grid=grid, key_grid=grid, extent=extent, causal=causal,
                                    scale=None, query_offset=None, capability=capability)
            work = kernel.work(plan)
            case["triton_work"] = {"forward_pairs": work.forward_pairs, "dkdv_pairs": work.dkdv_pairs,
                                   "query_tile": plan.query_tile, "key_tile": plan.key_tile,
                                   "block_m": plan.config.block_m, "block_n": plan.config.block_n}

            g = torch.Generator(device="cpu").manual_seed(batch * 100 + heads)
            q, k, v, dout = (torch.randn(batch, heads, length, dim, generator=g).to(device=device, dtype=dtype)
                             for _ in range(4))
            reference = ops.nearby_attention_reference(q.float(), k.float(), v.float(), query_grid=grid,
                                                       key_grid=grid, extent=extent, causal=causal)
            for pass_name in ("fwd", "fwd+bwd"):
                needs_grad = pass_name == "fwd+bwd"
                qq, kk, vv = (t.clone().requires_grad_(needs_grad) for t in (q, k, v))
                impls = {
                    "triton": lambda: ops.nearby_attention(qq, kk, vv, query_grid=grid, key_grid=grid, extent=extent,
                                                           causal=causal, backend="triton"),
                    "sdpa_dense_mask": bench_nearby_attention.make_fn("sdpa_dense_mask", grid, qq, kk, vv, mask),
                    "flex": lambda: flex(qq, kk, vv, block_mask=block_mask),
                }
                rows = {}
                for impl, forward in impls.items():
                    row = {"batch": batch, "heads": heads, "dtype": dtype_name, "causal": causal, "pass": pass_name,
                           "impl": impl}
                    if time.time() > deadline:
                        row["skipped"] = "time budget"
                        record["rows"].append(row)
                        continue
                    if impl == "flex" and needs_grad and not cuda:
                        row["skipped"] = "FlexAttention has no backward on CPU"
                        record["rows"].append(row)
                        continue
                    try:
                        if needs_grad:
                            def fn(forward=forward):
                                return torch.autograd.grad(forward(), (qq, kk, vv), dout)
                        else:
                            def fn(forward=forward):
                                with torch.no_grad():
                                    return forward()
                        start = time.time()  # the first call also compiles (flex) / JIT-compiles (triton)
                        if needs_grad:
                            out = forward()
                            torch.autograd.grad(out, (qq, kk, vv), dout)
                        else:
                            out = fn()
                        if cuda:
                            torch.cuda.synchronize()
                        row["first_call_s"] = round(time.time() - start, 3)
                        row["check_max_abs_err"] = (out.detach().float() - reference).abs().max().item()
                        del out
                        if cuda:
                            torch.cuda.reset_peak_memory_stats()
                        row.update(time_ms(fn, cuda))
                        if cuda:
                            row["peak_mem_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
                        best = row["graph_ms"] if row.get("graph_ms") else row["eager_ms"]
                        flops = (4 if not needs_grad else 14) * dim * allowed * batch * heads
                        row["useful_tflops"] = flops / (best * 1e-3) / 1e12
                        row["tflops_from"] = "graph_ms" if row.get("graph_ms") else "eager_ms"
                        peak = H200_SPEC["bf16_dense_tflops"] if dtype_name != "fp32" else H200_SPEC["fp32_tflops"]
                        row["fraction_of_spec_peak"] = row["useful_tflops"] / peak
                        # Lower bound of HBM traffic: Q, K, V, O once (forward); + dO, dQ, dK, dV and Q, K, V, O again.
                        tensors = 4 if not needs_grad else 12
                        row["min_hbm_fraction"] = (tensors * batch * heads * length * dim * q.element_size()
                                                   / (best * 1e-3) / (H200_SPEC["hbm_tb_per_s"] * 1e12))
                    except Exception as exc:  # noqa: BLE001 (one implementation's failure is recorded)
                        row["error"] = error_text(exc, 1500)
                    rows[impl] = row
                    record["rows"].append(row)
                    print(f"[timing] B{batch} H{heads} {dtype_name} causal={causal} {pass_name} {impl}: " + (
                        f"{row['eager_ms']:.4f} ms, graph {row.get('graph_ms')} ms, first call {row['first_call_s']} s"
                        if "eager_ms" in row else "ERROR " + row.get("error", "").strip().splitlines()[-1][:200]),
                        flush=True)
                    save()
                    if cuda:
                        torch.cuda.empty_cache()
                base = rows.get("sdpa_dense_mask", {})
                for row in rows.values():
                    for kind in ("eager_ms", "graph_ms"):
                        if row.get(kind) and base.get(kind):
                            row[f"speedup_vs_sdpa_{kind.split('_')[0]}"] = base[kind] / row[kind]
                del qq, kk, vv
            save()
        except Exception as exc:  # noqa: BLE001 (one case's failure is recorded, the rest still run)
            case["error"] = error_text(exc)
            save()
    record["passed_checks"] = all(
        r.get("check_max_abs_err", 0.0) <= (1e-4 if r["dtype"] == "fp32" else 5e-2) for r in record["rows"]
        if "check_max_abs_err" in r)


# ---- section: generation -----------------------------------------------------------------------------------------

def step_statistics(step_times, grid) -> dict:
    """Per-token times (seconds between decoding steps, min over runs) -> first/last frame medians in ms."""
    frame = grid[1] * grid[2]
    steps = [min(column) for column in zip(*step_times)]
    first = statistics.median(steps[: max(1, frame - 1)])
    last = statistics.median(steps[-frame:])
    return {"steps": len(steps), "per_token_ms_median": statistics.median(steps) * 1e3,
            "first_frame_ms": first * 1e3, "last_frame_ms": last * 1e3, "last_over_first": last / first,
            "per_token_ms_p90": sorted(steps)[int(0.9 * (len(steps) - 1))] * 1e3}


def probe(fn) -> dict:
    try:
        fn()
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 (the probe's answer is the exception)
        answer = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:800]}"}
        context = exc.__context__  # e.g. the capture's own error, when ending the capture failed too
        if context is not None and str(context)[:200] not in str(exc):
            answer["during"] = f"{type(context).__name__}: {str(context)[:800]}"
        return answer


def static_step_decoding(model, text, grid, cuda: bool, record: dict, save) -> None:
    """The fast step's static form (NuwaDecodingStep.static_step: fixed shapes, the position a device tensor),
    greedy over the whole grid with the next id fed back on the device (no host sync per token): eager, and on a GPU
    replayed from one captured CUDA graph. Records seconds, ms/token and the graph's speed-up into record."""
    import torch

    from nuwa_hf.models.nuwa.decoding_nuwa import NuwaDecodingStep

    device = text.device
    total = math.prod(grid)
    encoded = model.encode_condition(input_ids=text)

    def fresh():
        step = NuwaDecodingStep(model, encoded, grid)
        ids = torch.full((1, 1), model.config.visual_bos_token_id, dtype=torch.long, device=device)
        return step, ids, torch.zeros(1, dtype=torch.long, device=device)

    def run(one_step, ids, position) -> tuple:
        tokens = []
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for p in range(total):
            position.fill_(p)
            logits = one_step()
            ids.copy_(logits[:, -1].argmax(-1, keepdim=True))
            tokens.append(ids.clone())
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start, torch.cat(tokens, dim=1)

    step, ids, position = fresh()
    eager_s, eager_tokens = run(lambda: step.static_step(ids, position), ids, position)
    result = {"eager_s": eager_s, "eager_ms_per_token": eager_s / total * 1e3}
    record["static_step"] = result
    save()
    if not cuda:
        result["cuda_graph"] = {"skipped": "no CUDA device"}
        return
    result["cuda_graph"] = {"ok": False, "error": "process died in capture"}
    save()
    try:
        step, ids, position = fresh()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():  # warm-up outside the capture, as CUDA graphs require
            for _ in range(3):
                step.static_step(ids, position)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            captured = step.static_step(ids, position)

        def replay():
            graph.replay()
            return captured

        graphed_s, graphed_tokens = run(replay, ids, position)
        result["cuda_graph"] = {"ok": True, "seconds": graphed_s, "ms_per_token": graphed_s / total * 1e3,
                                "speedup_over_eager_static": eager_s / graphed_s,
                                "same_greedy_tokens": bool(torch.equal(graphed_tokens, eager_tokens))}
    except Exception as exc:  # noqa: BLE001 (recorded)
        result["cuda_graph"] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:800]}"}
    save()


def section_generation(config: dict, record: dict, save, deadline: float) -> None:
    import torch

    ops = import_nuwa_hf(record)
    from bench_generate import StepClock
    from transformers import LogitsProcessorList

    from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
    from nuwa_hf.models.nuwa.generation_nuwa import make_generation_cache

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    grid = config["generation_grid"]
    if config["paper_like"]:
        model_config = NuwaConfig.paper(**PAPER_LIKE)
        record["preset"] = {"name": "paper-like", "built_as": f"NuwaConfig.paper(**{PAPER_LIKE})"}
    else:
        model_config = NuwaConfig.tiny(max_visual_grid=grid)
        record["preset"] = {"name": "tiny", "built_as": f"NuwaConfig.tiny(max_visual_grid={grid})"}
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(model_config).eval().to(device)
    record["parameters_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 3)
    record.update(device=str(device), grid=grid, dtype="float32", batch=1,
                  attention_implementation=model.config._attn_implementation)
    text = torch.randint(0, model_config.text_vocab_size, (1, config["text_length"]), device=device)
    probe_q = torch.zeros(1, model_config.num_attention_heads, 1, model_config.head_dim, device=device)
    record["decode_step_backend"] = ops.select_backend(probe_q, probe_q, probe_q, query_offset=1)
    record["prefill_backend_no_grad"] = ops.select_backend(probe_q, probe_q, probe_q, query_offset=None)
    save()

    def generate(visual_grid, fast: bool = True):
        """generate() with the fast decoding step (the default) or, fast=False, through the model's forward."""
        clock = StepClock()
        torch.manual_seed(0)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        sequence = model.generate(input_ids=text, visual_grid=visual_grid, do_sample=True, top_k=16,
                                  logits_processor=LogitsProcessorList([clock]), fast_decoding=fast)
        if cuda:
            torch.cuda.synchronize()
        total = time.perf_counter() - start
        assert sequence.shape == (1, 1 + math.prod(visual_grid)), sequence.shape
        return total, [b - a for a, b in zip(clock.stamps, clock.stamps[1:])]

    warm_grid = config["generation_warmup_grid"]
    warm_total, warm_steps = generate(warm_grid)  # compiles the kernels' decode variants, fills caches
    record["warmup"] = {"grid": warm_grid, "total_s": warm_total, **step_statistics([warm_steps], warm_grid),
                        "note": "includes the kernels' JIT compiles"}
    save()
    estimate = statistics.median(warm_steps) * math.prod(grid) * 1.3 + 2
    runs, step_times = [], []
    for run in range(config["generation_runs"]):
        # The first full run may use the worker's grace period (the driver kills 30 s after the soft deadline).
        if time.time() + estimate > deadline + (20 if run == 0 else 0):
            record["runs_skipped"] = (f"{config['generation_runs'] - run} run(s): time budget "
                                      f"(estimate {estimate:.0f} s per run)")
            break
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        total, steps = generate(grid)
        runs.append(total)
        step_times.append(steps)
        estimate = total * 1.2
        record["runs_s"] = runs
        record["eager"] = {"total_s_best": min(runs), "ms_per_token_overall": min(runs) / math.prod(grid) * 1e3,
                           **step_statistics(step_times, grid), "runs": len(runs),
                           "note": "per-step minimum over runs (filters JIT compiles and other processes)"}
        if cuda:
            record["eager"]["peak_mem_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        print(f"[generation] run {run}: {total:.2f} s for {math.prod(grid)} tokens", flush=True)
        save()

    record["decoding_path"] = "NuwaDecodingStep (generate's default, fast_decoding=True)"
    # The module path (every step through forward, the path before the fast step), one run, for the ratio.
    if runs and time.time() + min(runs) * 3 < deadline:
        total, steps = generate(grid, fast=False)
        record["module_path"] = {"total_s": total, "ms_per_token_overall": total / math.prod(grid) * 1e3,
                                 **step_statistics([steps], grid), "fast_speedup": total / min(runs)}
        print(f"[generation] module path: {total:.2f} s ({total / min(runs):.1f}x the fast step's time)", flush=True)
    else:
        record["module_path"] = {"skipped": "time budget"}
    save()

    # The fast step's static form, eager and replayed from a CUDA graph.
    if time.time() + (min(runs) if runs else 0) * 3 < deadline:
        static_step_decoding(model, text, grid, cuda, record, save)
        print(f"[generation] static step: {json.dumps(record['static_step'])[:300]}", flush=True)
    else:
        record["static_step"] = {"skipped": "time budget"}

    # torch.compile / CUDA graphs of the module path's step, probed on one real decoding step.
    reasons = [
        "NuwaForConditionalGeneration.forward and NuwaDecoder.forward read the cache length to the host every step "
        "(int(cache.self_attention_cache.get_seq_length())) and check the ids' range (int(decoder_input_ids.min())): "
        "host synchronisations that a CUDA graph cannot capture and that break a torch.compile graph",
        "the decode step's position (query_offset) and key count are Python ints that change every step and are "
        "passed to the 3DNA kernel launch, so one captured step could not be replayed for the next",
        "generate() passes its own preallocated cache as `cache=`, so transformers' own compiled/static-cache "
        "decoding (compile_config, cache_implementation='static') does not apply",
    ]
    encoded = model.encode_condition(input_ids=text)
    cache = make_generation_cache(model_config.decoder_layers, grid)
    bos = torch.full((1, 1), model_config.visual_bos_token_id, dtype=torch.long, device=device)
    with torch.no_grad():
        model(decoder_input_ids=bos, encoder_outputs=encoded, visual_grid=grid, cache=cache)  # step 0, eager
    next_ids = torch.zeros((1, 1), dtype=torch.long, device=device)

    def compiled_step():
        import torch._dynamo

        torch._dynamo.reset()
        step = torch.compile(model, fullgraph=True, backend="eager")
        with torch.no_grad():
            step(decoder_input_ids=next_ids, encoder_outputs=encoded, visual_grid=grid, cache=cache)

    record["torch_compile"] = {
        "measured": False,
        "fullgraph_probe": probe(compiled_step) if time.time() < deadline else {"skipped": "time budget"},
        "probe": "torch.compile(model, fullgraph=True, backend='eager') on one cached decoding step",
    }
    if cuda:
        def captured_step():
            graph = torch.cuda.CUDAGraph()
            with torch.no_grad(), torch.cuda.graph(graph):
                model(decoder_input_ids=next_ids, encoder_outputs=encoded, visual_grid=grid, cache=cache)

        # Last thing in this process: a failed capture can leave the CUDA context unusable. Saved first, so that the
        # JSON tells if the capture took the process down.
        record["cuda_graphs"] = {"measured": False, "capture_probe": {"ok": False, "error": "process died in capture"}}
        save()
        record["cuda_graphs"] = {"measured": False, "probe": "torch.cuda.graph capture of one cached decoding step",
                                 "capture_probe": probe(captured_step) if time.time() < deadline else
                                 {"skipped": "time budget"}}
    else:
        record["cuda_graphs"] = {"measured": False, "capture_probe": {"skipped": "no CUDA device"}}
    supported = record["torch_compile"]["fullgraph_probe"].get("ok") or record["cuda_graphs"]["capture_probe"].get("ok")
    record["compile_and_cuda_graphs"] = (
        "NOT SUPPORTED by the generation path; only eager generation is measured. Reasons: " + " | ".join(reasons)
        if not supported else
        "a probe succeeded (see the probes); compiled/graphed generation was still not measured here")
    save()


# ---- worker and driver -------------------------------------------------------------------------------------------

WORKERS = {"correctness": section_correctness, "timing": section_timing, "generation": section_generation}


def worker_main(section: str, result_path: Path, tiny: bool, deadline: float) -> int:
    import torch

    config = mode_config(tiny, torch.cuda.is_available())
    if not torch.cuda.is_available():
        torch.set_num_threads(1)  # the CPU run is a smoke test on a shared machine
    record: dict = {}
    save = lambda: write_json(result_path, record)  # noqa: E731
    try:
        WORKERS[section](config, record, save, deadline)
        record["done"] = True
    except Exception as exc:  # noqa: BLE001 (recorded; the driver reports it)
        record["error"] = error_text(exc)
        print(record["error"], file=sys.stderr, flush=True)
    save()
    return 0


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        return False


def render_markdown(report: dict) -> str:
    lines = [f"# GPU check ({report['mode']} mode, device {report['device']})", "",
             f"Started {report['started']}; wall {report.get('wall_s', '?')} s. Sections: " +
             ", ".join(f"{name} **{s.get('status')}**" for name, s in report["sections"].items()), ""]
    env = report["sections"].get("environment", {}).get("result", {})
    if env:
        lines += ["## Environment", "", "| item | value |", "|---|---|"]
        smi = env.get("nvidia_smi", {})
        lines.append(f"| nvidia-smi | {smi.get('stdout') or smi.get('error', '')} |")
        lines.append(f"| device | {env.get('device')} |")
        for name, version in env.get("versions", {}).items():
            lines.append(f"| {name} | {version} |")
        lines.append(f"| python | {env.get('python')} ({env.get('executable')}) |")
        lines.append(f"| wheels installed | {env.get('wheels_installed') or '-'} |")
        lines.append("")

    corr = report["sections"].get("correctness", {})
    res = corr.get("result", {})
    if res.get("cases"):
        lines += ["## Correctness: fused Triton kernel vs the float64 reference",
                  "", f"Passed: **{res.get('passed')}**; kernel call: {res.get('kernel_call')}; "
                      f"tolerance: max abs error <= tol x max(1, |ref|), tol {TOLERANCE}. "
                      "SDPA column: torch SDPA with the dense mask in the same dtype (a yardstick).", "",
                  "| case | q grid | k grid | extent | causal | dtype | out | dQ | dK | dV | SDPA out / dQ | pass |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in res["cases"]:
            if "errors" not in c:
                why = c.get("skipped") or "ERROR: " + c.get("error", "")[-120:].replace("\n", " ")
                lines.append(f"| {c['case']} | | | | | {c['dtype']} | {why} | | | | | no |")
                continue
            e, y = c["errors"], c.get("sdpa_same_dtype_errors", {})
            sdpa = f"{y['out']:.1e} / {y['dq']:.1e}" if "out" in y else "-"
            q_note = "x".join(map(str, c["query_grid"]))
            if c["query_offset"] is not None:
                q_note += f" [{c['query_offset']}:+{c['num_queries']}]"
            lines.append(f"| {c['case']} | {q_note} | {'x'.join(map(str, c['key_grid']))} | {tuple(c['extent'])} | "
                         f"{c['causal']} | {c['dtype']} | {e['out']:.1e} | {e['dq']:.1e} | {e['dk']:.1e} | "
                         f"{e['dv']:.1e} | {sdpa} | {'yes' if c['passed'] else 'NO'} |")
        lines.append("")

    timing = report["sections"].get("timing", {}).get("result", {})
    if timing.get("rows"):
        lines += [f"## Timing: 3DNA on {'x'.join(map(str, timing['grid']))}, extent {tuple(timing['extent'])}, "
                  f"head_dim {timing['head_dim']}", "",
                  "TFLOP/s count only the allowed (query, key) pairs (forward 4·D, forward+backward 14·D FLOPs per "
                  "pair), from the CUDA-graph time when there is one. Peaks are spec figures: "
                  f"{H200_SPEC['bf16_dense_tflops']:.0f} TFLOP/s dense bf16, {H200_SPEC['fp32_tflops']:.0f} fp32, "
                  f"{H200_SPEC['hbm_tb_per_s']} TB/s HBM. Speed-up = dense-mask SDPA time / this time.", "",
                  "| B | H | dtype | causal | pass | impl | ms (eager) | ms (CUDA graph) | TFLOP/s | % of spec peak | "
                  "x vs dense SDPA (eager / graph) | check err | peak MiB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        fmt = lambda x, f: "-" if x is None else format(x, f)  # noqa: E731
        for r in timing["rows"]:
            if "eager_ms" not in r:
                why = r.get("skipped") or "ERROR: " + r.get("error", "")[-150:].replace("\n", " ")
                lines.append(f"| {r['batch']} | {r['heads']} | {r['dtype']} | {r['causal']} | {r['pass']} | "
                             f"{r['impl']} | {why} | | | | | | |")
                continue
            lines.append(
                f"| {r['batch']} | {r['heads']} | {r['dtype']} | {r['causal']} | {r['pass']} | {r['impl']} | "
                f"{r['eager_ms']:.3f} | {fmt(r.get('graph_ms'), '.3f')} | {r['useful_tflops']:.3g} | "
                f"{100 * r['fraction_of_spec_peak']:.3g} | {fmt(r.get('speedup_vs_sdpa_eager'), '.2f')} / "
                f"{fmt(r.get('speedup_vs_sdpa_graph'), '.2f')} | {r['check_max_abs_err']:.1e} | "
                f"{fmt(r.get('peak_mem_mib'), '.0f')} |")
        pairs = [c for c in timing.get("cases", []) if "allowed_pairs" in c]
        if pairs:
            lines += ["", "| B | H | dtype | causal | allowed pairs | dense pairs | Flex 128x128 block pairs | "
                          "Triton forward pairs | Triton dK/dV pairs |", "|---|---|---|---|---|---|---|---|---|"]
            for c in pairs:
                w = c.get("triton_work", {})
                lines.append(f"| {c['batch']} | {c['heads']} | {c['dtype']} | {c['causal']} | {c['allowed_pairs']:,} | "
                             f"{c['dense_pairs']:,} | {c['flex_block_pairs_128']:,} | {w.get('forward_pairs', 0):,} | "
                             f"{w.get('dkdv_pairs', 0):,} |")
        lines.append("")

    gen = report["sections"].get("generation", {}).get("result", {})
    if gen:
        lines += ["## Cached generation", ""]
        if gen.get("skipped"):
            lines += [f"Skipped: {gen['skipped']}", ""]
        else:
            eager = gen.get("eager", {})
            lines += [f"Preset {gen.get('preset', {}).get('name')} ({gen.get('parameters_m')}M parameters, "
                      f"{gen.get('preset', {}).get('built_as')}), grid {gen.get('grid')}, batch 1, float32, "
                      f"decode steps through backend '{gen.get('decode_step_backend')}'.", "",
                      "| variant | total s | ms/token | first frame ms/token | last frame ms/token | last/first | "
                      "peak MiB |", "|---|---|---|---|---|---|---|"]
            def run_row(label, total_s, per_token, stats, peak="-"):
                return (f"| {label} | {total_s:.2f} | {per_token} | {stats['first_frame_ms']:.3f} | "
                        f"{stats['last_frame_ms']:.3f} | {stats['last_over_first']:.2f} | {peak} |")

            warm = gen.get("warmup")
            if warm:
                lines.append(run_row(f"eager, warm-up grid {'x'.join(map(str, warm['grid']))} (includes JIT compiles)",
                                     warm["total_s"], f"{warm['per_token_ms_median']:.3f} (median)", warm))
            if eager:
                lines.append(run_row("eager, fast decoding step (generate's default)", eager["total_s_best"],
                                     f"{eager['ms_per_token_overall']:.3f}", eager, eager.get("peak_mem_mib", "-")))
            module = gen.get("module_path", {})
            if "total_s" in module:
                lines.append(run_row(f"eager, module path (fast_decoding=False; {module['fast_speedup']:.1f}x the "
                                     "fast step's time)", module["total_s"], f"{module['ms_per_token_overall']:.3f}",
                                     module))
            static = gen.get("static_step", {})
            if "eager_s" in static:
                lines.append(f"| static step, eager, greedy | {static['eager_s']:.2f} | "
                             f"{static['eager_ms_per_token']:.3f} | | | | - |")
                graphed = static.get("cuda_graph", {})
                if graphed.get("ok"):
                    lines.append(f"| static step, one CUDA graph replayed ({graphed['speedup_over_eager_static']:.1f}x"
                                 f" eager static; same tokens: {graphed['same_greedy_tokens']}) | "
                                 f"{graphed['seconds']:.2f} | {graphed['ms_per_token']:.3f} | | | | - |")
                else:
                    lines.append(f"| static step, CUDA graph | {json.dumps(graphed)[:200].replace('|', '/')} | | | | "
                                 "| |")
            lines.append("| torch.compile / CUDA graphs of the module path | not measured | | | | | |")
            def short(answer):
                return json.dumps(answer or {})[:400].replace("\\n", " ").replace("|", "/")

            lines += ["", f"torch.compile / CUDA graphs: {gen.get('compile_and_cuda_graphs', '-')}", "",
                      f"- fullgraph compile probe: {short(gen.get('torch_compile', {}).get('fullgraph_probe'))}",
                      f"- CUDA graph capture probe: {short(gen.get('cuda_graphs', {}).get('capture_probe'))}", ""]
            if gen.get("runs_skipped"):
                lines += [f"Full-grid runs skipped: {gen['runs_skipped']}", ""]

    problems = [(name, s) for name, s in report["sections"].items() if s.get("status") != "ok"]
    if problems:
        lines += ["## Problems", ""]
        for name, s in problems:
            lines.append(f"- **{name}**: {s.get('status')}: " + (s.get("error") or "")[-600:].replace("\n", " "))
        lines.append("")
    return "\n".join(lines)


def driver_main(args) -> int:
    started = time.time()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cuda = cuda_available()
    tiny = bool(args.tiny or os.environ.get("GPU_CHECK_TINY") == "1" or not cuda)
    config = mode_config(tiny, cuda)
    total_budget = args.budget or config["total_budget"]
    global_deadline = started + total_budget
    env = dict(os.environ)
    if not cuda:
        env["TRITON_INTERPRET"] = "1"  # before the workers import triton (see nuwa_hf.ops.gpu_kernel)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Inductor (FlexAttention) compiles in the worker itself: no pool of compile processes that could outlive a
    # worker killed at its time limit (and keep the log pipe of gpu_check.sh open).
    env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    report = {
        "schema": 1, "mode": "tiny" if tiny else "full", "device": "cuda" if cuda else "cpu",
        "triton_interpreter": not cuda, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "budget_s": total_budget, "sections": {},
    }
    json_path, md_path = out / JSON_NAME, out / MD_NAME

    def publish():
        report["wall_s"] = round(time.time() - started, 1)
        write_json(json_path, report)
        try:
            md_path.write_text(render_markdown(report))
        except Exception as exc:  # noqa: BLE001 (the JSON is what counts)
            report["markdown_error"] = error_text(exc, 1000)
            write_json(json_path, report)

    wanted = [s for s in SECTIONS if s in (args.sections.split(",") if args.sections else SECTIONS)]
    for name in SECTIONS:
        report["sections"][name] = {"status": "pending" if name in wanted else "not requested"}
    publish()
    scratch = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    leftover = 0.0
    for name in wanted:
        entry = report["sections"][name]
        start = time.time()
        if name == "environment":
            record: dict = {}
            try:
                section_environment(config, record)
                entry.update(status="ok", result=record)
            except Exception as exc:  # noqa: BLE001
                entry.update(status="error", error=error_text(exc), result=record)
            entry["wall_s"] = round(time.time() - start, 2)
            publish()
            continue
        remaining = global_deadline - time.time()
        if remaining < 15:
            entry.update(status="skipped", error="total time budget spent")
            publish()
            continue
        soft = min(config["budgets"][name] + leftover, remaining - 10)
        hard = soft + 30 if name == "generation" else soft + 20  # a running case or generate() call may finish late
        hard = min(hard, remaining)
        result_path = scratch / f"{name}.json"
        stderr_path = scratch / f"{name}.stderr"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--result", str(result_path),
                   "--deadline", str(time.time() + soft)] + (["--tiny"] if tiny else [])
        print(f"== section {name} (soft budget {soft:.0f} s, hard {hard:.0f} s)", flush=True)
        with open(stderr_path, "w") as err:
            try:
                proc = subprocess.run(command, env=env, stderr=err, timeout=hard, cwd=str(ROOT))
                rc, timed_out = proc.returncode, False
            except subprocess.TimeoutExpired:
                rc, timed_out = None, True
        stderr_tail = stderr_path.read_text(errors="replace")[-3000:]
        sys.stderr.write(stderr_tail[-1500:])
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
        entry["result"] = result
        entry["wall_s"] = round(time.time() - start, 2)
        entry["returncode"] = rc
        if timed_out:
            entry.update(status="timeout",
                         error=f"killed after {hard:.0f} s; partial results kept. stderr: {stderr_tail[-1500:]}")
        elif result.get("error"):
            entry.update(status="error", error=result["error"])
        elif rc != 0 or not result.get("done"):
            entry.update(status="error", error=f"worker exit code {rc}; stderr: {stderr_tail}")
        else:
            entry["status"] = "ok"
            if name == "correctness" and not result.get("passed"):
                entry["status"] = "failed"
                entry["error"] = f"cases failed: {result.get('failed_cases')}"
            elif name == "generation" and result.get("skipped"):
                entry["status"] = "skipped"
                entry["error"] = result["skipped"]
        leftover = max(0.0, soft - (time.time() - start))
        publish()
    shutil.rmtree(scratch, ignore_errors=True)
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    publish()
    print(f"== wrote {json_path} and {md_path}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out")
    parser.add_argument("--tiny", action="store_true", help="tiny grids (also GPU_CHECK_TINY=1, or no CUDA device)")
    parser.add_argument("--budget", type=float, default=None, help="total seconds for all sections")
    parser.add_argument("--sections", default=None, help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker, Path(args.result), args.tiny, args.deadline)
    return driver_main(args)


if __name__ == "__main__":
    sys.exit(main())
