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

from ..frame_conversion import fit, over_black


def _require_av():
    try:
        import av
    except ImportError as error:  # av is an optional dependency (extra "video")
        raise ImportError("Decoding videos needs PyAV: pip install 'av>=14' (or nuwa-hf[video]).") from error
    return av


def _frame_image(frame) -> Image.Image:
    """A decoded PyAV frame -> RGB PIL image. A frame with transparency (a GIF's, decoded as bgra or pal8; yuva, ...)
    is laid over black (:func:`nuwa_hf.frame_conversion.over_black`), as the pipelines read the same file:
    ``to_image`` would show the colours kept under the transparent pixels."""
    if frame.format.name == "pal8" or any(component.is_alpha for component in frame.format.components):
        return over_black(Image.fromarray(frame.to_ndarray(format="rgba"), "RGBA"))
    return frame.to_image()  # RGB whatever the pixel format (yuv420p, rgb24, ...)


def decode_video(
    source: str | bytes | Mapping,
    *,
    num_frames: int | None = None,
    frame_stride: int = 1,
    size: tuple[int, int] | None = None,
    limits: Mapping | None = None,
    allow_fewer: bool = False,
) -> np.ndarray:
    """Decode a video into uint8 RGB frames ``(T, H, W, 3)``.

    Args:
        source: a file path, the file's bytes, or a ``datasets.Video(decode=False)`` value ``{"path", "bytes"}``
            (bytes win when both are set, as in ``datasets``).
        num_frames: keep this many frames (the first ones at ``frame_stride``); ``None`` keeps all.
        frame_stride: keep every ``frame_stride``-th decoded frame, starting with the first.
        size: ``(height, width)`` to centre-crop and resize every frame to (bicubic); ``None`` keeps the file's size.
        limits: bounds for untrusted files (``nuwa_hf.media.input_limits()``): ``max_image_pixels`` per frame (checked
            on the stream's declared size before any frame is decoded), ``max_video_frames`` and ``max_video_pixels``
            (checked before each next frame is decoded). ``None``: no bounds.
        allow_fewer: return the frames there are when the video has fewer than ``num_frames``.

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
                kinds = sorted({stream.type for stream in container.streams}) or ["no streams at all"]
                raise ValueError(f"{name} has no video stream (it holds: {', '.join(kinds)}): give a file with "
                                 "video, e.g. a GIF or an MP4 with an H.264 video track.")
            width, height = _declared_size(container.streams.video[0])
            if limits and width * height > limits["max_image_pixels"]:
                raise ValueError(
                    f"{name} declares frames of {width}x{height} pixels, past the limit of "
                    f"{limits['max_image_pixels'] / 1e6:.0f} megapixels per frame: resize the video first, or raise "
                    "the limit with NUWA_HF_MAX_IMAGE_PIXELS. Nothing was decoded."
                )
            for position, frame in enumerate(container.decode(video=0)):
                if position % frame_stride:
                    continue
                if limits:
                    _check_video_budget(name, len(frames), frame.width, frame.height, limits)
                image = _frame_image(frame)
                if size is not None:
                    image = fit(image, size, Image.Resampling.BICUBIC)
                frames.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
                if num_frames is not None and len(frames) == num_frames:
                    break
    except av.error.FFmpegError as error:
        raise ValueError(f"Cannot decode video {name}: {error}. Check that it is a whole, playable video file (GIF, "
                         "MP4, WebM, ...); a truncated or renamed file cannot be read.") from None
    if not frames or (num_frames is not None and len(frames) < num_frames and not allow_fewer):
        raise ValueError(f"{name} gives {len(frames)} frame(s) at frame_stride={frame_stride}; "
                         f"{num_frames or 1} needed. Lower num_frames/frame_stride or drop this video.")
    return np.stack(frames)


def _declared_size(stream) -> tuple[int, int]:
    """The frame size a video stream declares in its header (0 x 0 when it declares none)."""
    context = stream.codec_context
    return int(getattr(context, "width", 0) or 0), int(getattr(context, "height", 0) or 0)


def _check_video_budget(name: str, count: int, width: int, height: int, limits: Mapping) -> None:
    """Before decoding frame ``count + 1``: refuse past ``max_video_frames`` frames or ``max_video_pixels`` in all."""
    if width * height > limits["max_image_pixels"]:
        raise ValueError(f"{name} has frames of {width}x{height} pixels, past the limit of "
                         f"{limits['max_image_pixels'] / 1e6:.0f} megapixels per frame: resize the video first, or "
                         "raise the limit with NUWA_HF_MAX_IMAGE_PIXELS.")
    if count >= limits["max_video_frames"]:
        raise ValueError(f"{name} has more than {limits['max_video_frames']} frames, the limit for one input video: "
                         "keep only the frames you need, or raise the limit with NUWA_HF_MAX_VIDEO_FRAMES. Only the "
                         "first frames were decoded.")
    if (count + 1) * width * height > limits["max_video_pixels"]:
        raise ValueError(f"{name} holds more than {count} frames of {width}x{height} pixels, past the limit of "
                         f"{limits['max_video_pixels'] / 1e6:.0f} megapixels for one input video: use fewer or "
                         "smaller frames, or raise the limit with NUWA_HF_MAX_VIDEO_PIXELS.")
