"""nuwa_3dna: fused 3D Nearby Attention (NUWA, Wu et al. 2021) for NVIDIA GPUs, written in Triton.

Forward and backward are flash-style (online softmax, no score matrix in memory) and visit only the keys that the
3D windows of a tile of queries can reach, so their work grows with the window, not with the sequence length.

    >>> import nuwa_3dna
    >>> out = nuwa_3dna.nearby_attention(q, k, v, query_grid=(10, 21, 21), key_grid=(10, 21, 21),
    ...                                  extent=(3, 3, 3), causal=True)

See README.md of the kernel source for the design and the roofline.
"""

from ._attention import (
    MAX_HEAD_DIM,
    SUPPORTED_DTYPES,
    LaunchConfig,
    NearbyAttentionFunction,
    Work,
    choose_tile,
    default_launch_config,
    is_interpreted,
    make_plan,
    nearby_attention,
    work,
)

__version__ = "0.1.0"

__all__ = [
    "MAX_HEAD_DIM",
    "SUPPORTED_DTYPES",
    "LaunchConfig",
    "NearbyAttentionFunction",
    "Work",
    "choose_tile",
    "default_launch_config",
    "is_interpreted",
    "make_plan",
    "nearby_attention",
    "work",
]
