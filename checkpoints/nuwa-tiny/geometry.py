"""Geometry of 3D Nearby Attention (3DNA): grids, windows and argument checks.

Everything here is about *which* key a query may see; no attention is computed. All backends share these
helpers, so a grid, an extent or a causal flag means exactly the same thing everywhere.

Conventions (the paper's, see ``nuwa-paper.md``):

* A grid is ``(T, H, W)``: frames, height, width. Text is ``(length, 1, 1)``, an image ``(1, H, W)``.
* Tokens are flattened in raster order: ``index = (t * H + h) * W + w``.
* A query at ``(t, h, w)`` of the query grid ``(T, H, W)`` maps to the key-grid centre
  ``(floor(t * T' / T), floor(h * H' / H), floor(w * W' / W))`` of the key grid ``(T', H', W')``.
* ``extent = (e_t, e_h, e_w)``: odd window sizes (3 covers offsets -1, 0, +1); ``None`` is the whole axis.
  The window is cut off at the borders: no clamping, no padding keys.
* ``causal``: additionally ``key index <= query index`` (only for a grid attending to itself).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

Grid = Tuple[int, int, int]
Extent = Tuple[Optional[int], Optional[int], Optional[int]]


def grid_size(grid: Grid) -> int:
    return grid[0] * grid[1] * grid[2]


def check_grid(name: str, grid: Sequence[int]) -> Grid:
    if not isinstance(grid, (tuple, list)) or len(grid) != 3:
        raise ValueError(f"{name} must be a (frames, height, width) triple of positive ints, got {grid!r}.")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in grid):
        raise ValueError(f"{name} must hold positive ints, got {grid!r}.")
    return (int(grid[0]), int(grid[1]), int(grid[2]))


def check_extent(extent: Sequence[Optional[int]]) -> Extent:
    if not isinstance(extent, (tuple, list)) or len(extent) != 3:
        raise ValueError(
            f"extent must be a (e_t, e_h, e_w) triple of odd window sizes or None (whole axis), got {extent!r}."
        )
    for axis, e in zip("thw", extent):
        if e is None:
            continue
        if not isinstance(e, int) or isinstance(e, bool) or e < 1:
            raise ValueError(f"extent e_{axis}={e!r} must be a positive odd int or None (whole axis).")
        if e % 2 == 0:
            raise ValueError(
                f"extent e_{axis}={e} is even; 3DNA windows are centred, so use an odd size such as {e + 1} "
                f"(or None for the whole axis)."
            )
    return (extent[0], extent[1], extent[2])


def check_attention_inputs(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    query_grid: Grid,
    key_grid: Grid,
    extent: Extent,
    causal: bool,
    query_offset: Optional[int],
) -> None:
    """Raise ``ValueError`` naming the problem for any inconsistent argument of ``nearby_attention``."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}.")
        if t.dim() != 4:
            raise ValueError(f"{name} must have shape (batch, heads, length, head_dim), got {tuple(t.shape)}.")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}.")
    if key.shape != value.shape:
        raise ValueError(f"key and value must have the same shape, got {tuple(key.shape)} and {tuple(value.shape)}.")
    if query.shape[0] != key.shape[0] or query.shape[1] != key.shape[1] or query.shape[3] != key.shape[3]:
        raise ValueError(
            "query and key must agree in batch, heads and head_dim: "
            f"query {tuple(query.shape)} vs key {tuple(key.shape)}."
        )
    if query.dtype != key.dtype or key.dtype != value.dtype:
        raise ValueError(f"query, key and value must share a dtype, got {query.dtype}, {key.dtype}, {value.dtype}.")
    if causal and tuple(query_grid) != tuple(key_grid):
        raise ValueError(
            f"causal=True needs the query grid and key grid to be the same (self-attention), got {query_grid} "
            f"and {key_grid}; cross-attention is never causal."
        )
    lq, lk = query.shape[2], key.shape[2]
    nq, nk = grid_size(query_grid), grid_size(key_grid)
    if query_offset is None:
        if lq != nq:
            raise ValueError(
                f"query length {lq} does not match query_grid {query_grid} (T*H*W = {nq}); to attend from a "
                f"slice of the grid (KV-cached decoding) pass query_offset=<raster index of the first query>."
            )
        query_offset = 0
    elif not isinstance(query_offset, int) or isinstance(query_offset, bool) or query_offset < 0:
        raise ValueError(f"query_offset must be a non-negative int or None, got {query_offset!r}.")
    if query_offset + lq > nq:
        raise ValueError(
            f"queries {query_offset}..{query_offset + lq - 1} do not fit query_grid {query_grid} of {nq} positions."
        )
    if causal:
        # A causal key cache may hold a prefix of the grid, but it must reach the last query.
        if lk > nk or lk < query_offset + lq:
            raise ValueError(
                f"key length {lk} must cover every position up to the last query ({query_offset + lq}) and at "
                f"most key_grid {key_grid} = {nk} positions."
            )
    elif lk != nk:
        raise ValueError(f"key length {lk} does not match key_grid {key_grid} (T*H*W = {nk}).")


def axis_window(q_size: int, k_size: int, e: Optional[int], device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inclusive key range ``[lo, hi]`` seen along one axis by every query coordinate ``0..q_size-1``."""
    q = torch.arange(q_size, device=device)
    if e is None:
        return torch.zeros_like(q), torch.full_like(q, k_size - 1)
    centre = (q * k_size) // q_size  # floor(q * K / Q)
    half = e // 2
    return (centre - half).clamp(min=0), (centre + half).clamp(max=k_size - 1)


def unravel(index: torch.Tensor, grid: Grid) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raster index -> (t, h, w) coordinates."""
    _, h_size, w_size = grid
    return index // (h_size * w_size), (index // w_size) % h_size, index % w_size


def allowed(
    q_index: torch.Tensor,
    k_index: torch.Tensor,
    query_grid: Grid,
    key_grid: Grid,
    extent: Extent,
    causal: bool,
) -> torch.Tensor:
    """Boolean ``allowed[i, j]`` for query raster indices ``q_index[i]`` and key raster indices ``k_index[j]``.

    Broadcasting works for any shapes: the result has shape ``broadcast(q_index[..., None], k_index)`` when the
    caller shapes them so. This is the single definition of the 3DNA neighbourhood.
    """
    qt, qh, qw = unravel(q_index, query_grid)
    kt, kh, kw = unravel(k_index, key_grid)
    ok = torch.ones(torch.broadcast_shapes(qt.shape, kt.shape), dtype=torch.bool, device=q_index.device)
    for qc, kc, q_size, k_size, e in zip(
        (qt, qh, qw), (kt, kh, kw), query_grid, key_grid, extent
    ):
        if e is None:
            continue
        centre = (qc * k_size) // q_size
        ok &= (kc - centre).abs() <= e // 2
    if causal:
        ok &= k_index <= q_index
    return ok
