"""Images and videos in and out of nuwa-hf: PNG, GIF (Pillow), MP4 (PyAV when installed), sketches as class maps.

Writing is atomic: every file is written to a temporary file in the destination folder, then moved onto its name with
``os.replace``, so a reader never sees half a file, even when the writer is killed midway.

    >>> from nuwa_hf.media import save_image, save_video, load_video
    >>> save_image(image, "out/cat.png")
    >>> save_video(frames, "out/clip.gif", fps=4)          # .gif through Pillow
    >>> save_video(frames, "out/clip.mp4", fps=4)          # .mp4 through PyAV (pip install av)
    >>> frames = load_video("clip.mp4")                    # list of RGB PIL images (GIF, MP4, AVI, a folder of PNGs)

Conditions:

- images: a path or a PIL image or an array ``(H, W[, C])`` -> RGB ``PIL.Image``;
- videos: a file (GIF through Pillow; MP4 / AVI / MKV / WebM through PyAV), a folder of frame images (sorted by name),
  a ``.npy`` array ``(T, H, W[, 3])``, a list of frames, or an array -> list of RGB ``PIL.Image``;
- sketches (segmentation maps): class-index maps. A PNG/GIF in mode ``L``/``P``/``I`` whose pixel values are class ids,
  a ``.npy`` integer array, or an array ``(H, W)`` -> ``np.int64 (H, W)``; video sketches: a GIF of such maps (grey
  levels or one shared palette; :func:`_gif_class_maps`), a ``.npy`` ``(T, H, W)`` array, a folder of maps or a
  list -> ``np.int64 (T, H, W)``.

Files are untrusted (uploads to a public Space): their size on disk, the pixels they declare and the frames they hold
are checked against :func:`input_limits` before they are decoded (``NUWA_HF_MAX_INPUT_MB``, ``..._IMAGE_PIXELS``,
``..._VIDEO_FRAMES``, ``..._VIDEO_PIXELS``), video frames are read only as far as needed, and truncated, damaged or
renamed files raise a ValueError saying what they hold. See docs/reliability.md.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union

import numpy as np
import PIL.Image

from .frame_conversion import over_black
from .file_io import atomic_output

PathLike = Union[str, os.PathLike]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
PYAV_VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
VIDEO_SUFFIXES = (".gif",) + PYAV_VIDEO_SUFFIXES
SKETCH_IMAGE_MODES = ("L", "P", "I", "I;16", "1")

# Bounds on what one input file may cost, checked before its pixels are decoded (uploads are untrusted: a PNG of a few
# KB can decode to gigapixels, a GIF can hold 100,000 frames). Each can be raised with its environment variable.
MAX_INPUT_MB = 100              # NUWA_HF_MAX_INPUT_MB: the size of one input file on disk
MAX_IMAGE_PIXELS = 40_000_000   # NUWA_HF_MAX_IMAGE_PIXELS: width x height of one image or video frame (e.g. 8000x5000)
MAX_VIDEO_FRAMES = 1000         # NUWA_HF_MAX_VIDEO_FRAMES: frames of one input video
MAX_VIDEO_PIXELS = 150_000_000  # NUWA_HF_MAX_VIDEO_PIXELS: frames x width x height of one video (450 MB as RGB)


class InputLimitError(ValueError):
    """An input file is past one of the bounds above (size on disk, pixels, frames); the message names the bound and
    the environment variable that raises it."""


def input_limits() -> dict[str, int]:
    """The bounds in force: the module's defaults, overridden by the ``NUWA_HF_MAX_*`` environment variables."""
    limits = {"max_input_mb": MAX_INPUT_MB, "max_image_pixels": MAX_IMAGE_PIXELS,
              "max_video_frames": MAX_VIDEO_FRAMES, "max_video_pixels": MAX_VIDEO_PIXELS}
    for key in limits:
        variable = "NUWA_HF_" + key.upper()
        value = os.environ.get(variable)
        if value:
            try:
                limits[key] = max(int(float(value)), 1)
            except ValueError:
                raise ValueError(f"${variable}={value!r} is not a number; unset it or give a positive integer.") \
                    from None
    return limits


def _check_file_size(path: Path, what: str) -> None:
    """Refuse a file larger than ``max_input_mb`` before reading any of it."""
    limit = input_limits()["max_input_mb"]
    size = path.stat().st_size
    if size > limit * 2**20:
        raise InputLimitError(
            f"The {what} file {path.name!r} is {size / 2**20:.0f} MB, past the limit of {limit} MB for one input: "
            f"give a smaller file (fewer or smaller frames), or raise the limit with NUWA_HF_MAX_INPUT_MB."
        )


def _check_pixels(width: int, height: int, name: str) -> None:
    limit = input_limits()["max_image_pixels"]
    if width * height > limit:
        raise InputLimitError(
            f"{name!r} declares {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), past the limit of "
            f"{limit / 1e6:.0f} megapixels per image or frame (a small file that declares this many may be a "
            "decompression bomb): resize it to a few megapixels first, or raise the limit with "
            "NUWA_HF_MAX_IMAGE_PIXELS. Nothing was decoded."
        )


