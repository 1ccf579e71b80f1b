"""Teacher-forced condition gains: does a model USE each part of its condition? Seconds per snapshot, no sampling.

For held-out examples of the default worlds, the summed token loss (nats per example) of the true target is computed
under the true condition and under the same condition with ONE attribute swapped for each alternative value:

| task | attributes swapped | how |
|---|---|---|
| T2I | digit, colour | the caption "a {colour} {digit}" with the digit (or colour) replaced |
| T2V | digit, colour, motion | "the {colour} digit {digit} is moving {motion}" with one part replaced |
| S2I / S2V | shape class; shape present | the shape's pixels of the sketch relabelled as each other shape class; or given
  the class of the background under it (the shape removed) |

Reported per attribute: ``gain`` (mean over examples and alternatives of swapped minus true loss, nats per example;
0 means the attribute is ignored) and ``true_lowest`` (share of examples whose true condition has the lowest loss of
all; chance is 1 / (number of values)). A caption's motion is worth at most log 4 = 1.4 nats of information per
video, a digit log 10 = 2.3: likelihood training learns the cheapest to predict last, so these gains show a model
starting to use a condition long before samples do (shared notes: pilot evidence).

    python -m nuwa_hf.evaluation.condition_gain --model checkpoints/nuwa-tiny --tasks t2i,t2v,s2i --out gains.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data.attributes import COLORS, MOTIONS

T2I_TEMPLATE = "a {color} {digit}"
T2V_TEMPLATE = "the {color} digit {digit} is moving {motion}"
TASKS_WITH_GAINS = ("t2i", "t2v", "s2i", "s2v")
SHAPE_CLASSES = (3, 4, 5)  # circle, square, triangle in the scene world (data.SCENE_CLASSES)


def _caption(task: str, digit: int, color: str, motion: Optional[str] = None) -> str:
    if task == "t2i":
        return T2I_TEMPLATE.format(color=color, digit=digit)
    return T2V_TEMPLATE.format(color=color, digit=digit, motion=motion)


def _summary(true_loss: torch.Tensor, alternatives: torch.Tensor) -> Dict[str, float]:
    """true_loss (B,), alternatives (B, K) -> gain and true-lowest share (with its chance level)."""
    gain = (alternatives - true_loss[:, None]).mean(dim=1)
    lowest = (true_loss[:, None] < alternatives).all(dim=1).float()
    return {"gain": round(float(gain.mean()), 3), "true_lowest": round(float(lowest.mean()), 3),
            "chance": round(1.0 / (alternatives.shape[1] + 1), 3), "examples": int(true_loss.shape[0])}


def _held_out_rows(task: str, num_examples: int, seed: int, image_size: int, num_frames: int):
    from .. import data

    return data.world_rows(task, "test", num_examples, seed=seed, image_size=image_size, num_frames=num_frames)[:]


def text_condition_gains(model, processor, task: str, rows) -> Dict[str, Dict[str, float]]:
    """Gains of the caption's digit, colour (and, for T2V, motion) on held-out ``rows`` of the t2i / t2v world."""
    from ..training.tasks import get_task
    from ..training.grid_encoding import encode_text, encode_visual

    video = get_task(task).visual == "video"
    pixels = rows["video" if video else "image"]
    labels = encode_visual(model.vqgan, pixels, video)
    labels = labels if labels.dim() == 4 else labels[:, None]
    digits = [int(np.asarray(d).reshape(-1)[0]) for d in rows["digits"]]
    colors = [COLORS[int(np.asarray(c).reshape(-1)[0])] for c in rows["color"]]
    motions = [MOTIONS[int(np.asarray(m).reshape(-1)[0])] for m in rows["motion"]] if video else [None] * len(digits)
    domains = {"digit": list(range(10)), "colour": list(COLORS[1:])}
    if video:
        domains["motion"] = list(MOTIONS)

    def losses(captions: List[str]) -> torch.Tensor:
        ids = encode_text(processor.tokenizer, captions, model.config.max_text_length)
        return model.token_grid_losses(labels, input_ids=ids)

    true = losses([_caption(task, d, c, m) for d, c, m in zip(digits, colors, motions)])
    report = {}
    for name, values in domains.items():
        columns = []
        for k in range(len(values) - 1):
            captions = []
            for d, c, m in zip(digits, colors, motions):
                own = {"digit": d, "colour": c, "motion": m}[name]
                others = [v for v in values if v != own]
                value = others[k]
                parts = {"digit": d, "color": c, "motion": m}
                parts["color" if name == "colour" else name] = value
                captions.append(_caption(task, **parts))
            columns.append(losses(captions))
        report[name] = _summary(true, torch.stack(columns, dim=1))
    return report


