"""Block-sparse 3DNA: attention inside 3D tiles of queries against the exact union of keys each tile can see.

Why: the 3DNA window of a query is a small box of the key grid, so a box-shaped *tile* of nearby queries
(say 1 x 7 x 7 tokens) together sees only a slightly bigger box (3 x 9 x 9 keys for a 3x3x3 window) instead of
the whole key grid. We gather, per tile, the queries and the keys that at least one of them may attend to,
run masked softmax attention on those small blocks, and scatter the outputs back. A custom autograd function
processes a chunk of tiles at a time and recomputes them in the backward pass (as flash attention does), so the
gathered keys, values and probabilities of all tiles are never alive at once.

Work and memory grow with ``Lq x keys-per-tile`` instead of ``Lq x Lk``; at the paper's 10x21x21 video grid with a
3x3x3 window that is ~50x fewer scores than dense attention. This is the training path.

The tile plan (indices and the small masks) depends only on the grids, extent, causality and the query slice, so it
is computed once and cached.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .geometry import Extent, Grid, allowed, axis_window, grid_size, unravel


@dataclass(frozen=True)
class TilePlan:
    """Precomputed gather indices for one (grids, extent, causal, query slice) combination.

    query_index: (num_tiles * tile_queries,) raster index of each tile slot's query (padding slots repeat a real one)
    key_index:   (num_tiles * tile_keys,) raster index of each tile slot's key (padding slots repeat a real one)
    mask:        (num_tiles, tile_queries, tile_keys) bool, True where the slot query may see the slot key
    inverse:     (num_queries,) position of each requested query in the flattened tile slots
    query_valid: (num_tiles * tile_queries, 1) bool, False for padding slots
    """

    tile: Tuple[int, int, int]
    num_tiles: int
    tile_queries: int
    tile_keys: int
    query_index: torch.Tensor
    key_index: torch.Tensor
    mask: torch.Tensor
    inverse: torch.Tensor
    query_valid: torch.Tensor


def _span(tile_len: int, q_size: int, k_size: int, e: Optional[int], causal: bool) -> int:
    """Upper bound on how many key coordinates a run of ``tile_len`` query coordinates sees along one axis.

    Causal self-attention never looks ahead along the slowest axis it spans, so only the past half-window counts there;
    along the other axes the cut is partial and the bound stays conservative.
    """
    if e is None:
        return k_size
    reach = e // 2 if causal else e - 1
    return min(k_size, math.ceil(tile_len * k_size / q_size) + reach)


def _plan_cost(n_tiles: int, tq: int, tk: int) -> int:
    # scores + one gather of the tile's keys/values + a fixed per-tile cost (orders of magnitude measured on CPU).
    return n_tiles * (tq * tk + 8 * (tq + tk) + 2048)


@functools.lru_cache(maxsize=256)
def choose_tile(query_grid: Grid, key_grid: Grid, extent: Extent, causal: bool) -> Tuple[int, int, int]:
    """Pick the query tile shape with the least work.

    An analytic estimate ranks every candidate shape; the best few are then planned for real (the causal cut and the
    borders make the estimate rough) and the one with the least padded work wins. Cached per argument set.
    """
    options = [
        sorted({s for s in (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 21, 24, 32, 64) if s <= size} | {size})
        for size in query_grid
    ]
    ranked = []
    for tile in itertools.product(*options):
        tq = math.prod(tile)
        if tq > 512 and tile != tuple(query_grid):
            continue
        n_tiles = math.prod(math.ceil(g / t) for g, t in zip(query_grid, tile))
        tk = 1
        for axis, (t, q, k, e) in enumerate(zip(tile, query_grid, key_grid, extent)):
            slowest = causal and all(tt == 1 for tt in tile[:axis])
            tk *= _span(t, q, k, e, slowest)
        ranked.append((_plan_cost(n_tiles, tq, tk), tile))
    ranked.sort()
    best, best_cost = ranked[0][1], float("inf")
    num_queries, num_keys = grid_size(query_grid), grid_size(key_grid)
    for _, tile in ranked[:3]:
        plan = tile_plan(query_grid, key_grid, extent, causal, 0, num_queries, num_keys, tile, torch.device("cpu"))
        cost = _plan_cost(plan.num_tiles, plan.tile_queries, plan.tile_keys)
        if cost < best_cost:
            best, best_cost = tile, cost
    return best


def tile_plan(
    query_grid: Grid,
    key_grid: Grid,
    extent: Extent,
    causal: bool,
    query_offset: int,
    num_queries: int,
    num_keys: int,
    tile: Tuple[int, int, int],
    device: torch.device,
) -> TilePlan:
    """The cached :class:`TilePlan` for these arguments."""
    # Cached tensors outlive the call: never create them as inference tensors (pipelines run in inference_mode),
    # which autograd would later refuse.
    with torch.inference_mode(False):
        return _tile_plan(query_grid, key_grid, extent, causal, query_offset, num_queries, num_keys, tile, device)


@functools.lru_cache(maxsize=256)
def _tile_plan(
    query_grid: Grid,
    key_grid: Grid,
    extent: Extent,
    causal: bool,
    query_offset: int,
    num_queries: int,
    num_keys: int,
    tile: Tuple[int, int, int],
    device: torch.device,
) -> TilePlan:
    T, H, W = query_grid
    ft, fh, fw = tile
    q_lo, q_hi = query_offset, query_offset + num_queries  # requested query raster range [q_lo, q_hi)
    windows = [axis_window(q, k, e) for q, k, e in zip(query_grid, key_grid, extent)]
    tiles_q, tiles_k = [], []
    for t0 in range(0, T, ft):
        for h0 in range(0, H, fh):
            for w0 in range(0, W, fw):
                ts = torch.arange(t0, min(t0 + ft, T))
                hs = torch.arange(h0, min(h0 + fh, H))
                ws = torch.arange(w0, min(w0 + fw, W))
                q_idx = ((ts[:, None, None] * H + hs[None, :, None]) * W + ws[None, None, :]).reshape(-1)
                q_idx = q_idx[(q_idx >= q_lo) & (q_idx < q_hi)]
                if q_idx.numel() == 0:
                    continue
                # Bounding box of the windows of the tile's coordinates, per axis.
                box = []
                for coords, (lo, hi) in zip((ts, hs, ws), windows):
                    box.append(torch.arange(int(lo[coords].min()), int(hi[coords].max()) + 1))
                k_idx = ((box[0][:, None, None] * key_grid[1] + box[1][None, :, None]) * key_grid[2]
                         + box[2][None, None, :]).reshape(-1)
                k_idx = k_idx[k_idx < num_keys]
                # Keep exactly the keys that some query of the tile may see (the causal cut removes ~half).
                ok = allowed(q_idx[:, None], k_idx[None, :], query_grid, key_grid, extent, causal)
                k_idx = k_idx[ok.any(dim=0)]
                tiles_q.append(q_idx)
                tiles_k.append(k_idx)
    n = len(tiles_q)
    tq = max(x.numel() for x in tiles_q)
    tk = max(x.numel() for x in tiles_k)
    query_index = torch.empty(n, tq, dtype=torch.long)
    key_index = torch.empty(n, tk, dtype=torch.long)
    q_valid = torch.zeros(n, tq, dtype=torch.bool)
    k_valid = torch.zeros(n, tk, dtype=torch.bool)
    for i, (qi, ki) in enumerate(zip(tiles_q, tiles_k)):
        query_index[i, : qi.numel()] = qi
        query_index[i, qi.numel():] = qi[0]
        key_index[i, : ki.numel()] = ki
        key_index[i, ki.numel():] = ki[0]
        q_valid[i, : qi.numel()] = True
        k_valid[i, : ki.numel()] = True
    mask = allowed(query_index[:, :, None], key_index[:, None, :], query_grid, key_grid, extent, causal)
    mask &= k_valid[:, None, :]
    # Padding query slots copy a real query, so their rows are never empty (no NaN); their output is discarded.
    inverse = torch.empty(num_queries, dtype=torch.long)
    slots = torch.arange(n * tq).view(n, tq)
    inverse[query_index[q_valid] - q_lo] = slots[q_valid]
    return TilePlan(
        tile=tuple(tile), num_tiles=n, tile_queries=tq, tile_keys=tk,
        query_index=(query_index.reshape(-1) - q_lo).to(device), key_index=key_index.reshape(-1).to(device),
        mask=mask.to(device), inverse=inverse.to(device), query_valid=q_valid.reshape(-1, 1).to(device),
    )


class _TiledAttention(torch.autograd.Function):
    """Attention over the tiles of a :class:`TilePlan`, a chunk of tiles at a time, flash-style.

    Forward keeps only the output and the log-sum-exp of every query slot; backward gathers each chunk's queries, keys,
    values, outputs and output gradients again and recomputes its probabilities. Peak memory is one chunk of tiles
    plus tensors of the inputs' size, instead of every tile's keys, values and probabilities held for autograd.

    q: (BH, Lq, D), k and v: (BH, Lk, D) -> (BH, Lq, D).
    """

    @staticmethod
    def _gather(x, index, shape):
        return x.index_select(1, index).view(shape)

    @staticmethod
    def forward(ctx, q, k, v, plan: TilePlan, scale: float, chunk: int):
        BH, _, D = q.shape
        n, tq, tk = plan.num_tiles, plan.tile_queries, plan.tile_keys
        q_index, k_index = plan.query_index.view(n, tq), plan.key_index.view(n, tk)
        out = q.new_empty(q.shape)
        lse = q.new_empty(BH, n * tq, 1)
        for c0 in range(0, n, chunk):
            c1 = min(n, c0 + chunk)
            qi, ki = q_index[c0:c1].reshape(-1), k_index[c0:c1].reshape(-1)
            qg = q.index_select(1, qi).view(BH, c1 - c0, tq, D)
            kg = k.index_select(1, ki).view(BH, c1 - c0, tk, D)
            vg = v.index_select(1, ki).view(BH, c1 - c0, tk, D)
            scores = torch.matmul(qg, kg.transpose(-1, -2)).mul_(scale).masked_fill_(~plan.mask[c0:c1], float("-inf"))
            row_max = scores.amax(dim=-1, keepdim=True)  # every row has an allowed key, so this is finite
            probs = torch.exp_(scores.sub_(row_max))
            row_sum = probs.sum(dim=-1, keepdim=True)
            lse[:, c0 * tq:c1 * tq] = (row_max + row_sum.log()).reshape(BH, -1, 1)
            tile_out = torch.matmul(probs, vg).div_(row_sum).reshape(BH, -1, D)
            # Padding slots repeat a real query: write only real slots (same values either way, but keep it exact).
            valid = plan.query_valid[c0 * tq:c1 * tq, 0]
            out.index_copy_(1, qi[valid], tile_out[:, valid])
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.plan, ctx.scale, ctx.chunk = plan, scale, chunk
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse = ctx.saved_tensors
        plan, scale, chunk = ctx.plan, ctx.scale, ctx.chunk
        grad_out = grad_out.contiguous()
        BH, _, D = q.shape
        n, tq, tk = plan.num_tiles, plan.tile_queries, plan.tile_keys
        q_index, k_index = plan.query_index.view(n, tq), plan.key_index.view(n, tk)
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for c0 in range(0, n, chunk):
            c1 = min(n, c0 + chunk)
            rows = slice(c0 * tq, c1 * tq)
            qi, ki = q_index[c0:c1].reshape(-1), k_index[c0:c1].reshape(-1)
            shape_q, shape_k = (BH, c1 - c0, tq, D), (BH, c1 - c0, tk, D)
            qg, kg, vg = q.index_select(1, qi).view(shape_q), k.index_select(1, ki).view(shape_k), v.index_select(1, ki).view(shape_k)
            # Padding slots get no output gradient, so they contribute nothing.
            dog = grad_out.index_select(1, qi).mul_(plan.query_valid[rows]).view(shape_q)
            delta = (dog * out.index_select(1, qi).view(shape_q)).sum(dim=-1, keepdim=True)  # rowsum(dO * O)
            scores = torch.matmul(qg, kg.transpose(-1, -2)).mul_(scale).masked_fill_(~plan.mask[c0:c1], float("-inf"))
            probs = torch.exp_(scores.sub_(lse[:, rows].view(BH, c1 - c0, tq, 1)))
            dv.index_add_(1, ki, torch.matmul(probs.transpose(-1, -2), dog).reshape(BH, -1, D))
            dscores = torch.matmul(dog, vg.transpose(-1, -2)).sub_(delta).mul_(probs).mul_(scale)
            dq.index_add_(1, qi, torch.matmul(dscores, kg).reshape(BH, -1, D))
            dk.index_add_(1, ki, torch.matmul(dscores.transpose(-1, -2), qg).reshape(BH, -1, D))
        return dq, dk, dv, None, None, None


def plan_for(query: torch.Tensor, key: torch.Tensor, query_grid: Grid, key_grid: Grid, extent: Extent, causal: bool,
             query_offset: Optional[int], tile: Optional[Tuple[int, int, int]] = None) -> TilePlan:
    """The cached :class:`TilePlan` for these attention inputs (the tile shape chosen automatically unless given)."""
    if tile is None:
        tile = choose_tile(tuple(query_grid), tuple(key_grid), tuple(extent), causal)
    return tile_plan(
        tuple(query_grid), tuple(key_grid), tuple(extent), bool(causal), int(query_offset or 0), query.shape[2],
        key.shape[2], tuple(tile), query.device,
    )


def _chunk_tiles(plan: TilePlan, batch_heads: int, budget: int = 1 << 17) -> int:
    """How many tiles to process at once: about ``budget`` scores (0.5 MB in fp32) per chunk."""
    return max(1, min(plan.num_tiles, budget // max(1, batch_heads * plan.tile_queries * plan.tile_keys)))


def nearby_attention_block_sparse(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    query_grid: Grid,
    key_grid: Grid,
    extent: Extent,
    causal: bool = False,
    scale: Optional[float] = None,
    query_offset: Optional[int] = None,
    tile: Optional[Tuple[int, int, int]] = None,
) -> torch.Tensor:
    """3DNA by tiles (differentiable). Shapes as in ``nearby_attention``; ``tile`` overrides the automatic choice."""
    B, NH, Lq, D = query.shape
    Lk = key.shape[2]
    plan = plan_for(query, key, query_grid, key_grid, extent, causal, query_offset, tile)
    scale = D ** -0.5 if scale is None else scale
    out = _TiledAttention.apply(
        query.reshape(B * NH, Lq, D), key.reshape(B * NH, Lk, D), value.reshape(B * NH, Lk, D), plan, scale,
        _chunk_tiles(plan, B * NH),
    )
    return out.view(B, NH, Lq, D)
