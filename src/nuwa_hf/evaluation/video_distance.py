"""An FVD-style score: the Fréchet distance between video feature sets (Unterthiner et al., 2018).

The real FVD uses I3D trained on Kinetics, which cannot be had offline. By default the features come from the
project's ``VideoFeatureNetwork`` (a small 3D CNN), and the result is named after it, e.g.
"FVD (3D-CNN trained on Moving MNIST train)". A user with an I3D (or any video network) passes it as
``feature_extractor`` together with a ``feature_extractor_name``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .feature_extraction import FeatureExtractor
from .frechet import frechet_distance_of_features
from .image_inputs import as_float_videos
from .scorers.scorer_base import scorer_report


def frechet_video_distance(
    generated: Any,
    reference: Any,
    feature_network: Any = None,
    feature_extractor: Optional[FeatureExtractor] = None,
    feature_extractor_name: Optional[str] = None,
    batch_size: int = 16,
) -> Dict[str, Any]:
    """Fréchet distance between the features of two video sets (each at least 2 videos; sizes may differ).

    Give exactly one of ``feature_network`` (a trained ``VideoFeatureNetwork``) or ``feature_extractor`` (a callable
    taking float videos (B, T, 3, H, W) in [0, 1] and returning (B, D)). Returns
    ``{"fvd", "fvd_name", "num_generated", "num_reference", <scorer report>}``.
    """
    if (feature_network is None) == (feature_extractor is None):
        raise ValueError("Pass exactly one of feature_network (a trained VideoFeatureNetwork) or feature_extractor.")
    if feature_network is not None:
        report = scorer_report(feature_network, "fvd")
        extractor = feature_network.video_feature_extractor()
        name = feature_network.name
    else:
        extractor = feature_extractor
        name = feature_extractor_name or getattr(extractor, "name", None) or type(extractor).__name__
        report = {"fvd_scorer": f"{name} (external, not validated by nuwa-hf)"}
    generated_videos = as_float_videos(generated, what="generated videos")
    reference_videos = as_float_videos(reference, what="reference videos")
    return {
        "fvd": frechet_distance_of_features(generated_videos, reference_videos, extractor, batch_size),
        "fvd_name": f"FVD ({name})",
        "num_generated": len(generated_videos),
        "num_reference": len(reference_videos),
        **report,
    }
