"""The attention NUWA trains with: the same 3D nearby attention (3DNA), computed the fastest exact way for each grid.

The model's own ``"nuwa_3dna"`` implementation runs the tiled 3DNA kernels, which pay off on large grids (a 10x21x21
video attends to 27 of 4,410 keys). On the small grids CPU training uses (8x8 images, 4x8x8 videos, 24-token prompts)
the windows cover much of the grid, and the profile of a default-recipe step put 40% of the backward pass in the tiled
kernel's backward. ``"nuwa_3dna_train"`` keeps the exact 3DNA neighbourhood (the one definition,
:func:`nuwa_hf.ops.geometry.allowed`) and picks per attention call, from a plan cached per geometry:

- ``full``: every query sees every key (e.g. text keys, a whole-grid non-causal window) -> torch's SDPA, no mask;
- ``causal``: exactly the lower triangle (a whole-grid causal window, the default recipe's video extent) -> SDPA with
  ``is_causal=True`` (its CPU flash kernel skips the masked blocks);
- ``dense``: a small grid (at most :data:`DENSE_LIMIT` query-key pairs) or a window covering at least a quarter of
  the keys -> SDPA with the cached boolean mask (Lq, Lk);
- ``sparse``: anything else -> the model's tiled ``"nuwa_3dna"``.

The values are those of ``"nuwa_3dna"`` up to float rounding (tests/training/test_fast_training.py). It is a
training-time choice: :class:`~nuwa_hf.training.NuwaTrainer` switches a model that uses ``"nuwa_3dna"`` to it for
``train()`` and back afterwards, so saved models keep their default.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Optional, Tuple

import torch
from torch import nn
from transformers import AttentionInterface

from ..models.nuwa.modeling_nuwa import nuwa_3dna_attention_forward, sdpa_attention_forward
from ..ops.geometry import allowed

TRAINING_ATTENTION = "nuwa_3dna_train"
# Query-key pairs up to which a dense mask beats the tiled kernel on a CPU (measured: 256 x 256 video self- and
# cross-attention with 3x3x3 windows, 8% of the pairs allowed, ran 1.2-1.5x faster through SDPA with a mask).
DENSE_LIMIT = 256 * 256
DENSE_FRACTION = 0.25


@functools.lru_cache(maxsize=512)
def attention_plan(
    query_grid: Tuple[int, int, int], key_grid: Tuple[int, int, int], extent: tuple, causal: bool, query_offset: int,
    num_queries: int, num_keys: int,
) -> Tuple[str, Optional[torch.Tensor]]:
    """("full" | "causal" | "dense" | "sparse", the (Lq, Lk) boolean mask for "dense") for one attention geometry."""
    q_index = torch.arange(query_offset, query_offset + num_queries)
    k_index = torch.arange(num_keys)
    mask = allowed(q_index[:, None], k_index[None, :], query_grid, key_grid, extent, causal)
    if not bool(mask.any(dim=1).all()):
        return "sparse", None  # a query without any key: leave that edge case to the reference kernels
    if bool(mask.all()):
        return "full", None
    if num_queries == num_keys and query_offset == 0 and torch.equal(mask, torch.ones_like(mask).tril()):
        return "causal", None
    if mask.numel() <= DENSE_LIMIT or mask.float().mean().item() >= DENSE_FRACTION:
        return "dense", mask
    return "sparse", None


def training_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    scaling: Optional[float] = None,
    dropout: float = 0.0,
    *,
    query_grid,
    key_grid,
    extent,
    causal: bool,
    query_offset: Optional[int] = None,
    **kwargs,
):
    """``"nuwa_3dna_train"``: q/k/v (B, heads, L, head_dim) -> (B, Lq, heads, head_dim), see the module docstring."""
    grids = dict(query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, query_offset=query_offset)
    if torch.compiler.is_compiling():
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling, dropout, **grids)
    kind, mask = attention_plan(
        tuple(int(g) for g in query_grid), tuple(int(g) for g in key_grid),
        tuple(None if e is None else int(e) for e in extent), bool(causal), int(query_offset or 0),
        int(query.shape[2]), int(key.shape[2]),
    )
    if kind == "sparse":
        return nuwa_3dna_attention_forward(module, query, key, value, attention_mask, scaling, dropout, **grids)
    if kind == "dense" and mask.device != query.device:
        mask = mask.to(query.device)
    dtype = query.dtype
    cpu_autocast = query.device.type == "cpu" and torch.is_autocast_enabled("cpu")
    if cpu_autocast:
        # Under CPU bf16 autocast the linear layers gain 3x, but torch's CPU flash attention runs its bf16 backward
        # 2x SLOWER than fp32 (measured: 256-token causal video, head dim 32): attention stays in fp32 here.
        query, key, value = query.float(), key.float(), value.float()
    with torch.autocast("cpu", enabled=False) if cpu_autocast else contextlib.nullcontext():
        out = nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=mask if kind == "dense" else None, dropout_p=dropout, scale=scaling,
            is_causal=kind == "causal",
        )
    return out.to(dtype).transpose(1, 2).contiguous(), None


AttentionInterface.register(TRAINING_ATTENTION, training_attention_forward)
