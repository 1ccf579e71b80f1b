"""A diffusers-style entry point: one ``DiffusionPipeline`` for all eight NUWA tasks.

For people who live in diffusers: ``from_pretrained`` / ``save_pretrained`` / ``.to()`` / ``set_progress_bar_config``,
``generator=``, ``output_type=``, ``return_dict=`` and an output object with ``.images`` (image tasks) or ``.frames``
(video tasks), as diffusers' text-to-image and text-to-video pipelines return.

    >>> from nuwa_hf import NuwaDiffusionPipeline         # also nuwa_hf.pipelines.NuwaDiffusionPipeline
    >>> pipe = NuwaDiffusionPipeline.from_pretrained("checkpoints/nuwa-tiny").to("cpu")
    >>> image = pipe("text-to-image", prompt="a red 7", generator=torch.Generator().manual_seed(0)).images[0]
    >>> frames = pipe("T2V", prompt="the digit 3 is moving up then down", num_frames=8).frames[0]
    >>> edited = pipe("image-manipulation", image=image, prompt="a blue 7", mask="top left").images[0]

Why this shape: NUWA is autoregressive, not a diffusion model, so there is no scheduler and no denoising loop to
share with diffusers' pipelines; what diffusers users expect is the surface (loading, device moves, generators, output
objects). This class gives that surface and delegates the work to the same engine as the transformers pipelines
(:class:`~nuwa_hf.pipelines.pipeline_base.NuwaPipeline`), so both entry points give identical results for the same
seed. The model folder keeps the transformers layout (NUWA with its VQ-GANs at the root, processor files) rather than
diffusers' one-subfolder-per-component layout, so one folder (or Hub repository) serves ``transformers.pipeline``,
this class and the ``nuwa-hf`` command alike; ``save_pretrained`` writes that layout too.

Load with this class, not with diffusers' generic ``DiffusionPipeline.from_pretrained``: model folders hold data only
(no ``model_index.json`` and no pipeline module for diffusers to import), and this class is where the code lives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from ..tasks import front_end_name, get_task_info
from .pipeline_base import NuwaPipeline, load_nuwa_processor, resolve_task_name
from .sampling_options import check_count

# Arguments of the transformers pipelines that this entry point takes under another name (it passes them itself, so
# giving them in **options would collide).
FACE_NAMES = {"num_frames_to_predict": "num_frames"}


def task_arguments(task: str) -> tuple:
    """The arguments of ``__call__`` a task takes beyond the options every task takes, read off the task table
    (:mod:`nuwa_hf.tasks`): its inputs under the front ends' names (a video input also as ``image=``, its first
    frame), then its frame options under this entry point's names (:data:`FACE_NAMES`). Any other one is an error."""
    info = get_task_info(task)
    names = []
    for name in info.inputs + info.optional_inputs:
        names.append(front_end_name(name))
        if name == "video" and info.takes_image_as_video:
            names.append("image")
    names += [FACE_NAMES.get(option, option) for option in info.frame_options]
    return tuple(names)


def _outputs_per_input(num_images_per_prompt: Optional[int], num_outputs_per_input: Optional[int]) -> int:
    """The outputs-per-input count from diffusers' name or the pipelines' name (either; both only if equal)."""
    given = {name: check_count(name, value) for name, value in (("num_images_per_prompt", num_images_per_prompt),
                                                                ("num_outputs_per_input", num_outputs_per_input))
             if value is not None}
    if len(set(given.values())) > 1:
        raise TypeError(
            f"num_images_per_prompt={given['num_images_per_prompt']} and num_outputs_per_input="
            f"{given['num_outputs_per_input']} name the same count (outputs per input) with different values: give one."
        )
    return next(iter(given.values()), 1)


@dataclass
class NuwaPipelineOutput(BaseOutput):
    """``images``: a flat list of PIL images (or an array ``(N, H, W, 3)``) for image tasks; ``frames``: a list of
    videos, each a list of PIL frames (or an array ``(N, T, H, W, 3)``) for video tasks. The other field is None."""

    images: Optional[Union[list, np.ndarray, torch.Tensor]] = None
    frames: Optional[Union[list, np.ndarray, torch.Tensor]] = None


