"""3D Nearby Attention: the operation (``nearby_attention``), its one reference, and its backends."""

from .geometry import allowed, check_extent, check_grid, grid_size
from .nearby_attention import BACKENDS, nearby_attention, select_backend
from .reference import nearby_attention_mask, nearby_attention_reference
from .rotary import apply_rotary, rotary_3d_angles, rotary_3d_tables
from .window_gather import window_table

__all__ = [
    "BACKENDS",
    "allowed",
    "apply_rotary",
    "check_extent",
    "check_grid",
    "grid_size",
    "nearby_attention",
    "nearby_attention_mask",
    "nearby_attention_reference",
    "rotary_3d_angles",
    "rotary_3d_tables",
    "select_backend",
    "window_table",
]
