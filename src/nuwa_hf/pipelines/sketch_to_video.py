"""Sketch-to-video (S2V): NUWA generates a video whose frames follow a sequence of segmentation maps.

Every sketch frame is coded by the VQ-GAN-Seg; the encoder reads the sketch tokens of all frames as the condition.
"""

from __future__ import annotations

from .call_options import with_options_doc
from .inputs import as_sketch_list, one_sketch
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, is_prepared_input


class NuwaSketchToVideoPipeline(NuwaPipeline):
    """Videos from class-index maps, one per frame.

    Example:
        >>> import numpy as np
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> generate = pipeline("nuwa-sketch-to-video", model="checkpoints/nuwa-tiny")
        >>> sketches = np.zeros((4, 32, 32), dtype=np.int64); sketches[:, 16:] = 2
        >>> frames = generate(sketches, seed=0)                                          # 4 PIL frames
    """

    task_name = "nuwa-sketch-to-video"

    @with_options_doc
    def __call__(self, sketch_video, **kwargs):
        """Generate videos that follow video sketches.

        Args:
            sketch_video: class-index maps, one per frame: an integer array ``(T, H, W)``, a list of ``(H, W)`` maps or
                of PIL images in mode 'L'/'P', a ``.npy`` file, a GIF in mode 'P' or a folder of map images; or a
                list of such video sketches / an array ``(N, T, H, W)`` (a batch); or request dicts
                ``{"sketch_video": ...}``. The video has as many frames as the sketch, at most the model's trained
                length.

        Returns:
            A list of PIL frames for one sketch (a list of videos when ``num_outputs_per_input > 1``); for a batch,
            one entry per sketch.
        """
        if not is_prepared_input(sketch_video):
            sketches, batched = as_sketch_list(sketch_video, video=True, what="video sketch",
                                          num_classes=self.num_sketch_classes)
            items = [{"sketch_video": s} for s in sketches]
            sketch_video = items if batched else items[0]
        return super().__call__(sketch_video, **kwargs)

    def make_request(self, item) -> tuple[NuwaRequest, DecodingPlan]:
        generator = None
        if isinstance(item, dict):
            generator = item.get("generator")
            item = self._field(item, "sketch_video", "sketch")
        sketch = one_sketch(item, video=True, what="video sketch", num_classes=self.num_sketch_classes)
        frames = len(sketch)
        if frames > self.max_frames:
            raise ValueError(
                f"The video sketch has {frames} frames but the model makes at most {self.max_frames} at once (sketch "
                f"videos are not slid over time): give at most {self.max_frames} sketch frames."
            )
        return NuwaRequest(sketch=sketch, generator=generator), DecodingPlan(condition="sketch", frames=frames)
