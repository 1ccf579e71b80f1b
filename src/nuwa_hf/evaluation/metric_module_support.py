"""What the ``evaluate`` metric scripts in the repository's ``metrics/`` folder share (they need the ``evaluate``
extra: ``pip install "nuwa-hf[evaluate]"``; nothing else in the package imports this module).

``evaluate`` stores every input in an Arrow table before computing. Raw pixel arrays would go through Python lists
(seconds per hundred images), so the scripts' ``add_batch`` first turns images into PIL images, which ``datasets``
stores as PNG bytes (lossless for 8-bit images, about 1 s per 2,000 64x64 frames). Consequences worth knowing:
  * the modules see images as 8-bit: float inputs in [0, 1] are rounded to 1/255 steps (the functions in
    ``nuwa_hf.evaluation`` take floats as they are);
  * ``evaluate`` pairs predictions and references row by row, so set metrics (FID, KID, FVD) need equally many of
    each through a module; call the functions directly for sets of different sizes.

Each script is a :class:`VisualMetric`: its texts as class attributes, the metric function called in ``_compute``,
and an override where its inputs differ (references that are captions, labels or none; class maps). The scripts
import only from here and from the metric functions. ``evaluate.load`` takes the first class derived from
``evaluate.EvaluationModule`` in a script that is not abstract, so :class:`VisualMetric` is abstract and a script
must not import another such class.
"""

from __future__ import annotations

import abc
from typing import Any, List, Optional

import numpy as np
from PIL import Image as PILImage

from ..lazy_imports import import_optional
from .image_inputs import as_float_videos, as_label_maps, as_uint8_images

datasets = import_optional("datasets", None, "The evaluate metric modules (metrics/)")
evaluate = import_optional("evaluate", None, "The evaluate metric modules (metrics/)")

IMAGE = datasets.Image()
VIDEO = datasets.List(datasets.Image())


def pil_images(images: Any) -> List[PILImage.Image]:
    """Any image set -> list of RGB PIL images (8-bit)."""
    if isinstance(images, (list, tuple)) and images and all(isinstance(item, PILImage.Image) for item in images):
        return [item if item.mode in ("RGB", "L") else item.convert("RGB") for item in images]
    return [PILImage.fromarray(array) for array in as_uint8_images(images)]


def pil_videos(videos: Any) -> List[List[PILImage.Image]]:
    """Any video set -> list (videos) of lists (frames) of RGB PIL images (8-bit)."""
    if isinstance(videos, (list, tuple)) and videos and all(
        isinstance(video, (list, tuple)) and video and all(isinstance(frame, PILImage.Image) for frame in video)
        for video in videos
    ):
        return [list(video) for video in videos]
    clips = as_float_videos(videos)
    frames = (clips * 255).round().byte().permute(0, 1, 3, 4, 2).numpy()
    return [[PILImage.fromarray(frame) for frame in clip] for clip in frames]


def pil_label_maps(maps: Any) -> List[PILImage.Image]:
    """Class maps (N, H, W) -> 8-bit ("L") or 16-bit ("I;16") PIL images, which PNG stores losslessly."""
    labels = as_label_maps(maps).numpy()
    if labels.size and labels.min() < 0:
        raise ValueError("Class maps must hold non-negative ids: map the void label to a class id and pass "
                         "ignore_index.")
    if labels.size and labels.max() > 65535:
        raise ValueError("More than 65,536 classes cannot go through the evaluate module; call segmentation_scores.")
    dtype = np.uint8 if labels.size == 0 or labels.max() < 256 else np.uint16
    return [PILImage.fromarray(label_map.astype(dtype)) for label_map in labels]


def label_maps_of(images: List[PILImage.Image]) -> np.ndarray:
    """Decoded class-map PNGs -> int64 (N, H, W)."""
    return np.stack([np.asarray(image, dtype=np.int64) for image in images])


def load_project_scorer(scorer: Any, scorer_path: Optional[str], what: str) -> Any:
    """The scorer object given, else the one saved at ``scorer_path``; raises naming both options if neither is."""
    if scorer is not None:
        return scorer
    if scorer_path is not None:
        from .scorers.scorer_base import load_scorer

        return load_scorer(scorer_path)
    raise ValueError(f"This metric needs {what}: pass scorer=<object> or scorer_path=<folder saved with "
                     "save_pretrained>.")


def check_config(config_name: Optional[str], allowed: tuple) -> str:
    """The module's configuration ("image" or "video"), defaulting to the first allowed one."""
    name = config_name or allowed[0]
    if name == "default":
        name = allowed[0]
    if name not in allowed:
        raise ValueError(f"Unknown configuration {name!r}: evaluate.load(path, config_name=...) takes one of "
                         f"{allowed}.")
    return name


class VisualMetric(evaluate.Metric, metaclass=abc.ABCMeta):
    """What every script in ``metrics/`` shares: ``_info`` from the class's texts, and an ``add_batch`` that turns
    generated pictures (and by default paired reference pictures of the same kind) into 8-bit PIL images, which
    ``evaluate`` stores as PNG. A script sets the texts, writes ``_compute`` and overrides a hook where its inputs
    differ.

    Configurations: ``CONFIGS`` (the first is the default); "image": one picture per row, arrays (N, H, W[, C]) or
    (N, C, H, W), uint8 or float in [0, 1], or PIL images; "video": one clip per row, (N, T, H, W, C) or
    (N, T, C, H, W), or lists of PIL frames.
    """

    DESCRIPTION: str = ""
    INPUTS: str = ""  # the Args / Returns text (evaluate's inputs_description)
    CITATION: str = ""
    REFERENCE_URLS: tuple = ()
    CONFIGS: tuple = ("image",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__ is None:
            cls.__doc__ = cls.DESCRIPTION + cls.INPUTS

    @property
    def kind(self) -> str:
        """The configuration of this instance ("image" or "video")."""
        return check_config(self.config_name, self.CONFIGS)

    def visual_feature(self):
        """How ``evaluate`` stores one row of pictures of this configuration."""
        return VIDEO if self.kind == "video" else IMAGE

    def convert_visual(self, pictures: Any) -> list:
        """Pictures of this configuration -> what :meth:`visual_feature` stores."""
        return pil_videos(pictures) if self.kind == "video" else pil_images(pictures)

    def references_feature(self):
        """How ``evaluate`` stores one reference: by default the paired pictures; None when the metric takes no
        references; a list of features for references that may come in several types."""
        return self.visual_feature()

    def convert_references(self, references: Any) -> list:
        return self.convert_visual(references)

    def _info(self):
        visual, references = self.visual_feature(), self.references_feature()
        if references is None:
            features = datasets.Features({"predictions": visual})
        elif isinstance(references, list):
            features = [datasets.Features({"predictions": visual, "references": option}) for option in references]
        else:
            features = datasets.Features({"predictions": visual, "references": references})
        return evaluate.MetricInfo(description=self.DESCRIPTION, citation=self.CITATION,
                                   inputs_description=self.INPUTS, features=features,
                                   reference_urls=list(self.REFERENCE_URLS))

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions (and references), converted to what ``evaluate`` stores."""
        if self.references_feature() is None:
            return super().add_batch(predictions=self.convert_visual(predictions), **kwargs)
        return super().add_batch(predictions=self.convert_visual(predictions),
                                 references=self.convert_references(references), **kwargs)

    @abc.abstractmethod
    def _compute(self, *, predictions=None, references=None, **kwargs) -> dict:
        """The metric, from the stored rows (PIL images, or lists of PIL frames for videos)."""