def _background_under(sketch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The sketch with the pixels under ``mask`` given the most common non-shape class around them (shape removed)."""
    out = sketch.copy()
    stuff = sketch[~mask & (sketch < SHAPE_CLASSES[0])]
    out[mask] = np.bincount(stuff.reshape(-1)).argmax() if stuff.size else 0
    return out


def sketch_condition_gains(model, task: str, rows) -> Dict[str, Dict[str, float]]:
    """Gains of the sketch's shape: its class (relabelled as each other shape class) and its presence (removed)."""
    from ..training.tasks import get_task
    from ..training.grid_encoding import encode_sketch, encode_visual

    video = get_task(task).visual == "video"
    pixels = rows["video" if video else "image"]
    labels = encode_visual(model.vqgan, pixels, video)
    labels = labels if labels.dim() == 4 else labels[:, None]
    sketches = [np.asarray(s) for s in rows["sketch"]]
    keep = [i for i, s in enumerate(sketches) if np.isin(s, SHAPE_CLASSES).any()]
    if not keep:
        raise ValueError("no held-out sketch holds a shape; draw more examples.")
    labels = labels[keep]
    sketches = [sketches[i] for i in keep]

    def losses(maps: Sequence[np.ndarray]) -> torch.Tensor:
        tokens = encode_sketch(model.sketch_vqgan, list(maps), video)
        tokens = tokens if tokens.dim() == labels.dim() else tokens[:, None]
        return model.token_grid_losses(labels, sketch_tokens=tokens)

    true = losses(sketches)
    relabelled = []
    for k in range(len(SHAPE_CLASSES) - 1):
        maps = []
        for sketch in sketches:
            shapes = [c for c in SHAPE_CLASSES if (sketch == c).any()]
            out = sketch.copy()
            for c in shapes:  # every shape of the sketch takes the k-th other shape class
                out[sketch == c] = [o for o in SHAPE_CLASSES if o != c][k]
            maps.append(out)
        relabelled.append(losses(maps))
    removed = losses([_background_under(s, np.isin(s, SHAPE_CLASSES)) for s in sketches])
    return {"shape_class": _summary(true, torch.stack(relabelled, dim=1)),
            "shape_present": _summary(true, removed[:, None])}


def condition_gains(model, processor, tasks: Sequence[str] = ("t2i", "t2v", "s2i"), *, num_examples: int = 40,
                    seed: int = 1, image_size: Optional[int] = None, num_frames: Optional[int] = None
                    ) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``{task: {attribute: {"gain", "true_lowest", "chance", "examples"}}}`` on ``num_examples`` held-out examples
    (MNIST test digits, held-out scene seeds) of the default worlds. ``image_size`` defaults to the processor's,
    ``num_frames`` to the model's longest clip (``config.max_visual_grid[0]``). Runs in inference mode; seconds on a
    CPU for the shipped model."""
    tasks = [str(task).strip().lower() for task in tasks]
    for task in tasks:
        if task not in TASKS_WITH_GAINS:
            raise ValueError(f"no condition gain for task {task!r}; choose among {', '.join(TASKS_WITH_GAINS)}.")
    model.eval()
    crop = getattr(processor.image_processor, "crop_size", None) or {}
    size = int(image_size or crop.get("height") or processor.image_processor.size.get("height") or 32)
    frames = int(num_frames or model.config.max_visual_grid[0])
    report = {}
    for task in tasks:
        rows = _held_out_rows(task, num_examples, seed, size, frames)
        started = time.perf_counter()
        if task in ("t2i", "t2v"):
            report[task] = text_condition_gains(model, processor, task, rows)
        else:
            report[task] = sketch_condition_gains(model, task, rows)
        report[task]["seconds"] = round(time.perf_counter() - started, 1)
    return report


def format_gains(report: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """One line per task: ``t2v: motion 0.60 / 7.49 nats; digit ...`` (true lowest / gain)."""
    lines = []
    for task, attributes in report.items():
        parts = [f"{name} {row['true_lowest']:.2f} / {row['gain']:.2f}" for name, row in attributes.items()
                 if isinstance(row, dict)]
        lines.append(f"{task}: " + "; ".join(parts) + "  (true lowest / gain in nats per example)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a NUWA model folder (or a training checkpoint folder)")
    parser.add_argument("--processor", default=None, help="processor folder; default: --model")
    parser.add_argument("--tasks", default="t2i,t2v,s2i")
    parser.add_argument("--num-examples", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--num-frames", type=int, default=None)
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    args = parser.parse_args(argv)

    from ..models.nuwa import NuwaForConditionalGeneration
    from ..processing import NuwaProcessor

    model = NuwaForConditionalGeneration.from_pretrained(args.model, use_safetensors=True)
    processor = NuwaProcessor.from_pretrained(args.processor or args.model)
    report = condition_gains(model, processor, args.tasks.split(","), num_examples=args.num_examples, seed=args.seed,
                             num_frames=args.num_frames)
    print(format_gains(report))
    if args.out:
        from ..file_io import atomic_write_json

        atomic_write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
