"""Text-guided image manipulation (TI2I, zero-shot): a region of an image is regenerated under a new text.

As in image completion, the tokens outside the region are teacher-forced (all of them: the region is neither blanked
nor grown by a ring, since it holds the digit the edit changes); inside it NUWA samples under the prompt.
The prompt is read as the caption of the whole edited picture (what the model was trained on): an edit that names
what it replaces is read as what replaces it ("turn the 6 into an 8" as "an 8", ``rephrase_prompt``). The region is
redrawn from the prompt, not from what it shows now, so a prompt that names no digit or no colour ("make it blue") is
completed from what the model reads in the picture ("a blue 6" for a picture it reads as "a yellow 6",
``complete_instruction``, :mod:`.instruction_completion`), with a notice; ``complete_instruction=False`` reads it as
given, with the advice that the model may draw any digit / colour there. Say the picture wanted: "a blue 7".
"""

from __future__ import annotations

from .call_options import with_options_doc
from .inputs import as_image_list, as_region_list, broadcast, one_image, one_prompt, with_prompts
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, is_prepared_input, misnamed_hint


class NuwaImageManipulationPipeline(NuwaPipeline):
    """Edits a region of images to match a text.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> edit = pipeline("nuwa-image-manipulation", model="checkpoints/nuwa-tiny")
        >>> image = edit("digit.png", "a blue 8", mask="center", seed=0)
    """

    task_name = "nuwa-image-manipulation"
    reads_edits = True

    @with_options_doc
    def __call__(self, image, prompt=None, mask=None, **kwargs):
        """Regenerate the ``mask`` region of images under ``prompt``.

        Args:
            image: a PIL image, a path or an array ``(H, W, 3)``; or a list of them (a batch); or request dicts
                ``{"image": ..., "prompt": ..., "mask": ...}``.
            prompt (`str` or `list[str]`): the text the edited image should match (one, or one per image): the
                caption of the whole edited picture ("a blue 7"), or an edit ("turn the 3 into an 8"), read as the
                picture it asks for (``rephrase_prompt``); one that names no digit or no colour ("make it blue") is
                completed from what the model reads in the image (``complete_instruction``).
            mask: the region to change (required): a shortcut (``"bottom half"``, ``"center"``, ...), a box
                ``(left, top, right, bottom)`` or its text ``"left,top,right,bottom"``, fractions when all four are in
                [0, 1] (``(0, 0, 1, 1)`` = the whole image), else pixels (:mod:`~nuwa_hf.pipelines.regions`), or a
                mask image / array of the
                image's size (white / True = regenerate); a list gives one region per image.

        Returns:
            One image for one input (a list when ``num_outputs_per_input > 1``); for a batch, one entry per image.
        """
        if not is_prepared_input(image):
            if mask is None:
                raise ValueError(
                    "Image manipulation needs the region to change: pass mask='bottom half', a box or a mask image.")
            if prompt is None:
                raise ValueError("Image manipulation needs a prompt: the text the edited region should match"
                                 f"{misnamed_hint(kwargs, 'prompt')}.")
            images, prompts, batched = with_prompts(*as_image_list(image), prompt, "image")
            regions = broadcast(as_region_list(mask, len(images)), len(images), "mask")
            items = [{"image": i, "prompt": p, "mask": r} for i, p, r in zip(images, prompts, regions)]
            image = items if batched else items[0]
        return super().__call__(image, **kwargs)

    def make_request(self, item) -> tuple[NuwaRequest, DecodingPlan]:
        if not isinstance(item, dict):
            raise TypeError("An image manipulation input is a dict {'image': ..., 'prompt': ..., 'mask': ...}.")
        if item.get("mask") is None:
            raise ValueError("Image manipulation needs the region to change: pass mask='bottom half', a box or a mask "
                             "image.")
        request = NuwaRequest(
            image=one_image(self._field(item, "image")), prompt=one_prompt(self._field(item, "prompt", "text")),
            region=item["mask"], generator=item.get("generator"),
        )
        return request, DecodingPlan(condition="text", regions=True)
