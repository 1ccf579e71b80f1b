"""Kernel Inception Distance with the real FID Inception-v3 pool3 features, offline (unbiased at small N)."""

from nuwa_hf.evaluation.kernel_inception import kernel_inception_distance
from nuwa_hf.evaluation.metric_module_support import VisualMetric

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


class KernelInceptionDistance(VisualMetric):
    DESCRIPTION, INPUTS, CITATION = _DESCRIPTION, _KWARGS_DESCRIPTION, _CITATION
    REFERENCE_URLS = ("https://arxiv.org/abs/1801.01401",)

    def _compute(self, predictions, references, feature_extractor=None, feature_extractor_name=None, subset_size=1000,
                 num_subsets=100, seed=0, batch_size=16):
        return kernel_inception_distance(predictions, references, feature_extractor, feature_extractor_name,
                                         subset_size, num_subsets, seed, batch_size)
