"""Attribute accuracy: does a generated sample show what its condition asked for? A classifier the project trained
on the data's own labels reads each sample (the paper's T2V "label accuracy", read by scorers we can train offline),
and its own held-out accuracy is reported beside the score: a generator cannot be judged more precisely than that.

Samples may be asked to show several values (two digits, two motions); a sample counts as correct when the
classifier's k most likely values, k the number of intended values, are exactly the intended ones ("set match";
plain top-1 accuracy for one value). Which digit moves which way is not checked, only the sets.
"""

from __future__ import annotations

from typing import Any, Dict

from .image_inputs import as_float_videos
from .scorers.label_sets import label_presence, label_set_matches
from .scorers.scorer_base import scorer_report


def attribute_accuracy(samples: Any, intended: Any, classifier: Any, attribute: str) -> Dict[str, Any]:
    """Fraction of ``samples`` whose ``intended`` values (an id/name or a list per sample) ``classifier`` reads.

    ``classifier`` needs ``predict_scores(samples) -> (N, K)`` and ``label_presence(labels) -> (N, K)`` (the
    project's ``DigitClassifier``, ``AttributeClassifier`` and ``MotionClassifier`` have both). Returns
    ``{"<attribute>_accuracy", "num_samples", <scorer report>}``.
    """
    report = scorer_report(classifier, f"{attribute}_accuracy")
    presence = classifier.label_presence(intended)
    scores = classifier.predict_scores(samples)
    if len(scores) != len(presence):
        raise ValueError(f"Got {len(scores)} samples but {len(presence)} intended labels: pair them one to one.")
    matches = label_set_matches(scores, presence)
    return {f"{attribute}_accuracy": float(matches.float().mean()), "num_samples": len(matches), **report}


def video_digit_accuracy(videos: Any, intended_digits: Any, classifier: Any) -> Dict[str, Any]:
    """Fraction of videos that show exactly the intended digits (an int or a list per video).

    With a ``VideoFeatureNetwork`` its digit head reads the clip; with an image classifier (``DigitSetClassifier``,
    best for Moving MNIST frames, or ``DigitClassifier``) every frame is scored and the scores are averaged over time.
    Returns ``{"digit_accuracy", "num_samples", <report>}``.
    """
    from .scorers.video_feature_network import VideoFeatureNetwork

    report = scorer_report(classifier, "digit_accuracy")
    if isinstance(classifier, VideoFeatureNetwork):
        scores = classifier.predict_scores(videos)[0]
    else:
        clips = as_float_videos(videos)
        frame_scores = classifier.predict_scores(clips.reshape(-1, *clips.shape[2:]))
        scores = frame_scores.reshape(clips.shape[0], clips.shape[1], -1).mean(dim=1)
    presence = label_presence(intended_digits, [str(digit) for digit in range(scores.shape[-1])])
    if len(presence) != len(scores):
        raise ValueError(f"Got {len(scores)} videos but {len(presence)} intended digit lists: pair them one to one.")
    matches = label_set_matches(scores, presence)
    return {"digit_accuracy": float(matches.float().mean()), "num_samples": len(matches), **report}
