"""Text-to-image (T2I): NUWA generates the VQ-GAN tokens of an image from a caption."""

from __future__ import annotations

from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, as_prompt_list, with_options_doc


class NuwaTextToImagePipeline(NuwaPipeline):
    """Images from text.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> generate = pipeline("nuwa-text-to-image", model="checkpoints/nuwa-tiny")
        >>> image = generate("a red digit 7 in the top left", seed=0)                 # a PIL image
        >>> images = generate(["a blue 3", "a green 5"], num_images_per_prompt=2)    # 2 lists of 2 images
    """

    task_name = "nuwa-text-to-image"

    @with_options_doc
    def __call__(self, prompt, *, num_images_per_prompt: int = 1, **options):
        """Generate images from captions.

        Args:
            prompt (`str` or `list[str]`): the caption(s).
            num_images_per_prompt (`int`, defaults to 1): images per caption.

        Returns:
            One image for one prompt; a list of ``num_images_per_prompt`` images when it is > 1; for a list of prompts,
            a list with one such entry per prompt.
        """
        prompts, batched = as_prompt_list(prompt)
        requests = [NuwaRequest(prompt=text) for text in prompts]
        return self.run(requests, DecodingPlan(condition="text"), batched, num_images_per_prompt, **options)
