"""Sketch-to-image (S2I): a segmentation map, coded by the VQ-GAN-Seg, conditions the image NUWA generates."""

from __future__ import annotations

from .pipeline_base import DecodingPlan, NuwaPipeline, NuwaRequest, as_sketch_list, with_options_doc


class NuwaSketchToImagePipeline(NuwaPipeline):
    """Images from segmentation-map sketches (class-index maps).

    Example:
        >>> from transformers import pipeline
        >>> import numpy as np, nuwa_hf
        >>> draw = pipeline("nuwa-sketch-to-image", model="checkpoints/nuwa-tiny")
        >>> sketch = np.zeros((32, 32), dtype=np.int64); sketch[16:] = 2; sketch[4:12, 4:12] = 5   # class ids
        >>> image = draw(sketch, seed=0)
        >>> image = draw("sketch.png")            # a PNG in mode L/P whose pixel values are class ids
    """

    task_name = "nuwa-sketch-to-image"
    needs_sketch_vqgan = True

    @with_options_doc
    def __call__(self, sketch, *, num_images_per_sketch: int = 1, **options):
        """Generate images that follow sketches.

        Args:
            sketch: a class-index map: an integer array or tensor ``(H, W)``, a PIL image in mode 'L'/'P' whose pixel
                values are class ids, or a path (PNG, ``.npy``); or a list of them / an array ``(N, H, W)`` (a batch).
                Class ids must be below the sketch VQ-GAN's number of classes.
            num_images_per_sketch (`int`, defaults to 1): images per sketch.

        Returns:
            One image for one sketch (a list when ``num_images_per_sketch > 1``); for a batch, one entry per sketch.
        """
        sketches, batched = as_sketch_list(sketch, video=False)
        requests = [NuwaRequest(sketch=s) for s in sketches]
        return self.run(requests, DecodingPlan(condition="sketch"), batched, num_images_per_sketch, **options)
