"""Pilot: completing under the model's OWN reading of the known part, against the paper's "None" condition.

Image completion (I2I, ``nuwa-image-completion``) and video prediction (V2V, ``nuwa-video-prediction``) run under the
"None" condition (zero-shot, as in the NUWA paper). Image manipulation already reads a picture with the model's own
likelihood (:mod:`nuwa_hf.pipelines.instruction_completion`: the caption "a {colour} {digit}" under which the picture's
tokens are most likely). The question: does completing under the caption the model reads in the KNOWN part keep the
digit better?

- I2I: the region is unknown, so the reading scores only the known token positions (:func:`known_token_losses`: the
  per-position cross-entropy of one teacher-forced pass per picture, summed over the positions outside the region
  token mask that the pipeline itself decodes under, ``region_to_token_mask``), over the 60 captions
  ``picture_captions`` lists. The completion is then ``nuwa-image-completion`` with ``prompt=`` that caption.
- V2V: the given frame(s) are read as "the {colour} digit {d} is moving {motion}" (GODIVA's form with the colour,
  every colour, digit and motion, 240 captions), on the given frames' tokens; the prediction is then
  ``nuwa-video-manipulation`` (the given frames kept, the rest sampled under that caption) with V2V's sampling (top-k
  32). The evaluation protocol gives ONE frame, so the motion read is a guess (its accuracy is printed).

Protocol: the recipe's held-out conditions (:func:`nuwa_hf.data.task_examples.task_examples`, split ``test``,
conditions drawn with the seed, generation seeded ``seed + first`` per chunk of 16 as
``examples/train_default_checkpoint.py``'s ``evaluate_task``), scored by its readers: I2I "digit kept" =
``read_digits`` (MNIST-framed crop of the whole output) equal to the original digit; V2V "identity kept" =
``digits_kept`` (the true digit read in at least half the frames). The digit reader is the shipped
``checkpoints/mnist-digit-reader`` (the recipe reads with its run's own scorer folder; absolute values can differ a
little, the comparison is paired in one process).

Variants (same conditions, same seeds): ``none`` (the pipeline's default: "None" condition, and for I2I the folder's
best of 4 by likelihood), ``read g1`` / ``read g3`` (the self-read caption, guidance 1 = no guidance / 3), and for I2I
the same with one sample (``num_candidates=1``) to see whether the reranking stays (``--quick`` leaves those out).

The control (``--region-fill black|swap``, I2I): the recipe's I2I input is the WHOLE original picture, and the VQ-GAN
encoder's receptive field spans the picture, so the kept tokens carry the region's own pixels (changing the bottom
half changes 64-73 % of the tokens of the top token row). ``black`` blacks the region out of the input, ``swap``
puts the next condition's region there (another digit; the reading's agreement with that digit is printed too).

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/bench_self_read_completion.py [--tasks I2I,V2V]
        [--conditions 100] [--seeds 0,1] [--quick] [--region-fill keep|black|swap] [--model checkpoints/nuwa-tiny]
        [--out results.json]

Prints, per task: the reading's accuracy on the known parts (digit, colour, and motion for V2V), each variant's
digit kept / identity with its binomial standard error, and each variant's paired difference from ``none`` with the
standard error of the paired differences; seconds per variant. Result (benchmarks/README.md): the I2I gain on the
recipe's protocol comes from the region's own pixels in the kept tokens; with them out of the input it is gone.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch


def known_token_losses(model, tokens: torch.Tensor, known: torch.Tensor, caption_ids: torch.Tensor) -> torch.Tensor:
    """Teacher-forced token loss (nats) of each token grid's KNOWN positions under each caption: one forward pass per
    grid (its K captions as the rows), the per-position cross-entropy summed over the positions where ``known`` is True
    (``model.token_grid_losses`` sums over every position).

    Args:
        model: a NUWA model (``forward`` with ``input_ids`` and ``labels``).
        tokens: token grids ``(N, T, h, w)``. Unknown positions are context for the known ones after them in raster
            order, never scored.
        known: bool ``(N, T, h, w)``, True where the token is known.
        caption_ids: ``(K, L)`` caption ids padded to the model's text length.

    Returns:
        ``(N, K)`` on the CPU, lower = the caption is the likelier condition of the known part.
    """
    if known.shape != tokens.shape:
        raise ValueError(f"one known flag per token: tokens {tuple(tokens.shape)}, known {tuple(known.shape)}.")
    n, k = tokens.shape[0], caption_ids.shape[0]
    ids = caption_ids.to(model.device)
    out = torch.empty(n, k)
    for index in range(n):
        labels = tokens[index: index + 1].to(model.device).expand(k, *tokens.shape[1:])
        logits = model(input_ids=ids, labels=labels, use_cache=False).logits.float()
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(k, -1)
        out[index] = (loss * known[index].flatten().to(loss.device, loss.dtype)).sum(dim=1).cpu()
    return out


def region_filled(image, mask, processor, grid, donor=None):
    """``image`` (PIL) with the pixels of the region ``mask`` (as the pipeline reads it, ``region_to_token_mask``, back
    on the pixels) black, or those of ``donor`` (a picture of the same size) there."""
    import PIL.Image

    from nuwa_hf.pipelines.regions import region_to_token_mask, token_mask_to_pixels

    tokens = region_to_token_mask(mask, image.size, grid, processor.image_processor)
    pixels = token_mask_to_pixels(tokens, image.size)
    array = np.asarray(image.convert("RGB")).copy()
    array[pixels] = 0 if donor is None else np.asarray(donor.convert("RGB"))[pixels]
    return PIL.Image.fromarray(array)


def share(values) -> tuple:
    values = np.asarray(values, dtype=float)
    p = float(values.mean())
    return p, math.sqrt(p * (1 - p) / len(values))


def paired(a, b) -> tuple:
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")


def run_i2i(model, processor, reader, args, seed: int, log) -> dict:
    from transformers import pipeline

    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.evaluation.digit_reading import read_digits
    from nuwa_hf.pipelines.instruction_completion import caption_form, picture_captions
    from nuwa_hf.pipelines.regions import region_to_token_mask

    size, frames = args.image_size, int(model.config.max_visual_grid[0])
    ex = task_examples("nuwa-image-completion", args.conditions, size, frames, split=args.split, seed=seed)
    region_digits, originals = None, list(ex.inputs["image"])
    if args.region_fill != "keep":  # the region's own pixels out of the input (see --region-fill)
        grid = tuple(int(g) for g in model.config.max_visual_grid[1:])
        order = list(range(len(ex)))
        if args.region_fill == "swap":  # the next condition's region, a digit the scoring does not ask for
            order = order[1:] + order[:1]
            region_digits = [None] * len(ex)
        filled = []
        for index, (image, mask) in enumerate(zip(ex.inputs["image"], ex.inputs["mask"])):
            donor = ex.inputs["image"][order[index]] if args.region_fill == "swap" else None
            filled.append(region_filled(image, mask, processor, grid, donor))
        ex.inputs["image"] = filled
    rows = data.world_rows("t2i", args.split, args.conditions, seed=seed, image_size=size)[:]
    digits = np.array([int(np.ravel(d)[0]) for d in rows["digits"]])
    colours = [data.COLORS[int(np.ravel(c)[0])] for c in rows["color"]]
    if region_digits is not None:
        region_digits = np.roll(digits, -1)
    pipe = pipeline("nuwa-image-completion", model=model, processor=processor)
    pipe.set_progress_bar_config(disable=True)
    tokenizer = processor.tokenizer
    values = picture_captions(tokenizer)
    caption_ids = torch.cat([pipe._text_ids(caption_form(*v)) for v in values])
    started = time.perf_counter()
    with torch.inference_mode():
        pixels = processor(images=ex.inputs["image"], return_tensors="pt")["pixel_values"][:, 0]
        tokens = model.vqgan.encode_to_indices(pixels.to(model.device))[:, None]  # (N, 1, h, w)
        region = torch.stack([region_to_token_mask(m, i.size, pipe.token_grid(), processor.image_processor)
                              for i, m in zip(ex.inputs["image"], ex.inputs["mask"])])  # (N, h, w) True = generate
        losses = known_token_losses(model, tokens, ~region[:, None], caption_ids)
    read = [values[i] for i in losses.argmin(dim=1).tolist()]
    read_seconds = time.perf_counter() - started
    captions = [caption_form(*v) for v in read]
    if args.region_fill != "keep":  # how much of the kept tokens the region's pixels decide (the encoder's reach)
        with torch.inference_mode():
            before = processor(images=originals, return_tensors="pt")["pixel_values"][:, 0]
            before = model.vqgan.encode_to_indices(before.to(model.device)).cpu()  # (N, h, w)
        changed = (before != tokens[:, 0].cpu()).float().mean(dim=(0, 2))  # per token row
        kept_rows = [r for r in range(changed.shape[0]) if bool((~region[:, r]).all())]
        log(f"I2I seed {seed}: kept tokens changed by the region fill ({args.region_fill}), per kept token row: "
            + ", ".join(f"{float(changed[r]):.2f}" for r in kept_rows))
    reading = {"digit": [int(d) == t for (d, _), t in zip(read, digits)],
               "colour": [c == t for (_, c), t in zip(read, colours)]}
    if region_digits is not None:  # how often the reading names the digit whose pixels are in the REGION
        reading["digit of the swapped-in region"] = [int(d) == t for (d, _), t in zip(read, region_digits)]
    log(f"I2I seed {seed}: reading of the known part, " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in reading.items())
        + f" ({read_seconds:.1f} s for {len(read)} pictures)")
    off = {"condition_on_reading": False} if getattr(pipe, "reads_known_part", False) else {}
    variants = {
        "none (best of 4)": off,
        "read g1 (best of 4)": {"prompt": True, "guidance_scale": 1.0},
        "read g3 (best of 4)": {"prompt": True, "guidance_scale": 3.0},
        "none, 1 sample": {**off, "num_candidates": 1},
        "read g1, 1 sample": {"prompt": True, "guidance_scale": 1.0, "num_candidates": 1},
        "read g3, 1 sample": {"prompt": True, "guidance_scale": 3.0, "num_candidates": 1},
    }
    if off:  # the pipeline's default now: the same reading, in _forward (should equal "read g3 (best of 4)")
        variants["pipeline default (condition_on_reading)"] = {}
    if args.quick:
        variants = {k: v for k, v in variants.items() if "1 sample" not in k}
    kept, seconds = {}, {}
    for name, options in variants.items():
        options = dict(options)
        with_prompt = options.pop("prompt", False)
        generated = []
        start = time.perf_counter()
        for first in range(0, len(ex), 16):
            last = min(first + 16, len(ex))
            extra = {"prompt": captions[first:last], "rephrase_prompt": False, "drop_unknown_words": False} \
                if with_prompt else {}
            generated.extend(pipe(**ex.chunk(first, last), seed=seed + first, output_type="np", batch_size=16,
                                  **extra, **options))
        seconds[name] = time.perf_counter() - start
        generated = (np.stack(generated).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
        kept[name] = (read_digits(reader, generated).argmax(-1).numpy() == digits).tolist()
        if name.startswith("pipeline default"):
            same = sum(a == b for a, b in zip(kept[name], kept["read g3 (best of 4)"]))
            log(f"  (the pipeline's default keeps the digit where 'read g3 (best of 4)' does in {same} / {len(ex)})")
        log(f"  {name}: digit kept {np.mean(kept[name]):.3f} ({seconds[name]:.1f} s)")
    return {"reading": reading, "kept": kept, "seconds": seconds, "read_seconds": read_seconds}


def run_v2v(model, processor, reader, args, seed: int, log) -> dict:
    from transformers import pipeline

    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.evaluation.digit_reading import digits_kept
    from nuwa_hf.pipelines.instruction_completion import picture_captions

    size, frames = args.image_size, int(model.config.max_visual_grid[0])
    ex = task_examples("nuwa-video-prediction", args.conditions, size, frames, split=args.split, seed=seed)
    rows = data.world_rows("v2v", args.split, args.conditions, seed=seed, image_size=size,
                           num_frames=max(frames, 3))[:]
    digits = [list(map(int, d)) for d in rows["digits"]]
    colours = [data.COLORS[int(np.ravel(c)[0])] for c in rows["color"]]
    motions = [data.MOTIONS[int(np.ravel(m)[0])] for m in rows["motion"]]
    predict = pipeline("nuwa-video-prediction", model=model, processor=processor)
    manipulate = pipeline("nuwa-video-manipulation", model=model, processor=processor)
    for pipe in (predict, manipulate):
        pipe.set_progress_bar_config(disable=True)
    values = [(d, c, m) for (d, c) in picture_captions(processor.tokenizer) for m in data.MOTIONS]
    caption = lambda d, c, m: f"the {c} digit {d} is moving {m}"  # noqa: E731  (GODIVA's form, coloured)
    caption_ids = torch.cat([manipulate._text_ids(caption(*v)) for v in values])
    given = int(ex.fixed["num_condition_frames"])
    started = time.perf_counter()
    with torch.inference_mode():
        pixels = processor(videos=[v[:given] for v in ex.inputs["video"]], return_tensors="pt")["pixel_values"]
        n = pixels.shape[0]
        tokens = model.vqgan.encode_to_indices(pixels.flatten(0, 1).to(model.device))
        tokens = tokens.view(n, given, *tokens.shape[1:])  # (N, given, h, w)
        losses = known_token_losses(model, tokens, torch.ones_like(tokens, dtype=torch.bool), caption_ids)
    read = [values[i] for i in losses.argmin(dim=1).tolist()]
    read_seconds = time.perf_counter() - started
    captions = [caption(*v) for v in read]
    reading = {"digit": [int(d) == t[0] for (d, _, _), t in zip(read, digits)],
               "colour": [c == t for (_, c, _), t in zip(read, colours)],
               "motion": [m == t for (_, _, m), t in zip(read, motions)]}
    log(f"V2V seed {seed}: reading of the given frame(s), digit {np.mean(reading['digit']):.3f}, colour "
        f"{np.mean(reading['colour']):.3f}, motion {np.mean(reading['motion']):.3f} ({read_seconds:.1f} s)")
    variants = {"none (default)": None, "read g1": 1.0, "read g3": 3.0}
    kept, seconds = {}, {}
    for name, guidance in variants.items():
        generated = []
        start = time.perf_counter()
        for first in range(0, len(ex), 16):
            last = min(first + 16, len(ex))
            if guidance is None:
                out = predict(**ex.chunk(first, last), seed=seed + first, output_type="np", batch_size=16)
            else:
                out = manipulate(ex.inputs["video"][first:last], captions[first:last], seed=seed + first,
                                 output_type="np", batch_size=16, num_condition_frames=given, num_frames=frames,
                                 top_k=32, guidance_scale=guidance, rephrase_prompt=False, drop_unknown_words=False)
            generated.extend(out)
        seconds[name] = time.perf_counter() - start
        generated = (np.stack(generated).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
        kept[name] = [digits_kept(reader, [video], [d]) for video, d in zip(generated, digits)]
        log(f"  {name}: identity kept {np.mean(kept[name]):.3f} ({seconds[name]:.1f} s)")
    return {"reading": reading, "kept": kept, "seconds": seconds, "read_seconds": read_seconds}


def summary(task: str, per_seed: list, log) -> dict:
    reading = {k: sum((r["reading"][k] for r in per_seed), []) for k in per_seed[0]["reading"]}
    kept = {k: sum((r["kept"][k] for r in per_seed), []) for k in per_seed[0]["kept"]}
    base = next(iter(kept))
    n = len(kept[base])
    log(f"\n## {task}: {n} conditions ({len(per_seed)} seeds)")
    log("reading of the known part: " + ", ".join(
        f"{k} {share(v)[0]:.3f} (se {share(v)[1]:.3f})" for k, v in reading.items()))
    log(f"| variant | {'digit kept' if task == 'I2I' else 'identity kept'} (se) | vs {base} (paired se) | "
        "seconds / 100 conditions |")
    log("|---|---|---|---|")
    table = {}
    for name, values in kept.items():
        p, se = share(values)
        d, dse = paired(values, kept[base])
        secs = sum(r["seconds"][name] for r in per_seed) / n * 100
        table[name] = {"value": p, "se": se, "diff": d, "diff_se": dse, "seconds_per_100": secs}
        log(f"| {name} | {p:.3f} ({se:.3f}) | {d:+.3f} ({dse:.3f}) | {secs:.0f} |")
    return {"reading": {k: share(v)[0] for k, v in reading.items()}, "table": table, "conditions": n}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="checkpoints/nuwa-tiny")
    parser.add_argument("--digit-reader", default="checkpoints/mnist-digit-reader")
    parser.add_argument("--tasks", default="I2I,V2V")
    parser.add_argument("--conditions", type=int, default=100)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--split", default="test")
    parser.add_argument("--quick", action="store_true", help="I2I: leave out the one-sample variants")
    parser.add_argument("--region-fill", choices=("keep", "black", "swap"), default="keep",
                        help="I2I: what the input shows in the region: its own pixels (the recipe's protocol), black, "
                             "or the next condition's region (another digit). The VQ-GAN encoder's receptive field "
                             "carries the region's pixels into the kept tokens")
    parser.add_argument("--out", default=None, help="write the per-condition results as JSON")
    args = parser.parse_args(argv)
    from transformers import AutoModelForSeq2SeqLM

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from nuwa_hf.evaluation import load_scorer
    from nuwa_hf.pipelines import load_nuwa_processor

    torch.manual_seed(0)
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model, use_safetensors=True).eval()
    processor = load_nuwa_processor(args.model)
    crop = processor.image_processor.crop_size
    args.image_size = int(getattr(crop, "height", None) or crop["height"])
    reader = load_scorer(args.digit_reader)
    log = lambda line: print(line, flush=True)  # noqa: E731
    runs = {"I2I": run_i2i, "V2V": run_v2v}
    results = {}
    for task in args.tasks.split(","):
        per_seed = [runs[task](model, processor, reader, args, int(s), log) for s in args.seeds.split(",")]
        results[task] = {"summary": summary(task, per_seed, log), "per_seed": per_seed}
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
