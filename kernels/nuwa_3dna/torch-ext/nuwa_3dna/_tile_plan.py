"""Tile plans of 3D Nearby Attention: which key tiles each query tile must visit, and the transpose.

Pure torch (no triton): the kernels' host side builds the plans before a launch, and ``nuwa_hf.ops.tile_plan`` loads
this very file to report and test them on machines without a GPU. No relative imports, on purpose.

Both grids are cut into 3D tiles (boxes) in raster order of tiles: a query tile is ``query_tile = (t, h, w)`` query
positions, a key tile ``key_tile`` key positions (tiles at the far borders are clipped by the grid). The plan lists,
for each query tile, the key tiles holding at least one (query, key) pair the 3DNA window allows (``kv_num_blocks`` /
``kv_indices``, ascending), and for each key tile the query tiles that touch it (``q_num_blocks`` / ``q_indices``):
the same block-sparse layout as FlexAttention's BlockMask, built here in closed form from the geometry instead of
by evaluating a mask. The forward and dQ kernels walk the first list, the dK/dV kernel the second.

Exactness. A query's window is a box of the key grid (per axis ``|k - floor(q * K / Q)| <= half``, clipped), so a
query sees a key tile iff the two boxes intersect, and with ``causal`` iff moreover the intersection's first corner
(its smallest raster index) does not come after the query. A tile pair is listed iff one of its queries sees it:
no listed pair is empty of allowed pairs, no allowed pair is missed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import torch

Triple = Tuple[int, int, int]


def halves_of(extent: Sequence[Optional[int]], key_grid: Triple) -> Triple:
    """Per-axis half-widths as the kernels use them: ``e // 2`` (clamped to the axis), ``None`` -> the whole axis."""
    return tuple(k if e is None else min(e // 2, k) for e, k in zip(extent, key_grid))


def _window(q_size: int, k_size: int, half: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per query coordinate of one axis, the first and last key coordinate of its (clipped) window."""
    centre = torch.arange(q_size) * k_size // q_size
    return (centre - half).clamp(min=0), (centre + half).clamp(max=k_size - 1)


def _tiles(size: int, tile: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """First and last coordinate of each tile of one axis (the last tile clipped to the axis)."""
    first = torch.arange(0, size, tile)
    return first, (first + tile - 1).clamp(max=size - 1)


def _pairs_per_query(query_grid: Triple, key_grid: Triple, halves: Triple, causal: bool) -> torch.Tensor:
    """Allowed keys of every query, raster order (int64): the window box, with ``causal`` cut to keys <= the query."""
    lo, n = [], []
    for q, k, h in zip(query_grid, key_grid, halves):
        first, last = _window(q, k, h)
        lo.append(first)
        n.append(last - first + 1)
    qt, qh, qw = query_grid
    t = torch.arange(qt).view(-1, 1, 1)
    hh = torch.arange(qh).view(1, -1, 1)
    w = torch.arange(qw).view(1, 1, -1)
    lo_t, lo_h, lo_w = lo[0].view(-1, 1, 1), lo[1].view(1, -1, 1), lo[2].view(1, 1, -1)
    n_t, n_h, n_w = n[0].view(-1, 1, 1), n[1].view(1, -1, 1), n[2].view(1, 1, -1)
    if not causal:
        return (n_t * n_h * n_w).reshape(-1)
    # Causal needs query_grid == key_grid: the keys with raster <= the query's own form a prefix of the box.
    t_in = (t >= lo_t) & (t < lo_t + n_t)
    h_in = (hh >= lo_h) & (hh < lo_h + n_h)
    count = (t - lo_t).clamp(0).minimum(n_t) * n_h * n_w
    count = count + t_in * (hh - lo_h).clamp(0).minimum(n_h) * n_w
    count = count + (t_in & h_in) * (w - lo_w + 1).clamp(0).minimum(n_w)
    return count.reshape(-1)


@dataclass(eq=False)
class TilePlan:
    """The block-sparse schedule of one (query grid, key grid, window, causal, query tile, key tile)."""

    query_grid: Triple
    key_grid: Triple
    halves: Triple
    causal: bool
    query_tile: Triple
    key_tile: Triple
    query_tiles: Triple  # tiles along (t, h, w) of the query grid
    key_tiles: Triple
    kv_num_blocks: torch.Tensor  # (query tiles,) int32: key tiles each query tile visits
    kv_indices: torch.Tensor  # (query tiles, max kv_num_blocks) int32, ascending, padded with 0
    q_num_blocks: torch.Tensor  # (key tiles,) int32: query tiles touching each key tile
    q_indices: torch.Tensor  # (key tiles, max q_num_blocks) int32, ascending, padded with 0
    allowed_pairs: int  # (query, key) pairs the window allows on the whole grid
    _on_device: Dict[tuple, Tuple[torch.Tensor, ...]] = field(default_factory=dict, repr=False)

    @property
    def query_volume(self) -> int:
        return math.prod(self.query_tile)

    @property
    def key_volume(self) -> int:
        return math.prod(self.key_tile)

    @property
    def computed_pairs(self) -> int:
        """(query slot, key slot) pairs a kernel walking this plan multiplies (padding slots of border tiles too)."""
        return int(self.kv_num_blocks.sum()) * self.query_volume * self.key_volume

    @property
    def ratio(self) -> float:
        return self.computed_pairs / max(self.allowed_pairs, 1)

    def kernel_lists(self, device, over_keys: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """What a kernel walks, on ``device`` (copied once per plan and device): ``(counts, packed entries)``.

        Forward/dQ (a plan with single-key tiles): per query tile, its keys; dK/dV (``over_keys``, a plan with
        single-query tiles): per key tile, its queries. Entries are packed coordinates (:func:`packed`).
        """
        cache_key = (str(device), over_keys)
        if cache_key not in self._on_device:
            if over_keys:
                if self.query_tile != (1, 1, 1):
                    raise ValueError("a dK/dV kernel walks single queries: build the plan with query_tile (1, 1, 1).")
                counts, entries = self.q_num_blocks, packed(self.q_indices, self.query_grid)
            else:
                if self.key_tile != (1, 1, 1):
                    raise ValueError("a forward kernel walks single keys: build the plan with key_tile (1, 1, 1).")
                counts, entries = self.kv_num_blocks, packed(self.kv_indices, self.key_grid)
            self._on_device[cache_key] = (counts.to(device), entries.contiguous().to(device))
        return self._on_device[cache_key]


def _lists(relation: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Row counts and ascending column indices of a boolean matrix (padded with 0 to the longest row)."""
    counts = relation.sum(1)
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    # Sorting a key that puts the True columns first, in ascending order, then cutting to the longest row.
    columns = torch.arange(relation.shape[1])
    order = torch.where(relation, columns, columns + relation.shape[1]).sort(1).values[:, :width]
    indices = torch.where(order < relation.shape[1], order, torch.zeros_like(order))
    return counts.to(torch.int32), indices.to(torch.int32).contiguous()


@functools.lru_cache(maxsize=64)
def build_tile_plan(query_grid: Triple, key_grid: Triple, halves: Triple, causal: bool, query_tile: Triple,
                    key_tile: Triple) -> TilePlan:
    """The plan (cached: built once per argument tuple). ``halves`` as from :func:`halves_of`."""
    query_grid, key_grid, halves = tuple(query_grid), tuple(key_grid), tuple(halves)
    query_tile, key_tile = tuple(query_tile), tuple(key_tile)
    if causal and query_grid != key_grid:
        raise ValueError(f"causal plans need query_grid == key_grid, got {query_grid}, {key_grid}.")
    q_tiles = tuple(math.ceil(g / t) for g, t in zip(query_grid, query_tile))
    k_tiles = tuple(math.ceil(g / t) for g, t in zip(key_grid, key_tile))
    # Per axis: [query coordinate, key tile] -> the first key coordinate the window shares with the tile, or -1.
    shared_lo = []
    for q, k, h, kt in zip(query_grid, key_grid, halves, key_tile):
        w_lo, w_hi = _window(q, k, h)
        t_lo, t_hi = _tiles(k, kt)
        lo = torch.maximum(w_lo[:, None], t_lo[None, :])
        hi = torch.minimum(w_hi[:, None], t_hi[None, :])
        shared_lo.append(torch.where(lo <= hi, lo, torch.full_like(lo, -1)))
    _, kh, kw = key_grid
    _, qh, qw = query_grid
    n_key_tiles = math.prod(k_tiles)
    relation = torch.zeros(math.prod(q_tiles), n_key_tiles, dtype=torch.int32)
    # Query tile of each query of a frame, and key tile coordinates of each key tile (raster order of tiles).
    h_tile = torch.arange(qh) // query_tile[1]
    w_tile = torch.arange(qw) // query_tile[2]
    frame_tiles = (h_tile[:, None] * q_tiles[2] + w_tile[None, :]).reshape(-1)
    kt_t = torch.arange(k_tiles[0]).view(-1, 1, 1)
    kt_h = torch.arange(k_tiles[1]).view(1, -1, 1)
    kt_w = torch.arange(k_tiles[2]).view(1, 1, -1)
    raster_hw = (torch.arange(qh)[:, None] * qw + torch.arange(qw)[None, :]).reshape(-1)
    for t in range(query_grid[0]):  # one frame of queries at a time bounds the memory to (H*W, key tiles)
        lo_t = shared_lo[0][t][kt_t]  # (kt, 1, 1)
        lo_h = shared_lo[1][:, kt_h.view(-1)]  # (QH, kh tiles)
        lo_w = shared_lo[2][:, kt_w.view(-1)]  # (QW, kw tiles)
        sees = (lo_t >= 0)[None] & (lo_h >= 0)[:, None, None, :, None] & (lo_w >= 0)[None, :, None, None, :]
        if causal:
            first_key = (lo_t[None] * kh + lo_h[:, None, None, :, None]) * kw + lo_w[None, :, None, None, :]
            sees = sees & (first_key <= t * qh * qw + raster_hw.view(qh, qw, 1, 1, 1))
        sees = sees.reshape(qh * qw, n_key_tiles)
        rows = t // query_tile[0] * q_tiles[1] * q_tiles[2] + frame_tiles
        relation.index_add_(0, rows, sees.to(torch.int32))
    relation = relation > 0
    kv_num, kv_idx = _lists(relation)
    q_num, q_idx = _lists(relation.t())
    return TilePlan(
        query_grid=query_grid, key_grid=key_grid, halves=halves, causal=bool(causal), query_tile=query_tile,
        key_tile=key_tile, query_tiles=q_tiles, key_tiles=k_tiles, kv_num_blocks=kv_num, kv_indices=kv_idx,
        q_num_blocks=q_num, q_indices=q_idx,
        allowed_pairs=int(_pairs_per_query(query_grid, key_grid, halves, causal).sum()),
    )


def pow2_tiles(volume: int, grid: Triple):
    """Power-of-two tile shapes of ``volume`` slots none of whose sides exceeds its axis rounded up to a power of 2."""
    caps = [1 << max(0, (g - 1).bit_length()) for g in grid]
    out = []
    a = 1
    while a <= volume:
        b = 1
        while a * b <= volume:
            c = volume // (a * b)
            if a <= caps[0] and b <= caps[1] and c <= caps[2]:
                out.append((a, b, c))
            b *= 2
        a *= 2
    return out or [(1, 1, volume)]


def packed(raster: torch.Tensor, grid: Triple) -> torch.Tensor:
    """Raster indices of ``grid`` as ``t << 20 | h << 10 | w`` (int32): the kernels unpack them with shifts and masks,
    no division in their inner loops."""
    _, gh, gw = grid
    if gh > 1024 or gw > 1024 or grid[0] > 2047:
        raise ValueError(f"tile plans pack coordinates in 11/10/10 bits; grid {grid} is too large.")
    raster = raster.long()
    return ((raster // (gh * gw)) << 20 | ((raster // gw) % gh) << 10 | raster % gw).to(torch.int32)


def _axis_reach(q: int, k: int, half: int, tile: int, over_keys: bool) -> torch.Tensor:
    """Per tile of one axis (query tiles, or key tiles with ``over_keys``), how many coordinates of the other grid
    its coordinates reach through the window (exact even where a union of windows has holes)."""
    w_lo, w_hi = _window(q, k, half)
    sees = (torch.arange(k)[None, :] >= w_lo[:, None]) & (torch.arange(k)[None, :] <= w_hi[:, None])  # (q, k)
    if over_keys:
        sees = sees.t()
    size = sees.shape[0]
    per_tile = torch.zeros(math.ceil(size / tile), sees.shape[1], dtype=torch.int32)
    per_tile.index_add_(0, torch.arange(size) // tile, sees.to(torch.int32))
    return (per_tile > 0).sum(1)


def steps(plan: TilePlan, block: int, over_keys: bool = False) -> torch.Tensor:
    """Inner-loop steps per program of a kernel that walks ``plan`` ``block`` entries at a time: per query tile
    (forward, dQ: plans with single-key tiles), or per key tile with ``over_keys`` (dK/dV: single-query tiles)."""
    counts = plan.q_num_blocks if over_keys else plan.kv_num_blocks
    return (counts.long() + block - 1) // block


@functools.lru_cache(maxsize=128)
def choose_tile(query_grid: Triple, key_grid: Triple, halves: Triple, causal: bool, block: int, inner_block: int,
                over_keys: bool = False, candidates: int = 6) -> Triple:
    """The power-of-two tile of ``block`` slots (query tiles; key tiles with ``over_keys``) whose plan makes its
    kernel compute the fewest pairs when it walks the listed keys (queries) ``inner_block`` at a time.

    Without ``causal`` a tile's reach is a product over axes, so every shape is ranked exactly and cheaply; with it
    the ``candidates`` best are planned in full (with the causal cut) and the cheapest wins. Ties go to fewer
    padded slots.
    """
    tiled = key_grid if over_keys else query_grid
    ranked = []
    for shape in pow2_tiles(block, tiled):
        reach = [_axis_reach(q, k, h, t, over_keys) for q, k, h, t in zip(query_grid, key_grid, halves, shape)]
        per_tile = reach[0][:, None, None] * reach[1][None, :, None] * reach[2][None, None, :]
        cost = int(((per_tile + inner_block - 1) // inner_block).sum())
        padding = math.prod(math.ceil(g / t) * t for g, t in zip(tiled, shape))
        ranked.append((cost, padding, shape))
    ranked.sort()
    if not causal:
        return ranked[0][2]

    def exact(entry):
        shape = entry[2]
        plan = build_tile_plan(query_grid, key_grid, halves, causal, (1, 1, 1) if over_keys else shape,
                               shape if over_keys else (1, 1, 1))
        return int(steps(plan, inner_block, over_keys).sum()), entry[1]

    return min(ranked[:candidates], key=exact)[2]


def pair_report(query_grid: Triple, key_grid: Triple, extent: Sequence[Optional[int]], causal: bool,
                block_m: int, block_n: int) -> dict:
    """Per (batch, head) on the whole grid: the (query, key) pairs the 3DNA window allows, and those the planned
    forward kernel computes with ``block_m``-query tiles walking their listed keys ``block_n`` at a time (the dK/dV
    kernel, ``block_n``-key tiles walking their queries ``block_m`` at a time, likewise)."""
    query_grid, key_grid = tuple(query_grid), tuple(key_grid)
    halves = halves_of(extent, key_grid)
    q_tile = choose_tile(query_grid, key_grid, halves, bool(causal), block_m, block_n)
    k_tile = choose_tile(query_grid, key_grid, halves, bool(causal), block_n, block_m, over_keys=True)
    forward = build_tile_plan(query_grid, key_grid, halves, bool(causal), q_tile, (1, 1, 1))
    backward = build_tile_plan(query_grid, key_grid, halves, bool(causal), (1, 1, 1), k_tile)
    computed = int(steps(forward, block_n).sum()) * block_m * block_n
    dkdv = int(steps(backward, block_m, over_keys=True).sum()) * block_m * block_n
    return dict(query_tile=q_tile, key_tile=k_tile, allowed_pairs=forward.allowed_pairs, computed_pairs=computed,
                ratio=computed / max(forward.allowed_pairs, 1), dkdv_pairs=dkdv,
                dkdv_ratio=dkdv / max(forward.allowed_pairs, 1))
