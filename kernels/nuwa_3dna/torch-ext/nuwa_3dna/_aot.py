"""Ahead-of-time compilation of the 3DNA kernels for a GPU architecture, without a GPU.

Triton can lower a kernel all the way to a cubin for any ``GPUTarget`` using the ``ptxas`` bundled in its wheel;
no driver or device is involved. This proves that the kernels are valid *compiled* Triton (the interpreter accepts
things the compiler rejects), that bfloat16 code generation works (the interpreter cannot run bfloat16), and gives
measured register, spill and shared-memory figures per architecture.

Not available under ``TRITON_INTERPRET=1``: interpreted kernels have no compiler front end.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Dict

import torch
import triton
from triton.backends.compiler import GPUTarget

from . import _kernels
from ._attention import MIN_BLOCK, _dot_precision, _next_pow2, _use_dot, is_interpreted, make_plan

KERNELS = {
    "forward": "_nearby_attention_fwd_kernel",
    "backward_dq": "_nearby_attention_bwd_dq_kernel",
    "backward_dkdv": "_nearby_attention_bwd_dkdv_kernel",
}
_TRITON_DTYPES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}
_TENSOR_ARGS = {"Q", "K", "V", "O", "DO", "DQ", "DK", "DV"}
_FP32_ARGS = {"LSE", "DELTA"}


@dataclass
class CompiledKernelInfo:
    """Facts about one kernel compiled for one architecture (from ``cuobjdump -res-usage`` of its cubin)."""

    name: str
    capability: int
    registers: int  # per thread
    stack_bytes: int  # per thread; > 0 means register spills or local arrays
    shared_bytes: int  # dynamic shared memory per program (Triton's own allocation)
    tensor_core_instructions: int  # mma.sync (sm_80) / wgmma (sm_90) in the PTX
    loop_instructions: int  # SASS instructions per thread in one pass of the main (inner) loop
    num_warps: int
    ptx: str


def _contiguous_specialization(fn, head_dim: int):
    """What Triton's JIT launcher would specialise for contiguous ``(B, NH, L, D)`` tensors: integer arguments equal
    to 1 (the head-dim strides) become constants, and pointers and strides divisible by 16 are marked so, which is
    what lets the compiler vectorise the row loads. Returns ``(constants, attrs)`` for ``ASTSource``."""
    constants, attrs = {}, {}
    for index, name in enumerate(fn.arg_names):
        if name.startswith("stride_") and name.endswith("d"):
            constants[name] = 1
        elif name in _TENSOR_ARGS or name in _FP32_ARGS or (
            name.startswith("stride_") and head_dim % 16 == 0
        ):
            attrs[(index,)] = [["tt.divisibility", 16]]
    return constants, attrs


def _signature(fn, dtype: torch.dtype, constexprs: Dict[str, object]) -> Dict[str, str]:
    signature = {}
    for name in fn.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name in _TENSOR_ARGS:
            signature[name] = "*" + _TRITON_DTYPES[dtype]
        elif name in _FP32_ARGS:
            signature[name] = "*fp32"
        elif name in ("VISITS", "KV_NUM", "KV_IDX", "Q_NUM", "Q_IDX"):
            signature[name] = "*i32"
        elif name.startswith("scale"):
            signature[name] = "fp32"
        else:
            signature[name] = "i32"
    return signature


def _cuobjdump(cubin: bytes, flag: str) -> str:
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        return subprocess.run([tool, flag, path], capture_output=True, text=True, check=True).stdout


def _resource_usage(cubin: bytes) -> Dict[str, int]:
    text = _cuobjdump(cubin, "-res-usage")
    fields = dict(re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", text.split("Function", 1)[-1]))
    return {k: int(v) for k, v in fields.items()}


def _main_loop_length(cubin: bytes) -> int:
    """SASS instructions between the target of the longest backward branch and that branch: the kernel's inner loop
    (each kernel has one loop; its body is what runs once per key or query block)."""
    instructions = [
        (int(address, 16), text)
        for address, text in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", _cuobjdump(cubin, "-sass"))
    ]
    longest = 0
    for address, text in instructions:
        branch = re.search(r"\bBRA\s+0x([0-9a-f]+)", text)
        if branch and int(branch.group(1), 16) < address:
            target = int(branch.group(1), 16)
            longest = max(longest, sum(1 for a, _ in instructions if target <= a <= address))
    return longest


def compile_kernel(
    kernel: str,
    capability: int,
    *,
    dtype: torch.dtype = torch.float16,
    head_dim: int = 64,
    query_grid=(10, 21, 21),
    key_grid=None,
    extent=(3, 3, 3),
    causal: bool = True,
    block_m=None,
    block_n=None,
) -> CompiledKernelInfo:
    """Compile one of :data:`KERNELS` (``"forward"``, ``"backward_dq"``, ``"backward_dkdv"``) for ``sm_<capability>``
    exactly as ``nearby_attention`` would launch it for these shapes (same tiles, blocks, warps and stages), and
    specialised as the JIT would specialise it for contiguous inputs.

    Raises ``ValueError`` under ``TRITON_INTERPRET=1``, where there is nothing to compile.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {sorted(KERNELS)}.")
    fn = getattr(_kernels, KERNELS[kernel])
    if is_interpreted():
        raise ValueError("the kernels were imported under TRITON_INTERPRET=1; compile them in a process without it.")
    key_grid = query_grid if key_grid is None else key_grid
    # Shape-only stand-ins: planning needs shapes and the dtype, never data.
    query = torch.empty(1, 1, math.prod(query_grid), head_dim, dtype=dtype, device="meta")
    key = torch.empty(1, 1, math.prod(key_grid), head_dim, dtype=dtype, device="meta")
    plan = make_plan(
        query, key, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, scale=None,
        query_offset=None, block_m=block_m, block_n=block_n, capability=capability,
    )
    config = plan.config
    tile = plan.key_tile if kernel == "backward_dkdv" else plan.query_tile
    constexprs = dict(
        HEAD_DIM=head_dim, BLOCK_D=max(MIN_BLOCK, _next_pow2(head_dim)),
        TILE_T=tile[0], TILE_H=tile[1], TILE_W=tile[2],
        BLOCK_M=config.dkdv_block_m if kernel == "backward_dkdv" else config.block_m,
        BLOCK_N=config.dq_block_n if kernel == "backward_dq" else config.block_n,
        CAUSAL=causal, DOT_PRECISION=_dot_precision(dtype),
    )
    constexprs["USE_DOT"] = _use_dot(constexprs["BLOCK_M"], constexprs["BLOCK_N"])
    if kernel != "backward_dq":
        constexprs["COUNT_VISITS"] = False
    constants, attrs = _contiguous_specialization(fn, head_dim)
    constexprs.update(constants)
    source = triton.compiler.ASTSource(fn, _signature(fn, dtype, constexprs), constexprs, attrs)
    warps = config.forward_warps if kernel == "forward" else config.backward_warps
    compiled = triton.compile(
        source, target=GPUTarget("cuda", capability, 32),
        options=dict(num_warps=warps, num_stages=config.num_stages, enable_fp_fusion=True),
    )
    usage = _resource_usage(compiled.asm["cubin"])
    ptx = compiled.asm["ptx"]
    return CompiledKernelInfo(
        name=KERNELS[kernel], capability=capability, registers=usage.get("REG", -1),
        stack_bytes=usage.get("STACK", 0), shared_bytes=compiled.metadata.shared,
        tensor_core_instructions=len(re.findall(r"\bmma\.sync\.|\bwgmma\.mma_async\.", ptx)),
        loop_instructions=_main_loop_length(compiled.asm["cubin"]), num_warps=warps, ptx=ptx,
    )
