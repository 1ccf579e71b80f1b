"""Pilot: image completion (I2I) from the known part alone, and the tokens at the region's boundary.

With the region blacked out of the input (the condition a completion user has: only the known part), the VQ-GAN
encoder's receptive field crosses token cells, so the kept tokens next to the region were encoded seeing black there:
they tell the model "the stroke ends here". The question: does regenerating a ring of boundary tokens around the
region too (``regenerate_border=1``: the pipeline samples them, then pastes the input's own pixels back outside the
region as always) keep the digit better than keeping every token outside the region? And what should the pipeline
do with a WHOLE picture (region included): encode it as given (the region's pixels then leak into the kept tokens) or
blank the region first (``blank_region=True``, as diffusers' inpainting pipelines blank the masked image)?

Arms (the same conditions and seeds in every arm), all through ``nuwa-image-completion`` as a user calls it:

- ``black``: the input's region black (:func:`~nuwa_hf.data.task_examples.task_examples`' I2I input), border 0;
- ``black+border1`` / ``black+border2``: the same, with 1 / 2 token rows and columns around the region regenerated
  too;
- ``whole``: the whole original picture, encoded as given (the leaky reference: the earlier evaluation protocol);
- ``whole+blank``: the whole picture, the pipeline blanks the region before encoding (should read as ``black``: only
  the paste-back seam's 2 pixels inside the region differ), and ``whole+blank+border1``;
- ``default``: the whole picture with the pipeline's defaults (``blank_region=True, regenerate_border=0``);
- ``black+border1/k4`` / ``/k16`` / ``/k32``: the new defaults with another top-k than the folder's 8 (which was
  chosen under the earlier, whole-picture protocol);
- ``swap`` / ``swap+blank``: the next condition's region pasted into the input (another digit, what a user's
  picture could hold under the mask); the printout adds how often the output reads as THAT digit, i.e. how much what
  lies under the mask decides the completion.

Each arm with the folder's sampling (I2I: top-k 8, best of 4 by the model's likelihood) and, for the black arms, one
sample (``num_candidates=1``, ``/1sample``). Held-out conditions of ``--split`` (validation for choosing), ``--conditions`` per seed,
generation seeded ``seed + first`` per chunk of 16 as the recipe's ``evaluate_task``; "digit kept" = the recipe's
``read_digits`` (MNIST-framed crop of the whole output) equal to the original digit, read by the shipped
``checkpoints/mnist-digit-reader``; "colour kept" = the named colour of the bright pixels below the region's seam
(``read_colours``) equal to that of the original's top half, the known part (no bright pixels there counts as not
kept).

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/bench_completion_boundary.py [--split validation]
        [--conditions 200] [--seeds 0,1,2] [--arms black,black+border1,...] [--out results.json]

Prints each arm's digit kept ± binomial standard error, its paired difference from ``black`` ± the standard error of
the paired differences, and seconds per 100 conditions. Results: benchmarks/README.md and docs/pilot_study.md
("Completing from the known part alone").
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

# name -> (input, pipeline options)
ARMS = {  # every option given, so an arm does not move with the pipeline's defaults
    "black": ("black", {"blank_region": True, "regenerate_border": 0}),
    "black+border1": ("black", {"blank_region": True, "regenerate_border": 1}),
    "black+border2": ("black", {"blank_region": True, "regenerate_border": 2}),
    "black/1sample": ("black", {"blank_region": True, "regenerate_border": 0, "num_candidates": 1}),
    "black+border1/1sample": ("black", {"blank_region": True, "regenerate_border": 1, "num_candidates": 1}),
    "whole": ("whole", {"blank_region": False, "regenerate_border": 0}),
    "whole+blank": ("whole", {"blank_region": True, "regenerate_border": 0}),
    "whole+blank+border1": ("whole", {"blank_region": True, "regenerate_border": 1}),
    "swap": ("swap", {"blank_region": False, "regenerate_border": 0}),
    "swap+blank": ("swap", {"blank_region": True, "regenerate_border": 0}),
    "default": ("whole", {}),  # the pipeline's defaults on the whole picture
    # the folder's top-k (8, chosen under the earlier whole-picture protocol) against others, the new defaults
    "black+border1/k4": ("black", {"blank_region": True, "regenerate_border": 1, "top_k": 4}),
    "black+border1/k16": ("black", {"blank_region": True, "regenerate_border": 1, "top_k": 16}),
    "black+border1/k32": ("black", {"blank_region": True, "regenerate_border": 1, "top_k": 32}),
}


def share(values) -> tuple:
    values = np.asarray(values, dtype=float)
    p = float(values.mean())
    return p, math.sqrt(p * (1 - p) / len(values))


def paired(a, b) -> tuple:
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")


def run_seed(pipe, reader, args, seed: int, arms: list, log) -> dict:
    import PIL.Image

    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.evaluation.digit_reading import colour_kept, read_colours, read_digits

    size, frames = args.image_size, int(pipe.model.config.max_visual_grid[0])
    black = task_examples("nuwa-image-completion", args.conditions, size, frames, split=args.split, seed=seed)
    whole = task_examples("nuwa-image-completion", args.conditions, size, frames, split=args.split, seed=seed,
                          whole_picture=True)
    references = np.asarray(whole.references)
    swapped = references.copy()  # the next condition's bottom half under the region
    swapped[:, size // 2:] = np.roll(references, -1, axis=0)[:, size // 2:]
    inputs = {"black": black.inputs["image"], "whole": whole.inputs["image"],
              "swap": [PIL.Image.fromarray(p) for p in swapped]}
    rows = data.world_rows("t2i", args.split, args.conditions, seed=seed, image_size=size)[:]
    digits = np.array([int(np.ravel(d)[0]) for d in rows["digits"]])
    donors = np.roll(digits, -1)
    masks = black.inputs["mask"]
    # the known part's colour (the top half of the original) against the region's in each output
    top = read_colours(references, [(0.0, 0.0, 1.0, 0.5)] * len(references))
    kept, donor, colour, seconds = {}, {}, {}, {}
    for name in arms:
        source, options = ARMS[name]
        generated = []
        start = time.perf_counter()
        for first in range(0, len(masks), 16):
            last = min(first + 16, len(masks))
            generated.extend(pipe(inputs[source][first:last], mask=masks[first:last], seed=seed + first,
                                  output_type="np", batch_size=16, **options))
        seconds[name] = time.perf_counter() - start
        generated = (np.stack(generated).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
        read = read_digits(reader, generated).argmax(-1).numpy()
        kept[name] = (read == digits).tolist()
        donor[name] = (read == donors).tolist()
        colour[name] = colour_kept(generated, top)  # the region below the seam against the known part's colour
        extra = f", read as the digit under the mask {np.mean(donor[name]):.3f}" if source == "swap" else ""
        log(f"  seed {seed} {name}: digit kept {np.mean(kept[name]):.3f}{extra} ({seconds[name]:.1f} s)")
    return {"kept": kept, "donor": donor, "colour": colour, "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="checkpoints/nuwa-tiny")
    parser.add_argument("--digit-reader", default="checkpoints/mnist-digit-reader")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--conditions", type=int, default=200)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--arms", default=",".join(a for a in ARMS if a != "default"), help=f"comma-separated, of {list(ARMS)}")
    parser.add_argument("--out", default=None, help="write the per-condition results as JSON")
    args = parser.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {unknown}; known: {list(ARMS)}")
    import torch
    from transformers import AutoModelForSeq2SeqLM, pipeline

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from nuwa_hf.evaluation import load_scorer
    from nuwa_hf.pipelines import load_nuwa_processor

    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model, use_safetensors=True).eval()
    processor = load_nuwa_processor(args.model)
    crop = processor.image_processor.crop_size
    args.image_size = int(getattr(crop, "height", None) or crop["height"])
    reader = load_scorer(args.digit_reader)
    pipe = pipeline("nuwa-image-completion", model=model, processor=processor)
    pipe.set_progress_bar_config(disable=True)
    log = lambda line: print(line, flush=True)  # noqa: E731
    per_seed = [run_seed(pipe, reader, args, int(s), arms, log) for s in args.seeds.split(",")]
    kept = {name: sum((r["kept"][name] for r in per_seed), []) for name in arms}
    donor = {name: sum((r["donor"][name] for r in per_seed), []) for name in arms}
    colour = {name: sum((r["colour"][name] for r in per_seed), []) for name in arms}
    n = len(kept[arms[0]])
    base = "black" if "black" in kept else arms[0]
    log(f"\n## I2I, split {args.split}: {n} conditions ({len(per_seed)} seeds), digit kept")
    log(f"| arm | digit kept (se) | vs {base} (paired se) | colour kept (se) | vs {base} (paired se) | "
        "seconds / 100 conditions |")
    log("|---|---|---|---|---|---|")
    table = {}
    for name in arms:
        p, se = share(kept[name])
        d, dse = paired(kept[name], kept[base])
        secs = sum(r["seconds"][name] for r in per_seed) / n * 100
        cp, cse = share(colour[name])
        cd, cdse = paired(colour[name], colour[base])
        row = {"value": p, "se": se, "diff": d, "diff_se": dse, "colour": cp, "colour_se": cse, "colour_diff": cd,
               "colour_diff_se": cdse, "seconds_per_100": secs}
        note = ""
        if ARMS[name][0] == "swap":
            row["read_as_digit_under_mask"], row["read_as_digit_under_mask_se"] = share(donor[name])
            note = f" (read as the digit under the mask: {row['read_as_digit_under_mask']:.3f})"
        table[name] = row
        log(f"| {name} | {p:.3f} ({se:.3f}){note} | {d:+.3f} ({dse:.3f}) | {cp:.3f} ({cse:.3f}) | {cd:+.3f} "
            f"({cdse:.3f}) | {secs:.0f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "table": table, "per_seed": per_seed}, indent=1,
                                             default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
