"""Text-guided image manipulation (TI2I, zero-shot): a region of an image is regenerated under a text describing the edit.

The text conditions the encoder; the image's tokens outside the region are teacher-forced in the decoder and the
region's tokens are sampled (constrained decoding), so the rest of the image is kept.
"""

from __future__ import annotations

from .image_completion import _as_region_list
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, as_image_list, as_prompt_list, broadcast, with_options_doc


class NuwaImageManipulationPipeline(NuwaPipeline):
    """Edit a region of images as a text says.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> edit = pipeline("nuwa-image-manipulation", model="checkpoints/nuwa-tiny")
        >>> edited = edit("scene.png", "a red circle on grass", mask="bottom half", seed=0)
        >>> edited = edit(image, "a blue 4", mask=(0.5, 0.0, 1.0, 0.5))     # box as fractions: the top-right quarter
    """

    task_name = "nuwa-image-manipulation"

    @with_options_doc
    def __call__(self, image, prompt, mask, *, num_images_per_prompt: int = 1, **options):
        """Regenerate the ``mask`` region of images under ``prompt``.

        Args:
            image: a PIL image, a path or an array ``(H, W, 3)``; or a list of them (a batch).
            prompt (`str` or `list[str]`): the text the edited image should match (one, or one per image).
            mask: the region to change (required): a shortcut (``"bottom half"``, ``"center"``, ...), a box
                ``(left, top, right, bottom)`` in pixels or as fractions in [0, 1], or a mask image / array of the
                image's size (white / True = regenerate); a list gives one region per image.
            num_images_per_prompt (`int`, defaults to 1): edits per image.

        Returns:
            One image for one input (a list when ``num_images_per_prompt > 1``); for a batch, one entry per image.
        """
        if mask is None:
            raise ValueError("Image manipulation needs the region to change: pass mask='bottom half', a box or a mask image.")
        images, images_batched = as_image_list(image)
        prompts, prompts_batched = as_prompt_list(prompt)
        count = max(len(images), len(prompts))
        images = broadcast(images, count, "image")
        prompts = broadcast(prompts, count, "prompt")
        regions = broadcast(_as_region_list(mask, count), count, "mask")
        requests = [NuwaRequest(prompt=p, image=i, region=r) for p, i, r in zip(prompts, images, regions)]
        plan = DecodingPlan(condition="text", regions=True)
        return self.run(requests, plan, images_batched or prompts_batched, num_images_per_prompt, **options)
