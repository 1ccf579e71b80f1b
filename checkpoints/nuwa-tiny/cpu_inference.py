"""The CPU inference path of 3DNA: the block-sparse tiles, without autograd, in reused scratch buffers.

Why a separate path: on the CPU the gathered per-tile keys and values are tens of megabytes per call at video
grids, and the allocator returns such blocks to the OS after each call, so every call pays for page faults on
fresh memory (measured: about 3x the cost of the attention itself at 10x21x21). Inference needs no autograd graph,
so the gathers write into scratch buffers kept per (shape, dtype, device) and reused. Results are identical to the
block-sparse path (same tiles, same kernel); only the memory behaviour differs. Not for training: no gradients.
"""

from __future__ import annotations

import threading
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .block_sparse import plan_for
from .geometry import Extent, Grid

_SCRATCH: Dict[Tuple, torch.Tensor] = {}
_SCRATCH_LOCK = threading.Lock()
_SCRATCH_LIMIT = 8  # distinct buffers kept; oldest dropped first


def _scratch(tag: str, shape: Tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # Kept apart per inference mode: a buffer made inside torch.inference_mode (transformers pipelines) is an inference
    # tensor, which torch refuses to write outside that mode (a later call under torch.no_grad, e.g. model.generate).
    key = (tag, shape, dtype, device, threading.get_ident(), torch.is_inference_mode_enabled())
    with _SCRATCH_LOCK:
        buf = _SCRATCH.get(key)
        if buf is None:
            if len(_SCRATCH) >= _SCRATCH_LIMIT:
                _SCRATCH.pop(next(iter(_SCRATCH)))
            buf = _SCRATCH[key] = torch.empty(shape, dtype=dtype, device=device)
        return buf


@torch.no_grad()
def nearby_attention_cpu_inference(
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
    """3DNA forward only (no gradients). Shapes as in ``nearby_attention``."""
    B, NH, Lq, D = query.shape
    Lk = key.shape[2]
    plan = plan_for(query, key, query_grid, key_grid, extent, causal, query_offset, tile)
    n, tq, tk = plan.num_tiles, plan.tile_queries, plan.tile_keys
    dt, dev = query.dtype, query.device
    q = _scratch("q", (B * NH, n * tq, D), dt, dev)
    k = _scratch("k", (B * NH, n * tk, D), dt, dev)
    v = _scratch("v", (B * NH, n * tk, D), dt, dev)
    torch.index_select(query.reshape(B * NH, Lq, D), 1, plan.query_index, out=q)
    torch.index_select(key.reshape(B * NH, Lk, D), 1, plan.key_index, out=k)
    torch.index_select(value.reshape(B * NH, Lk, D), 1, plan.key_index, out=v)
    out = F.scaled_dot_product_attention(
        q.view(B * NH, n, tq, D), k.view(B * NH, n, tk, D), v.view(B * NH, n, tk, D),
        attn_mask=plan.mask.unsqueeze(0), scale=scale,
    )
    out = out.reshape(B * NH, n * tq, D).index_select(1, plan.inverse)
    return out.view(B, NH, Lq, D)
