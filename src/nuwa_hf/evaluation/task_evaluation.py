"""A task's metric table, from generated samples and what they should match, as the paper reports each task.

    table = task_metrics("T2V", generated_videos, reference_videos, texts=captions,
                         attributes={"digit": digits, "motion": motions}, scorers=scorers)

| task  | metrics computed (each only when its inputs and scorer are given)                                     |
|-------|--------------------------------------------------------------------------------------------------------|
| T2I   | FID, KID, IS (project classifier), CLIPSIM-style, attribute accuracy                                   |
| T2V   | FID-img (frames), FVD-style, CLIPSIM-style, attribute accuracy (digit, motion)                          |
| V2V   | FVD-style, FID-img, SSIM, PSNR                                                                         |
| S2I   | FID, KID, detected pixel accuracy / mIoU / FWIoU (segmenter output vs the input sketch)               |
| S2V   | FID-img, FVD-style, detected pixel accuracy / mIoU / FWIoU                                             |
| I2I   | FID, KID, SSIM, PSNR                                                                                   |
| TI2I  | FID, CLIPSIM-style (against the edit text)                                                             |
| TV2V  | FID-img, FVD-style, CLIPSIM-style (against the new text)                                               |
| VQGAN | reconstruction: FID, SSIM, PSNR; VQGAN-Seg: pixel accuracy, mIoU, FWIoU (NUWA table 4)                 |

A metric whose inputs or scorer are missing is not silently dropped: it is listed under "skipped" with what to pass.
Every row carries the scorer that produced it and that scorer's held-out accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .attributes import attribute_accuracy, video_digit_accuracy
from .text_visual_similarity import clip_similarity
from .feature_extraction import FeatureExtractor
from .frechet import frechet_inception_distance
from .image_inputs import as_float_videos, frames_of
from .inception_scoring import inception_score
from .kernel_inception import kernel_inception_distance
from .psnr import peak_signal_to_noise_ratio
from .segmentation import segmentation_scores
from .ssim import structural_similarity
from .video_distance import frechet_video_distance

TASK_METRICS: Dict[str, tuple] = {
    "T2I": ("fid", "kid", "inception_score", "clipsim", "attributes"),
    "T2V": ("fid_frames", "fvd", "clipsim", "attributes"),
    "V2V": ("fvd", "fid_frames", "ssim", "psnr"),
    "S2I": ("fid", "kid", "detected_segmentation"),
    "S2V": ("fid_frames", "fvd", "detected_segmentation"),
    "I2I": ("fid", "kid", "ssim", "psnr"),
    "TI2I": ("fid", "clipsim"),
    "TV2V": ("fid_frames", "fvd", "clipsim"),
    "VQGAN": ("fid", "ssim", "psnr"),
    "VQGAN-Seg": ("segmentation",),
}
VIDEO_TASKS = {"T2V", "V2V", "S2V", "TV2V"}


@dataclass
class EvaluationScorers:
    """The networks that read generated samples. Any of them may be left out; metrics that need it are skipped.

    image_features: FID/KID feature extractor; ``None`` uses the real FID Inception (fetched once, ~81 MB).
    digit_classifier: a trained ``DigitClassifier`` (one centred digit: IS and digit accuracy) or
    ``DigitSetClassifier`` (digits anywhere, several per image: digit accuracy; per frame on videos).
    motion_classifier: a trained ``MotionClassifier``. video_features: a trained ``VideoFeatureNetwork`` (FVD-style,
    and digit accuracy on videos). text_visual: a trained ``TextVisualDualEncoder`` or a ``LocalClipScorer``.
    segmenter: callable, float images (N, 3, H, W) in [0, 1] -> class maps (N, H, W) (for "detected" scores).
    attribute_classifiers: {attribute: trained AttributeClassifier} for other attributes (e.g. "color").
    """

    image_features: Optional[FeatureExtractor] = None
    image_features_name: Optional[str] = None
    digit_classifier: Any = None
    motion_classifier: Any = None
    video_features: Any = None
    text_visual: Any = None
    segmenter: Optional[Callable[[Any], Any]] = None
    attribute_classifiers: Optional[Dict[str, Any]] = None


def _row(metric: str, value: Any, details: Mapping[str, Any], prefix: Optional[str] = None) -> Dict[str, Any]:
    """One table row; the scorer columns come from the metric's ``<prefix>_scorer*`` keys."""
    row = {"metric": metric, "value": value, "scorer": None, "scorer_held_out": None}
    if prefix and f"{prefix}_scorer" in details:
        row["scorer"] = details[f"{prefix}_scorer"]
        held_out = {key[len(f"{prefix}_scorer_held_out_"):]: value for key, value in details.items()
                    if key.startswith(f"{prefix}_scorer_held_out_") and not key.endswith("_examples")}
        chance = {key[len(f"{prefix}_scorer_chance_"):]: value for key, value in details.items()
                  if key.startswith(f"{prefix}_scorer_chance_")}
        if held_out:
            row["scorer_held_out"] = {"accuracy": held_out, "chance": chance,
                                      "examples": details.get(f"{prefix}_scorer_held_out_examples")}
    return row


