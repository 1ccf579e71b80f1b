"""Sketch-to-video (S2V): one segmentation map per frame, coded frame by frame by the VQ-GAN-Seg, conditions a video."""

from __future__ import annotations

from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, as_sketch_list, with_options_doc


class NuwaSketchToVideoPipeline(NuwaPipeline):
    """Videos from video sketches (a class-index map per frame).

    Example:
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> animate = pipeline("nuwa-sketch-to-video", model="checkpoints/nuwa-tiny")
        >>> frames = animate(sketch_maps, seed=0)       # sketch_maps: int array (T, H, W), or a list of T maps
        >>> frames = animate("sketch.npy")
    """

    task_name = "nuwa-sketch-to-video"
    makes_video = True
    needs_sketch_vqgan = True

    @with_options_doc
    def __call__(self, sketch_video, *, num_videos_per_sketch: int = 1, **options):
        """Generate videos that follow video sketches.

        Args:
            sketch_video: class-index maps, one per frame: an integer array ``(T, H, W)``, a list of ``(H, W)`` maps or
                of PIL images in mode 'L'/'P', a ``.npy`` file, a GIF in mode 'P' or a folder of map images; or a
                list of such video sketches / an array ``(N, T, H, W)`` (a batch with equal frame counts). The video
                has as many frames as the sketch, at most the model's trained length.
            num_videos_per_sketch (`int`, defaults to 1): videos per sketch.

        Returns:
            A list of PIL frames for one sketch (a list of videos when ``num_videos_per_sketch > 1``); for a batch,
            one entry per sketch.
        """
        sketches, batched = as_sketch_list(sketch_video, video=True, what="video sketch")
        frames = len(sketches[0])
        if frames > self.max_frames:
            raise ValueError(
                f"The video sketch has {frames} frames but the model makes at most {self.max_frames} at once (sketch "
                f"videos are not slid over time): give at most {self.max_frames} sketch frames."
            )
        requests = [NuwaRequest(sketch=s) for s in sketches]
        plan = DecodingPlan(condition="sketch", frames=frames)
        return self.run(requests, plan, batched, num_videos_per_sketch, **options)
