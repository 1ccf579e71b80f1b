"""Video prediction (V2V): the first frame(s) of a video are given, NUWA generates what comes next.

The encoder gets the constant "None" condition; the given frames' tokens are teacher-forced in the decoder (constrained
decoding) and only the future frames are sampled. Past the model's trained length a sliding window continues.
"""

from __future__ import annotations

from typing import Optional

from .call_options import with_options_doc
from .inputs import as_video_list, one_video
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, is_prepared_input
from .sampling_options import check_count


class NuwaVideoPredictionPipeline(NuwaPipeline):
    """The rest of a video from its first frame(s).

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> predict = pipeline("nuwa-video-prediction", model="checkpoints/nuwa-tiny")
        >>> frames = predict("first_frame.png", seed=0)              # the given frame, then the predicted ones
        >>> future = predict("clip.gif", num_condition_frames=2, include_condition_frames=False)
    """

    task_name = "nuwa-video-prediction"
    request_options = ("num_condition_frames", "num_frames_to_predict", "include_condition_frames")

    @with_options_doc
    def __call__(self, video, **kwargs):
        """Predict how videos go on.

        Args:
            video: the given frames: a video file (GIF; MP4 and others with PyAV), a folder of frame images, an image
                (one frame), a list of frames (PIL images or arrays), an array ``(T, H, W, 3)``; or a list of such
                videos (a batch; each is predicted on its own, so their lengths may differ); or request dicts
                ``{"video": ...}``.
            num_condition_frames (`int`, *optional*): how many of the first frames condition the prediction; defaults
                to all given frames, at most the model's trained length minus one.
            num_frames_to_predict (`int`, *optional*): frames to generate; defaults to filling the trained length.
            include_condition_frames (`bool`, defaults to True): return the given frames (the input's own pixels;
                with ``keep_original_pixels=False``, as the VQ-GAN reconstructs them) followed by the prediction;
                False returns the predicted frames only.

        Returns:
            A list of PIL frames for one video (a list of them when ``num_outputs_per_input > 1``); for a batch, one
            entry per video.
        """
        if not is_prepared_input(video):
            videos, batched = as_video_list(video)
            items = [{"video": v} for v in videos]
            video = items if batched else items[0]
        return super().__call__(video, **kwargs)

    def make_request(self, item, num_condition_frames: Optional[int] = None,
                     num_frames_to_predict: Optional[int] = None,
                     include_condition_frames: bool = True) -> tuple[NuwaRequest, DecodingPlan]:
        generator = None
        if isinstance(item, dict):
            generator = item.get("generator")
            item = self._field(item, "video")
        video = one_video(item)
        given, trained = len(video), self.max_frames
        if num_condition_frames is None:
            known = min(given, max(trained - 1, 1))
        else:
            known = check_count("num_condition_frames", num_condition_frames)
            if known > given:
                raise ValueError(
                    f"num_condition_frames={known} but the video has only {given} frame(s): give a longer video or "
                    "condition on fewer frames."
                )
        if num_frames_to_predict is None:
            predict = max(trained - known, 1)
        else:
            predict = check_count("num_frames_to_predict", num_frames_to_predict)
        if known + predict > trained and trained < 2:
            raise ValueError("This model was trained on single frames: it cannot predict video frames.")
        if not isinstance(include_condition_frames, bool):
            raise TypeError(f"include_condition_frames must be True or False, got {include_condition_frames!r}.")
        plan = DecodingPlan(
            condition="none", frames=known + predict, known_frames=known,
            output_from_frame=0 if include_condition_frames else known,
        )
        notes = ()
        if given > known:
            why = f"num_condition_frames={known}" if num_condition_frames is not None else \
                f"the most it conditions on by default: the model's trained length {trained} minus one"
            notes = (f"The video has {given} frames; the prediction continues from its first {known} ({why}), so "
                     f"frames {known + 1}-{given} were left out. To continue from the end of the clip, give its last "
                     "frames.",)
        return NuwaRequest(video=video[:known], generator=generator, notes=notes), plan