class NuwaDiffusionPipeline(DiffusionPipeline):
    """All eight NUWA tasks behind one diffusers ``DiffusionPipeline`` (see the module docstring).

    Components: ``transformer`` (``NuwaForConditionalGeneration``, which owns the VQ-GAN ``transformer.vqgan`` and
    the sketch VQ-GAN ``transformer.sketch_vqgan``) and ``processor`` (``NuwaProcessor``).
    """

    model_cpu_offload_seq = "transformer"

    def __init__(self, transformer, processor):
        super().__init__()
        self.register_modules(transformer=transformer, processor=processor)
        self._task_pipelines: dict[str, NuwaPipeline] = {}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **kwargs) -> "NuwaDiffusionPipeline":
        """Load a NUWA model folder or Hub repository (the layout ``transformers.pipeline`` and ``nuwa-hf`` read).

        Keyword arguments go to ``AutoModelForSeq2SeqLM.from_pretrained`` (``revision``, ``cache_dir``, ``dtype`` ...).
        Needs no ``trust_remote_code`` and no ``model_index.json``.
        """
        from transformers import AutoModelForSeq2SeqLM

        kwargs.setdefault("use_safetensors", True)
        transformer = AutoModelForSeq2SeqLM.from_pretrained(pretrained_model_name_or_path, **kwargs).eval()
        hub_kwargs = {k: kwargs[k] for k in ("revision", "cache_dir", "token", "local_files_only") if k in kwargs}
        processor = load_nuwa_processor(pretrained_model_name_or_path, **hub_kwargs)
        return cls(transformer=transformer, processor=processor)

    def save_pretrained(self, save_directory: Union[str, os.PathLike], **kwargs) -> None:
        """Write the model folder (NUWA with its VQ-GANs at the root, safetensors; the processor files; a card), which
        this class, ``transformers.pipeline`` and the ``nuwa-hf`` command load. ``remote_code``: as in the model's
        ``save_pretrained``."""
        remote_code = kwargs.get("remote_code")
        os.makedirs(save_directory, exist_ok=True)
        self.transformer.save_pretrained(save_directory, safe_serialization=True, remote_code=remote_code)
        self.processor.save_pretrained(save_directory, remote_code=remote_code)

    def _task_pipeline(self, task: str) -> NuwaPipeline:
        from . import PIPELINE_CLASSES

        pipe = self._task_pipelines.get(task)
        if pipe is None or pipe.model is not self.transformer or pipe.device != self.transformer.device:
            pipe = PIPELINE_CLASSES[task](model=self.transformer, processor=self.processor, task=task,
                                          device=self.transformer.device)
            self._task_pipelines[task] = pipe
        config = dict(getattr(self, "_progress_bar_config", {}) or {})
        pipe.set_progress_bar_config(**config)
        return pipe

    @torch.no_grad()
    def __call__(
        self,
        task: str,
        prompt: Optional[Union[str, list]] = None,
        image: Any = None,
        video: Any = None,
        sketch: Any = None,
        mask: Any = None,
        *,
        num_frames: Optional[int] = None,
        num_images_per_prompt: Optional[int] = None,
        num_outputs_per_input: Optional[int] = None,
        num_condition_frames: Optional[int] = None,
        generator: Optional[Union[torch.Generator, list]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        **options,
    ):
        """Run one task.

        Args:
            task (`str`): e.g. ``"text-to-image"``, ``"nuwa-text-to-video"`` or a paper code (``"T2I"`` ... ``"TV2V"``).
            prompt: text (T2I, T2V, TI2I, TV2V; optional for I2I).
            image: an image (I2I, TI2I; or the first frame for V2V / TV2V). video: frames (V2V, TV2V).
            sketch: a class-index map (S2I) or one per frame (S2V). mask: the region to regenerate (I2I, TI2I).
            num_frames: video length (T2V, TV2V) or frames to predict (V2V).
            num_images_per_prompt: outputs per input (images or videos), diffusers' name; default 1.
            num_outputs_per_input: the same count under the transformers pipelines' name (one name in every task);
                give either (or both with the same value).
            num_condition_frames: leading frames of ``video`` kept (V2V, TV2V).
            generator: a ``torch.Generator`` for reproducible sampling, or a list with one per input (or per output
                image / video), as in diffusers: a batch then equals separate calls with the same generators.
            output_type: "pil", "np", "pt", or "latent": NUWA's latents, the VQ-GAN token grids as one int64 tensor
                ``(N, h, w)`` (images) or ``(N, T, h, w)`` (videos); ``pipe.transformer.decode_visual_tokens(latents)``
                then ``pipe.processor.postprocess(...)`` gives what "pil" would.
            return_dict: return a :class:`NuwaPipelineOutput` (else a tuple ``(images_or_frames,)``).
            An argument the task does not take (e.g. ``sketch=`` for text-to-image) is a ``TypeError``; the options are
            checked once, by the task pipeline this face calls (the model's rules), as in the transformers pipelines.
            options: every option of the transformers pipelines, passed on to the task's (their docstrings):
                ``temperature``, ``top_k``, ``top_p``, ``guidance_scale``, ``do_sample``, ``generation_config``,
                ``logits_processor``, ``scorer``, ``num_candidates``, ``seed``, ``batch_size``,
                ``drop_unknown_words``, ``rephrase_prompt``, ``strict``, ``allow_large``, ``keep_original_pixels``,
                ``seam``, and for the text tasks ``negative_prompt`` (what guidance steers away from).

        Example:
            >>> pipe("T2V", prompt="the digit 5 is moving left then right", generator=torch.manual_seed(0)).frames[0]
        """
        name = resolve_task_name(task)
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}.")
        per_input = _outputs_per_input(num_images_per_prompt, num_outputs_per_input)
        for option, ours in FACE_NAMES.items():
            if option in options:
                raise TypeError(f"{option}= is the transformers pipelines' name; this entry point calls it {ours}=. "
                                f"Pass {ours}={options[option]!r} instead.")
        info = get_task_info(name)
        takes = task_arguments(name)
        passed = {"prompt": prompt, "image": image, "video": video, "sketch": sketch, "mask": mask,
                  "num_frames": num_frames, "num_condition_frames": num_condition_frames}
        given = dict(passed, video=image if video is None and info.takes_image_as_video else video)  # image: 1st frame
        missing = [front_end_name(item) for item in info.inputs if given[front_end_name(item)] is None]
        if missing:
            raise ValueError(f"Task {name} needs {', '.join(missing)}= (video tasks also accept image= as the first frame).")
        stray = [argument for argument, value in passed.items() if value is not None and argument not in takes]
        if stray:
            raise TypeError(
                f"Task {name} does not take {', '.join(a + '=' for a in stray)}; it takes "
                f"{', '.join(a + '=' for a in takes)}. Remove the extra argument(s) (nothing is ignored in silence)."
            )
        if video is not None and image is not None:
            raise TypeError(f"Task {name} takes its first frames as video= or image=, not both: give one.")
        if not isinstance(return_dict, bool):
            raise TypeError(f"return_dict must be True or False, got {return_dict!r}.")
        common = {k: v for k, v in options.items() if v is not None}  # checked once, by the task pipeline
        common["output_type"] = "tokens" if output_type == "latent" else output_type  # the token grids
        if generator is not None:
            common["generator"] = generator
        # The table's inputs are the task pipeline's positional arguments, its optional inputs and frame options keywords.
        positional = [given[front_end_name(item)] for item in info.inputs]
        keywords = {item: given[front_end_name(item)] for item in info.optional_inputs
                    if given[front_end_name(item)] is not None}
        keywords.update({option: given[FACE_NAMES.get(option, option)] for option in info.frame_options
                         if given[FACE_NAMES.get(option, option)] is not None})
        pipe = self._task_pipeline(name)
        result = pipe(*positional, **keywords, num_outputs_per_input=per_input, **common)
        flat = _flatten(result, pipe.makes_video)
        if output_type == "np":
            flat = np.stack(flat)
        elif output_type in ("pt", "latent"):
            flat = torch.stack([torch.as_tensor(sample) for sample in flat])
        fields = {"frames": flat} if pipe.makes_video else {"images": flat}
        if not return_dict:
            return (flat,)
        return NuwaPipelineOutput(**fields)


def _flatten(result: Any, makes_video: bool) -> list:
    """A task pipeline's nested output -> a flat list of samples: images, or videos (frame lists, arrays, tensors)."""
    if isinstance(result, (PIL.Image.Image, np.ndarray, torch.Tensor)):
        return [result]
    if makes_video and isinstance(result, list) and result and isinstance(result[0], PIL.Image.Image):
        return [result]
    flat = []
    for item in result:
        flat.extend(_flatten(item, makes_video))
    return flat
