"""3D rotary position embeddings (RoPE over the three axes of a grid), an option of NUWA's self-attention.

Why: with only absolute position tables, "attend to the token one frame back, shifted by (dy, dx)" (what a moving
object needs) must be learned separately for every absolute position. Rotating queries and keys by their
coordinates makes a query-key score depend on the *offset* between them (Su et al. 2021, RoFormer), the way
relative-position biases do in NATTEN and Swin, and video transformers apply it per axis. Because it only rotates q
and k before attention, every 3DNA backend (reference, tiles, window gather, the Triton kernel), the KV cache (it
stores rotated keys) and the fast decoding step compute the same thing without any change of their own.

Layout ("rotate half", as transformers' Llama): a head of ``head_dim`` channels has ``head_dim // 2`` rotation pairs
``(i, i + head_dim // 2)``. The pairs are split between the axes, height and width ``pairs // 3`` each and time the
rest; an axis with ``k`` pairs rotates pair ``j`` by ``coordinate * base ** (-j / k)``.
"""

from __future__ import annotations

import functools
from typing import Tuple

import torch

Grid = Tuple[int, int, int]


def rotary_axis_pairs(head_dim: int) -> Tuple[int, int, int]:
    """How many rotation pairs of a head each axis (t, h, w) gets. Raises for heads too small to give every axis one."""
    if head_dim % 2 or head_dim < 6:
        raise ValueError(
            f"3D rotary embeddings need an even head_dim of at least 6 (one rotation pair per axis), got {head_dim}: "
            "change hidden_size / num_attention_heads or set rope_3d=False."
        )
    pairs = head_dim // 2
    spatial = pairs // 3
    return pairs - 2 * spatial, spatial, spatial


def rotary_3d_angles(grid: Grid, head_dim: int, base: float, device) -> torch.Tensor:
    """(T*H*W, head_dim // 2) rotation angles of every raster position of ``grid``."""
    _, height, width = grid
    index = torch.arange(grid[0] * grid[1] * grid[2], device=device)
    coordinates = (index // (height * width), (index // width) % height, index % width)
    parts = []
    for coordinate, pairs in zip(coordinates, rotary_axis_pairs(head_dim)):
        inverse_frequency = base ** (-torch.arange(pairs, device=device, dtype=torch.float64) / pairs)
        parts.append(coordinate.to(torch.float64)[:, None] * inverse_frequency[None, :])
    return torch.cat(parts, dim=1)


@functools.lru_cache(maxsize=64)
def _tables(grid: Grid, head_dim: int, base: float, device, dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    # Cached, never an inference tensor (pipelines run in inference_mode; training would refuse one later).
    with torch.inference_mode(False):
        angles = rotary_3d_angles(grid, head_dim, base, device)
        angles = torch.cat([angles, angles], dim=1)
        return angles.cos().to(dtype), angles.sin().to(dtype)


def rotary_3d_tables(grid: Grid, head_dim: int, base: float, *, device=None, dtype=torch.float32
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)``, each ``(T*H*W, head_dim)``: the rotation of every raster position of ``grid`` (cached)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    return _tables(tuple(int(v) for v in grid), int(head_dim), float(base), device, dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (..., L, head_dim) by the rows ``cos``/``sin`` (L, head_dim) of its positions."""
    half = x.shape[-1] // 2
    rotated_half = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated_half * sin
