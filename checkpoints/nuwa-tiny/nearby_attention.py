"""``nearby_attention``: the public 3D Nearby Attention (3DNA) operation and its backend dispatch.

One meaning (``reference``), several ways to compute it, each tested against the reference:

========================  =====================================================================================
backend                   when ``backend="auto"`` picks it
========================  =====================================================================================
``"triton"``              CUDA tensors, when the fused kernel from ``kernels/nuwa_3dna`` can be loaded
``"window_gather"``       a few queries (``query_offset`` given, at most 64): KV-cached decoding steps
``"block_sparse"``        everything else that needs gradients (training): tiles + autograd
``"cpu_inference"``       everything else without gradients: the same tiles in reused buffers, no autograd
``"reference"``           never automatically; dense mask, the definition
========================  =====================================================================================
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import torch

from .block_sparse import nearby_attention_block_sparse
from .cpu_inference import nearby_attention_cpu_inference
from .geometry import Grid, check_attention_inputs, check_extent, check_grid
from .reference import nearby_attention_reference
from .window_gather import nearby_attention_window_gather

DECODE_MAX_QUERIES = 64


def _triton_backend(query, key, value, **kwargs):
    # Imported lazily: triton is an optional dependency and only useful on GPUs.
    from .gpu_kernel import nearby_attention_triton

    return nearby_attention_triton(query, key, value, **kwargs)


BACKENDS: Dict[str, Callable[..., torch.Tensor]] = {
    "reference": nearby_attention_reference,
    "block_sparse": nearby_attention_block_sparse,
    "cpu_inference": nearby_attention_cpu_inference,
    "window_gather": nearby_attention_window_gather,
    "triton": _triton_backend,
}


def _gpu_kernel_available(query: torch.Tensor) -> bool:
    if not query.is_cuda:
        return False
    try:
        from .gpu_kernel import kernel_available
    except ImportError:
        return False
    return kernel_available()


def select_backend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, query_offset: Optional[int]) -> str:
    """The backend ``backend="auto"`` uses for these inputs (see the module docstring)."""
    if _gpu_kernel_available(query):
        return "triton"
    if query_offset is not None and query.shape[2] <= DECODE_MAX_QUERIES:
        return "window_gather"
    needs_grad = torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)
    return "block_sparse" if needs_grad else "cpu_inference"


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
    backend: str = "auto",
    query_offset: Optional[int] = None,
) -> torch.Tensor:
    """3D Nearby Attention (NUWA, eq. 6-11): each query attends to the keys in a 3D window around its position.

    Args:
        query: ``(batch, heads, Lq, head_dim)``; ``Lq = T*H*W`` of ``query_grid`` in raster order
            ``index = (t*H + h)*W + w`` (or a slice of it, see ``query_offset``).
        key, value: ``(batch, heads, Lk, head_dim)``; ``Lk = T'*H'*W'`` of ``key_grid``. With ``causal=True`` the
            keys may be a prefix of the grid (a KV cache) that reaches at least the last query.
        query_grid: ``(T, H, W)`` = (frames, height, width). Text is ``(length, 1, 1)``, an image ``(1, H, W)``.
        key_grid: ``(T', H', W')``. A query at ``(t, h, w)`` is centred at
            ``(floor(t*T'/T), floor(h*H'/H), floor(w*W'/W))`` of the key grid.
        extent: ``(e_t, e_h, e_w)`` odd window sizes, ``None`` for the whole axis. Cut off at the borders.
        causal: additionally ``key index <= query index`` (self-attention only).
        scale: softmax scale, default ``head_dim ** -0.5``.
        backend: ``"auto"`` or one of :data:`BACKENDS`.
        query_offset: raster index of the first query when ``query`` holds only a slice of the grid
            (KV-cached decoding); ``None`` means the whole grid.

    Returns:
        ``(batch, heads, Lq, head_dim)``, differentiable in query, key and value (all backends but
        ``"cpu_inference"``, which is forward-only).

    Example:
        >>> q = k = v = torch.randn(1, 4, 4 * 8 * 8, 64)
        >>> out = nearby_attention(q, k, v, query_grid=(4, 8, 8), key_grid=(4, 8, 8), extent=(3, 3, 3), causal=True)
        >>> out.shape
        torch.Size([1, 4, 256, 64])
    """
    query_grid: Grid = check_grid("query_grid", query_grid)
    key_grid: Grid = check_grid("key_grid", key_grid)
    extent = check_extent(extent)
    check_attention_inputs(query, key, value, query_grid, key_grid, extent, bool(causal), query_offset)
    if backend == "auto":
        backend = select_backend(query, key, value, query_offset)
    fn = BACKENDS.get(backend)
    if fn is None:
        raise ValueError(f"unknown 3DNA backend {backend!r}; choose 'auto' or one of {sorted(BACKENDS)}.")
    if backend == "cpu_inference" and torch.is_grad_enabled() and (
        query.requires_grad or key.requires_grad or value.requires_grad
    ):
        raise ValueError(
            "backend='cpu_inference' is forward-only and these inputs require gradients; use backend='block_sparse' "
            "(or 'auto') for training."
        )
    return fn(
        query, key, value, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=bool(causal),
        scale=scale, query_offset=query_offset,
    )
