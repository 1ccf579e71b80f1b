"""One transformers pipeline per NUWA task, registered under namespaced task names.

    >>> from transformers import pipeline
    >>> import nuwa_hf                                    # registers the model and these pipelines
    >>> video = pipeline("nuwa-text-to-video", model="checkpoints/nuwa-tiny")("the digit 3 is moving up then down")

| task name                 | paper | class                          | inputs                                   |
|---------------------------|-------|--------------------------------|------------------------------------------|
| nuwa-text-to-image        | T2I   | NuwaTextToImagePipeline        | prompt                                   |
| nuwa-text-to-video        | T2V   | NuwaTextToVideoPipeline        | prompt, num_frames                       |
| nuwa-video-prediction     | V2V   | NuwaVideoPredictionPipeline    | video (first frames), frames to predict  |
| nuwa-sketch-to-image      | S2I   | NuwaSketchToImagePipeline      | class-index map                          |
| nuwa-image-completion     | I2I   | NuwaImageCompletionPipeline    | image, mask (default "bottom half")      |
| nuwa-image-manipulation   | TI2I  | NuwaImageManipulationPipeline  | image, prompt, mask                      |
| nuwa-sketch-to-video      | S2V   | NuwaSketchToVideoPipeline      | class-index maps per frame               |
| nuwa-video-manipulation   | TV2V  | NuwaVideoManipulationPipeline  | video (first frame kept), prompt         |

Importing this package registers them (:func:`register_pipelines`, idempotent). For diffusers users,
:class:`NuwaDiffusionPipeline` runs all eight tasks behind one ``DiffusionPipeline`` (same engine, same results).
"""

from __future__ import annotations

from transformers import AutoModelForSeq2SeqLM
from transformers.pipelines import PIPELINE_REGISTRY

from ..lazy_imports import lazy_exports
from ..tasks import TASKS

from .image_completion import NuwaImageCompletionPipeline
from .image_manipulation import NuwaImageManipulationPipeline
from .pipeline_base import (
    TASK_CODES,
    TASK_NAMES,
    NuwaModelFolderError,
    NuwaPipeline,
    load_nuwa_processor,
    resolve_task_name,
)
from .regions import REGION_SHORTCUTS, region_to_token_mask
from .reranking import CandidateScorer, TextVisualScorer
from .sketch_to_image import NuwaSketchToImagePipeline
from .sketch_to_video import NuwaSketchToVideoPipeline
from .text_to_image import NuwaTextToImagePipeline
from .text_to_video import NuwaTextToVideoPipeline
from .video_manipulation import NuwaVideoManipulationPipeline
from .video_prediction import NuwaVideoPredictionPipeline

# Task name -> class, from the task table (nuwa_hf.tasks), which names each task's class.
PIPELINE_CLASSES = {task.name: globals()[task.pipeline_class] for task in TASKS}


def register_pipelines() -> None:
    """Register the eight NUWA tasks with transformers' ``PIPELINE_REGISTRY`` (safe to call more than once)."""
    for task, pipeline_class in PIPELINE_CLASSES.items():
        known = PIPELINE_REGISTRY.supported_tasks.get(task)
        if known is not None and known.get("impl") is pipeline_class:
            continue
        PIPELINE_REGISTRY.register_pipeline(
            task, pipeline_class=pipeline_class, pt_model=AutoModelForSeq2SeqLM, type="multimodal"
        )


def load_pipeline(task: str, model, **kwargs) -> NuwaPipeline:
    """``transformers.pipeline`` for a NUWA task given by name or paper code (``"T2V"``), with the model registered.

    Example:
        >>> generate = load_pipeline("T2I", "checkpoints/nuwa-tiny")
    """
    import transformers

    register_pipelines()
    return transformers.pipeline(resolve_task_name(task), model=model, **kwargs)


register_pipelines()

# The diffusers face imports diffusers: loaded when first named (``from nuwa_hf.pipelines import NuwaDiffusionPipeline``).
__getattr__, __dir__ = lazy_exports(__name__, globals(), {
    ".diffusers_pipeline": ("NuwaDiffusionPipeline", "NuwaPipelineOutput"),
})

__all__ = [
    "CandidateScorer",
    "NuwaDiffusionPipeline",
    "NuwaPipelineOutput",
    "NuwaImageCompletionPipeline",
    "NuwaImageManipulationPipeline",
    "NuwaModelFolderError",
    "NuwaPipeline",
    "NuwaSketchToImagePipeline",
    "NuwaSketchToVideoPipeline",
    "NuwaTextToImagePipeline",
    "NuwaTextToVideoPipeline",
    "NuwaVideoManipulationPipeline",
    "NuwaVideoPredictionPipeline",
    "PIPELINE_CLASSES",
    "REGION_SHORTCUTS",
    "region_to_token_mask",
    "TASK_CODES",
    "TASK_NAMES",
    "TextVisualScorer",
    "load_nuwa_processor",
    "load_pipeline",
    "register_pipelines",
    "resolve_task_name",
]
