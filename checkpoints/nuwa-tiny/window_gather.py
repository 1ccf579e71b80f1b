"""Per-query window gather: each query attends to exactly the keys of its own 3D window, gathered by index.

This is the decoding path of KV-cached generation: one new query (or a few) against a cache of keys. The window
of a query holds at most ``e_t * e_h * e_w`` keys (27 for 3x3x3), so the cost of a step does not depend on how many
tokens were generated before it. Axes with a ``None`` extent contribute the whole axis (all text tokens).

It is exact for any number of queries, but gathering ``window`` keys per query is wasteful for whole grids, where
the block-sparse path shares keys between neighbouring queries.
"""

from __future__ import annotations

import functools
from typing import Optional

import torch

from .geometry import Extent, Grid, unravel


def window_key_index(
    query_index: torch.Tensor, query_grid: Grid, key_grid: Grid, extent: Extent, causal: bool, num_keys: int
):
    """Key raster indices of each query's window and their validity.

    query_index: (n,) raster indices of the queries.
    Returns ``(key_index, valid)``, both ``(n, window)``; invalid slots hold index 0.
    """
    coords = unravel(query_index, query_grid)
    per_axis = []
    for qc, q_size, k_size, e in zip(coords, query_grid, key_grid, extent):
        if e is None:
            offs = torch.arange(k_size, device=query_index.device)
            per_axis.append(offs.expand(qc.shape[0], k_size))
        else:
            centre = (qc * k_size) // q_size
            offs = torch.arange(-(e // 2), e // 2 + 1, device=query_index.device)
            per_axis.append(centre[:, None] + offs[None, :])
    kt, kh, kw = per_axis
    n = query_index.shape[0]
    kt = kt[:, :, None, None]
    kh = kh[:, None, :, None]
    kw = kw[:, None, None, :]
    valid = (
        (kt >= 0) & (kt < key_grid[0]) & (kh >= 0) & (kh < key_grid[1]) & (kw >= 0) & (kw < key_grid[2])
    )
    key_index = (kt * key_grid[1] + kh) * key_grid[2] + kw
    key_index = key_index.reshape(n, -1)
    valid = valid.reshape(n, -1) & (key_index < num_keys)
    if causal:
        valid &= key_index <= query_index[:, None]
    return key_index.masked_fill(~valid, 0), valid


@functools.lru_cache(maxsize=64)
def window_table(query_grid: Grid, key_grid: Grid, extent: Extent, causal: bool, device: torch.device):
    """``window_key_index`` for every query of the grid against the whole key grid, computed once and cached.

    A decoding step then only slices rows: its cost does not include rebuilding the window.
    """
    num_queries = query_grid[0] * query_grid[1] * query_grid[2]
    num_keys = key_grid[0] * key_grid[1] * key_grid[2]
    # Cached tensors outlive the call: never create them as inference tensors (pipelines run in inference_mode),
    # which autograd would later refuse.
    with torch.inference_mode(False):
        q_index = torch.arange(num_queries, device=device)
        return window_key_index(q_index, query_grid, key_grid, extent, causal, num_keys)


def nearby_attention_window_gather(
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
) -> torch.Tensor:
    """3DNA by gathering each query's window. Shapes as in ``nearby_attention``."""
    B, NH, Lq, D = query.shape
    Lk = key.shape[2]
    offset = int(query_offset or 0)
    table_index, table_valid = window_table(tuple(query_grid), tuple(key_grid), tuple(extent), bool(causal), query.device)
    k_index, valid = table_index[offset:offset + Lq], table_valid[offset:offset + Lq]
    # Keys may be a prefix of the grid (a causal KV cache); causal windows never reach past the query anyway.
    win = k_index.shape[1]
    flat = k_index.reshape(-1)
    k = key.index_select(2, flat).view(B, NH, Lq, win, D)
    v = value.index_select(2, flat).view(B, NH, Lq, win, D)
    scale = D ** -0.5 if scale is None else scale
    scores = torch.einsum("bhqd,bhqkd->bhqk", query, k) * scale
    scores = scores.masked_fill(~valid, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.einsum("bhqk,bhqkd->bhqd", probs, v)
