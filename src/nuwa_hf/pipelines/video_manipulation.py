"""Text-guided video manipulation (TV2V, zero-shot): the first frame(s) of a video are kept, the rest is regenerated
under a new text (the paper's example: make a diver swim up instead of down).

The kept frames' tokens are teacher-forced in the decoder; the later frames are sampled under the prompt.
"""

from __future__ import annotations

from typing import Optional

from .call_options import with_options_doc
from .inputs import as_video_list, one_prompt, one_video, with_prompts
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, is_prepared_input, misnamed_hint
from .sampling_options import check_count


class NuwaVideoManipulationPipeline(NuwaPipeline):
    """Regenerates videos after their first frame under a text.

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> edit = pipeline("nuwa-video-manipulation", model="checkpoints/nuwa-tiny")
        >>> frames = edit("clip.gif", "the digit 3 is moving up then down", seed=0)
    """

    task_name = "nuwa-video-manipulation"
    request_options = ("num_condition_frames", "num_frames")

    @with_options_doc
    def __call__(self, video, prompt=None, **kwargs):
        """Regenerate videos after their first frame(s) under a new text.

        Args:
            video: a video file (GIF; MP4 and others with PyAV), a folder of frames, a list of frames, an array
                ``(T, H, W, 3)``, or an image (the first frame); or a list of videos (a batch); or request dicts
                ``{"video": ..., "prompt": ...}``.
            prompt (`str` or `list[str]`): what should happen (one, or one per video).
            num_condition_frames (`int`, *optional*): leading frames kept from each video; defaults to 1.
            num_frames (`int`, *optional*): frames of the result, kept ones included; defaults to the model's trained
                length. More are generated with a sliding window.

        Returns:
            A list of PIL frames for one video (a list of videos when ``num_outputs_per_input > 1``); for a batch,
            one entry per video.
        """
        if not is_prepared_input(video):
            if prompt is None:
                raise ValueError("Video manipulation needs a prompt: what should happen in the regenerated frames"
                                 f"{misnamed_hint(kwargs, 'prompt')}.")
            videos, prompts, batched = with_prompts(*as_video_list(video), prompt, "video")
            items = [{"video": v, "prompt": p} for v, p in zip(videos, prompts)]
            video = items if batched else items[0]
        return super().__call__(video, **kwargs)

    def make_request(self, item, num_condition_frames: Optional[int] = None,
                     num_frames: Optional[int] = None) -> tuple[NuwaRequest, DecodingPlan]:
        if not isinstance(item, dict):
            raise TypeError("A video manipulation input is a dict {'video': ..., 'prompt': ...}.")
        video = one_video(self._field(item, "video"))
        known = 1 if num_condition_frames is None else check_count("num_condition_frames", num_condition_frames)
        if known > len(video):
            raise ValueError(
                f"num_condition_frames={known} but the video has only {len(video)} frame(s): keep fewer frames.")
        frames = self.max_frames if num_frames is None else check_count("num_frames", num_frames)
        if frames <= known:
            raise ValueError(
                f"num_frames={frames} leaves nothing to regenerate after {known} kept frame(s): ask for more frames."
            )
        request = NuwaRequest(prompt=one_prompt(self._field(item, "prompt", "text")), video=video[:known],
                              generator=item.get("generator"))
        return request, DecodingPlan(condition="text", frames=frames, known_frames=known)
