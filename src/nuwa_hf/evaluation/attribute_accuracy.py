"""Attribute accuracy: does a generated sample show what its condition asked for? A classifier the project trained
on the data's own labels reads each sample (the paper's T2V "label accuracy", read by scorers we can train offline),
and its own held-out accuracy is reported beside the score: a generator cannot be judged more precisely than that.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

from .image_inputs import as_float_videos
from .scorers.scorer_base import scorer_report
from .scorers.video_feature_network import digit_presence, digit_set_matches


def attribute_accuracy(samples: Any, intended: Any, classifier: Any, attribute: str) -> Dict[str, Any]:
    """Fraction of ``samples`` that ``classifier`` reads as their ``intended`` label.

    ``classifier`` needs ``predict_proba(samples) -> (N, K)`` and ``label_ids(labels) -> (N,)`` (the project's
    ``DigitClassifier`` on images and ``MotionClassifier`` on videos have both). Returns
    ``{"<attribute>_accuracy", "num_samples", <scorer report>}``.
    """
    report = scorer_report(classifier, f"{attribute}_accuracy")
    wanted = classifier.label_ids(intended)
    predicted = classifier.predict_proba(samples).argmax(-1)
    if len(predicted) != len(wanted):
        raise ValueError(f"Got {len(predicted)} samples but {len(wanted)} intended labels: pair them one to one.")
    return {f"{attribute}_accuracy": float((predicted == wanted).float().mean()), "num_samples": len(wanted), **report}


def video_digit_accuracy(videos: Any, intended_digits: Any, classifier: Any) -> Dict[str, Any]:
    """Fraction of videos whose digits are exactly the intended ones (a list per video: one or two digits).

    With a ``VideoFeatureNetwork`` its digit-presence head reads the clip; with an image ``DigitClassifier`` every
    frame is classified and the probabilities are averaged over time. Either way the k most likely digits, k the
    number of intended digits, must equal the intended set. Returns ``{"digit_accuracy", "num_samples", <report>}``.
    """
    from .scorers.video_feature_network import VideoFeatureNetwork

    report = scorer_report(classifier, "digit_accuracy")
    if isinstance(classifier, VideoFeatureNetwork):
        scores = classifier.predict_scores(videos)[0]
        num_digits = classifier.config["num_digits"]
    else:
        clips = as_float_videos(videos)
        frame_scores = classifier.predict_proba(clips.reshape(-1, *clips.shape[2:]))
        scores = frame_scores.reshape(clips.shape[0], clips.shape[1], -1).mean(dim=1)
        num_digits = scores.shape[-1]
    presence = digit_presence(list(intended_digits) if not isinstance(intended_digits, np.ndarray)
                              else intended_digits, num_digits)
    if len(presence) != len(scores):
        raise ValueError(f"Got {len(scores)} videos but {len(presence)} intended digit lists: pair them one to one.")
    matches = digit_set_matches(scores, presence)
    return {"digit_accuracy": float(matches.float().mean()), "num_samples": len(matches), **report}
