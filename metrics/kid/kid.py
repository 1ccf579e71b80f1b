"""Kernel Inception Distance with the real FID Inception-v3 pool3 features, offline (unbiased at small N)."""

import datasets
import evaluate

from nuwa_hf.evaluation.kernel_inception import kernel_inception_distance
from nuwa_hf.evaluation.metric_module_support import IMAGE, pil_images

_DESCRIPTION = """KID (Bińkowski et al., 2018): unbiased MMD^2 with a cubic polynomial kernel on Inception-v3 pool3
features, averaged over random subsets. Lower is better; near 0 (it can be slightly negative) for matching sets."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated images (arrays/tensors uint8 or float in [0, 1], or PIL images).
    references: reference images, same count as predictions.
    feature_extractor, feature_extractor_name: as for the fid module.
    subset_size (default 1000, capped at the set sizes), num_subsets (default 100), seed (default 0), batch_size.
Returns:
    kid, kid_std, kid_feature_extractor, num_generated, num_reference.
"""

_CITATION = """@inproceedings{binkowski2018demystifying, title={Demystifying MMD GANs},
author={Bi{\\'n}kowski, Miko{\\l}aj and Sutherland, Danica J.
and Arbel, Michael and Gretton, Arthur}, booktitle={ICLR}, year={2018}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class KernelInceptionDistance(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": IMAGE, "references": IMAGE}),
            reference_urls=["https://arxiv.org/abs/1801.01401"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (converted to 8-bit PIL images, stored as PNG)."""
        return super().add_batch(predictions=pil_images(predictions), references=pil_images(references), **kwargs)

    def _compute(self, predictions, references, feature_extractor=None, feature_extractor_name=None, subset_size=1000,
                 num_subsets=100, seed=0, batch_size=16):
        return kernel_inception_distance(predictions, references, feature_extractor, feature_extractor_name,
                                         subset_size, num_subsets, seed, batch_size)
