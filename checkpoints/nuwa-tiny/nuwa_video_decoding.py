"""Decoding video files (MP4, AVI, MKV, WebM, GIF, ...) into uint8 frame arrays with PyAV.

``datasets``' own ``Video`` feature decodes with torchcodec, which does not load beside the CPU torch used here, so
the loaders keep the column as ``Video(decode=False)`` (``{"path": ..., "bytes": ...}``) and decode with this module.
PyAV bundles FFmpeg (``pip install av``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
from PIL import Image

from .nuwa_frame_resizing import fit


def _require_av():
    try:
        import av
    except ImportError as error:  # av is an optional dependency (extra "video")
        raise ImportError("Decoding videos needs PyAV: pip install 'av>=14' (or nuwa-hf[video]).") from error
    return av


def decode_video(
    source: str | bytes | Mapping,
    *,
    num_frames: int | None = None,
    frame_stride: int = 1,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode a video into uint8 RGB frames ``(T, H, W, 3)``.

    Args:
        source: a file path, the file's bytes, or a ``datasets.Video(decode=False)`` value ``{"path", "bytes"}``
            (bytes win when both are set, as in ``datasets``).
        num_frames: keep this many frames (the first ones at ``frame_stride``); ``None`` keeps all.
        frame_stride: keep every ``frame_stride``-th decoded frame, starting with the first.
        size: ``(height, width)`` to centre-crop and resize every frame to (bicubic); ``None`` keeps the file's size.

    Raises:
        ValueError: the file cannot be decoded, has no video stream, or has fewer than ``num_frames`` frames.
    """
    av = _require_av()
    if isinstance(source, Mapping):
        name = source.get("path") or "<bytes>"
        source = source["bytes"] if source.get("bytes") is not None else source.get("path")
        if source is None:
            raise ValueError("A video value needs 'path' or 'bytes'.")
    else:
        name = source if isinstance(source, str) else "<bytes>"
    if frame_stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {frame_stride}.")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 or None, got {num_frames}.")
    frames: list[np.ndarray] = []
    try:
        with av.open(io.BytesIO(source) if isinstance(source, bytes) else source) as container:
            if not container.streams.video:
                raise ValueError(f"{name} has no video stream.")
            for position, frame in enumerate(container.decode(video=0)):
                if position % frame_stride:
                    continue
                image = frame.to_image()  # RGB PIL image whatever the pixel format (yuv420p, pal8 for GIF, ...)
                if size is not None:
                    image = fit(image, size, Image.Resampling.BICUBIC)
                frames.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
                if num_frames is not None and len(frames) == num_frames:
                    break
    except av.error.FFmpegError as error:
        raise ValueError(f"Cannot decode video {name}: {error}") from error
    if not frames or (num_frames is not None and len(frames) < num_frames):
        raise ValueError(f"{name} gives {len(frames)} frame(s) at frame_stride={frame_stride}; "
                         f"{num_frames or 1} needed. Lower num_frames/frame_stride or drop this video.")
    return np.stack(frames)
