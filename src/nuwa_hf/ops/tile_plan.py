"""Tile plans of the fused 3DNA kernel, usable without triton or a GPU: which keys each query tile visits, the
transposed lists the dK/dV kernel walks, and computed vs allowed (query, key) pairs.

The code lives in the kernel package (``kernels/nuwa_3dna/torch-ext/nuwa_3dna/_tile_plan.py``, pure torch), because
that package is published on its own and cannot import nuwa_hf; this module loads that one file by path through the
``kernel_source`` link (a wheel holds a copy), so both sides run the very same plan code.

    >>> from nuwa_hf.ops import tile_plan
    >>> tile_plan.pair_report((10, 21, 21), (10, 21, 21), (3, 3, 3), True, block_m=4, block_n=8)["ratio"]  # ~2.35
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_SOURCE = (Path(__file__).resolve().parent / "kernel_source" / "torch-ext" / "nuwa_3dna" / "_tile_plan.py").resolve()
_NAME = "nuwa_hf.ops._nuwa_3dna_tile_plan"


def _load():
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    spec = importlib.util.spec_from_file_location(_NAME, _SOURCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


_module = _load()
TilePlan = _module.TilePlan
build_tile_plan = _module.build_tile_plan
choose_tile = _module.choose_tile
halves_of = _module.halves_of
packed = _module.packed
pair_report = _module.pair_report
steps = _module.steps

__all__ = ["TilePlan", "build_tile_plan", "choose_tile", "halves_of", "packed", "pair_report", "steps"]
