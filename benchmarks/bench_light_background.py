"""Users' pictures on a light background (dark ink on white paper) against the model's black-background training world.

The shipped model was trained on light, coloured digits on BLACK. A user's scan or photo of a handwritten digit is
the other way round. What do image completion (I2I) and video prediction (V2V) make of it, and does inverting the
picture first recover the normal result?

Pictures: held-out conditions of ``--split`` (:func:`~nuwa_hf.data.task_examples.task_examples`: I2I the whole
picture with the bottom half regenerated under the pipeline's defaults; V2V the first frame, the rest predicted), and
two light-background versions of each:

- ``light``: ``255 - picture`` (the complementary colour on white: a red digit turns cyan);
- ``grey``: a grey-ink-on-off-white scan: ``235 - 0.65 * brightness`` in every channel (paper 235, full-bright strokes
  at 69), brightness = the picture's brightest channel.

Arms (all through the pipelines as a user calls them, the same seeds in every arm):

- ``original``;
- ``light`` / ``grey`` as given; the output read as it comes and read after inverting it back (``255 - output``, what
  the reader would see of a light-background output that was right);
- ``grey, inverted by the user``: ``PIL.ImageOps.invert`` of the grey version before the call (a grey digit on a
  near-black background; its colour is lost). The light version inverted by the user is the original picture itself
  (checked), so its outputs are the ``original`` arm's; ``grey on white paper (255), inverted by the user``: the
  same ink on pure white paper, inverted (a grey digit on black: what the inverted scan lacks is its colour only).

"Digit kept" (I2I): the shipped ``checkpoints/mnist-digit-reader`` reads the digit of the whole output (the recipe's
``read_digits``, MNIST-framed crop of the bright pixels) as the original digit. "Identity kept" (V2V): the digit read
in at least half of the frames (``digits_kept``). Both ± binomial standard error.

Then the light-background rule of :mod:`nuwa_hf.pipelines.backgrounds` (border grey level >= 0.6 on the processed
picture): the border brightness of held-out training-world pictures (I2I pictures of ``--split`` and ``test``, and
every frame of the V2V clips), of their light and grey versions, and of random-noise pictures of the same size (no
background: not to be flagged); prints the smallest, median and largest of each, the false-positive rate and the
detection rate.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/bench_light_background.py [--split validation]
        [--conditions 200] [--video-conditions 100] [--seed 0] [--out results.json]

Results: benchmarks/README.md ("Light-background pictures").
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def share(values) -> tuple:
    values = np.asarray(values, dtype=float)
    p = float(values.mean())
    return p, math.sqrt(p * (1 - p) / len(values))


def light(pictures: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) -> the negative: light background, complementary colours."""
    return 255 - pictures


def grey(pictures: np.ndarray, paper: float = 235.0) -> np.ndarray:
    """uint8 (..., 3) -> grey ink on off-white paper: paper - 0.65 * brightest channel, in every channel."""
    brightness = pictures.astype(np.float32).max(axis=-1, keepdims=True)
    return np.repeat(np.round(paper - 0.65 * brightness), 3, axis=-1).clip(0, 255).astype(np.uint8)


def to_uint8(outputs) -> np.ndarray:
    return (np.stack(outputs).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)


def run_i2i(pipe, reader, args, log) -> dict:
    import PIL.Image

    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.evaluation.digit_reading import read_digits

    size, frames = args.image_size, int(pipe.model.config.max_visual_grid[0])
    ex = task_examples("nuwa-image-completion", args.conditions, size, frames, split=args.split, seed=args.seed,
                       whole_picture=True)
    originals = np.stack([np.asarray(p) for p in ex.inputs["image"]])
    assert np.array_equal(light(light(originals)), originals)  # the light version inverted by the user = original
    rows = data.world_rows("t2i", args.split, args.conditions, seed=args.seed, image_size=size)[:]
    digits = np.array([int(np.ravel(d)[0]) for d in rows["digits"]])
    inputs = {"original": originals, "light": light(originals), "grey": grey(originals),
              "grey, inverted by the user": light(grey(originals)),
              "grey on white paper (255), inverted by the user": light(grey(originals, paper=255.0))}
    masks = ex.inputs["mask"]
    kept, seconds = {}, {}
    for name, pictures in inputs.items():
        images = [PIL.Image.fromarray(p) for p in pictures]
        generated = []
        start = time.perf_counter()
        for first in range(0, len(images), 16):
            last = min(first + 16, len(images))
            generated.extend(pipe(images[first:last], mask=masks[first:last], seed=args.seed + first,
                                  output_type="np", batch_size=16))
        seconds[name] = time.perf_counter() - start
        generated = to_uint8(generated)
        readings = {"as it comes": generated}
        if name in ("light", "grey"):
            readings["inverted back"] = light(generated)
        for how, pictures_read in readings.items():
            read = read_digits(reader, pictures_read).argmax(-1).numpy()
            kept[f"{name}, read {how}"] = (read == digits).tolist()
            log(f"  I2I {name}, read {how}: digit kept {np.mean(read == digits):.3f} ({seconds[name]:.1f} s)")
    return {"kept": kept, "seconds": seconds}


