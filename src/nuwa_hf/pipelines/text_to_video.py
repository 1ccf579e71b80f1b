"""Text-to-video (T2V): NUWA generates the tokens of every frame, in raster order over time, from a caption."""

from __future__ import annotations

from typing import Optional

from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, _check_count, as_prompt_list, with_options_doc


class NuwaTextToVideoPipeline(NuwaPipeline):
    """Videos from text.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> generate = pipeline("nuwa-text-to-video", model="checkpoints/nuwa-tiny")
        >>> frames = generate("the digit 3 is moving up then down", seed=0)     # a list of PIL frames
        >>> nuwa_hf.media.save_video(frames, "digit3.gif")
        >>> longer = generate("the digit 3 is moving up then down", num_frames=12)  # slides past the trained length
    """

    task_name = "nuwa-text-to-video"
    makes_video = True

    @with_options_doc
    def __call__(self, prompt, *, num_frames: Optional[int] = None, num_videos_per_prompt: int = 1, **options):
        """Generate videos from captions.

        Args:
            prompt (`str` or `list[str]`): the caption(s).
            num_frames (`int`, *optional*): frames per video; defaults to the model's trained length
                (``config.max_visual_grid[0]``). More frames are generated with a sliding window over time.
            num_videos_per_prompt (`int`, defaults to 1): videos per caption.

        Returns:
            A video (a list of PIL frames) for one prompt; a list of videos when ``num_videos_per_prompt > 1``; for a
            list of prompts, one such entry per prompt.
        """
        prompts, batched = as_prompt_list(prompt)
        frames = self.max_frames if num_frames is None else _check_count("num_frames", num_frames)
        if frames > self.max_frames and self.max_frames < 2:
            raise ValueError(f"This model was trained on {self.max_frames}-frame grids and cannot make longer videos.")
        requests = [NuwaRequest(prompt=text) for text in prompts]
        plan = DecodingPlan(condition="text", frames=frames)
        return self.run(requests, plan, batched, num_videos_per_prompt, **options)
