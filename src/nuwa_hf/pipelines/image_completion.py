"""Image completion (I2I, zero-shot): the known part of an image is kept, NUWA regenerates the rest.

The region's pixels are blacked out first (``blank_region``, as diffusers' inpainting blanks the masked image), the
VQ-GAN encodes the picture, and the decoder is given its tokens outside the region (constrained decoding: they are
teacher-forced) and samples the region's, under the "None" condition, or under a text when a prompt is given; the
input's own pixels are pasted back outside the region. ``regenerate_border=N`` samples N token rows / columns around
the region too.
"""

from __future__ import annotations

from typing import Optional

from .call_options import with_options_doc
from .inputs import as_image_list, as_prompt_list, as_region_list, broadcast, one_image, one_prompt
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, is_prepared_input


class NuwaImageCompletionPipeline(NuwaPipeline):
    """Completes images: the region to regenerate is a mask, a box or a shortcut.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> complete = pipeline("nuwa-image-completion", model="checkpoints/nuwa-tiny")
        >>> image = complete("digit.png", mask="bottom half", seed=0)
        >>> guided = complete("digit.png", mask=(0, 16, 32, 32), prompt="a red 3")
        >>> as_given = complete("digit.png", blank_region=False, seed=0)  # the picture encoded as given (earlier)
    """

    task_name = "nuwa-image-completion"
    request_options = ("blank_region", "regenerate_border")
    # The defaults of those options (docs/pilot_study.md, "Completing from the known part alone").
    default_blank_region = True
    default_regenerate_border = 0

    @with_options_doc
    def __call__(self, image, mask="bottom half", *, prompt=None, **kwargs):
        """Regenerate a region of images and keep the rest.

        Args:
            image: a PIL image, a path or an array ``(H, W, 3)``; or a list of them (a batch); or request dicts
                ``{"image": ..., "mask": ..., "prompt": ...}`` (mask and prompt optional).
            mask (defaults to ``"bottom half"``): the region to regenerate: a shortcut (``"bottom half"``,
                ``"top half"``, ``"left half"``, ``"right half"``, ``"center"``, ``"top left"``, ...), a box
                ``(left, top, right, bottom)`` or its text ``"left,top,right,bottom"`` (as ``nuwa-hf --mask``): all four
                in [0, 1] are fractions of the image (``(0, 0, 1, 1)`` / ``"0,0.5,1,1"``), any above 1 makes them pixels
                (``(0, 8, 16, 16)``; see :mod:`~nuwa_hf.pipelines.regions`), or a mask (PIL image in
                mode '1'/'L', array, or path; white / True = regenerate) of the image's size. A list gives one region
                per image.
            prompt (`str` or `list[str]`, *optional*): a text that guides the completion; without it the model gets the
                "None" condition, as in the paper.
            blank_region (`bool`, defaults to True): black out the region's pixels before the VQ-GAN encodes the
                picture (diffusers' inpainting pipelines blank the masked image the same way), so the completion
                depends on the known part alone. The encoder's receptive field crosses token cells: encoded as given
                (False), the kept tokens carry what lies under the region, and the completion copies it when it
                agrees with the known part (digit kept 0.72 on held-out digits, against 0.49 blanked) and is pulled
                off it when it does not (another digit under the region: 0.45). Pass False to let what the picture
                holds under the region steer the completion.
            regenerate_border (`int`, defaults to 0): also regenerate this many token rows / columns around the
                region (a token is 4 pixels in the shipped model). With the region black, the tokens just outside it
                were encoded seeing black there ("the stroke ends here"); regenerating them lets the digit continue
                across the edge (digit kept 0.485 -> 0.518 on 600 validation conditions) but loses the colour those
                tokens carry (the region's colour matches the known part's 0.78 -> 0.73 on validation, 0.83 -> 0.72
                on test), so it is off by default. The input's pixels outside the region are pasted back all the
                same (``keep_original_pixels``), so only the region and its seam change. (docs/pilot_study.md,
                "Completing from the known part alone".)

                >>> complete("digit.png", mask="bottom half", regenerate_border=1, seed=0)  # the ring redrawn too

        Returns:
            One image for one input (a list when ``num_outputs_per_input > 1``); for a batch, one entry per image.
        """
        if not is_prepared_input(image):
            images, batched = as_image_list(image)
            regions = broadcast(as_region_list(mask, len(images)), len(images), "mask")
            prompts: list[Optional[str]] = [None] * len(images)
            if prompt is not None:
                prompts, prompts_batched = as_prompt_list(prompt)
                prompts = broadcast(prompts, len(images), "prompt")
                batched = batched or prompts_batched
                if len(images) == 1 and len(prompts) > 1:
                    images, regions = images * len(prompts), regions * len(prompts)
            items = [{"image": i, "mask": r, "prompt": p} for i, r, p in zip(images, regions, prompts)]
            image = items if batched else items[0]
        return super().__call__(image, **kwargs)

    def make_request(self, item, blank_region=None, regenerate_border=None) -> tuple[NuwaRequest, DecodingPlan]:
        if not isinstance(item, dict):
            item = {"image": item}
        blank_region = self.default_blank_region if blank_region is None else blank_region
        border = self.default_regenerate_border if regenerate_border is None else regenerate_border
        if not isinstance(blank_region, bool):
            raise TypeError(f"blank_region must be True or False, got {blank_region!r}.")
        if isinstance(border, bool) or not isinstance(border, int) or not 0 <= border <= max(self.token_grid()):
            raise ValueError(f"regenerate_border is a number of token rows / columns around the region, a whole "
                             f"number in [0, {max(self.token_grid())}] (0 regenerates the region alone), got "
                             f"{border!r}.")
        prompt = item.get("prompt")
        request = NuwaRequest(
            image=one_image(self._field(item, "image")), region=item.get("mask", "bottom half"),
            prompt=None if prompt is None else one_prompt(prompt), generator=item.get("generator"),
            blank_region=blank_region, border=border,
        )
        return request, DecodingPlan(condition="none" if prompt is None else "text", regions=True)
