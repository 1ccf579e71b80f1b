"""An FVD-style video distance computed with a video network the project trains (no I3D offline), named after it."""

from nuwa_hf.evaluation.metric_module_support import VisualMetric, load_project_scorer
from nuwa_hf.evaluation.video_distance import frechet_video_distance

_DESCRIPTION = """Fréchet distance between Gaussians fitted to video features (Unterthiner et al., 2018). By default
the features come from nuwa-hf's VideoFeatureNetwork, a small 3D CNN trained on Moving MNIST, and the result is
named so ("FVD (3D CNN trained on ...)"), with that network's held-out accuracy beside it. A user with I3D
passes it as feature_extractor. Lower is better; identical sets give 0."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated videos (N, T, H, W[, C]) / (N, T, C, H, W), uint8 or float in [0, 1], or lists of frames.
    references: reference videos, same count (call nuwa_hf.evaluation.frechet_video_distance for other counts).
    scorer / scorer_path: a trained VideoFeatureNetwork or the folder it was saved to; or
    feature_extractor: any callable float (B, T, 3, H, W) in [0, 1] -> (B, D), with feature_extractor_name.
Returns:
    fvd, fvd_name, num_generated, num_reference, fvd_scorer and the scorer's held-out accuracies.
"""

_CITATION = """@article{unterthiner2018towards,
title={Towards Accurate Generative Models of Video: A New Metric & Challenges},
author={Unterthiner, Thomas and van Steenkiste, Sjoerd and Kurach, Karol and Marinier, Rapha{\\"e}l and Michalski,
Marcin and Gelly, Sylvain}, journal={arXiv:1812.01717}, year={2018}}"""


class FrechetVideoDistance(VisualMetric):
    DESCRIPTION, INPUTS, CITATION = _DESCRIPTION, _KWARGS_DESCRIPTION, _CITATION
    CONFIGS = ("video",)

    def _compute(self, predictions, references, scorer=None, scorer_path=None, feature_extractor=None,
                 feature_extractor_name=None, batch_size=16):
        if feature_extractor is None:
            scorer = load_project_scorer(scorer, scorer_path, "a trained VideoFeatureNetwork (or a feature_extractor)")
        return frechet_video_distance(predictions, references, feature_network=scorer,
                                      feature_extractor=feature_extractor,
                                      feature_extractor_name=feature_extractor_name, batch_size=batch_size)
