"""Peak signal-to-noise ratio between paired images, or between paired videos frame by frame (config "video")."""

import datasets
import evaluate

from nuwa_hf.evaluation.metric_module_support import IMAGE, VIDEO, check_config, pil_images, pil_videos
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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PeakSignalToNoiseRatio(evaluate.Metric):
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

    def _compute(self, predictions, references):
        videos = check_config(self.config_name, ("image", "video")) == "video"
        return peak_signal_to_noise_ratio(predictions, references, videos=videos)