def _frames(videos: Any) -> Any:
    return frames_of(as_float_videos(videos))


def task_metrics(
    task: str,
    generated: Any,
    reference: Any = None,
    *,
    texts: Optional[Sequence[str]] = None,
    attributes: Optional[Mapping[str, Any]] = None,
    sketches: Any = None,
    num_classes: Optional[int] = None,
    scorers: Optional[EvaluationScorers] = None,
    kid_subset_size: int = 1000,
    progress: bool = False,
) -> Dict[str, Any]:
    """The metric table of ``task`` (a key of ``TASK_METRICS``).

    generated / reference: images (N, ...) or, for video tasks, videos (N, T, ...), any layout ``image_inputs``
    accepts; for paired metrics (SSIM, PSNR) reference[i] is the ground truth of generated[i]. For "VQGAN-Seg",
    generated and reference are class maps (N, H, W) and ``num_classes`` is required.
    texts: the prompt of each sample (CLIPSIM). attributes: {"digit": labels or per-video digit lists, "motion":
    names} the samples were asked to show. sketches: the input class maps (N, H, W) or (N, T, H, W) for S2I/S2V.

    Returns {"task", "rows": [{"metric", "value", "scorer", "scorer_held_out"}], "details": {metric: full output},
    "skipped": {metric: reason}, "num_generated"}.
    """
    if task not in TASK_METRICS:
        raise ValueError(f"Unknown task {task!r}: choose one of {sorted(TASK_METRICS)}.")
    scorers = scorers or EvaluationScorers()
    attributes = dict(attributes or {})
    rows: List[Dict[str, Any]] = []
    details: Dict[str, Any] = {}
    skipped: Dict[str, str] = {}
    plan = TASK_METRICS[task]

    iterator = plan
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(plan, desc=f"{task} metrics")

    feature_name = scorers.image_features_name
    for metric in iterator:
        if metric in ("fid", "fid_frames", "kid"):
            if reference is None:
                skipped[metric] = "needs reference samples (pass reference=...)"
                continue
            gen, ref = (_frames(generated), _frames(reference)) if metric == "fid_frames" or task in VIDEO_TASKS \
                else (generated, reference)
            if metric == "kid":
                out = kernel_inception_distance(gen, ref, scorers.image_features, feature_name,
                                                subset_size=kid_subset_size)
                rows.append({**_row("KID", out["kid"], out), "scorer": out["kid_feature_extractor"]})
            else:
                out = frechet_inception_distance(gen, ref, scorers.image_features, feature_name)
                label = "FID-img" if metric == "fid_frames" else "FID"
                if scorers.image_features is not None:
                    label += f" ({out['fid_feature_extractor']})"
                rows.append({**_row(label, out["fid"], out), "scorer": out["fid_feature_extractor"]})
            details[metric] = out
        elif metric == "fvd":
            if reference is None or scorers.video_features is None:
                skipped[metric] = "needs reference videos and scorers.video_features (a trained VideoFeatureNetwork)"
                continue
            out = frechet_video_distance(generated, reference, feature_network=scorers.video_features)
            rows.append(_row(out["fvd_name"], out["fvd"], out, "fvd"))
            details[metric] = out
        elif metric == "inception_score":
            if not hasattr(scorers.digit_classifier, "predict_proba"):
                skipped[metric] = ("needs scorers.digit_classifier with class probabilities (predict_proba), e.g. the "
                                   "MNIST DigitClassifier; a multi-label DigitSetClassifier has none")
                continue
            out = inception_score(generated, scorers.digit_classifier)
            rows.append(_row(out["inception_score_name"], out["inception_score"], out, "inception_score"))
            details[metric] = out
        elif metric == "clipsim":
            if texts is None or scorers.text_visual is None:
                skipped[metric] = "needs texts=... and scorers.text_visual (a TextVisualDualEncoder or LocalClipScorer)"
                continue
            out = clip_similarity(generated, texts, scorers.text_visual)
            rows.append(_row(out["clipsim_name"], out["clipsim"], out, "clipsim"))
            details[metric] = out
        elif metric == "attributes":
            if not attributes:
                skipped[metric] = "needs attributes={'digit': ..., 'motion': ...} (what each sample should show)"
            for attribute, intended in attributes.items():
                out = _attribute(task, attribute, generated, intended, scorers, skipped)
                if out is not None:
                    rows.append(_row(f"{attribute} accuracy", out[f"{attribute}_accuracy"], out,
                                     f"{attribute}_accuracy"))
                    details[f"{attribute}_accuracy"] = out
        elif metric in ("ssim", "psnr"):
            if reference is None:
                skipped[metric] = "needs paired reference samples (pass reference=...)"
                continue
            videos = task in VIDEO_TASKS
            if metric == "ssim":
                out = structural_similarity(generated, reference, videos=videos)
                rows.append(_row("SSIM", out["ssim"], out))
            else:
                out = peak_signal_to_noise_ratio(generated, reference, videos=videos)
                identical = out["num_identical_pairs"]
                if identical and identical < out["num_pairs"]:
                    # given frames come back as the input's own pixels (keep_original_pixels): an infinite PSNR each
                    rows.append(_row(f"PSNR (dB), the {out['num_pairs'] - identical} of {out['num_pairs']} "
                                     f"{'frames' if videos else 'images'} that differ from the reference ({identical} "
                                     "identical ones left out)", out["psnr_finite_mean"], out))
                else:
                    rows.append(_row("PSNR (dB)", out["psnr"], out))
            details[metric] = out
        elif metric == "segmentation":
            if reference is None or num_classes is None:
                skipped[metric] = "needs reference class maps and num_classes"
                continue
            out = segmentation_scores(generated, reference, num_classes)
            _segmentation_rows(rows, out, "")
            details[metric] = out
        elif metric == "detected_segmentation":
            if sketches is None or scorers.segmenter is None or num_classes is None:
                skipped[metric] = "needs sketches=..., num_classes and scorers.segmenter (images -> class maps)"
                continue
            frames = _frames(generated) if task in VIDEO_TASKS else generated
            from .image_inputs import as_float_images, as_label_maps

            detected = scorers.segmenter(as_float_images(frames))
            wanted = as_label_maps(sketches)
            if task in VIDEO_TASKS and wanted.ndim == 3 and len(wanted) != len(detected):
                raise ValueError("For video tasks pass sketches shaped (N, T, H, W), one class map per frame.")
            wanted = wanted.reshape(-1, *wanted.shape[-2:])
            out = segmentation_scores(detected, wanted, num_classes)
            out["segmenter"] = getattr(scorers.segmenter, "name", type(scorers.segmenter).__name__)
            _segmentation_rows(rows, out, "detected ", getattr(scorers.segmenter, "class_names", None))
            details[metric] = out
    return {"task": task, "rows": rows, "details": details, "skipped": skipped,
            "num_generated": len(generated) if hasattr(generated, "__len__") else None}


