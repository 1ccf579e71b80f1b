"""Sketch-to-image (S2I): NUWA generates an image that follows a segmentation map (a "sketch").

The sketch is coded by the model's VQ-GAN-Seg into sketch tokens, which the encoder reads as the condition.
"""

from __future__ import annotations

from .call_options import with_options_doc
from .inputs import as_sketch_list, one_sketch
from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, is_prepared_input


class NuwaSketchToImagePipeline(NuwaPipeline):
    """Images from class-index maps.

    Example:
        >>> import numpy as np
        >>> from transformers import pipeline
        >>> import nuwa_hf
        >>> generate = pipeline("nuwa-sketch-to-image", model="checkpoints/nuwa-tiny")
        >>> sketch = np.zeros((32, 32), dtype=np.int64); sketch[16:] = 2                # class 2 in the bottom half
        >>> image = generate(sketch, seed=0)
    """

    task_name = "nuwa-sketch-to-image"

    @with_options_doc
    def __call__(self, sketch, **kwargs):
        """Generate images that follow sketches.

        Args:
            sketch: a class-index map: an integer array or tensor ``(H, W)``, a PIL image in mode 'L'/'P' whose pixel
                values are class ids, or a path (PNG, ``.npy``); or a list of them / an array ``(N, H, W)`` (a batch);
                or request dicts ``{"sketch": ...}``. Class ids must be below the sketch VQ-GAN's number of classes.

        Returns:
            One image for one sketch (a list when ``num_outputs_per_input > 1``); for a batch, one entry per sketch.
        """
        if not is_prepared_input(sketch):
            sketches, batched = as_sketch_list(sketch, video=False, num_classes=self.num_sketch_classes)
            sketch = [{"sketch": s} for s in sketches] if batched else {"sketch": sketches[0]}
        return super().__call__(sketch, **kwargs)

    def make_request(self, item) -> tuple[NuwaRequest, DecodingPlan]:
        generator = None
        if isinstance(item, dict):
            generator = item.get("generator")
            item = self._field(item, "sketch")
        request = NuwaRequest(sketch=one_sketch(item, video=False, num_classes=self.num_sketch_classes), generator=generator)
        return request, DecodingPlan(condition="sketch")
