"""The one reference implementation of 3D Nearby Attention.

It defines what every other backend must compute: a dense boolean mask over (queries x keys) built from
:func:`nuwa_hf.ops.geometry.allowed`, then masked softmax attention. It is O(Lq * Lk) in time and memory and
is meant for tests, tiny inputs and as the fallback that can never be wrong.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import torch

from .geometry import Extent, Grid, allowed


@functools.lru_cache(maxsize=32)
def _full_mask(query_grid, key_grid, extent, causal, device):
    # Cached: never an inference tensor (pipelines run in inference_mode; autograd would refuse it later).
    with torch.inference_mode(False):
        q_index = torch.arange(query_grid[0] * query_grid[1] * query_grid[2], device=device)
        k_index = torch.arange(key_grid[0] * key_grid[1] * key_grid[2], device=device)
        return allowed(q_index[:, None], k_index[None, :], query_grid, key_grid, extent, causal)


def nearby_attention_mask(
    query_grid: Grid,
    key_grid: Grid,
    extent: Extent,
    causal: bool = False,
    *,
    query_offset: int = 0,
    num_queries: Optional[int] = None,
    num_keys: Optional[int] = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Dense boolean mask ``(num_queries, num_keys)``: ``True`` where a query may attend to a key.

    ``query_offset``/``num_queries`` select queries ``offset .. offset+num_queries-1`` of the query grid (default: the
    whole grid); ``num_keys`` the first keys of the key grid (default: all of them). Cached per argument set.
    """
    nq = query_grid[0] * query_grid[1] * query_grid[2]
    nk = key_grid[0] * key_grid[1] * key_grid[2]
    num_queries = nq - query_offset if num_queries is None else num_queries
    num_keys = nk if num_keys is None else num_keys
    device = torch.device(device) if device is not None else torch.device("cpu")
    # Built once per grid pair, then sliced (a view): slices for every decoding length cost nothing extra.
    full = _full_mask(tuple(query_grid), tuple(key_grid), tuple(extent), bool(causal), device)
    return full[query_offset:query_offset + num_queries, :num_keys]


def nearby_attention_reference(
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
    """``softmax(Q K^T * scale + mask) V`` with the dense 3DNA mask. Shapes as in ``nearby_attention``."""
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    mask = nearby_attention_mask(
        query_grid, key_grid, extent, causal, query_offset=query_offset or 0, num_queries=query.shape[2],
        num_keys=key.shape[2], device=query.device,
    )
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), value)