def _segmentation_rows(rows: List[Dict[str, Any]], out: Mapping[str, Any], prefix: str,
                       class_names: Optional[Sequence[str]] = None) -> None:
    """PA, mIoU and FWIoU rows; with ``class_names`` (one per class, e.g. a segmenter's ``class_names``) also one
    "IoU <class>" row per class, since a mean over classes hides small classes (the scene world's shapes cover ~12%
    of the pixels)."""
    scorer = out.get("segmenter")
    labelled = [(out[key], label) for key, label in
                (("pixel_accuracy", "PA"), ("mean_iou", "mIoU"), ("frequency_weighted_iou", "FWIoU"))]
    if class_names is not None and len(class_names) == len(out["per_class_iou"]):
        labelled += [(iou, f"IoU {name}") for name, iou in zip(class_names, out["per_class_iou"])]
    for value, label in labelled:
        row = _row(f"{prefix}{label}".strip(), value, out)
        row["scorer"] = scorer
        rows.append(row)


def _attribute(task: str, attribute: str, generated: Any, intended: Any, scorers: EvaluationScorers,
               skipped: Dict[str, str]) -> Optional[Dict[str, Any]]:
    video = task in VIDEO_TASKS
    if attribute == "digit":
        if video:
            # A frame reader trained on such frames (DigitSetClassifier) reads digits far better than the video
            # feature network's digit head (measured: 11% vs chance 8% for the latter), so it is preferred.
            classifier = scorers.digit_classifier or scorers.video_features
            if classifier is None:
                skipped["digit_accuracy"] = "needs scorers.video_features or scorers.digit_classifier"
                return None
            return video_digit_accuracy(generated, intended, classifier)
        if scorers.digit_classifier is None:
            skipped["digit_accuracy"] = "needs scorers.digit_classifier"
            return None
        return attribute_accuracy(generated, intended, scorers.digit_classifier, "digit")
    extra = dict(scorers.attribute_classifiers or {})
    classifier = scorers.motion_classifier if attribute == "motion" and scorers.motion_classifier is not None \
        else extra.get(attribute)
    if classifier is None:
        skipped[f"{attribute}_accuracy"] = (f"no classifier for attribute {attribute!r}: pass "
                                           "scorers.motion_classifier or "
                                           "scorers.attribute_classifiers={name: AttributeClassifier}")
        return None
    visual = getattr(classifier, "config", {}).get("visual", "image")
    if (visual == "video") != video:
        skipped[f"{attribute}_accuracy"] = f"the {attribute} classifier reads {visual}s but task {task} makes " \
                                          f"{'videos' if video else 'images'}"
        return None
    return attribute_accuracy(generated, intended, classifier, attribute)
