"""The card's I2I rows under the recipe's own evaluation code, before and after the protocol change.

``examples/train_default_checkpoint.py``'s ``evaluate_task`` (the ``evaluate`` stage that wrote the card's table:
``task_examples`` of split ``test``, 100 conditions, seed 0, generation seeded ``seed + first`` per chunk of 16, the
folder's sampling: top-k 8, best of 4 by the model's likelihood) run on ``--model``, twice in one process:

- ``known part`` (the protocol now): the input is the held-out picture with the region (bottom half) black;
- ``whole picture`` (the protocol before): the input is the whole original picture, region included
  (``task_examples(..., whole_picture=True)``), completed by the pipeline as it was then (``blank_region=False,
  regenerate_border=0``), which leaks the region's pixels into the kept tokens.

The recipe reads digits with its run's own scorer folder (``<work-dir>/scorers``, not shipped); this script reads
them with the shipped ``checkpoints/mnist-digit-reader`` (``--digit-reader``), so both protocols are scored by the
same reader here, and FID / KID are left out (``--fid`` adds them; the Inception weights must be cached).
Extra pipeline options (e.g. ``--options '{"regenerate_border": 0}'``) go to every call.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/eval_i2i_protocol.py [--samples 100] [--seed 0] [--split test]
        [--options JSON] [--out table.json]

Prints each protocol's rows (digit kept with its 95% Wilson interval, SSIM, PSNR, PSNR outside the region).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]


def load_recipe():
    spec = importlib.util.spec_from_file_location("train_default_checkpoint",
                                                  REPO / "examples" / "train_default_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(REPO / "checkpoints" / "nuwa-tiny"))
    parser.add_argument("--digit-reader", default=str(REPO / "checkpoints" / "mnist-digit-reader"))
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="test")
    parser.add_argument("--options", default="{}", help="pipeline options as JSON, given to every call")
    parser.add_argument("--protocols", default="known part,whole picture")
    parser.add_argument("--fid", action="store_true", help="add FID / KID (the real FID Inception, cached)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    from transformers import AutoModelForSeq2SeqLM

    import nuwa_hf  # noqa: F401
    import nuwa_hf.data.task_examples as task_examples_module
    from nuwa_hf.evaluation import load_scorer
    from nuwa_hf.pipelines import load_nuwa_processor

    recipe = load_recipe()
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model, use_safetensors=True).eval()
    processor = load_nuwa_processor(args.model)
    crop = processor.image_processor.crop_size
    size = int(getattr(crop, "height", None) or crop["height"])
    context = SimpleNamespace(folder=None, segmenter=None, model=model, processor=processor,
                              loaded={"digit_classifier": load_scorer(args.digit_reader), "motion_classifier": None,
                                      "video_features": None, "color_classifier": None})
    recipe_args = SimpleNamespace(eval_samples=args.samples, image_size=size,
                                  num_frames=int(model.config.max_visual_grid[0]), seed=args.seed,
                                  world="large_digits", fid_tasks="I2I" if args.fid else "",
                                  image_features="inception" if args.fid else "none",
                                  grid_size=int(model.config.max_visual_grid[1]))
    original = task_examples_module.task_examples
    tables = {}
    for protocol in [p.strip() for p in args.protocols.split(",")]:
        whole = {"known part": False, "whole picture": True}[protocol]

        def examples(*a, **k):
            return original(*a, **k, whole_picture=whole)

        options = json.loads(args.options)
        if whole:  # the pipeline as it was: the picture encoded as given, the region's tokens alone sampled
            options = {"blank_region": False, "regenerate_border": 0, **options}
        task_examples_module.task_examples = examples  # evaluate_task imports it from the module at each call
        try:
            table = recipe.evaluate_task(recipe_args, context, "I2I", args.split, sampling=options or None,
                                         frechet=args.fid)
        finally:
            task_examples_module.task_examples = original
        tables[protocol] = table
        print(f"\n## I2I, {protocol} ({table['conditions']}), {args.split}, {args.samples} conditions, seed "
              f"{args.seed}, options {options}: {table['generation_seconds']} s generating")
        for row in table["rows"]:
            interval = f" ({row['ci95'][0]:.2f}-{row['ci95'][1]:.2f})" if "ci95" in row else ""
            value = row["value"]
            print(f"| {row['metric']} | {value:.3f}{interval} |" if isinstance(value, float) else
                  f"| {row['metric']} | {value} |")
    if args.out:
        Path(args.out).write_text(json.dumps(tables, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
