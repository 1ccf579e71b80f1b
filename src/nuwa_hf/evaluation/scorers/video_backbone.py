"""The small 3D CNN every video scorer builds on, and the video preprocessing they share.

Full 3x3x3 convolutions from the first layer on: motion is read from frame-to-frame differences at full resolution.
(A (2+1)D factorisation with all spatial layers first was tried and stayed at chance on the motion task.) Temporal
order matters ("up then down" and "down then up" contain the same local motions), so the clip is pooled to
``time_bins`` ordered temporal cells instead of one global average; space is pooled to 2x2 cells, so where the
content is (top, bottom, left, right) survives too. A second, appearance read-out takes each frame's spatial maximum
(what is there, wherever it is) averaged over time: which digit is shown should not depend on where it has moved to.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..image_inputs import as_float_videos


def preprocess_videos(videos: Any, channels: int, frame_size: int) -> torch.Tensor:
    """Raw videos (any layout ``image_inputs`` accepts) -> float (N, channels, T, frame_size, frame_size) in [0, 1]."""
    clips = as_float_videos(videos, channels=channels)
    num_videos, num_frames = clips.shape[:2]
    frames = clips.reshape(num_videos * num_frames, *clips.shape[2:])
    if frames.shape[-2:] != (frame_size, frame_size):
        frames = F.interpolate(frames, size=(frame_size, frame_size), mode="bilinear", align_corners=False,
                               antialias=True)
    return frames.reshape(num_videos, num_frames, channels, frame_size, frame_size).permute(0, 2, 1, 3, 4).contiguous()


class VideoBackbone3D(torch.nn.Module):
    """float (N, C, T, S, S) -> (N, output_size), output_size = 2 * width * (time_bins * 4 + 1). T may be 1."""

    def __init__(self, channels: int = 1, width: int = 16, time_bins: int = 4):
        super().__init__()
        def block(inputs: int, outputs: int) -> list:
            # Batch norm: without it the digit task stayed near chance on small budgets (see DigitSetClassifier).
            return [torch.nn.Conv3d(inputs, outputs, 3, padding=1), torch.nn.BatchNorm3d(outputs), torch.nn.ReLU()]

        self.conv_layers = torch.nn.Sequential(
            *block(channels, width), torch.nn.MaxPool3d((1, 2, 2)),
            *block(width, 2 * width), torch.nn.MaxPool3d((1, 2, 2)),
            *block(2 * width, 2 * width),
        )
        self.ordered_pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool3d((time_bins, 2, 2)), torch.nn.Flatten())
        self.output_size = 2 * width * (time_bins * 4 + 1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        maps = self.conv_layers(clips)  # (N, F, T, h, w)
        appearance = maps.amax(dim=(-2, -1)).mean(dim=-1)  # (N, F)
        return torch.cat([self.ordered_pool(maps), appearance], dim=-1)
