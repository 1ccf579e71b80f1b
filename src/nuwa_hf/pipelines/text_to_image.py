"""Text-to-image (T2I): NUWA generates the VQ-GAN tokens of an image from a caption."""

from __future__ import annotations

from .call_options import with_options_doc
from .inputs import one_prompt
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest


class NuwaTextToImagePipeline(NuwaPipeline):
    """Images from text.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> generate = pipeline("nuwa-text-to-image", model="checkpoints/nuwa-tiny")
        >>> image = generate("a red digit 7", seed=0)                                 # a PIL image
        >>> images = generate(["a blue 3", "a green 5"], num_outputs_per_input=2)    # 2 lists of 2 images
    """

    task_name = "nuwa-text-to-image"

    @with_options_doc
    def __call__(self, prompt, **kwargs):
        """Generate images from captions.

        Args:
            prompt (`str` or `list[str]`): the caption(s); or request dicts ``{"prompt": ...}``, a generator or a
                dataset of captions.

        Returns:
            One image for one prompt (a list of ``num_outputs_per_input`` images when that is > 1); for a list of
            prompts, a list with one such entry per prompt.
        """
        return super().__call__(prompt, **kwargs)

    def make_request(self, item, generator=None) -> tuple[NuwaRequest, DecodingPlan]:
        if isinstance(item, dict):
            generator = item.get("generator")
            item = self._field(item, "prompt", "text")
        return NuwaRequest(prompt=one_prompt(item), generator=generator), DecodingPlan(condition="text")
