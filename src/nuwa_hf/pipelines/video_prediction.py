"""Video prediction (V2V): the first frame(s) of a video are given, NUWA generates what comes next.

The encoder gets the constant "None" condition; the given frames' tokens are teacher-forced in the decoder (constrained
decoding) and only the future frames are sampled. Past the model's trained length a sliding window continues.
"""

from __future__ import annotations

from typing import Optional

from .pipeline_base import (
    DecodingPlan,
    NuwaPipeline,
    NuwaRequest,
    _check_count,
    as_video_list,
    check_equal_frame_counts,
    with_options_doc,
)


class NuwaVideoPredictionPipeline(NuwaPipeline):
    """Future frames from the first frame(s).

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> predict = pipeline("nuwa-video-prediction", model="checkpoints/nuwa-tiny")
        >>> video = predict("first_frame.png", num_frames_to_predict=3, seed=0)      # 1 given + 3 predicted frames
        >>> video = predict("clip.gif", num_condition_frames=2)                       # first 2 frames of a GIF
    """

    task_name = "nuwa-video-prediction"
    makes_video = True

    @with_options_doc
    def __call__(
        self,
        video,
        *,
        num_condition_frames: Optional[int] = None,
        num_frames_to_predict: Optional[int] = None,
        include_condition_frames: bool = True,
        num_videos_per_input: int = 1,
        **options,
    ):
        """Predict how videos go on.

        Args:
            video: the given frames: a video file (GIF; MP4 and others with PyAV), a folder of frame images, an image
                (one frame), a list of frames (PIL images or arrays), an array ``(T, H, W, 3)``; or a list of such
                videos (a batch; they need the same number of frames unless ``num_condition_frames`` says how many of
                each are used).
            num_condition_frames (`int`, *optional*): how many of the first frames condition the prediction; defaults
                to all given frames, at most the model's trained length minus one.
            num_frames_to_predict (`int`, *optional*): frames to generate; defaults to filling the trained length.
            include_condition_frames (`bool`, defaults to True): return the given frames (as the VQ-GAN reconstructs
                them) followed by the prediction; False returns the predicted frames only.
            num_videos_per_input (`int`, defaults to 1): predictions per input video.

        Returns:
            A list of PIL frames for one video (a list of them when ``num_videos_per_input > 1``); for a batch, one
            entry per video.
        """
        videos, batched = as_video_list(video)
        given = min(len(v) for v in videos) if num_condition_frames is not None else check_equal_frame_counts(videos)
        trained = self.max_frames
        if num_condition_frames is None:
            known = min(given, max(trained - 1, 1))
        else:
            known = _check_count("num_condition_frames", num_condition_frames)
            if known > given:
                raise ValueError(
                    f"num_condition_frames={known} but the video has only {given} frame(s): give a longer video or "
                    "condition on fewer frames."
                )
        if num_frames_to_predict is None:
            predict = max(trained - known, 1)
        else:
            predict = _check_count("num_frames_to_predict", num_frames_to_predict)
        if known + predict > trained and trained < 2:
            raise ValueError("This model was trained on single frames: it cannot predict video frames.")
        requests = [NuwaRequest(video=v[:known]) for v in videos]
        plan = DecodingPlan(
            condition="none", frames=known + predict, known_frames=known,
            output_from_frame=0 if include_condition_frames else known,
        )
        return self.run(requests, plan, batched, num_videos_per_input, **options)
