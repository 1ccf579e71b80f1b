"""Peak signal-to-noise ratio between paired images, or between paired videos frame by frame (config "video")."""

from nuwa_hf.evaluation.metric_module_support import VisualMetric
from nuwa_hf.evaluation.psnr import peak_signal_to_noise_ratio

_DESCRIPTION = """PSNR = 10 log10(1 / MSE) on values in [0, 1], per pair, averaged. Identical pairs have infinite PSNR
(reported, with their count, rather than hidden). Higher is better."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated images (config "image") or videos (config "video"), 8-bit after conversion.
    references: the paired ground truth, same layout and count.
Returns:
    psnr, psnr_finite_mean, num_identical_pairs, num_pairs.
"""

_CITATION = ""


class PeakSignalToNoiseRatio(VisualMetric):
    DESCRIPTION, INPUTS, CITATION = _DESCRIPTION, _KWARGS_DESCRIPTION, _CITATION
    CONFIGS = ("image", "video")

    def _compute(self, predictions, references):
        return peak_signal_to_noise_ratio(predictions, references, videos=self.kind == "video")
