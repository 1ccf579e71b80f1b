"""Structural similarity between paired images, or between paired videos frame by frame (config "video")."""

import datasets
import evaluate

from nuwa_hf.evaluation.metric_module_support import IMAGE, VIDEO, check_config, pil_images, pil_videos
from nuwa_hf.evaluation.ssim import structural_similarity

_DESCRIPTION = """SSIM (Wang et al., 2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, averaged
over channels, valid window positions and pairs. 1 for identical images; higher is better."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated images (config "image", the default) or videos (config "video": (N, T, H, W[, C]) or lists
        of frames); uint8 or float in [0, 1] (rounded to 8 bits), or PIL images.
    references: the paired ground truth, same layout and count.
    window_size (default 11), sigma (default 1.5).
Returns:
    ssim, ssim_std, num_pairs (frames for videos).
Example:
    >>> ssim = evaluate.load("metrics/ssim", "video")  # from the repository root
"""

_CITATION = """@article{wang2004image, title={Image quality assessment: from error visibility to structural similarity},
author={Wang, Zhou and Bovik, Alan C. and Sheikh, Hamid R. and Simoncelli, Eero P.}, journal={IEEE TIP}, year={2004}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class StructuralSimilarity(evaluate.Metric):
    def _info(self):
        kind = check_config(self.config_name, ("image", "video"))
        feature = IMAGE if kind == "image" else VIDEO
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": feature, "references": feature}),
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (converted to 8-bit PIL images, stored as PNG)."""
        convert = pil_videos if check_config(self.config_name, ("image", "video")) == "video" else pil_images
        return super().add_batch(predictions=convert(predictions), references=convert(references), **kwargs)

    def _compute(self, predictions, references, window_size=11, sigma=1.5):
        videos = check_config(self.config_name, ("image", "video")) == "video"
        return structural_similarity(predictions, references, videos=videos, window_size=window_size, sigma=sigma)
