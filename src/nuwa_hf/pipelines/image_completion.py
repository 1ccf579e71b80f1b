"""Image completion (I2I, zero-shot): the known part of an image is kept, NUWA regenerates the rest.

The decoder is given the image's tokens outside the region (constrained decoding: they are teacher-forced) and samples
only the tokens inside it, under the "None" condition, or under a text when a prompt is given.
"""

from __future__ import annotations

from typing import Optional

from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, as_image_list, as_prompt_list, broadcast, with_options_doc


class NuwaImageCompletionPipeline(NuwaPipeline):
    """Complete the missing part of images.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> complete = pipeline("nuwa-image-completion", model="checkpoints/nuwa-tiny")
        >>> image = complete("top_half_known.png", mask="bottom half", seed=0)
        >>> image = complete(image, mask=(0, 16, 32, 32))          # a box (left, top, right, bottom) in pixels
        >>> image = complete(image, mask=mask_image)                # white = regenerate, same size as the image
    """

    task_name = "nuwa-image-completion"

    @with_options_doc
    def __call__(self, image, mask="bottom half", *, prompt=None, num_images_per_image: int = 1, **options):
        """Regenerate a region of images and keep the rest.

        Args:
            image: a PIL image, a path or an array ``(H, W, 3)``; or a list of them (a batch).
            mask (defaults to ``"bottom half"``): the region to regenerate: a shortcut (``"bottom half"``,
                ``"top half"``, ``"left half"``, ``"right half"``, ``"center"``, ``"top left"``, ...), a box
                ``(left, top, right, bottom)`` in pixels of the image or as fractions in [0, 1], or a mask (PIL image in
                mode '1'/'L', array, or path; white / True = regenerate) of the image's size. A list gives one region
                per image.
            prompt (`str` or `list[str]`, *optional*): a text that guides the completion; without it the model gets the
                "None" condition, as in the paper.
            num_images_per_image (`int`, defaults to 1): completions per image.

        Returns:
            One image for one input (a list when ``num_images_per_image > 1``); for a batch, one entry per image.
        """
        images, batched = as_image_list(image)
        regions = broadcast(_as_region_list(mask, len(images)), len(images), "mask")
        prompts: list[Optional[str]] = [None] * len(images)
        if prompt is not None:
            prompts, prompts_batched = as_prompt_list(prompt)
            prompts = broadcast(prompts, len(images), "prompt")
            batched = batched or prompts_batched
            if len(images) == 1 and len(prompts) > 1:
                images = images * len(prompts)
                regions = regions * len(prompts)
        requests = [NuwaRequest(prompt=p, image=i, region=r) for p, i, r in zip(prompts, images, regions)]
        plan = DecodingPlan(condition="text" if prompt is not None else "none", regions=True)
        return self.run(requests, plan, batched, num_images_per_image, **options)


def _as_region_list(mask, count: int) -> list:
    """One region, or a list with one region per image (a list of 4 numbers is one box, not four regions)."""
    if isinstance(mask, list) and len(mask) == count and not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in mask):
        return list(mask)
    return [mask]