def run_v2v(pipe, reader, args, log) -> dict:
    import PIL.Image

    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.evaluation.digit_reading import digits_kept

    size, frames = args.image_size, int(pipe.model.config.max_visual_grid[0])
    ex = task_examples("nuwa-video-prediction", args.video_conditions, size, frames, split=args.split, seed=args.seed)
    rows = data.world_rows("v2v", args.split, args.video_conditions, seed=args.seed, image_size=size,
                           num_frames=max(frames, 3))[:]
    digits = [list(map(int, d)) for d in rows["digits"]]
    firsts = np.stack([np.asarray(video[0]) for video in ex.inputs["video"]])
    inputs = {"original": firsts, "light": light(firsts), "grey": grey(firsts),
              "grey, inverted by the user": light(grey(firsts)),
              "grey on white paper (255), inverted by the user": light(grey(firsts, paper=255.0))}
    kept, seconds = {}, {}
    for name, pictures in inputs.items():
        videos = [[PIL.Image.fromarray(p)] for p in pictures]
        generated = []
        start = time.perf_counter()
        for first in range(0, len(videos), 16):
            last = min(first + 16, len(videos))
            generated.extend(pipe(videos[first:last], seed=args.seed + first, output_type="np", batch_size=16,
                                  **ex.fixed))
        seconds[name] = time.perf_counter() - start
        generated = to_uint8(generated)  # (N, T, H, W, 3)
        readings = {"as it comes": generated}
        if name in ("light", "grey"):
            readings["inverted back"] = light(generated)
        for how, videos_read in readings.items():
            kept[f"{name}, read {how}"] = [digits_kept(reader, [v], [d]) >= 1.0 for v, d in zip(videos_read, digits)]
            log(f"  V2V {name}, read {how}: identity kept {np.mean(kept[f'{name}, read {how}']):.3f} "
                f"({seconds[name]:.1f} s)")
    return {"kept": kept, "seconds": seconds}


def detection(processor, args, log) -> dict:
    """The border brightness (nuwa_hf.pipelines.backgrounds) of held-out pictures and their light versions."""
    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.pipelines.backgrounds import LIGHT_BORDER, border_brightness

    size = args.image_size
    sets = {}
    for split in dict.fromkeys([args.split, "test"]):
        ex = task_examples("nuwa-image-completion", args.detection_pictures, size, 1, split=split, seed=args.seed + 1,
                           whole_picture=True)
        sets[f"I2I pictures, {split}"] = np.stack([np.asarray(p) for p in ex.inputs["image"]])
    rows = data.world_rows("v2v", args.split, args.detection_pictures // 4, seed=args.seed + 1, image_size=size,
                           num_frames=4)[:]
    sets[f"V2V frames, {args.split}"] = np.concatenate([np.asarray(v, dtype=np.uint8) for v in rows["video"]])

    def brightness(pictures):
        import PIL.Image

        pixels = processor(images=[PIL.Image.fromarray(p) for p in pictures], return_tensors="pt")["pixel_values"]
        return np.array([border_brightness(p) for p in pixels.flatten(0, 1)])

    table = {}
    for name, pictures in sets.items():
        noise = lambda x: np.random.default_rng(0).integers(0, 256, x.shape, dtype=np.uint8)  # noqa: E731
        for version, make in (("real", lambda x: x), ("light", light), ("grey", grey), ("random noise", noise)):
            values = brightness(make(pictures))
            flagged = values >= LIGHT_BORDER
            p, se = share(flagged)
            table[f"{name}, {version}"] = {"n": len(values), "flagged": p, "se": se, "min": float(values.min()),
                                           "median": float(np.median(values)), "max": float(values.max())}
            log(f"  {name}, {version} ({len(values)}): flagged {p:.3f} ± {se:.3f}; border grey level min "
                f"{values.min():.3f}, median {np.median(values):.3f}, max {values.max():.3f}")
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="checkpoints/nuwa-tiny")
    parser.add_argument("--digit-reader", default="checkpoints/mnist-digit-reader")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--conditions", type=int, default=200)
    parser.add_argument("--video-conditions", type=int, default=100)
    parser.add_argument("--detection-pictures", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="detection,i2i,v2v")
    parser.add_argument("--out", default=None, help="write the per-condition results as JSON")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    import torch
    from transformers import AutoModelForSeq2SeqLM, pipeline

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from nuwa_hf.evaluation import load_scorer
    from nuwa_hf.pipelines import load_nuwa_processor
    from nuwa_hf.pipelines.backgrounds import LIGHT_BORDER

    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model, use_safetensors=True).eval()
    processor = load_nuwa_processor(args.model)
    crop = processor.image_processor.crop_size
    args.image_size = int(getattr(crop, "height", None) or crop["height"])
    reader = load_scorer(args.digit_reader)
    log = lambda line: print(line, flush=True)  # noqa: E731
    results = {}
    if "detection" in parts:
        log(f"Light-background rule (border grey level >= {LIGHT_BORDER}):")
        results["detection"] = detection(processor, args, log)
    for part, task, run in (("i2i", "nuwa-image-completion", run_i2i), ("v2v", "nuwa-video-prediction", run_v2v)):
        if part not in parts:
            continue
        pipe = pipeline(task, model=model, processor=processor)
        pipe.set_progress_bar_config(disable=True)
        results[part] = run(pipe, reader, args, log)
        what = "digit kept" if part == "i2i" else "identity kept"
        n = len(next(iter(results[part]["kept"].values())))
        log(f"\n## {part.upper()}, split {args.split}: {n} conditions, {what} (± binomial se)")
        log(f"| input | read | {what} | seconds / 100 conditions |")
        log("|---|---|---|---|")
        for name, values in results[part]["kept"].items():
            source, how = name.split(", read ")
            p, se = share(values)
            log(f"| {source} | {how} | {p:.3f} ± {se:.3f} | {results[part]['seconds'][source] / n * 100:.0f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), **results}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
