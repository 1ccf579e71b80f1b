"""Text-to-video (T2V): NUWA generates the tokens of every frame, in raster order over time, from a caption."""

from __future__ import annotations

from typing import Optional

from .call_options import with_options_doc
from .inputs import one_prompt
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest
from .sampling_options import check_count


class NuwaTextToVideoPipeline(NuwaPipeline):
    """Videos from text.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> generate = pipeline("nuwa-text-to-video", model="checkpoints/nuwa-tiny")
        >>> frames = generate("the digit 3 is moving up then down", seed=0)      # a list of PIL frames
        >>> longer = generate("the digit 3 is moving up then down", num_frames=8)
    """

    task_name = "nuwa-text-to-video"
    request_options = ("num_frames",)

    @with_options_doc
    def __call__(self, prompt, **kwargs):
        """Generate videos from captions.

        Args:
            prompt (`str` or `list[str]`): the caption(s); or request dicts ``{"prompt": ...}``, a generator or a
                dataset of captions.
            num_frames (`int`, *optional*): frames per video; defaults to the model's trained length
                (``config.max_visual_grid[0]``). More frames are generated with a sliding window over time.

        Returns:
            A video (a list of PIL frames) for one prompt; a list of videos when ``num_outputs_per_input > 1``; for a
            list of prompts, one such entry per prompt.
        """
        return super().__call__(prompt, **kwargs)

    def make_request(self, item, num_frames: Optional[int] = None) -> tuple[NuwaRequest, DecodingPlan]:
        generator = None
        if isinstance(item, dict):
            generator = item.get("generator")
            num_frames = item.get("num_frames", num_frames)
            item = self._field(item, "prompt", "text")
        frames = self.max_frames if num_frames is None else check_count("num_frames", num_frames)
        if frames > self.max_frames and self.max_frames < 2:
            raise ValueError(f"This model was trained on {self.max_frames}-frame grids and cannot make longer videos.")
        request = NuwaRequest(prompt=one_prompt(item), generator=generator)
        return request, DecodingPlan(condition="text", frames=frames)
