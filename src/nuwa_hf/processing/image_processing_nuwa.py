"""Image processor of NUWA (PIL backend): images, video frames and sketch class maps in; [-1, 1] pixels out; back again.

torchvision does not load beside this project's CPU torch, so this processor uses transformers' PIL backend. Images
and every video frame go through the same resize (shortest edge), centre crop and normalisation to [-1, 1], the
range the VQ-GAN works in. Sketches are class-index maps: they get the same geometry with nearest-neighbour
resampling (class ids are never interpolated) and are checked against a declared number of classes.
"""

from __future__ import annotations

import colorsys
import logging
import math
from collections.abc import Sequence

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_backends import PilBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_transforms import center_crop as np_center_crop
from transformers.image_transforms import get_resize_output_image_size, get_size_with_aspect_ratio
from transformers.image_utils import (
    ChannelDimension,
    PILImageResampling,
    SizeDict,
    get_image_size_for_max_height_width,
)
from transformers.processing_utils import ImagesKwargs, Unpack


logger = logging.getLogger(__name__)

# A resize whose output would hold more pixels than this is done on the part of the picture the centre crop keeps
# (plus a margin for the resampling filter): a 3 kB PNG of 1,000,000 x 1 pixels is within the input pixel limit but
# resized whole to a 32-pixel short side it would take 32,000,000 x 32 pixels (3 GB) to crop 32 x 32 from.
LARGE_RESIZE_PIXELS = 4 * 2**20


def _slice_to_the_crop(array: np.ndarray, axes: tuple[int, int], target: tuple[int, int],
                       crop: tuple[int | None, int | None]) -> np.ndarray:
    """``array`` cut, along the given (height, width) axes, to the source pixels that the centre crop of its resize
    to ``target`` keeps, with a margin of a few source pixels each side (what bicubic resampling reads). Only an axis
    whose resized side is past 4x the crop is cut, and only when the whole resize would exceed
    :data:`LARGE_RESIZE_PIXELS`; the rest is the ordinary resize, then crop."""
    if target[0] * target[1] <= LARGE_RESIZE_PIXELS:
        return array
    index = [slice(None)] * array.ndim
    for axis, resized, kept in zip(axes, target, crop):
        source = array.shape[axis]
        if kept is None or resized <= 4 * kept:
            continue
        scale = source / resized  # source pixels per resized pixel
        margin = max(4, int(np.ceil(4 * scale)))
        # keep the slice at least as long as the other axis: the shortest-edge resize must scale it by the same factor
        half = max(kept * scale / 2 + margin, min(array.shape[a] for a in axes) / 2 + margin)
        centre = source / 2
        start, stop = max(0, int(np.floor(centre - half))), min(source, int(np.ceil(centre + half)))
        # symmetric around the centre, so the crop of the slice is the crop of the whole
        width = min(centre - start, stop - centre)
        index[axis] = slice(int(np.floor(centre - width)), int(np.ceil(centre + width)))
    return array[tuple(index)]


def _channel_values(name: str, value, positive: bool = False) -> tuple:
    """``image_mean`` / ``image_std`` as 3 finite floats, one per RGB channel (one number is used for all three), so
    that a damaged processor_config.json is named when it loads, not at the first picture's reshape or as pictures
    divided by 0."""
    values = (value,) * 3 if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        values = tuple(float(v) for v in values if not isinstance(v, bool))
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and (v > 0 or not positive) for v in values):
        need = "positive numbers" if positive else "numbers"
        raise ValueError(f"`{name}` must be 3 finite {need} (one per RGB channel) or one for all three, got {value!r}; "
                         f"fix it in processor_config.json (NUWA's VQ-GANs expect (0.5, 0.5, 0.5)).")
    return values


class NuwaImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    num_sketch_classes (`int`, *optional*):
        Number of sketch classes C; sketch class ids must lie in `[0, C)`. `None` skips the upper bound check.
    """

    num_sketch_classes: int | None


def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, torch.Tensor))


def _as_numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _sketch_palette(num_colours: int = 256) -> list[int]:
    """A fixed palette for class maps: class 0 black, then well-separated hues (golden-ratio steps)."""
    palette = [0, 0, 0]
    for index in range(1, num_colours):
        hue = (index * 0.618033988749895) % 1.0
        lightness = 0.45 + 0.2 * ((index // 7) % 2)
        palette += [int(round(255 * c)) for c in colorsys.hls_to_rgb(hue, lightness, 0.85)]
    return palette


class NuwaImageProcessor(PilBackend):
    r"""
    Prepares images, video frames and sketches for NUWA's VQ-GANs and turns decoded outputs back into images.

    Images and frames: convert to RGB, resize so the shorter side is `size["shortest_edge"]` (bicubic), centre crop
    to `crop_size`, rescale to `[0, 1]` and normalise with mean = std = 0.5, i.e. to `[-1, 1]`. Sketches: the same
    resize and crop with nearest-neighbour resampling; values stay integer class ids.

    Args:
        size (`dict`, defaults to `{"shortest_edge": 32}`), crop_size (`dict`, defaults to `{"height": 32, "width": 32}`):
            geometry; the crop must be a multiple of the VQ-GAN's down-sampling factor.
        num_sketch_classes (`int`, *optional*): number of sketch classes; ids outside `[0, C)` are an error.
        All other [`ImagesKwargs`] (`resample`, `do_resize`, `do_center_crop`, `image_mean`, ...) apply as usual.
    """

    valid_kwargs = NuwaImageProcessorKwargs
    model_input_names = ["pixel_values"]
    resample = PILImageResampling.BICUBIC
    image_mean = (0.5, 0.5, 0.5)
    image_std = (0.5, 0.5, 0.5)
    size = {"shortest_edge": 32}
    default_to_square = False
    crop_size = {"height": 32, "width": 32}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    num_sketch_classes = None

    def __init__(self, **kwargs: Unpack[NuwaImageProcessorKwargs]):
        super().__init__(**kwargs)
        if self.num_sketch_classes is not None and (
            not isinstance(self.num_sketch_classes, int) or self.num_sketch_classes < 1
        ):
            raise ValueError(f"`num_sketch_classes` must be a positive int or None, got {self.num_sketch_classes!r}.")
        self.image_mean = _channel_values("image_mean", self.image_mean)
        self.image_std = _channel_values("image_std", self.image_std, positive=True)

    @property
    def output_size(self) -> tuple[int, int]:
        """`(height, width)` in pixels of every processed image, frame and sketch (the centre crop, or the resize
        when cropping is off): the VQ-GAN turns it into a `(height / f, width / f)` token grid."""
        crop = self.crop_size if self.do_center_crop else self.size
        if isinstance(crop, dict):
            height, width = crop.get("height"), crop.get("width")
        else:
            height, width = getattr(crop, "height", None), getattr(crop, "width", None)
        if height is None or width is None:
            raise ValueError(
                f"The image processor's output size is not fixed (crop_size={self.crop_size}, do_center_crop="
                f"{self.do_center_crop}): NUWA needs one grid size; set crop_size={{'height': H, 'width': W}}."
            )
        return int(height), int(width)

    # ----------------------------------------------------------------------------------------------------------------
    # Images

    @staticmethod
    def _canonical_image(image, position: str):
        """Check one image and bring arrays to a layout the PIL backend understands (grey -> RGB, 3 or 4 channels)."""
        if isinstance(image, PIL.Image.Image):
            return image
        if not _is_array(image):
            raise TypeError(
                f"{position} must be a PIL image, numpy array or torch tensor, got {type(image).__name__}."
            )
        array = _as_numpy(image)
        if array.ndim == 2:
            return np.repeat(array[..., None], 3, axis=-1)
        if array.ndim != 3:
            raise ValueError(f"{position} must be (H, W), (H, W, C) or (C, H, W), got shape {array.shape}.")
        channels_last, channels_first = array.shape[-1], array.shape[0]
        if channels_last in (1, 3, 4) and channels_last < array.shape[0]:
            return np.repeat(array, 3, axis=-1) if channels_last == 1 else array
        if channels_first in (1, 3, 4):
            return np.repeat(array, 3, axis=0) if channels_first == 1 else array
        raise ValueError(
            f"{position} has shape {array.shape}: images need 1 (grey), 3 (RGB) or 4 (RGBA) channels, first or last."
        )

    def _flatten_images(self, images, what: str = "images") -> list:
        if isinstance(images, (PIL.Image.Image,)) or (_is_array(images) and _as_numpy(images).ndim in (2, 3)):
            return [self._canonical_image(images, f"The {what[:-1]}")]
        if _is_array(images):
            array = _as_numpy(images)
            if array.ndim != 4:
                raise ValueError(
                    f"A batch of {what} must be a 4-D array (N, H, W, C) or (N, C, H, W), got shape {array.shape}."
                )
            return [self._canonical_image(item, f"{what[:-1].capitalize()} {i}") for i, item in enumerate(array)]
        if isinstance(images, Sequence) and not isinstance(images, str):
            if len(images) == 0:
                raise ValueError(f"Got an empty list of {what}.")
            return [self._canonical_image(item, f"{what[:-1].capitalize()} {i}") for i, item in enumerate(images)]
        raise TypeError(f"`{what}` must be an image, an array or a list of images, got {type(images).__name__}.")

    def _preprocess(self, images: list, do_resize: bool, size: SizeDict, resample, do_center_crop: bool,
                    crop_size: SizeDict, **kwargs) -> BatchFeature:
        """The PIL backend's resize, centre crop and normalisation; a picture whose resize would be huge (an extreme
        aspect ratio) is first cut to the part the crop keeps (:func:`_slice_to_the_crop`)."""
        if do_resize and do_center_crop:
            cut = []
            for image in images:  # (C, H, W) arrays here
                target = self._target_geometry(image.shape[-2], image.shape[-1], size)
                cut.append(_slice_to_the_crop(image, (-2, -1), tuple(int(v) for v in target),
                                              (crop_size.height, crop_size.width)))
            images = cut
        return super()._preprocess(images, do_resize=do_resize, size=size, resample=resample,
                                   do_center_crop=do_center_crop, crop_size=crop_size, **kwargs)

    def preprocess(self, images, *args, **kwargs: Unpack[NuwaImageProcessorKwargs]) -> BatchFeature:
        """
        Args:
            images: a PIL image, an array `(H, W[, C])` / `(C, H, W)`, a batch array `(N, ...)`, or a list of these;
                uint8 pixels (or floats in `[0, 1]` with `do_rescale=False`).

        Returns:
            [`BatchFeature`] with `pixel_values` `(N, 3, crop_h, crop_w)` in `[-1, 1]` (a tensor with
            `return_tensors="pt"`).
        """
        return super().preprocess(self._flatten_images(images), *args, **kwargs)

    def preprocess_videos(self, videos, return_tensors: str | None = None, **kwargs) -> BatchFeature:
        """
        Process videos frame by frame with the image pipeline.

        Args:
            videos: one video (a list of frames, or an array `(T, H, W, C)` / `(T, C, H, W)`) or a batch of videos
                (a list of such videos, or an array `(B, T, ...)`). All videos of a batch need the same frame count.

        Returns:
            [`BatchFeature`] with `pixel_values_videos` `(B, T, 3, crop_h, crop_w)` in `[-1, 1]`.
        """
        batch = self._split_videos(videos)
        frame_counts = [len(frames) for frames in batch]
        for index, count in enumerate(frame_counts):
            if count == 0:
                raise ValueError(f"Video {index} has no frames: a video needs at least one frame.")
        if len(set(frame_counts)) > 1:
            raise ValueError(
                f"Videos of one batch must have the same number of frames, got {frame_counts}; trim them to a common "
                "length or process them one by one."
            )
        flat = [frame for frames in batch for frame in frames]
        pixels = self.preprocess(flat, return_tensors="np", **kwargs)["pixel_values"]
        pixels = np.asarray(pixels).reshape(len(batch), frame_counts[0], *np.asarray(pixels).shape[1:])
        return BatchFeature(data={"pixel_values_videos": pixels}, tensor_type=return_tensors)

    @staticmethod
    def _split_videos(videos) -> list[list]:
        """Normalise the accepted video layouts to a list (batch) of lists (frames)."""
        if _is_array(videos):
            array = _as_numpy(videos)
            if array.ndim == 4:
                return [list(array)]
            if array.ndim == 5:
                return [list(video) for video in array]
            raise ValueError(
                f"A video array must be (T, H, W, C) / (T, C, H, W), or (B, T, ...) for a batch; got shape {array.shape}."
            )
        if isinstance(videos, PIL.Image.Image):
            raise TypeError("`videos` got a single image: pass images with `images=`, or a list of frames as a video.")
        if not isinstance(videos, Sequence) or isinstance(videos, str):
            raise TypeError(
                f"`videos` must be a list of frames, a list of videos or an array, got {type(videos).__name__}."
            )
        if len(videos) == 0:
            raise ValueError("Got an empty list of videos (or a video with no frames).")
        first = videos[0]
        is_batch = isinstance(first, Sequence) or (_is_array(first) and _as_numpy(first).ndim == 4)
        if not is_batch:
            return [list(videos)]
        return [list(_as_numpy(video)) if _is_array(video) else list(video) for video in videos]

    # ----------------------------------------------------------------------------------------------------------------
    # Sketches

    def _target_geometry(self, height: int, width: int, size: SizeDict) -> tuple[int, int]:
        """The resize output size PilBackend.resize would pick for an image of this size (kept in one place)."""
        if size.shortest_edge and size.longest_edge:
            return get_size_with_aspect_ratio((height, width), size.shortest_edge, size.longest_edge)
        if size.shortest_edge:
            return get_resize_output_image_size(
                np.empty((1, height, width), dtype=np.uint8),
                size=size.shortest_edge,
                default_to_square=False,
                input_data_format=ChannelDimension.FIRST,
            )
        if size.max_height and size.max_width:
            return get_image_size_for_max_height_width((height, width), size.max_height, size.max_width)
        if size.height and size.width:
            return size.height, size.width
        raise ValueError(f"Unsupported `size` {dict(size)}.")

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """`(height, width)` a picture of this size has after the resize, before the centre crop to `output_size`
        (the same geometry for images, frames, sketches and masks)."""
        if not self.do_resize:
            return height, width
        size = self._sketch_settings({})["size"]
        new_height, new_width = self._target_geometry(height, width, size)
        return int(new_height), int(new_width)

    def _sketch_to_array(self, sketch, position: str) -> np.ndarray:
        if isinstance(sketch, PIL.Image.Image):
            if sketch.mode not in ("L", "P", "I", "I;16", "1"):
                raise ValueError(
                    f"{position} is a PIL image in mode {sketch.mode!r}; sketches must be class-index maps (mode 'L', "
                    "'P' or 'I', or a 2-D integer array). Map colours to class ids first."
                )
            return np.asarray(sketch).astype(np.int64)
        if not _is_array(sketch):
            raise TypeError(
                f"{position} must be a 2-D integer array, tensor or PIL image, got {type(sketch).__name__}."
            )
        array = _as_numpy(sketch)
        if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
            array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:-1])
        if array.ndim != 2:
            raise ValueError(f"{position} must be a 2-D class-index map (H, W), got shape {array.shape}.")
        if not np.issubdtype(array.dtype, np.integer):
            if np.issubdtype(array.dtype, np.bool_):
                array = array.astype(np.int64)
            else:
                raise TypeError(f"{position} must hold integer class ids, got dtype {array.dtype}.")
        return array.astype(np.int64)

    def _process_sketch(
        self, array: np.ndarray, position: str, num_classes, do_resize, size, do_center_crop, crop_size
    ) -> np.ndarray:
        if array.size:
            low, high = int(array.min()), int(array.max())
            if low < 0 or (num_classes is not None and high >= num_classes):
                bound = f"[0, {num_classes})" if num_classes is not None else "non-negative"
                raise ValueError(
                    f"{position} holds class ids in [{low}, {high}] but ids must be {bound}"
                    + (f" (num_sketch_classes={num_classes})" if num_classes is not None else "")
                    + ". Map ignore labels (such as 255) to a real class first."
                )
        if do_resize:
            new_height, new_width = self._target_geometry(array.shape[0], array.shape[1], size)
            if do_center_crop:
                array = _slice_to_the_crop(array, (0, 1), (int(new_height), int(new_width)),
                                           (crop_size.height, crop_size.width))
                new_height, new_width = self._target_geometry(array.shape[0], array.shape[1], size)
            if (new_height, new_width) != array.shape:
                resized = PIL.Image.fromarray(array.astype(np.int32)).resize(
                    (new_width, new_height), PIL.Image.NEAREST
                )
                array = np.asarray(resized).astype(np.int64)
        if do_center_crop:
            array = np_center_crop(
                array[None],
                size=(crop_size.height, crop_size.width),
                data_format=ChannelDimension.FIRST,
                input_data_format=ChannelDimension.FIRST,
            )[0]
        return array.astype(np.int64)

    def _sketch_settings(self, kwargs: dict) -> dict:
        unknown = set(kwargs) - {"num_sketch_classes", "do_resize", "size", "do_center_crop", "crop_size"}
        if unknown:
            raise TypeError(f"Unexpected keyword arguments for sketches: {sorted(unknown)}.")
        settings = self._standardize_kwargs(
            size=kwargs.get("size", self.size),
            crop_size=kwargs.get("crop_size", self.crop_size),
            default_to_square=self.default_to_square,
        )
        return dict(
            num_classes=kwargs.get("num_sketch_classes", self.num_sketch_classes),
            do_resize=kwargs.get("do_resize", self.do_resize),
            size=settings["size"],
            do_center_crop=kwargs.get("do_center_crop", self.do_center_crop),
            crop_size=settings["crop_size"],
        )

    def preprocess_sketches(self, sketches, return_tensors: str | None = None, **kwargs) -> BatchFeature:
        """
        Args:
            sketches: a class-index map (2-D integer array/tensor, or PIL image in mode 'L'/'P'/'I'), a batch array
                `(N, H, W)`, or a list of maps.
            num_sketch_classes (`int`, *optional*): overrides the processor's.

        Returns:
            [`BatchFeature`] with `sketch_maps` `(N, crop_h, crop_w)` int64.
        """
        settings = self._sketch_settings(kwargs)
        maps = self._flatten_sketches(sketches)
        processed = [
            self._process_sketch(self._sketch_to_array(m, f"Sketch {i}"), f"Sketch {i}", **settings)
            for i, m in enumerate(maps)
        ]
        return BatchFeature(data={"sketch_maps": np.stack(processed)}, tensor_type=return_tensors)

    def preprocess_video_sketches(self, sketch_videos, return_tensors: str | None = None, **kwargs) -> BatchFeature:
        """
        Args:
            sketch_videos: an array `(B, T, H, W)`, or a list (batch) of videos, each a list of maps or an array
                `(T, H, W)`. All videos of a batch need the same frame count.

        Returns:
            [`BatchFeature`] with `sketch_maps` `(B, T, crop_h, crop_w)` int64.
        """
        settings = self._sketch_settings(kwargs)
        if _is_array(sketch_videos):
            array = _as_numpy(sketch_videos)
            if array.ndim != 4:
                raise ValueError(f"A batch of video sketches must be (B, T, H, W), got shape {array.shape}.")
            videos = [list(video) for video in array]
        elif isinstance(sketch_videos, Sequence) and len(sketch_videos) > 0:
            videos = [list(_as_numpy(v)) if _is_array(v) else list(v) for v in sketch_videos]
        else:
            raise ValueError("`sketch_videos` must be a non-empty list of videos or a (B, T, H, W) array.")
        counts = [len(video) for video in videos]
        if 0 in counts:
            raise ValueError(f"Video sketch {counts.index(0)} has no frames: a video needs at least one frame.")
        if len(set(counts)) > 1:
            raise ValueError(f"Video sketches of one batch must have the same number of frames, got {counts}.")
        processed = np.stack(
            [
                np.stack(
                    [
                        self._process_sketch(
                            self._sketch_to_array(m, f"Frame {t} of video sketch {b}"),
                            f"Frame {t} of video sketch {b}",
                            **settings,
                        )
                        for t, m in enumerate(video)
                    ]
                )
                for b, video in enumerate(videos)
            ]
        )
        return BatchFeature(data={"sketch_maps": processed}, tensor_type=return_tensors)

    @staticmethod
    def _flatten_sketches(sketches) -> list:
        if isinstance(sketches, PIL.Image.Image):
            return [sketches]
        if _is_array(sketches):
            array = _as_numpy(sketches)
            if array.ndim == 2:
                return [array]
            if array.ndim == 3:
                return list(array)
            raise ValueError(f"Sketches must be (H, W) or a batch (N, H, W), got shape {array.shape}.")
        if isinstance(sketches, Sequence) and not isinstance(sketches, str):
            if len(sketches) == 0:
                raise ValueError("Got an empty list of sketches.")
            return list(sketches)
        raise TypeError(f"`sketches` must be a class map, an array or a list of maps, got {type(sketches).__name__}.")

    # ----------------------------------------------------------------------------------------------------------------
    # Post-processing

    def postprocess(self, pixel_values, output_type: str = "pil"):
        """
        Turn decoded pixels back into pictures.

        Args:
            pixel_values (`torch.Tensor` or `np.ndarray`): `(B, 3, H, W)` images or `(B, T, 3, H, W)` videos, in the
                normalised range (`[-1, 1]` with the default mean and std).
            output_type (`str`): `"pil"`: a list of PIL images (images) or a list of frame lists (videos); `"np"`:
                float32 in `[0, 1]`, channels last, `(B, H, W, 3)` / `(B, T, H, W, 3)`; `"pt"`: float in `[0, 1]`,
                channels first, same shape as the input.
        """
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        tensor = torch.as_tensor(
            _as_numpy(pixel_values) if not isinstance(pixel_values, torch.Tensor) else pixel_values
        )
        if tensor.ndim not in (4, 5) or tensor.shape[-3] != 3:
            raise ValueError(
                f"`pixel_values` must be (B, 3, H, W) or (B, T, 3, H, W), got shape {tuple(tensor.shape)}."
            )
        tensor = tensor.detach().float().cpu()
        mean = torch.tensor(self.image_mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.image_std, dtype=torch.float32).view(3, 1, 1)
        unit = (tensor * std + mean).clamp(0.0, 1.0)
        if output_type == "pt":
            return unit
        channels_last = unit.movedim(-3, -1).numpy()
        if output_type == "np":
            return channels_last
        as_uint8 = (channels_last * 255.0).round().astype(np.uint8)
        if as_uint8.ndim == 4:
            return [PIL.Image.fromarray(image) for image in as_uint8]
        return [[PIL.Image.fromarray(frame) for frame in video] for video in as_uint8]

    def postprocess_sketches(self, class_maps, output_type: str = "pt"):
        """
        Args:
            class_maps (`torch.Tensor` or `np.ndarray`): `(B, H, W)` or `(B, T, H, W)` class ids.
            output_type (`str`): `"pt"` (int64 tensor), `"np"` (int64 array) or `"pil"` (palette images, mode 'P',
                whose pixel values are the class ids; a list, or a list of frame lists for videos).
        """
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        array = _as_numpy(class_maps).astype(np.int64)
        if array.ndim not in (3, 4):
            raise ValueError(f"`class_maps` must be (B, H, W) or (B, T, H, W), got shape {array.shape}.")
        if output_type == "pt":
            return torch.from_numpy(array)
        if output_type == "np":
            return array
        if array.size and array.max() > 255:
            raise ValueError("Palette images hold at most 256 classes; use output_type='np' or 'pt'.")
        palette = _sketch_palette()

        def to_image(class_map: np.ndarray) -> PIL.Image.Image:
            # putpalette turns the 'L' image into a 'P' image without touching pixel values (convert() would remap).
            image = PIL.Image.fromarray(class_map.astype(np.uint8))
            image.putpalette(palette)
            return image

        if array.ndim == 3:
            return [to_image(m) for m in array]
        return [[to_image(m) for m in video] for video in array]
