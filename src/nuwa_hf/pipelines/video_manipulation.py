"""Text-guided video manipulation (TV2V, zero-shot): the first frame(s) of a video are kept, the future is regenerated
under a new text (constrained decoding: the kept frames' tokens are teacher-forced)."""

from __future__ import annotations

from typing import Optional

from .pipeline_base import (
    DecodingPlan,
    NuwaPipeline,
    NuwaRequest,
    _check_count,
    as_prompt_list,
    as_video_list,
    broadcast,
    check_equal_frame_counts,
    with_options_doc,
)


class NuwaVideoManipulationPipeline(NuwaPipeline):
    """Change what happens in videos, as a text says, keeping their beginning.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> edit = pipeline("nuwa-video-manipulation", model="checkpoints/nuwa-tiny")
        >>> frames = edit("digit3_up_down.gif", "the digit 3 is moving left then right", seed=0)
    """

    task_name = "nuwa-video-manipulation"
    makes_video = True

    @with_options_doc
    def __call__(
        self,
        video,
        prompt,
        *,
        num_condition_frames: Optional[int] = None,
        num_frames: Optional[int] = None,
        num_videos_per_prompt: int = 1,
        **options,
    ):
        """Regenerate videos after their first frame(s) under a new text.

        Args:
            video: a video file (GIF; MP4 and others with PyAV), a folder of frames, a list of frames, an array
                ``(T, H, W, 3)``, or an image (the first frame); or a list of videos (a batch).
            prompt (`str` or `list[str]`): what should happen (one, or one per video).
            num_condition_frames (`int`, *optional*): leading frames kept from each video; defaults to 1. Without it, the
                videos of a batch must have the same number of frames.
            num_frames (`int`, *optional*): frames of the result, kept ones included; defaults to the model's trained
                length. More are generated with a sliding window.
            num_videos_per_prompt (`int`, defaults to 1): results per video.

        Returns:
            A list of PIL frames for one video (a list of videos when ``num_videos_per_prompt > 1``); for a batch,
            one entry per video.
        """
        videos, videos_batched = as_video_list(video)
        prompts, prompts_batched = as_prompt_list(prompt)
        count = max(len(videos), len(prompts))
        videos = broadcast(videos, count, "video")
        prompts = broadcast(prompts, count, "prompt")
        if num_condition_frames is None:
            check_equal_frame_counts(videos)
            num_condition_frames = 1
        known = _check_count("num_condition_frames", num_condition_frames)
        given = min(len(v) for v in videos)
        if known > given:
            raise ValueError(f"num_condition_frames={known} but the video has only {given} frame(s): keep fewer frames.")
        frames = self.max_frames if num_frames is None else _check_count("num_frames", num_frames)
        if frames <= known:
            raise ValueError(
                f"num_frames={frames} leaves nothing to regenerate after {known} kept frame(s): ask for more frames."
            )
        requests = [NuwaRequest(prompt=p, video=v[:known]) for p, v in zip(prompts, videos)]
        plan = DecodingPlan(condition="text", frames=frames, known_frames=known)
        return self.run(requests, plan, videos_batched or prompts_batched, num_videos_per_prompt, **options)
