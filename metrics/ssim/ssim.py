"""Structural similarity between paired images, or between paired videos frame by frame (config "video")."""

from nuwa_hf.evaluation.metric_module_support import VisualMetric
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


class StructuralSimilarity(VisualMetric):
    DESCRIPTION, INPUTS, CITATION = _DESCRIPTION, _KWARGS_DESCRIPTION, _CITATION
    CONFIGS = ("image", "video")

    def _compute(self, predictions, references, window_size=11, sigma=1.5):
        return structural_similarity(predictions, references, videos=self.kind == "video", window_size=window_size,
                                     sigma=sigma)