_MAGIC = ((b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"), (b"%PDF", "a PDF document"),
          (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"\x93NUMPY", "a .npy array"), (b"RIFF", "a RIFF file (WebP / AVI / WAV)"), (b"\x1aE\xdf\xa3", "a Matroska/WebM video"))


def _content_of(path: Path) -> str:
    """What the first bytes of ``path`` say it holds, for messages about files whose name does not match."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return "unreadable"
    if not head:
        return "empty (0 bytes)"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp":
        return "an MP4/MOV video"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "not a known image or video format"


def _unreadable(path: Path, what: str, reason: str | None = None) -> ValueError:
    content = _content_of(path)
    kind = {"image": "an image (PNG, JPEG, BMP, WebP, GIF, ...)", "sketch": "a sketch (a PNG in mode L/P, or .npy)",
            "video": "a video (GIF, MP4, WebM, ...)"}.get(what, what)
    if reason:  # the format was recognised but the data is damaged
        return ValueError(f"{str(path)!r} could not be decoded as {kind}: it is truncated or damaged ({reason}). "
                          "Export or copy the whole file again.")
    return ValueError(f"{str(path)!r} is not {kind} Pillow can read: its content is {content}"
                      f"{' (the file name does not match what it holds)' if content != 'text' or path.suffix else ''}. "
                      f"Give {kind}.")


@contextmanager
def _open_image(path: Path, what: str) -> Iterator[PIL.Image.Image]:
    """``PIL.Image.open`` for untrusted files: the size on disk and the declared pixels are checked before any pixel is
    decoded; unreadable, renamed, truncated or damaged files raise a ValueError naming the problem."""
    _check_file_size(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # our own, lower bound applies
            opened = PIL.Image.open(path)
    except PIL.Image.DecompressionBombError as error:
        numbers = re.findall(r"\((\d+) pixels\)", str(error))
        pixels = int(numbers[0]) if numbers else 0
        raise InputLimitError(
            f"{str(path)!r} declares {pixels / 1e6:.0f} megapixels, past the limit of "
            f"{input_limits()['max_image_pixels'] / 1e6:.0f} megapixels per image (a decompression bomb?): resize it "
            "to a few megapixels first, or raise the limit with NUWA_HF_MAX_IMAGE_PIXELS. Nothing was decoded."
        ) from None
    except PIL.UnidentifiedImageError:
        raise _unreadable(path, what) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise _unreadable(path, what, str(error) or type(error).__name__) from None
    with opened:
        _check_pixels(*opened.size, path.name)
        try:
            yield opened
        except (OSError, SyntaxError, EOFError) as error:  # truncated data, broken chunks
            raise _unreadable(path, what, str(error) or type(error).__name__) from None


def is_grey(rgb: np.ndarray) -> bool:
    """Whether every pixel (or palette entry) of ``rgb`` ``(..., 3)`` has its three channels equal: a black-and-white
    mask or a map of grey levels saved in colour."""
    return bool((rgb == rgb[..., :1]).all())


def has_alpha(image: PIL.Image.Image) -> bool:
    """Whether a picture has transparency: an alpha channel, or a palette / grey / RGB image with a transparent
    colour."""
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode in ("P", "L", "RGB") and "transparency" in image.info)


def _decoded_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """Any Pillow mode -> RGB: transparency laid over black (:func:`over_black`), 16-bit and 32-bit grey scaled to
    0..255 (not clipped), CMYK, YCbCr, LAB, palette converted."""
    if image.mode == "RGB":
        return image.convert("RGB")  # a loaded copy, independent of the file
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        array = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            array = array * 255.0 if array.size and np.nanmax(array) <= 1.0 else array
        elif image.mode.startswith("I;16") or (array.size and array.max() > 255):
            array = array / 257.0  # 16-bit depth: 65535 -> 255
        array = np.nan_to_num(array, nan=0.0)
        return PIL.Image.fromarray(np.clip(array, 0, 255).round().astype(np.uint8)).convert("RGB")
    if has_alpha(image):
        return over_black(image)
    if image.mode == "LAB":
        from PIL import ImageCms

        return ImageCms.applyTransform(image, ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"))
    return image.convert("RGB")


# --------------------------------------------------------------------------------------------------------------------
# Converting what users hand us


def to_pil_image(image: Any, what: str = "image") -> PIL.Image.Image:
    """A PIL image, an array ``(H, W)``, ``(H, W, 3|4)`` or ``(3|4, H, W)`` (uint8, or floats in [0, 1]) -> RGB PIL
    (transparency laid over black: :func:`over_black`).

    Raises:
        TypeError / ValueError naming ``what`` when the input is not an image.
    """
    if isinstance(image, PIL.Image.Image):
        if has_alpha(image):
            return over_black(image)
        return image.convert("RGB") if image.mode != "RGB" else image
    if _is_tensor(image):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"The {what} must be a PIL image, a numpy array or a torch tensor, got {type(image).__name__}."
        )
    array = image
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            f"The {what} has shape {array.shape}; an image is (H, W), (H, W, 3) or (H, W, 4) (channels last or first)."
        )
    if array.size == 0:
        raise ValueError(f"The {what} is empty (shape {array.shape}): give an image with at least one pixel.")
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"The {what} has dtype {array.dtype}; image pixels are uint8 in [0, 255], floats in [0, 1] or booleans."
        )
    if array.dtype.kind in "iu" and (array.min() < 0 or array.max() > 255):
        raise ValueError(
            f"The {what} holds integer pixels in [{array.min()}, {array.max()}], outside 0..255: scale it to 0..255 "
            "(e.g. 16-bit images: `array // 257`) or to floats in [0, 1]; values are never clipped in silence."
        )
    if np.issubdtype(array.dtype, np.floating):
        _require_finite(array, what)
        if array.size and (array.min() < -1e-3 or array.max() > 1 + 1e-3):
            raise ValueError(
                f"The {what} is a float array with values in [{array.min():.3g}, {array.max():.3g}]; float images must "
                "lie in [0, 1] (or pass uint8 pixels in [0, 255])."
            )
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    else:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 4:  # RGBA: transparency over black, as for pictures
        return over_black(PIL.Image.fromarray(array, mode="RGBA"))
    return PIL.Image.fromarray(array).convert("RGB")


def _require_finite(array: np.ndarray, what: str) -> None:
    """NaN or infinite values are an error (they would silently become black pixels or class 0)."""
    finite = np.isfinite(array)
    if not finite.all():
        bad = int(array.size - finite.sum())
        raise ValueError(
            f"The {what} holds {bad} NaN or infinite value(s) out of {array.size}: fix or replace them (e.g. "
            "np.nan_to_num) before passing it; they would otherwise silently become black pixels."
        )


def _is_tensor(value: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of the package
        return False
    return isinstance(value, torch.Tensor)


def _as_path(value: Any) -> Path | None:
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if not text.strip():
            raise ValueError("Got an empty path: give the file to read.")
        if isinstance(text, str) and text.strip().lower().startswith(("http://", "https://")):
            # Path() would fold '//' and the error would name a file 'http:/...' that does not exist
            raise ValueError(
                f"{text.strip()!r} is a URL; nuwa-hf reads local files and in-memory inputs only (no downloads): "
                "download it first (e.g. `PIL.Image.open(io.BytesIO(requests.get(url).content))`) and pass the "
                "saved file or what you decoded from it."
            )
        return Path(value)
    return None


def _require_file(path: Path, what: str) -> None:
    _require_existing(path, what)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not an {what} file: give the file itself." if what[0] in "aeiou"
                         else f"{str(path)!r} is a folder, not a {what} file: give the file itself.")


def _require_existing(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"The {what} file {str(path)!r} does not exist; check the path.")


# --------------------------------------------------------------------------------------------------------------------
# Reading conditions


def load_image(source: Any) -> PIL.Image.Image:
    """Read an image condition: a path (PNG, JPEG, ... the first frame of a GIF) or an in-memory image -> RGB PIL."""
    path = _as_path(source)
    if path is None:
        return to_pil_image(source)
    _require_file(path, "image")
    with _open_image(path, "image") as opened:
        return _decoded_rgb(opened)


def _gif_frames(path: Path, mode: str | None = "RGB", num_frames: int | None = None,
                what: str = "video") -> list[PIL.Image.Image]:
    """The frames of a GIF (or any multi-frame image), read one at a time and only as many as needed: at most
    ``num_frames``; past ``max_video_frames`` frames or ``max_video_pixels`` pixels in all the file is refused before
    the next frame is decoded (a GIF may declare 100,000 frames or a huge screen in a few KB)."""
    from PIL import ImageSequence

    limits = input_limits()
    frames: list[PIL.Image.Image] = []
    with _open_image(path, what) as gif:
        width, height = gif.size
        for index, frame in enumerate(ImageSequence.Iterator(gif)):
            if num_frames is not None and index >= num_frames:
                break
            if index >= limits["max_video_frames"]:
                raise InputLimitError(
                    f"{path.name!r} has more than {limits['max_video_frames']} frames, the limit for one input video: "
                    "keep only the frames you need (e.g. the first seconds), or raise the limit with "
                    "NUWA_HF_MAX_VIDEO_FRAMES. Only the first frames were decoded."
                )
            if (index + 1) * width * height > limits["max_video_pixels"]:
                raise InputLimitError(
                    f"{path.name!r} holds more than {index} frames of {width}x{height} pixels, past the limit of "
                    f"{limits['max_video_pixels'] / 1e6:.0f} megapixels for one input video: use fewer or smaller "
                    "frames, or raise the limit with NUWA_HF_MAX_VIDEO_PIXELS."
                )
            frames.append(_decoded_rgb(frame) if mode == "RGB" else frame.convert(mode) if mode else frame.copy())
    return frames


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + (".gif",) and p.is_file())
    limit = input_limits()["max_video_frames"]
    if len(files) > limit:
        raise InputLimitError(
            f"The folder {folder.name!r} holds {len(files)} frame images, past the limit of {limit} frames for one "
            "input video: keep only the frames you need, or raise the limit with NUWA_HF_MAX_VIDEO_FRAMES."
        )
    return files


def _load_npy(path: Path, what: str) -> np.ndarray:
    """A ``.npy`` array (never pickles), its file size checked first."""
    _check_file_size(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise ValueError(f"{path.name!r} holds Python objects (pickled), which are never loaded: save a numeric "
                             "array (np.save with an integer or uint8 array).") from None
        raise ValueError(f"{path.name!r} is not a readable .npy array ({error}): save it with np.save.") from None
    except (OSError, EOFError) as error:
        raise ValueError(f"{path.name!r} is not a readable .npy array ({error}; truncated?): save it again with "
                         "np.save.") from None


def load_video(source: Any, num_frames: int | None = None) -> list[PIL.Image.Image]:
    """Read a video condition as a list of RGB PIL frames.

    Args:
        source: a GIF (Pillow), an MP4 / AVI / MKV / WebM / MOV file (PyAV), a folder of frame images (sorted by name),
            a ``.npy`` array ``(T, H, W[, 3])``, a list of frames (PIL images or arrays), or an array ``(T, H, W[, 3])``.
        num_frames: keep only the first ``num_frames`` frames (``None``: all).

    Raises:
        ValueError: a video with no frames, an unreadable file, or a ``num_frames`` below 1.
    """
    if num_frames is not None and (not isinstance(num_frames, int) or num_frames < 1):
        raise ValueError(f"num_frames must be a positive int or None, got {num_frames!r}.")
    path = _as_path(source)
    name = repr(str(path)) if path is not None else "The video"
    if path is not None:
        _require_existing(path, "video")
        suffix = path.suffix.lower()
        if path.is_dir():
            frames = [load_image(p) for p in _frame_files(path)[:num_frames]]
        elif suffix == ".gif":
            frames = _gif_frames(path, num_frames=num_frames)
        elif suffix == ".npy":
            frames = [to_pil_image(f, f"frame {i} of {path.name}") for i, f in enumerate(_load_npy(path, "video"))]
        elif suffix in PYAV_VIDEO_SUFFIXES:
            from .data.video_decoding import decode_video

            _check_file_size(path, "video")
            limits = input_limits()
            try:
                frames = [PIL.Image.fromarray(f) for f in decode_video(
                    str(path), num_frames=num_frames, limits=limits, allow_fewer=True)]
            except ImportError as error:
                raise ImportError(f"Reading {path.name} needs PyAV: pip install 'av>=14' (or read a GIF).") from error
        elif suffix in IMAGE_SUFFIXES:
            frames = [load_image(path)]
        else:
            raise ValueError(
                f"Cannot read {path.name!r} as a video: use a GIF, one of {', '.join(PYAV_VIDEO_SUFFIXES)} (PyAV), a "
                "folder of frame images or a .npy array (T, H, W, 3)."
            )
    elif isinstance(source, PIL.Image.Image):
        frames = [source.convert("RGB")]
    elif isinstance(source, (np.ndarray,)) or _is_tensor(source):
        array = source.detach().cpu().numpy() if _is_tensor(source) else source
        if array.ndim not in (3, 4):
            raise ValueError(f"A video array must be (T, H, W) or (T, H, W, 3) (or (T, 3, H, W)), got shape {array.shape}.")
        frames = [to_pil_image(f, f"frame {i} of the video") for i, f in enumerate(array)]
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        frames = [to_pil_image(f, f"frame {i} of the video") for i, f in enumerate(source)]
    else:
        raise TypeError(
            f"A video must be a file path, a folder of frames, a list of frames or an array (T, H, W, 3); got "
            f"{type(source).__name__}."
        )
    if not frames:
        raise ValueError(f"{name} has no frames: give a video with at least one frame.")
    sizes = sorted({frame.size for frame in frames})
    if len(sizes) > 1:
        raise ValueError(
            f"The frames of {name if path is not None else 'the video'} have different sizes {sizes} (width, height): a "
            "video's frames must share one size. Resize them to one size first; frames are never resized one by one."
        )
    return frames[:num_frames] if num_frames is not None else frames


class ColourSketchError(ValueError):
    """A sketch given as a colour picture (an RGB image) where class ids were expected: it can be read back through
    the class colours with :func:`drawing_to_class_map` (``load_sketch_video(..., num_classes=)`` does so)."""


def _class_map_from_image(image: PIL.Image.Image, what: str) -> np.ndarray:
    if image.mode not in SKETCH_IMAGE_MODES:
        raise ColourSketchError(
            f"The {what} is a PIL image in mode {image.mode!r}; a sketch is a class-index map whose pixel values are class "
            "ids: an image in mode 'L', 'P' or 'I' (e.g. `Image.fromarray(class_ids.astype('uint8'))`), or an integer "
            "array (H, W). A drawing in the class colours is read by the pipelines and `nuwa-hf generate --sketch`, "
            "or with nuwa_hf.media.read_sketch_drawing(picture, num_classes)."
        )
    return np.asarray(image).astype(np.int64)


CLASS_COLOUR_MATCH = 8  # RGB distance within which a palette colour is taken for a class colour


def _is_drawing(image: PIL.Image.Image, num_classes: int | None) -> bool:
    """With the model's classes known, whether a picture is read as a drawing in the class colours rather than as
    class ids: a colour mode (RGB, RGBA, CMYK, ...); or a palette image (mode P: a paint program's indexed PNG, a GIF)
    with colours other than greys whose indices cannot be class ids (one is past the classes) or whose colours are
    the class colours (within :data:`CLASS_COLOUR_MATCH`). An indexed export numbers its palette in its own order
    (black may be index 3), so a picture that shows the class colours is read by what it shows. A palette of greys,
    or of other colours with indices below the classes (the processor's own class maps), holds class ids."""
    if num_classes is None:
        return False
    if image.mode not in SKETCH_IMAGE_MODES:
        return True
    if image.mode != "P":
        return False
    used = np.unique(np.asarray(image))
    palette = np.asarray(image.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    if not used.size or int(used.max()) >= len(palette):
        return False
    colours = palette[used]
    if is_grey(colours):
        return False  # greys: the indices are the ids
    if int(used.max()) >= num_classes:
        return True
    distances = np.sqrt(((colours[:, None, :] - class_palette(num_classes).astype(np.int64)[None]) ** 2).sum(-1))
    return bool((distances.min(-1) <= CLASS_COLOUR_MATCH).all())


def to_class_map(sketch: Any, what: str = "sketch") -> np.ndarray:
    """A class-index map given as an array / tensor ``(H, W)`` or a PIL image in mode L/P/I -> ``np.int64 (H, W)``."""
    if isinstance(sketch, PIL.Image.Image):
        return _class_map_from_image(sketch, what)
    if _is_tensor(sketch):
        sketch = sketch.detach().cpu().numpy()
    if not isinstance(sketch, np.ndarray):
        raise TypeError(f"The {what} must be a class-index map (integer array or PIL image), got {type(sketch).__name__}.")
    array = sketch
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
        array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
    if array.ndim != 2:
        raise ValueError(f"The {what} must be a 2-D class-index map (H, W), got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"The {what} is empty (shape {array.shape}): give a class-index map with at least one pixel.")
    if np.issubdtype(array.dtype, np.floating):
        _require_finite(array, what)
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise ValueError(f"The {what} holds non-integer values; a sketch holds integer class ids.")
    elif not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise TypeError(f"The {what} must hold integer class ids, got dtype {array.dtype}.")
    if array.size and array.min() < 0:
        raise ValueError(f"The {what} holds negative class ids ({int(array.min())}); class ids start at 0.")
    return array.astype(np.int64)


def load_sketch(source: Any, num_classes: int | None = None) -> np.ndarray:
    """Read an image sketch (segmentation map) as class ids ``np.int64 (H, W)``: a PNG in mode L/P/I, a ``.npy``
    integer array, or an in-memory map (array, tensor, PIL image).

    With ``num_classes`` (the model's sketch classes), a picture that cannot hold class ids (an RGB / RGBA PNG or
    JPEG, or an indexed picture with indices past the classes) is read as a drawing in the class colours
    (:func:`read_sketch_drawing`: anti-aliased edges and JPEG noise are read, other colours refused with the
    palette); without it such a picture is refused (:class:`ColourSketchError`)."""
    path = _as_path(source)
    if path is None:
        if isinstance(source, PIL.Image.Image) and _is_drawing(source, num_classes):
            return read_sketch_drawing(source, num_classes)
        return to_class_map(source)
    _require_file(path, "sketch")
    if path.suffix.lower() == ".npy":
        return to_class_map(_load_npy(path, "sketch"), f"sketch {path.name}")
    with _open_image(path, "sketch") as opened:
        if _is_drawing(opened, num_classes):
            return read_sketch_drawing(opened, num_classes, f"sketch {path.name}")
        return _class_map_from_image(opened, f"sketch {path.name}")


def load_sketch_video(source: Any, num_classes: int | None = None, fill: int | None = 0) -> np.ndarray:
    """Read a video sketch as class ids ``np.int64 (T, H, W)``: a ``.npy`` array ``(T, H, W)``, a GIF of class maps
    (grey levels, or palette indices of one shared palette: :func:`_gif_class_maps`), a folder of sketch images
    (sorted by name), a list of maps or an array.

    With ``num_classes``, a colour picture (an RGB PNG, a folder of them) or a GIF whose colours cannot be class ids (a
    drawing saved as GIF: palette indices past the classes) is taken for a drawing in the class colours of
    :func:`sketch_to_image` and read back through them, with the same size, pixel and frame limits as a video:
    leniently with ``fill`` (:func:`drawing_to_class_map`; white areas -> ``fill``), strictly with ``fill=None``
    (:func:`read_sketch_drawing`: other colours and unpainted areas refused with the palette; what the pipelines
    do). Without ``num_classes``, a colour picture is refused (:class:`ColourSketchError`)."""
    try:
        maps = _load_sketch_video(source)
    except ColourSketchError:
        if num_classes is None:
            raise
    else:
        if num_classes is None or not maps.size or not _drawn_file(source, num_classes):
            return maps
    name = _as_path(source).name if _as_path(source) is not None else "video sketch"
    frames = load_video(source)
    if fill is None:
        return np.stack([read_sketch_drawing(frame, num_classes, f"frame {i} of the sketch {name}")
                         for i, frame in enumerate(frames)])
    return np.stack([drawing_to_class_map(frame, num_classes, fill) for frame in frames])


def _drawn_file(source: Any, num_classes: int) -> bool:
    """Whether a sketch file (or a folder's first frame, a GIF's first frame) is a drawing in the class colours
    (:func:`_is_drawing`) rather than class ids."""
    path = _as_path(source)
    if path is None or path.suffix.lower() == ".npy":
        return False
    if path.is_dir():
        files = _frame_files(path)
        if not files:
            return False
        path = files[0]
    with _open_image(path, "sketch") as opened:
        return _is_drawing(opened, num_classes)


def _gif_class_maps(path: Path) -> list[np.ndarray]:
    """The class ids ``np.int64 (H, W)`` of each frame of a sketch GIF.

    A GIF stores palette indices, but Pillow hands out the frames after the first in mode RGB, and its GIF writer
    renumbers the palette when some entries are unused (``optimize=True``, its default), keeping the colours. So the
    ids are read from the colours: a GIF whose colours are all grey (written from mode L maps, or from mode P maps
    without a palette of their own) reads each grey level as the class id; otherwise each colour is looked up in the
    first frame's palette and read as its index (a colour listed twice reads as its first index). A colour missing
    from that palette (a frame with a palette of its own) is refused with the fix. A GIF of mode P maps with a colour
    palette therefore keeps its ids only if written with ``optimize=False``; a ``.npy`` array keeps them always."""
    frames = _gif_frames(path, None, what="sketch")
    first = frames[0]
    if first.mode not in ("P", "L"):
        return [_class_map_from_image(first, f"frame 0 of {path.name}")]  # refused with the message for colours
    rgb = [np.asarray(frame.convert("RGB"), dtype=np.int64) for frame in frames]
    if all(is_grey(a) for a in rgb):
        return [a[..., 0].copy() for a in rgb]  # grey levels are the ids
    palette = np.asarray(first.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    unique_codes, last = np.unique(codes[::-1], return_index=True)
    first_index = len(codes) - 1 - last  # the first index of each colour
    maps = []
    for i, a in enumerate(rgb):
        pixel_codes = (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]
        position = np.clip(np.searchsorted(unique_codes, pixel_codes), 0, len(unique_codes) - 1)
        found = unique_codes[position] == pixel_codes
        if not found.all():
            y, x = np.argwhere(~found)[0]
            raise ValueError(
                f"Frame {i} of the sketch {path.name} has the colour {tuple(int(c) for c in a[y, x])} at pixel "
                f"(x={x}, y={y}), which is not in the palette of its first frame, so its class id cannot be read: "
                "write every frame with one shared palette (palette index = class id), or save the class ids as a "
                ".npy array (T, H, W) or a folder of PNG maps."
            )
        maps.append(first_index[position].astype(np.int64))
    return maps


def _load_sketch_video(source: Any) -> np.ndarray:
    path = _as_path(source)
    if path is not None:
        _require_existing(path, "video sketch")
        if path.is_dir():
            maps = [load_sketch(p) for p in _frame_files(path)]
        elif path.suffix.lower() == ".npy":
            array = _load_npy(path, "video sketch")
            if array.ndim == 2:
                array = array[None]
            maps = [to_class_map(m, f"frame {i} of {path.name}") for i, m in enumerate(array)]
        elif path.suffix.lower() == ".gif":
            maps = _gif_class_maps(path)
        else:
            maps = [load_sketch(path)]
    elif isinstance(source, np.ndarray) or _is_tensor(source):
        array = source.detach().cpu().numpy() if _is_tensor(source) else source
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3:
            raise ValueError(f"A video sketch array must be (T, H, W), got shape {array.shape}.")
        maps = [to_class_map(m, f"frame {i} of the video sketch") for i, m in enumerate(array)]
    elif isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        maps = [to_class_map(m, f"frame {i} of the video sketch") for i, m in enumerate(source)]
    else:
        raise TypeError(f"A video sketch must be a path, a list of class maps or an array (T, H, W), got {type(source).__name__}.")
    if not maps:
        raise ValueError("The video sketch has no frames: give at least one class map.")
    shapes = {m.shape for m in maps}
    if len(shapes) > 1:
        raise ValueError(f"The frames of a video sketch must share one size, got {sorted(shapes)}.")
    return np.stack(maps)


# --------------------------------------------------------------------------------------------------------------------
# Writing results


def _frames_as_pil(frames: Any) -> list[PIL.Image.Image]:
    if isinstance(frames, PIL.Image.Image):
        return [frames.convert("RGB")]
    if isinstance(frames, np.ndarray) or _is_tensor(frames):
        array = frames.detach().cpu().numpy() if _is_tensor(frames) else frames
        if array.ndim == 3 and array.shape[-1] not in (3, 4):
            return [to_pil_image(f, f"frame {i}") for i, f in enumerate(array)]
        if array.ndim == 4:
            return [to_pil_image(f, f"frame {i}") for i, f in enumerate(array)]
        return [to_pil_image(array)]
    frames = list(frames)
    if not frames:
        raise ValueError("There are no frames to write: a video needs at least one frame.")
    return [to_pil_image(f, f"frame {i}") for i, f in enumerate(frames)]


# Frames per second a GIF / MP4 can be written with: GIF stores a frame's duration in hundredths of a second as a 16-bit
# number (at most 655 s, so at least ~0.0015 fps) and shows at most 50 frames per second; MP4 keeps the rate as a
# fraction with a denominator of at most 1000. The range leaves margin on both sides.
FPS_RANGE = (0.01, 240.0)


def check_fps(fps: Any) -> float:
    """``fps`` must be a finite number in :data:`FPS_RANGE`; returns it as a float."""
    low, high = FPS_RANGE
    if isinstance(fps, (bool, np.bool_)) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise TypeError(f"fps must be a number between {low} and {high} (frames per second), got {fps!r}.")
    if not (math.isfinite(float(fps)) and low <= float(fps) <= high):
        raise ValueError(f"fps must be a number between {low} and {high} (frames per second), got {fps!r}.")
    return float(fps)


_check_fps = check_fps


def save_image(image: Any, path: PathLike, upscale: int = 1) -> Path:
    """Write one image as PNG (or whatever the suffix says), atomically.

    Args:
        image: a PIL image or an array (see :func:`to_pil_image`).
        path: destination file; folders are created.
        upscale: enlarge by this integer factor with nearest-neighbour (tiny 32x32 outputs are easier to look at).
    """
    image = to_pil_image(image)
    image = upscaled(image, upscale)
    path = Path(path)
    file_format = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower(), "PNG")
    with atomic_output(path) as temporary:
        image.save(temporary, format=file_format)
    return path


def upscaled(image: PIL.Image.Image, upscale: int) -> PIL.Image.Image:
    """``image`` enlarged ``upscale`` times with nearest neighbour (each pixel a block), as the writers' ``upscale=``."""
    if not isinstance(upscale, int) or upscale < 1:
        raise ValueError(f"upscale must be a positive int, got {upscale!r}.")
    if upscale == 1:
        return image
    return image.resize((image.width * upscale, image.height * upscale), PIL.Image.NEAREST)


def save_gif(frames: Any, path: PathLike, fps: float = 4.0, loop: bool = True, upscale: int = 1) -> Path:
    """Write frames as an animated GIF, atomically (``fps`` frames per second, looping by default).

    Every frame is written as a frame of its own, each showing for ``1000 / fps`` ms (at least 20 ms), so the file
    holds as many frames as were given: Pillow's own writer (``save(..., save_all=True)``, Pillow 12 has no option
    against it) merges a frame equal to the one before it into a longer showing of that one, and a 6-frame video with
    two equal frames in a row would read back as 5. The frames go through Pillow's GIF encoder one by one instead
    (:func:`_gif_bytes`); each is quantised to its own palette as Pillow's writer does.
    """
    fps = _check_fps(fps)
    images = [upscaled(f, upscale) for f in _frames_as_pil(frames)]
    data = _gif_bytes(images, duration_ms=max(int(round(1000 / fps)), 20), loop=loop)
    with atomic_output(path) as temporary:
        Path(temporary).write_bytes(data)
    return Path(path)


def _gif_bytes(images: list[PIL.Image.Image], duration_ms: int, loop: bool) -> bytes:
    """An animated GIF of ``images``, one GIF frame per image: the first frame's palette is the global colour table,
    every other frame carries its own (Pillow's layout for frames written whole, ``disposal=2``). Built with Pillow's
    frame encoder (``GifImagePlugin.getheader`` / ``getdata``), which writes what it is given and merges nothing."""
    from PIL import GifImagePlugin

    frames = [image.convert("RGB").convert("P", palette=PIL.Image.Palette.ADAPTIVE) for image in images]
    info: dict[str, Any] = {"duration": duration_ms}
    if loop:
        info["loop"] = 0  # the NETSCAPE block: repeat forever; without it a GIF plays once
    header, _ = GifImagePlugin.getheader(frames[0], info=info)  # normalises frames[0] to the global palette
    parts = list(header)
    for index, frame in enumerate(frames):
        if index:
            GifImagePlugin.getheader(frame, info={})  # the same palette normalisation for a local colour table
        parts += GifImagePlugin.getdata(frame, duration=duration_ms, disposal=2, include_color_table=index > 0)
    parts.append(b";")  # the trailer
    return b"".join(bytes(part) for part in parts)


def mp4_available() -> bool:
    """True when PyAV (with its bundled FFmpeg) is importable, i.e. :func:`save_mp4` can write H.264 MP4."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def save_mp4(frames: Any, path: PathLike, fps: float = 4.0, upscale: int = 1) -> Path:
    """Write frames as an H.264 MP4 through PyAV, atomically. Sides are padded to even sizes (yuv420p needs them).

    Raises:
        ImportError: PyAV is not installed (``pip install av``); write a GIF instead.
    """
    fps = _check_fps(fps)
    try:
        import av
    except ImportError as error:
        raise ImportError("Writing MP4 needs PyAV: pip install 'av>=14' (or nuwa-hf[video]); GIF works without it.") from error
    from fractions import Fraction

    images = [upscaled(f, upscale) for f in _frames_as_pil(frames)]
    width, height = images[0].size
    even_width, even_height = width + width % 2, height + height % 2
    rate = Fraction(fps).limit_denominator(1000)
    with atomic_output(path) as temporary:
        with av.open(str(temporary), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = even_width, even_height, "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
            for image in images:
                if image.size != (width, height):
                    raise ValueError(f"All frames must share one size; got {image.size} after {(width, height)}.")
                canvas = PIL.Image.new("RGB", (even_width, even_height))
                canvas.paste(image, (0, 0))
                for packet in stream.encode(av.VideoFrame.from_image(canvas)):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return Path(path)


def save_video(frames: Any, path: PathLike, fps: float = 4.0, upscale: int = 1) -> Path:
    """Write frames to ``path`` by its suffix: ``.gif`` (Pillow), ``.mp4`` (PyAV), or ``.png`` (a horizontal strip)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return save_gif(frames, path, fps=fps, upscale=upscale)
    if suffix == ".mp4":
        return save_mp4(frames, path, fps=fps, upscale=upscale)
    if suffix == ".png":
        return save_image(frame_strip(frames), path, upscale=upscale)
    raise ValueError(f"Cannot write a video as {suffix or 'a file without suffix'}: use .gif, .mp4 or .png (a strip).")


def frame_strip(frames: Any, gap: int = 2) -> PIL.Image.Image:
    """The frames side by side in one image (with a ``gap``-pixel white margin between them)."""
    images = _frames_as_pil(frames)
    width, height = images[0].size
    strip = PIL.Image.new("RGB", (len(images) * width + (len(images) - 1) * gap, height), (255, 255, 255))
    for index, image in enumerate(images):
        strip.paste(image, (index * (width + gap), 0))
    return strip


def sketch_to_image(class_map: Any, num_classes: int | None = None) -> PIL.Image.Image:
    """A class-index map -> an RGB picture with one fixed colour per class (class 0 black), for looking at sketches."""
    array = to_class_map(class_map)
    palette = class_palette(max(int(array.max()) + 1 if array.size else 1, num_classes or 0))
    return PIL.Image.fromarray(palette[array])


def class_palette(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` uint8: the colour :func:`sketch_to_image` gives each class (class 0 black, then hues spaced
    by the golden ratio)."""
    import colorsys

    colours = [(0, 0, 0)]
    for index in range(1, max(num_classes, 1)):
        hue = (index * 0.618033988749895) % 1.0
        red, green, blue = colorsys.hls_to_rgb(hue, 0.5, 0.8)
        colours.append((int(red * 255), int(green * 255), int(blue * 255)))
    return np.array(colours, dtype=np.uint8)


WHITE_LEVEL = 235  # a pixel whose three channels are all at least this is white: an area nobody painted
DRAWING_TOLERANCE = 60.0  # RGB distance from a class colour (or a blend of two) within which a drawn pixel is read
EDGE_REACH = 3  # an edge pixel (a blend of two colours) counts as drawn within this many pixels (or side / 64) of paint
FAR_COLOUR_SHARE = 0.01  # a drawing whose far-off (or, read strictly, unpainted) pixels are more than this is refused
_CHUNK_PIXELS = 1 << 16


def _within(mask: np.ndarray, reach: int) -> np.ndarray:
    """``(H, W)`` bool: the pixels within ``reach`` pixels (a square window) of a True pixel of ``mask``."""
    counts = np.pad(mask.astype(np.int32), ((reach + 1, reach), (reach + 1, reach))).cumsum(0).cumsum(1)
    side = 2 * reach + 1
    window = counts[side:, side:] - counts[:-side, side:] - counts[side:, :-side] + counts[:-side, :-side]
    return window > 0


def _blend_distance(pixels: np.ndarray, colours: np.ndarray, blends: bool = True) -> np.ndarray:
    """How far each pixel is from every colour of ``colours`` and every blend of two of them.

    A pixel on the edge between two painted areas (anti-aliasing, a soft brush, a resized or JPEG-saved drawing) is a
    blend ``(1 - t) * a + t * b`` of their colours, often far from both (the midpoint of the grass and brick colours
    is 123 from each); it is still part of a drawing in those colours. A colour in a different scheme (yellow, a
    photograph) is far from every such blend.

    Args:
        pixels: ``(N, 3)`` RGB values.
        colours: ``(K, 3)`` RGB values.

    Returns:
        ``(N,)`` float32: the RGB distance from the nearest point of the nearest segment between two colours (a colour
        alone is the segment from it to itself); with ``blends=False``, from the nearest colour.
    """
    first, second = np.triu_indices(len(colours)) if blends else (np.arange(len(colours)),) * 2
    start = colours[first].astype(np.float32)                                        # (P, 3)
    step = colours[second].astype(np.float32) - start                                # (P, 3)
    length = np.maximum((step ** 2).sum(-1), 1e-6)                                   # (P,)
    distances = np.empty(len(pixels), dtype=np.float32)
    for begin in range(0, len(pixels), _CHUNK_PIXELS):
        offset = pixels[begin:begin + _CHUNK_PIXELS].astype(np.float32)[:, None, :] - start   # (n, P, 3)
        t = np.clip((offset * step).sum(-1) / length, 0.0, 1.0)                                # (n, P)
        distance = ((offset - t[..., None] * step) ** 2).sum(-1).min(-1)                        # (n,)
        distances[begin:begin + len(distance)] = np.sqrt(distance)
    return distances


def _drawing_pixels(drawing: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """A PIL image (any mode) or an array ``(H, W, 3|4)`` -> RGB ``(H, W, 3)`` and alpha ``(H, W)`` (None if opaque)."""
    if isinstance(drawing, PIL.Image.Image):
        drawing = np.asarray(drawing.convert("RGBA") if drawing.mode not in ("RGB", "RGBA") else drawing)
    rgba = np.asarray(drawing)
    if rgba.ndim != 3 or rgba.shape[-1] not in (3, 4):
        raise ValueError(f"A drawing is a picture (H, W, 3) or (H, W, 4), got shape {rgba.shape}.")
    return rgba[..., :3], (rgba[..., 3] if rgba.shape[-1] == 4 else None)


def drawing_to_class_map(drawing: Any, num_classes: int, fill: int = 0) -> np.ndarray:
    """A picture drawn in the class colours of :func:`sketch_to_image` -> class ids ``np.int64 (H, W)``, the inverse
    of :func:`sketch_to_image` for hand-drawn or resaved (anti-aliased, blurred, compressed) pictures.

    Each pixel gets the class whose colour is nearest (squared RGB distance); white pixels (every channel at least
    :data:`WHITE_LEVEL`: an empty canvas) and, in an RGBA picture, pixels less than half opaque get ``fill``. Every
    pixel gets a class, however far its colour is from the palette (:func:`read_sketch_drawing` refuses such
    pictures instead).

    Args:
        drawing: a PIL image (any mode) or an array ``(H, W, 3|4)`` of uint8.
        num_classes: the classes of the palette (the model's sketch classes).
        fill: the class of white and transparent areas.

    The colour matching runs in chunks of 65,536 pixels, so memory stays bounded for a picture of many megapixels.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
    if not 0 <= fill < num_classes:
        raise ValueError(f"fill={fill} is not a class id of the {num_classes} classes (0..{num_classes - 1}).")
    rgb, alpha = _drawing_pixels(drawing)
    classes = _nearest_class(rgb, num_classes)
    classes[_unpainted(rgb, alpha)] = fill
    return classes


def _nearest_class(rgb: np.ndarray, num_classes: int) -> np.ndarray:
    """``(H, W, 3)`` -> ``(H, W)`` int64: the class of the nearest class colour."""
    flat = rgb.reshape(-1, 3)
    classes = np.empty(len(flat), dtype=np.int64)
    palette = class_palette(num_classes).astype(np.int32)[None]
    for start in range(0, len(flat), _CHUNK_PIXELS):
        pixels = flat[start:start + _CHUNK_PIXELS].astype(np.int32)
        classes[start:start + len(pixels)] = ((pixels[:, None, :] - palette) ** 2).sum(-1).argmin(-1)
    return classes.reshape(rgb.shape[:2])


def _unpainted(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """``(H, W)`` bool: white pixels (an empty canvas) and pixels less than half opaque."""
    unpainted = rgb.min(-1) >= WHITE_LEVEL
    if alpha is not None:
        unpainted |= alpha < 128
    return unpainted


def palette_text(num_classes: int) -> str:
    """The class colours as users read them: ``"0 brick (0, 0, 0) black, 1 grass (25, 85, 229), ..."`` (names of the
    scene world's classes when the model has as many classes)."""
    from .data.scene_rendering import SCENE_CLASSES

    names = list(SCENE_CLASSES) if num_classes == len(SCENE_CLASSES) else [""] * num_classes
    colours = class_palette(num_classes).tolist()
    return ", ".join(f"{index}{' ' + name if name else ''} {tuple(colour)}"
                     for index, (name, colour) in enumerate(zip(names, colours)))


def read_sketch_drawing(drawing: Any, num_classes: int, what: str = "sketch") -> np.ndarray:
    """A sketch painted in the class colours (an RGB / RGBA picture, as a paint program saves it, at any size) ->
    class ids ``np.int64 (H, W)``; what the pipelines and ``nuwa-hf generate --sketch`` do with a colour picture.

    As in :func:`drawing_to_class_map`, each pixel gets the class of the nearest class colour, so colours near a class
    colour (a slightly different shade, JPEG noise) are snapped to it. Unlike it, a picture that is not such a drawing
    is refused with the palette: one whose pixels in colours far from the class colours are more than
    :data:`FAR_COLOUR_SHARE` of it (a different colour scheme, a photograph), and one with white or transparent
    (unpainted) areas of that size, since no class means "nothing" (``drawing_to_class_map(picture, num_classes,
    fill=c)`` gives them class ``c``). Fewer stray pixels get the class of the nearest class colour.

    A pixel is painted when its colour is within :data:`DRAWING_TOLERANCE` (RGB distance) of a class colour (or white);
    an edge pixel, a blend of two such colours within that distance (:func:`_blend_distance`: anti-aliasing, a soft
    brush, resizing), counts as drawn when it lies within :data:`EDGE_REACH` pixels (or a 64th of the picture's shorter
    side, if more) of a painted pixel. A photograph's shades are often such blends (dark green: black and grass), but
    are mostly far from any painted area, so it is refused.

    Args:
        drawing: a PIL image (any mode) or an array ``(H, W, 3|4)`` of uint8.
        num_classes: the model's sketch classes (the palette is :func:`class_palette` of them).
        what: the input's name in messages.

    Raises:
        ValueError: too many pixels far from the class colours, or unpainted.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
    rgb, alpha = _drawing_pixels(drawing)
    classes = _nearest_class(rgb, num_classes)
    unpainted = _unpainted(rgb, alpha)
    white = np.full((1, 3), 255, dtype=np.int32)  # blends with white: the anti-aliased edge of an unpainted area
    colours = np.concatenate([class_palette(num_classes).astype(np.int32), white])
    flat = rgb.reshape(-1, 3)
    painted = (_blend_distance(flat, colours, blends=False) <= DRAWING_TOLERANCE).reshape(classes.shape)
    edge = (_blend_distance(flat, colours) <= DRAWING_TOLERANCE).reshape(classes.shape)
    reach = max(EDGE_REACH, min(classes.shape) // 64)
    far = ~(painted | (edge & _within(painted, reach))) & ~unpainted
    total = classes.size
    advice = f"paint every area in one of the class colours (class id, RGB): {palette_text(num_classes)}"
    if far.sum() > FAR_COLOUR_SHARE * total:
        y, x = np.argwhere(far)[0]
        raise ValueError(
            f"The {what} is a colour picture, read as a drawing in the class colours, but {far.mean():.0%} of its "
            f"pixels are far from every class colour (the first at x={x}, y={y} is {tuple(int(c) for c in rgb[y, x])}): "
            f"{advice}. Anti-aliased edges and JPEG noise are read; other colours are not guessed. Or give class ids "
            "(a PNG in mode L or P whose pixel values are the ids, or a .npy integer array)."
        )
    if unpainted.sum() > FAR_COLOUR_SHARE * total:
        raise ValueError(
            f"The {what} is a colour picture, read as a drawing in the class colours, but {unpainted.mean():.0%} of it "
            f"is white or transparent, which is no class (every pixel of a sketch is one): {advice}; or read it with "
            "nuwa_hf.media.drawing_to_class_map(picture, num_classes, fill=CLASS_ID), which gives the unpainted areas "
            "that class."
        )
    return classes


def save_result(result: Any, stem: Path, is_video: bool, fps: float = 4.0, upscale: int = 1,
                write_mp4: bool = False) -> list[Path]:
    """Write one pipeline output (a PIL image or a list of frames) as ``stem.png`` or ``stem.gif`` + ``stem.png`` (a
    strip of the frames) [+ ``stem.mp4``]. Returns the files written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    if not is_video:
        return [save_image(result, stem.with_suffix(".png"), upscale=upscale)]
    written = [save_gif(result, stem.with_suffix(".gif"), fps=fps, upscale=upscale),
               save_image(frame_strip(result), stem.with_suffix(".png"), upscale=upscale)]
    if write_mp4 and mp4_available():
        written.append(save_mp4(result, stem.with_suffix(".mp4"), fps=fps, upscale=upscale))
    return written
