"""Host side of the fused 3DNA kernels: argument checks, tile choice, launches and the autograd Function.

This package is self-contained (it is published to the Hub on its own), so it repeats the few argument checks it
needs instead of importing ``nuwa_hf``.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import triton

from . import _kernels, _tile_plan

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_HEAD_DIM = 256
# tl.dot needs every block dimension >= 16 (the head dimension is padded to it); smaller query/key blocks run on
# CUDA cores (_kernels._mm).
MIN_BLOCK = 16
MIN_TILE_BLOCK = 4


def is_interpreted() -> bool:
    """True when the kernels were decorated under ``TRITON_INTERPRET=1`` and therefore run on CPU tensors.

    Triton reads ``TRITON_INTERPRET`` once per kernel, when ``@triton.jit`` runs, i.e. when this package is
    imported; changing the variable afterwards has no effect on an already imported package.
    """
    try:
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:  # a Triton without the interpreter module
        return os.environ.get("TRITON_INTERPRET", "0") == "1"
    return isinstance(_kernels._nearby_attention_fwd_kernel, InterpretedFunction)


@dataclass(frozen=True)
class LaunchConfig:
    """Block sizes and warps of the three kernels.

    The defaults were chosen by compiling for sm_80 and sm_90 (``_aot.compile_kernel``) and keeping, per
    architecture, the largest tiles that need no register spills at head_dim 64: see kernels/README.md, "Registers".
    """

    block_m: int  # forward / dQ: query slots per program
    block_n: int  # forward: keys per inner step; dK/dV: key slots per program
    dq_block_n: int  # dQ: keys per inner step
    dkdv_block_m: int  # dK/dV: queries per inner step
    forward_warps: int
    backward_warps: int
    num_stages: int = 2


def default_launch_config(
    dtype: torch.dtype, head_dim: int, block_m: Optional[int] = None, block_n: Optional[int] = None,
    capability: Optional[int] = None,
) -> LaunchConfig:
    """The launch configuration for ``dtype``, ``head_dim`` and the GPU's compute ``capability`` (e.g. 80, 90; None:
    unknown, e.g. the interpreter); ``block_m``/``block_n`` override the tile sizes."""
    if dtype == torch.float32:
        # Exact fp32 products do not run on tensor cores: 64 x 64 tiles spill thousands of bytes per thread.
        default_m, default_n = 32, 32
    else:
        default_m, default_n = 64, (64 if head_dim <= 128 else 32)
    block_m = default_m if block_m is None else block_m
    block_n = default_n if block_n is None else block_n
    for name, block in (("block_m", block_m), ("block_n", block_n)):
        if not isinstance(block, int) or isinstance(block, bool) or block < MIN_TILE_BLOCK or block & (block - 1):
            raise ValueError(f"{name} must be a power of two >= {MIN_TILE_BLOCK}, got {block!r}.")
    hopper = capability is not None and capability >= 90
    # Measured at 10x21x21, head_dim 64, bf16 (README, "Registers"). sm_90: the forward fits 4 warps (235
    # registers) and 8 would double its issued instructions; the dQ kernel fits 64-key steps. sm_80: the forward
    # spills at 4 warps (255 registers + 32 bytes) but not at 8 (251), and the dQ kernel spills with 64-key steps
    # (16 bytes) but not with 32 (180 registers). dK/dV holds K, V and two fp32 accumulators for its keys; 32-query
    # steps keep it unspilled on both.
    return LaunchConfig(
        block_m=block_m, block_n=block_n, dq_block_n=block_n if hopper else min(block_n, 32),
        dkdv_block_m=min(block_m, 32), forward_warps=4 if hopper else 8, backward_warps=8,
    )


@dataclass(frozen=True)
class _Plan:
    """Everything a launch needs besides the tensors (hashable, so plans are cached per shape)."""

    query_grid: Tuple[int, int, int]
    key_grid: Tuple[int, int, int]
    halves: Tuple[int, int, int]
    causal: bool
    query_offset: int
    num_queries: int
    num_keys: int
    scale: float
    head_dim: int
    query_tile: Tuple[int, int, int]  # forward and dQ: a program's query box, product config.block_m
    key_tile: Tuple[int, int, int]  # dK/dV: a program's key box, product config.block_n
    config: "LaunchConfig"

    def forward_plan(self) -> "_tile_plan.TilePlan":
        """Per query tile, the keys its queries may see (cached by _tile_plan.build_tile_plan)."""
        return _tile_plan.build_tile_plan(self.query_grid, self.key_grid, self.halves, self.causal, self.query_tile,
                                          (1, 1, 1))

    def dkdv_plan(self) -> "_tile_plan.TilePlan":
        """Per key tile, the queries whose windows reach it (the transposed lists, ``q_num_blocks``/``q_indices``)."""
        return _tile_plan.build_tile_plan(self.query_grid, self.key_grid, self.halves, self.causal, (1, 1, 1),
                                          self.key_tile)


def choose_tile(
    query_grid: Tuple[int, int, int], key_grid: Tuple[int, int, int], halves: Tuple[int, int, int], causal: bool,
    block: int, inner_block: int, over_keys: bool = False,
) -> Tuple[int, int, int]:
    """The power-of-two tile ``(t, h, w)``, ``t*h*w == block``, whose plan makes its kernel compute the fewest pairs
    when it walks the planned keys (queries, ``over_keys``) ``inner_block`` at a time (``_tile_plan.choose_tile``).
    ``over_keys=False`` tiles the query grid (forward, dQ); ``True`` tiles the key grid (dK/dV)."""
    return _tile_plan.choose_tile(tuple(query_grid), tuple(key_grid), tuple(halves), bool(causal), block,
                                  inner_block, over_keys)


def _raster(coords, grid) -> int:
    return (coords[0] * grid[1] + coords[1]) * grid[2] + coords[2]


@dataclass(frozen=True)
class Work:
    """Exact work of one (batch, head) of a call: the kernels' loop trip counts, read off the same plans they walk."""

    forward_key_blocks: List[int]  # per launched query tile (the dQ kernel walks the same list, in dq_block_n steps)
    dkdv_query_blocks: List[int]  # per key tile
    forward_pairs: int  # (query slot, key slot) pairs the forward kernel computes
    dkdv_pairs: int
    allowed_pairs: int  # pairs the 3DNA mask allows: the useful part
    dq_key_blocks: List[int] = ()  # per launched query tile, in dq_block_n steps
    dq_pairs: int = 0


