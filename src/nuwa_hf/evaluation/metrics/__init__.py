"""``evaluate`` metric modules, one folder each, loadable offline with ``evaluate.load(metric_path(name))``.

    import evaluate
    from nuwa_hf.evaluation import metric_path
    fid = evaluate.load(metric_path("fid"))
    fid.compute(predictions=generated_images, references=real_images)
"""

from __future__ import annotations

from pathlib import Path

METRIC_NAMES = ("attribute_accuracy", "clipsim", "fid", "fvd", "inception_score", "kid", "psnr", "segmentation", "ssim")


def metric_path(name: str) -> str:
    """The folder to pass to ``evaluate.load`` for the metric ``name`` (one of ``METRIC_NAMES``)."""
    if name not in METRIC_NAMES:
        raise ValueError(f"Unknown nuwa-hf metric {name!r}: choose one of {METRIC_NAMES}.")
    return str(Path(__file__).resolve().parent / name)
