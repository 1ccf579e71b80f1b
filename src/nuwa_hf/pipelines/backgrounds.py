"""Is an input picture on a light background? The shipped model was trained on light (coloured) digits on a BLACK
background; a picture drawn the other way round (a scan or photo of handwriting: dark ink on white paper) is read as
something it never saw, and image completion / manipulation and video prediction / manipulation then return
something meaningless (benchmarks/bench_light_background.py measures it). The pipelines say so
(:func:`~nuwa_hf.pipelines.notices.light_background_notice`) instead of returning it in silence.

The rule, on the picture as the model reads it (the processor's ``pixel_values``, after its resize and crop): the
*border brightness* is the median, over the picture's border ring (``BORDER`` of its side, at least one pixel wide),
of each pixel's grey level (the mean of its channels), in [0, 1]. A picture is on a light background when it is at
least ``LIGHT_BORDER`` (0.6: white or off-white paper is 0.9 and more; a picture of random noise, which has no
background, is about 0.5 and not flagged). The training pictures' borders are black (the digits sit inside the
frame; a moving digit that touches the edge covers a few border pixels, not half of them): on held-out pictures of
the training worlds the border brightness is 0.0 (benchmarks/README.md, "Light-background pictures"), so the rule
is far from firing on them. The region an image completion regenerates is left out of the ring (what lies there is
not read).
"""

from __future__ import annotations

from typing import Optional

import torch


BORDER = 1 / 16  # the ring's width, as a share of the picture's side (at least 1 pixel)
LIGHT_BORDER = 0.6  # the border brightness at and above which a picture is on a light background


def border_brightness(pixel_values: torch.Tensor, ignore: Optional[torch.Tensor] = None) -> float:
    """The median over the border ring of one picture of each pixel's grey level (the mean of its channels), in
    [0, 1] (0 = black).

    Args:
        pixel_values: ``(3, H, W)`` in [-1, 1] (the processor's output for one picture or frame).
        ignore: ``(H, W)`` bool, pixels left out of the ring (True = ignored: the region a completion regenerates),
            or None.

    Returns the border brightness; 0.0 when every border pixel is ignored.
    """
    if pixel_values.dim() != 3 or pixel_values.shape[0] != 3:
        raise ValueError(f"border_brightness takes one picture (3, H, W), got shape {tuple(pixel_values.shape)}.")
    height, width = pixel_values.shape[-2:]
    ring = max(1, round(min(height, width) * BORDER))
    border = torch.ones(height, width, dtype=torch.bool)
    border[ring:height - ring, ring:width - ring] = False
    if ignore is not None:
        border &= ~ignore.to(torch.bool).cpu()
    if not bool(border.any()):
        return 0.0
    brightness = (pixel_values.detach().float().cpu().mean(dim=0) + 1.0) / 2.0  # (H, W) in [0, 1]
    return float(brightness[border].median())


def is_light_background(pixel_values: torch.Tensor, ignore: Optional[torch.Tensor] = None) -> bool:
    """Whether one picture ``(3, H, W)`` in [-1, 1] is on a light background: its :func:`border_brightness`
    (``ignore``: ``(H, W)`` bool pixels left out) is at least ``LIGHT_BORDER``."""
    return border_brightness(pixel_values, ignore) >= LIGHT_BORDER
