"""The eight NUWA tasks of the paper, in one place.

Everything that names a task reads this table: the pipelines (task names, classes, registration), the CLI, the
diffusers-style entry point, the training mixture (the five trainable tasks), the demo page and the evaluation.

| code | pipeline task               | condition | output | trained in     | pipeline inputs (required; optional)   |
|------|-----------------------------|-----------|--------|----------------|----------------------------------------|
| T2I  | nuwa-text-to-image          | text      | image  | pre-training   | prompt                                 |
| T2V  | nuwa-text-to-video          | text      | video  | pre-training   | prompt                                 |
| V2V  | nuwa-video-prediction       | none      | video  | pre-training   | video                                  |
| S2I  | nuwa-sketch-to-image        | sketch    | image  | fine-tuning    | sketch                                 |
| I2I  | nuwa-image-completion       | none      | image  | zero-shot      | image; mask, prompt                    |
| TI2I | nuwa-image-manipulation     | text      | image  | zero-shot      | image, prompt, mask                    |
| S2V  | nuwa-sketch-to-video        | sketch    | video  | fine-tuning    | sketch_video                           |
| TV2V | nuwa-video-manipulation     | text      | video  | zero-shot      | video, prompt                          |

Frame options (keywords that count frames): T2V num_frames; V2V num_condition_frames, num_frames_to_predict; TV2V
num_condition_frames, num_frames. A video input also takes an image (its one first frame). The front ends (the
``nuwa-hf generate`` flags, the diffusers-style entry point's arguments) read which inputs and frame options a task
takes from here, under the names of :data:`FRONT_END_NAMES` (``sketch_video`` is ``--sketch`` / ``sketch=`` there).

The zero-shot tasks need no training of their own: they reuse a model trained on the other five by teacher-forcing
the known tokens at generation time (section 3.4 of the paper).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple


@dataclass(frozen=True)
class NuwaTaskInfo:
    """One task of the paper.

    Attributes:
        code: the paper's short code ("T2I"); ``code.lower()`` ("t2i") names the trainable tasks in training.
        name: the transformers pipeline task ("nuwa-text-to-image").
        title: a human title ("Text-to-image").
        condition: what the encoder reads: "text", "sketch" or "none" (the constant "None" condition).
        visual: what the decoder generates: "image" or "video".
        stage: "pretraining" or "finetuning" (how the paper trains it), or "zero-shot".
        pipeline_class: the class name in ``nuwa_hf.pipelines``.
        inputs: the pipeline's required input arguments, in call order.
        optional_inputs: inputs the pipeline also takes.
        description: one line for help texts.
        frame_options: the pipeline's own keyword options that count frames (those of its ``request_options``,
            besides ``include_condition_frames``), in the order help texts list them.
    """

    code: str
    name: str
    title: str
    condition: str
    visual: str
    stage: str
    pipeline_class: str
    inputs: Tuple[str, ...]
    optional_inputs: Tuple[str, ...] = ()
    description: str = ""
    frame_options: Tuple[str, ...] = ()

    @property
    def pipeline_module(self) -> str:
        """The module of :attr:`pipeline_class`: one file per task, named after the task (``nuwa_hf.pipelines.text_to_image``)."""
        return "nuwa_hf.pipelines." + self.name[len("nuwa-"):].replace("-", "_")

    @property
    def trainable(self) -> bool:
        return self.stage != "zero-shot"

    @property
    def makes_video(self) -> bool:
        return self.visual == "video"

    @property
    def takes_image_as_video(self) -> bool:
        """A video input that may be given as one image (its first frame), where the task takes no image of its own."""
        return "video" in self.inputs and "image" not in self.inputs + self.optional_inputs

    def output_frames(self, trained_frames: int, num_frames: Optional[int] = None,
                      num_condition_frames: Optional[int] = None, num_frames_to_predict: Optional[int] = None) -> int:
        """Frames of one output (1 for images) with these frame options (None: the default, the trained length)."""
        if not self.makes_video:
            return 1
        if "num_frames" in self.frame_options:
            return num_frames or trained_frames
        if "num_frames_to_predict" in self.frame_options:  # the given frames, then the predicted ones
            return (num_condition_frames or trained_frames) + (num_frames_to_predict or trained_frames)
        return trained_frames

    def call_arguments(self, inputs: Mapping[str, Any], **frame_options: Optional[int]) -> Tuple[tuple, dict]:
        """The pipeline call's positional arguments and keywords for one input, read off this row: ``inputs`` (named
        as the table names them: ``prompt``, ``image``, ``video``, ``sketch``, ``sketch_video``, ``mask``) give the
        required inputs in call order and the optional ones given (not None) as keywords; ``frame_options`` (only
        this task's, :attr:`frame_options`) that are not None become keywords too.

        Raises:
            ValueError: a required input is missing (None).
            TypeError: an input or frame option this task does not take.
        """
        extra = [name for name in inputs if name not in self.inputs + self.optional_inputs]
        extra += [name for name in frame_options if name not in self.frame_options]
        if extra:
            taken = ", ".join(self.inputs + self.optional_inputs + self.frame_options)
            raise TypeError(f"{self.name} does not take {', '.join(extra)} (it takes {taken}).")
        missing = [name for name in self.inputs if inputs.get(name) is None]
        if missing:
            raise ValueError(f"{self.name} needs {', '.join(missing)}.")
        keywords = {name: inputs[name] for name in self.optional_inputs if inputs.get(name) is not None}
        keywords.update({name: value for name, value in frame_options.items() if value is not None})
        return tuple(inputs[name] for name in self.inputs), keywords


TASKS: Tuple[NuwaTaskInfo, ...] = (
    NuwaTaskInfo("T2I", "nuwa-text-to-image", "Text-to-image", "text", "image", "pretraining",
                 "NuwaTextToImagePipeline", ("prompt",), description="text-to-image"),
    NuwaTaskInfo("T2V", "nuwa-text-to-video", "Text-to-video", "text", "video", "pretraining",
                 "NuwaTextToVideoPipeline", ("prompt",), description="text-to-video", frame_options=("num_frames",)),
    NuwaTaskInfo("V2V", "nuwa-video-prediction", "Video prediction", "none", "video", "pretraining",
                 "NuwaVideoPredictionPipeline", ("video",),
                 description="video prediction (the 'None' condition; frames teacher-forced)",
                 frame_options=("num_condition_frames", "num_frames_to_predict")),
    NuwaTaskInfo("S2I", "nuwa-sketch-to-image", "Sketch-to-image", "sketch", "image", "finetuning",
                 "NuwaSketchToImagePipeline", ("sketch",), description="sketch-to-image (segmentation map)"),
    NuwaTaskInfo("I2I", "nuwa-image-completion", "Image completion", "none", "image", "zero-shot",
                 "NuwaImageCompletionPipeline", ("image",), ("mask", "prompt"),
                 description="image completion (zero-shot)"),
    NuwaTaskInfo("TI2I", "nuwa-image-manipulation", "Text-guided image manipulation", "text", "image", "zero-shot",
                 "NuwaImageManipulationPipeline", ("image", "prompt", "mask"),
                 description="text-guided image manipulation (zero-shot)"),
    NuwaTaskInfo("S2V", "nuwa-sketch-to-video", "Sketch-to-video", "sketch", "video", "finetuning",
                 "NuwaSketchToVideoPipeline", ("sketch_video",),
                 description="sketch-to-video (a segmentation map per frame)"),
    NuwaTaskInfo("TV2V", "nuwa-video-manipulation", "Text-guided video manipulation", "text", "video", "zero-shot",
                 "NuwaVideoManipulationPipeline", ("video", "prompt"),
                 description="text-guided video manipulation (zero-shot)",
                 frame_options=("num_condition_frames", "num_frames")),
)

TASK_NAMES: Tuple[str, ...] = tuple(task.name for task in TASKS)
TASK_CODES = {task.code: task.name for task in TASKS}
TASK_CODE_OF = {task.name: task.code for task in TASKS}

# The name a pipeline input goes by in the front ends (nuwa-hf's flags, the diffusers face's arguments), where it is not
# its own: sketch-to-video's per-frame maps are given as --sketch / sketch=, as sketch-to-image's single map is.
FRONT_END_NAMES = {"sketch_video": "sketch"}


def front_end_name(pipeline_input: str) -> str:
    """The front ends' name of a pipeline input of the table (``"sketch_video"`` -> ``"sketch"``)."""
    return FRONT_END_NAMES.get(pipeline_input, pipeline_input)


def get_task_info(task: str) -> NuwaTaskInfo:
    """The task named by a pipeline name (``"nuwa-text-to-video"``), a name without the prefix (``"text-to-video"``)
    or a paper code in any case (``"T2V"``, ``"t2v"``).

    Raises:
        TypeError: ``task`` is not a string.
        ValueError: an unknown task, listing the known ones.
    """
    if not isinstance(task, str):
        raise TypeError(f"A task is a string such as 'nuwa-text-to-image' or 'T2I', got {type(task).__name__}.")
    key = task.strip()
    for info in TASKS:
        if key.upper() == info.code or key in (info.name, info.name[len("nuwa-"):]):
            return info
    raise ValueError(
        f"Unknown task {task!r}. Choose one of: {', '.join(TASK_NAMES)} (or the paper's codes {', '.join(TASK_CODES)})."
    )