def _steps(counts: torch.Tensor, block: int) -> List[int]:
    return ((counts.long() + block - 1) // block).tolist()


def work(plan: "_Plan") -> Work:
    """The exact work ``plan`` causes, per (batch, head): what each program's loop runs, given the tile plans."""
    first_tile, n_programs, n_h, n_w = _query_tiles(plan)
    fplan = plan.forward_plan()
    counts = fplan.kv_num_blocks[first_tile:first_tile + n_programs].clone()
    # Tiles holding none of the requested queries do nothing (as in _query_tile_setup).
    (qt, qh, qw), (tt, th, tw) = plan.query_grid, plan.query_tile
    for i in range(n_programs):
        tile = first_tile + i
        first = ((tile // (n_h * n_w)) * tt, ((tile // n_w) % n_h) * th, (tile % n_w) * tw)
        last = tuple(min(f + t, g) - 1 for f, t, g in zip(first, plan.query_tile, plan.query_grid))
        if _raster(last, plan.query_grid) < plan.query_offset or (
                _raster(first, plan.query_grid) >= plan.query_offset + plan.num_queries):
            counts[i] = 0
    config = plan.config
    forward_blocks, dq_blocks = _steps(counts, config.block_n), _steps(counts, config.dq_block_n)
    dplan = plan.dkdv_plan()
    q_counts = dplan.q_num_blocks.clone()
    kt_h, kt_w = dplan.key_tiles[1], dplan.key_tiles[2]
    for tile in range(q_counts.numel()):
        first = ((tile // (kt_h * kt_w)) * plan.key_tile[0], ((tile // kt_w) % kt_h) * plan.key_tile[1],
                 (tile % kt_w) * plan.key_tile[2])
        if _raster(first, plan.key_grid) >= plan.num_keys:
            q_counts[tile] = 0
    dkdv_blocks = _steps(q_counts, config.dkdv_block_m)
    # Allowed pairs of the requested queries against the existing keys: a query's window is a box, minus the causal
    # cut (a raster prefix of the box).
    allowed = 0
    per_axis = [[_tile_plan_window(c, q, k, h) for c in range(q)]
                for q, k, h in zip(plan.query_grid, plan.key_grid, plan.halves)]
    for index in range(plan.query_offset, plan.query_offset + plan.num_queries):
        coords = (index // (qh * qw), (index // qw) % qh, index % qw)
        windows = [axis[c] for axis, c in zip(per_axis, coords)]
        lo, n = [w[0] for w in windows], [w[1] for w in windows]
        last = min(index, plan.num_keys - 1) if plan.causal else plan.num_keys - 1
        allowed += _count_box_le(last, lo, n, plan.key_grid)
    return Work(
        forward_key_blocks=forward_blocks, dkdv_query_blocks=dkdv_blocks,
        forward_pairs=sum(forward_blocks) * config.block_m * config.block_n,
        dkdv_pairs=sum(dkdv_blocks) * config.dkdv_block_m * config.block_n,
        allowed_pairs=allowed, dq_key_blocks=dq_blocks, dq_pairs=sum(dq_blocks) * config.block_m * config.dq_block_n,
    )


def _tile_plan_window(c: int, q_size: int, k_size: int, half: int) -> Tuple[int, int]:
    lo = max(c * k_size // q_size - half, 0)
    hi = min(c * k_size // q_size + half, k_size - 1)
    return lo, hi - lo + 1


def _count_box_le(last: int, lo, n, grid) -> int:
    """Positions of the box ``lo .. lo+n-1`` (per axis) of ``grid`` whose raster index is ``<= last``."""
    if last < 0:
        return 0
    _, grid_h, grid_w = grid
    last_t, last_h, last_w = last // (grid_h * grid_w), (last // grid_w) % grid_h, last % grid_w
    count = min(max(last_t - lo[0], 0), n[0]) * n[1] * n[2]
    if lo[0] <= last_t < lo[0] + n[0]:
        count += min(max(last_h - lo[1], 0), n[1]) * n[2]
        if lo[1] <= last_h < lo[1] + n[1]:
            count += min(max(last_w - lo[2] + 1, 0), n[2])
    return count


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _check_grid(name: str, grid) -> Tuple[int, int, int]:
    if (
        not isinstance(grid, (tuple, list)) or len(grid) != 3
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in grid)
    ):
        raise ValueError(f"{name} must be a (frames, height, width) triple of positive ints, got {grid!r}.")
    return tuple(int(s) for s in grid)


def _halves(extent, key_grid) -> Tuple[int, int, int]:
    if not isinstance(extent, (tuple, list)) or len(extent) != 3:
        raise ValueError(f"extent must be a (e_t, e_h, e_w) triple of odd ints or None (whole axis), got {extent!r}.")
    halves = []
    for axis, e, k_size in zip("thw", extent, key_grid):
        if e is None:
            halves.append(k_size)  # a half-width of the whole axis: every key coordinate is within reach
        elif isinstance(e, int) and not isinstance(e, bool) and e >= 1 and e % 2 == 1:
            # Clamped so that the index arithmetic in the kernels cannot overflow int32 for huge extents.
            halves.append(min(e // 2, k_size))
        else:
            raise ValueError(f"extent e_{axis}={e!r} must be a positive odd int (e.g. 3) or None for the whole axis.")
    return tuple(halves)


def _check_tensors(query, key, value) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise ValueError(f"{name} must be a (batch, heads, length, head_dim) tensor, got {getattr(t, 'shape', t)!r}.")
        if t.dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"{name} has dtype {t.dtype}; the 3DNA kernel supports float16, bfloat16 and float32.")
    if not (query.dtype == key.dtype == value.dtype):
        raise ValueError(f"query, key and value must share a dtype, got {query.dtype}, {key.dtype}, {value.dtype}.")
    if not (query.device == key.device == value.device):
        raise ValueError(f"query, key and value must be on one device, got {query.device}, {key.device}, {value.device}.")
    if key.shape != value.shape or query.shape[:2] != key.shape[:2] or query.shape[3] != key.shape[3]:
        raise ValueError(
            "query (B, NH, Lq, D), key and value (B, NH, Lk, D) disagree: "
            f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}."
        )
    if query.shape[3] > MAX_HEAD_DIM:
        raise ValueError(f"head_dim {query.shape[3]} exceeds the kernel's maximum of {MAX_HEAD_DIM}; split the heads.")
    interpreted = is_interpreted()
    if query.device.type != "cuda" and not interpreted:
        raise ValueError(
            f"the 3DNA Triton kernel runs on CUDA tensors, got {query.device.type}; to run it on the CPU (slowly, for "
            "tests) set TRITON_INTERPRET=1 before importing this kernel package, or use a CPU backend of nuwa_hf."
        )
    if interpreted and query.dtype == torch.bfloat16:
        # numpy, which executes interpreted kernels, has no bfloat16: Triton's interpreter produces wrong numbers.
        raise ValueError(
            "bfloat16 cannot run in the Triton interpreter (TRITON_INTERPRET=1), whose numpy has no bfloat16 type; "
            "use float16 or float32 on the CPU, or run on a GPU."
        )


def _capability(device: torch.device) -> Optional[int]:
    if device.type != "cuda":
        return None
    major, minor = torch.cuda.get_device_capability(device)
    return 10 * major + minor


def make_plan(
    query, key, *, query_grid, key_grid, extent, causal, scale, query_offset, block_m=None, block_n=None,
    capability: Optional[int] = None,
) -> _Plan:
    """Check the arguments and fix every launch parameter (see ``nearby_attention`` for their meaning)."""
    query_grid = _check_grid("query_grid", query_grid)
    key_grid = _check_grid("key_grid", key_grid)
    halves = _halves(extent, key_grid)
    causal = bool(causal)
    num_queries, num_keys = query.shape[2], key.shape[2]
    nq, nk = math.prod(query_grid), math.prod(key_grid)
    if query_offset is None:
        if num_queries != nq:
            raise ValueError(
                f"query length {num_queries} != T*H*W = {nq} of query_grid {query_grid}; for a slice of the grid "
                "pass query_offset=<raster index of its first query>."
            )
        query_offset = 0
    if not isinstance(query_offset, int) or isinstance(query_offset, bool) or query_offset < 0:
        raise ValueError(f"query_offset must be a non-negative int or None, got {query_offset!r}.")
    if query_offset + num_queries > nq:
        raise ValueError(f"queries {query_offset}..{query_offset + num_queries - 1} do not fit query_grid {query_grid}.")
    if causal:
        if query_grid != key_grid:
            raise ValueError(f"causal=True needs query_grid == key_grid (self-attention), got {query_grid}, {key_grid}.")
        if not (query_offset + num_queries <= num_keys <= nk):
            raise ValueError(
                f"causal key length {num_keys} must reach the last query ({query_offset + num_queries}) and be at "
                f"most {nk} = T*H*W of key_grid {key_grid}."
            )
    elif num_keys != nk:
        raise ValueError(f"key length {num_keys} != T*H*W = {nk} of key_grid {key_grid}.")
    head_dim = query.shape[3]
    scale = 1.0 / math.sqrt(head_dim) if scale is None else float(scale)
    if capability is None:
        capability = _capability(query.device)
    config = default_launch_config(query.dtype, head_dim, block_m, block_n, capability)
    return _Plan(
        query_grid=query_grid, key_grid=key_grid, halves=halves, causal=causal, query_offset=query_offset,
        num_queries=num_queries, num_keys=num_keys, scale=scale, head_dim=head_dim,
        query_tile=choose_tile(query_grid, key_grid, halves, causal, config.block_m, config.block_n),
        key_tile=choose_tile(query_grid, key_grid, halves, causal, config.block_n, config.dkdv_block_m, over_keys=True),
        config=config,
    )


def _dot_precision(dtype: torch.dtype) -> str:
    # fp32 inputs follow torch's own matmul setting: exact IEEE products unless the user allowed TF32.
    # (fp16/bf16 products are exact on tensor cores whatever this says.)
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


def _query_tiles(plan: _Plan) -> Tuple[int, int, int, int]:
    """(first tile, number of tiles to launch, tiles along h, tiles along w) of the query grid.

    Only the frames holding requested queries are launched, so a decoding step (a few queries) costs a few
    programs instead of one per tile of the grid.
    """
    (qt, qh, qw), (tt, th, tw) = plan.query_grid, plan.query_tile
    n_h, n_w = triton.cdiv(qh, th), triton.cdiv(qw, tw)
    first_frame = plan.query_offset // (qh * qw)
    last_frame = (plan.query_offset + plan.num_queries - 1) // (qh * qw)
    first_tile_t, last_tile_t = first_frame // tt, last_frame // tt
    return first_tile_t * n_h * n_w, (last_tile_t - first_tile_t + 1) * n_h * n_w, n_h, n_w


def _use_dot(block_m: int, block_n: int) -> bool:
    """Tensor cores (tl.dot) when both blocks reach its minimum; CUDA-core products otherwise."""
    return min(block_m, block_n) >= MIN_BLOCK


def _shape_args(plan: _Plan):
    return (*plan.query_grid, *plan.key_grid, *plan.halves)


def forward(query, key, value, plan: _Plan, count_visits: bool = False):
    """Run the forward kernel. Returns ``out (B, NH, Lq, D)``, ``lse (B, NH, Lq)`` float32 base-2 log-sum-exp,
    and, when ``count_visits``, the number of key blocks each launched program visited ``(B*NH, programs)``."""
    batch, heads = query.shape[:2]
    out = torch.empty_like(query)
    lse = torch.empty(batch, heads, plan.num_queries, device=query.device, dtype=torch.float32)
    first_tile, n_programs, n_tiles_h, n_tiles_w = _query_tiles(plan)
    visits = torch.zeros(batch * heads, n_programs, device=query.device, dtype=torch.int32)
    tt, th, tw = plan.query_tile
    kv_num, kv_idx = plan.forward_plan().kernel_lists(query.device)
    _kernels._nearby_attention_fwd_kernel[(n_programs, batch * heads)](
        query, key, value, out, lse, visits, kv_num, kv_idx,
        *query.stride(), *key.stride(), *value.stride(), *out.stride(),
        heads, plan.num_queries, plan.num_keys, plan.query_offset,
        *_shape_args(plan),
        n_tiles_h, n_tiles_w, first_tile, kv_idx.shape[1],
        plan.scale * math.log2(math.e),
        HEAD_DIM=plan.head_dim, BLOCK_D=max(MIN_BLOCK, _next_pow2(plan.head_dim)),
        TILE_T=tt, TILE_H=th, TILE_W=tw, BLOCK_M=plan.config.block_m, BLOCK_N=plan.config.block_n,
        CAUSAL=plan.causal, DOT_PRECISION=_dot_precision(query.dtype), COUNT_VISITS=count_visits,
        USE_DOT=_use_dot(plan.config.block_m, plan.config.block_n),
        num_warps=plan.config.forward_warps, num_stages=plan.config.num_stages,
    )
    return out, lse, visits


def backward(grad_out, query, key, value, out, lse, plan: _Plan, count_visits: bool = False):
    """Gradients ``(dq, dk, dv)`` of the forward pass, each shaped like its input; with ``count_visits`` also the
    number of query blocks each dK/dV program visited ``(B*NH, key tiles)``."""
    batch, heads = query.shape[:2]
    # delta_i = sum_d dO_i O_i = sum_j P_ij dP_ij: the softmax-Jacobian term, one float per query.
    delta = (grad_out.float() * out.float()).sum(-1).contiguous()
    dq = torch.empty_like(query)
    dk = torch.empty_like(key)
    dv = torch.empty_like(value)
    block_d = max(MIN_BLOCK, _next_pow2(plan.head_dim))
    precision = _dot_precision(query.dtype)
    scale_log2 = plan.scale * math.log2(math.e)

    first_tile, n_programs, n_tiles_h, n_tiles_w = _query_tiles(plan)
    tt, th, tw = plan.query_tile
    kv_num, kv_idx = plan.forward_plan().kernel_lists(query.device)
    _kernels._nearby_attention_bwd_dq_kernel[(n_programs, batch * heads)](
        query, key, value, grad_out, lse, delta, dq, kv_num, kv_idx,
        *query.stride(), *key.stride(), *value.stride(), *grad_out.stride(), *dq.stride(),
        heads, plan.num_queries, plan.num_keys, plan.query_offset,
        *_shape_args(plan),
        n_tiles_h, n_tiles_w, first_tile, kv_idx.shape[1],
        plan.scale, scale_log2,
        HEAD_DIM=plan.head_dim, BLOCK_D=block_d,
        TILE_T=tt, TILE_H=th, TILE_W=tw, BLOCK_M=plan.config.block_m, BLOCK_N=plan.config.dq_block_n,
        CAUSAL=plan.causal, DOT_PRECISION=precision, USE_DOT=_use_dot(plan.config.block_m, plan.config.dq_block_n),
        num_warps=plan.config.backward_warps, num_stages=plan.config.num_stages,
    )

    kt, kh, kw = plan.key_tile
    n_key_tiles = [triton.cdiv(size, t) for size, t in zip(plan.key_grid, plan.key_tile)]
    visits = torch.zeros(batch * heads, math.prod(n_key_tiles), device=query.device, dtype=torch.int32)
    q_num, q_idx = plan.dkdv_plan().kernel_lists(query.device, over_keys=True)
    _kernels._nearby_attention_bwd_dkdv_kernel[(math.prod(n_key_tiles), batch * heads)](
        query, key, value, grad_out, lse, delta, dk, dv, visits, q_num, q_idx,
        *query.stride(), *key.stride(), *value.stride(), *grad_out.stride(), *dk.stride(), *dv.stride(),
        heads, plan.num_queries, plan.num_keys, plan.query_offset,
        *_shape_args(plan),
        n_key_tiles[1], n_key_tiles[2], q_idx.shape[1],
        plan.scale, scale_log2,
        HEAD_DIM=plan.head_dim, BLOCK_D=block_d,
        TILE_T=kt, TILE_H=kh, TILE_W=kw, BLOCK_M=plan.config.dkdv_block_m, BLOCK_N=plan.config.block_n,
        CAUSAL=plan.causal, DOT_PRECISION=precision, COUNT_VISITS=count_visits,
        USE_DOT=_use_dot(plan.config.dkdv_block_m, plan.config.block_n),
        num_warps=plan.config.backward_warps, num_stages=plan.config.num_stages,
    )
    if count_visits:
        return dq, dk, dv, visits
    return dq, dk, dv


class NearbyAttentionFunction(torch.autograd.Function):
    """Fused 3DNA with a fused backward: saves Q, K, V, O and the per-query log-sum-exp, never the scores."""

    @staticmethod
    def forward(ctx, query, key, value, plan: _Plan):
        out, lse, _ = forward(query, key, value, plan)
        ctx.save_for_backward(query, key, value, out, lse)
        ctx.plan = plan
        return out

    @staticmethod
    def backward(ctx, grad_out):
        query, key, value, out, lse = ctx.saved_tensors
        dq, dk, dv = backward(grad_out, query, key, value, out, lse, ctx.plan)
        return dq, dk, dv, None


def nearby_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    query_grid: Sequence[int],
    key_grid: Sequence[int],
    extent: Sequence[Optional[int]],
    causal: bool = False,
    scale: Optional[float] = None,
    query_offset: Optional[int] = None,
    block_m: Optional[int] = None,
    block_n: Optional[int] = None,
) -> torch.Tensor:
    """Fused 3D Nearby Attention (NUWA): each query attends to the keys in a 3D window around its position.

    Args:
        query: ``(batch, heads, Lq, head_dim)``, ``Lq = T*H*W`` of ``query_grid`` in raster order
            ``(t*H + h)*W + w``, or a slice of it starting at ``query_offset``.
        key, value: ``(batch, heads, Lk, head_dim)``, ``Lk = T'*H'*W'`` of ``key_grid``; with ``causal=True`` a
            prefix of the grid (a KV cache) reaching at least the last query.
        query_grid, key_grid: ``(T, H, W)``; a query at ``(t, h, w)`` is centred at
            ``(t*T'//T, h*H'//H, w*W'//W)`` of the key grid.
        extent: ``(e_t, e_h, e_w)`` odd window sizes, ``None`` for the whole axis; cut off at the borders.
        causal: additionally ``key index <= query index`` (needs ``query_grid == key_grid``).
        scale: softmax scale, default ``head_dim ** -0.5``.
        query_offset: raster index of the first query when ``query`` holds a slice of the grid.
        block_m, block_n: query and key slots per program (powers of two >= 16; default 64 x 64 for
            float16/bfloat16, 32 x 32 for float32, see ``default_launch_config``).

    Returns:
        ``(batch, heads, Lq, head_dim)`` in the inputs' dtype, differentiable in query, key and value.
        float16, bfloat16 and float32 on CUDA; on CPU tensors only under ``TRITON_INTERPRET=1`` (no bfloat16).
    """
    _check_tensors(query, key, value)
    plan = make_plan(
        query, key, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, scale=scale,
        query_offset=query_offset, block_m=block_m, block_n=block_n,
    )
    return NearbyAttentionFunction.apply(query, key, value, plan)
