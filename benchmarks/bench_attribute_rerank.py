"""Pilot: reranking by the model's posterior of the ASKED attribute (``scorer="attribute_posterior"``) against one
sample and against the likelihood (``scorer="likelihood"``), on the SAME candidates.

For a candidate ``x`` asked with caption ``c`` the posterior scorer reads
``log p(x | c) - logsumexp_{c'} log p(x | c')`` over ``c`` and the caption with the asked attribute swapped for each
other value (:mod:`nuwa_hf.pipelines.attribute_posterior`): what the alternatives share (the digit's shape, the colour
when the motion is swapped) cancels, unlike the condition gain (docs/pilot_study.md, "Reranking by the condition
gain"), whose null prompt rewards atypical samples.

Protocol: the recipe's ``evaluate_task`` (``examples/train_default_checkpoint.py``): ``--conditions`` conditions of
``--split`` (validation by default), generation seeded ``seed + first`` per chunk of 16, each task with the model
folder's sampling, its readers (the motion classifier, the MNIST digit CNN) from ``<work-dir>/scorers``. The best of
``--candidates`` candidates for every scorer variant come from ONE sampling pass (the pipeline's ``_generate_group`` is
memoised on its inputs and seeds, so each variant reranks the very same tokens); "one sample" is
``num_candidates=1``. Variants of the posterior:

- ``posterior motion`` (T2V, TV2V): the motion alone swapped (4 captions), read on the sampled positions only (a TV2V
  video's given first frame is left out of the sums);
- ``posterior motion, whole grid`` (TV2V): the same read over every position;
- ``posterior all``: every attribute the prompt names (motion, digit, colour), each swapped alone (4 + 10 + 6
  captions), log posteriors summed; this is what ``scorer="attribute_posterior"`` computes. For T2I and TI2I (digit
  and colour) the only posterior variant.

It also prints the cheap diagnostic: on the split's REAL videos (the T2V references) with their own captions, how often
the true motion (digit, colour) has the highest posterior, over the whole grid and over frames 2.. given frame 1.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/bench_attribute_rerank.py --work-dir /path/to/runs/v10 \\
        [--model checkpoints/nuwa-tiny] [--tasks T2V,TV2V] (or T2I,TI2I) [--conditions 100] [--task-conditions
        TI2I=500] [--split validation] [--agreement] [--no-diagnostic] [--out out.json]

``--work-dir`` must hold the recipe's ``scorers/`` (digit_classifier, motion_classifier, video_features,
color_classifier, segmenter). Prints each variant's rows with their binomial standard errors and seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
HEADS = {
    "T2I": ["digit accuracy, MNIST-framed crop of the whole picture: generated",
            "colour accuracy (the colour the caption names): generated"],
    "T2V": ["digit accuracy, single-digit videos ({n}), per-frame MNIST crops: generated", "motion accuracy"],
    "TI2I": ["edit obeyed: the new colour read in the box",
             "digit kept (the original digit read in the output): generated"],
    "TV2V": ["edit obeyed: motion accuracy (new motion)"],
}
SHORT = {HEADS["T2I"][0]: "digit", HEADS["T2I"][1]: "colour", HEADS["T2V"][0]: "digit", HEADS["T2V"][1]: "motion",
         HEADS["TI2I"][0]: "new colour", HEADS["TI2I"][1]: "digit kept", HEADS["TV2V"][0]: "new motion"}
MOTION_TASKS = ("T2V", "TV2V")


def load_recipe():
    spec = importlib.util.spec_from_file_location("recipe", ROOT / "examples" / "train_default_checkpoint.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    return recipe


def memoise_generation():
    """Make ``NuwaPipeline._generate_group`` return the same output for the same inputs, seeds and candidates."""
    from nuwa_hf.pipelines.pipeline_base import NuwaPipeline

    original = NuwaPipeline._generate_group
    cache = {}

    def generate_group(self, chunk, spec, per_input, options, bar, return_pixels):
        sampling = tuple((k, options.get(k)) for k in ("top_k", "top_p", "temperature", "guidance_scale"))
        key = (self.task_name, per_input, tuple(sorted(spec.items())), sampling,
               tuple((name, tuple(value.shape), value.numpy().tobytes()) for name, value in sorted(chunk.items())))
        if key not in cache:
            cache[key] = original(self, chunk, spec, per_input, options, bar, True)
        return cache[key]

    NuwaPipeline._generate_group = generate_group
    return cache


def posterior_variant(kinds, whole_grid: bool):
    """Make ``scorer="attribute_posterior"`` swap ``kinds`` and read ``whole_grid`` (every position) or not."""
    from nuwa_hf.pipelines.attribute_posterior import AttributeSwapper
    from nuwa_hf.pipelines.pipeline_base import NuwaPipeline

    def swapper(self):
        return AttributeSwapper(self.processor.tokenizer, int(self.config.text_pad_token_id), kinds)

    original = NuwaPipeline.__dict__.get("_pilot_original_scores") or NuwaPipeline._attribute_posterior_scores
    NuwaPipeline._pilot_original_scores = original

    def scores(self, chunk, spec, tokens, per_input):
        if whole_grid:
            spec = {**spec, "known_frames": 0, "regions": 0}
        return original(self, chunk, spec, tokens, per_input)

    NuwaPipeline._attribute_swapper = swapper
    NuwaPipeline._attribute_posterior_scores = scores


def error(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n)


def real_video_diagnostic(context, recipe_args, split: str, n: int) -> dict:
    """On ``n`` real videos of ``split`` (the T2V references) with their captions: the share whose true value has the
    highest posterior, per attribute, over the whole grid and over frames 2.. (frame 1 given)."""
    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.pipelines.attribute_posterior import AttributeSwapper

    model, processor = context.model, context.processor
    s, t = recipe_args.image_size, recipe_args.num_frames
    ex = task_examples("nuwa-text-to-video", n, s, t, split=split, seed=recipe_args.seed,
                       num_sketch_classes=data.NUM_SCENE_CLASSES, world=recipe_args.world)
    videos = torch.from_numpy(ex.references).float()  # (N, T, H, W, 3) uint8 values
    with torch.inference_mode():
        flat = videos.reshape(-1, s, s, 3).permute(0, 3, 1, 2) / 127.5 - 1
        tokens = model.vqgan.encode_to_indices(flat)
        tokens = tokens.reshape(videos.shape[0], videos.shape[1], *tokens.shape[1:])
        swapper = AttributeSwapper(processor.tokenizer, int(model.config.text_pad_token_id))
        limit = int(model.config.max_text_length)
        right = {}
        for index, text in enumerate(ex.texts):
            ids = processor(text=[text], max_length=limit, padding="max_length", return_tensors="pt")["input_ids"][0]
            for kind, asked, alternatives in swapper.swaps(ids):
                grid = tokens[index:index + 1].expand(alternatives.shape[0], *tokens.shape[1:])
                mask = torch.ones(grid.shape, dtype=torch.bool)
                mask[:, 0] = False
                for label, position_mask in (("whole grid", None), ("frames 2.. given frame 1", mask)):
                    losses = model.token_grid_losses(grid, input_ids=alternatives, position_mask=position_mask)
                    right.setdefault(f"{kind}, {label}", []).append(int(losses.argmin()) == 0)
                right.setdefault(f"{kind}, chance", []).append(1.0 / alternatives.shape[0])
    return {key: round(sum(values) / len(values), 3) for key, values in right.items()} | {"videos": len(ex.texts)}


def candidate_agreement(context, recipe_args, code: str, split: str, n: int, candidates: int,
                        weights=(0.0, 0.5, 1.0, 2.0, 4.0, None)) -> dict:
    """Per candidate, on ONE sampling pass of ``candidates`` candidates for ``n`` conditions of task ``code`` (seeded
    as ``evaluate_task``; the same rows ``num_candidates`` reranks): the motion classifier's read (right or not), the
    model's log-likelihood of the whole grid given the caption, and its posterior of the four motions (the caption with
    each motion, on the sampled frames). Returns how often the model's motion reading agrees with the classifier's,
    the classifier's accuracy by the posterior of the asked motion, and the best-of-``candidates`` accuracy of
    ``log p(x | c) + w * log posterior(asked motion)`` for each ``w`` of ``weights`` (0: the likelihood; None: the
    posterior alone, ties broken by the likelihood), each ± its binomial standard error and paired against w = 0."""
    from transformers import pipeline

    from nuwa_hf import data
    from nuwa_hf.data.attributes import MOTIONS
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.evaluation.scorers.label_sets import label_set_matches
    from nuwa_hf.pipelines.attribute_posterior import AttributeSwapper
    from nuwa_hf.pipelines.pipeline_base import TASK_CODES, NuwaPipeline

    model, processor = context.model, context.processor
    classifier = context.loaded["motion_classifier"]
    s, t = recipe_args.image_size, recipe_args.num_frames
    name = TASK_CODES[code]
    ex = task_examples(name, n, s, t, split=split, seed=recipe_args.seed, num_sketch_classes=data.NUM_SCENE_CLASSES,
                       world=recipe_args.world)
    pipe = pipeline(name, model=model, processor=processor)
    pipe.set_progress_bar_config(disable=True)
    grids = []
    inner = NuwaPipeline._generate_group

    def keep_tokens(self, chunk, spec, per_input, options, bar, return_pixels):
        out = inner(self, chunk, spec, per_input, options, bar, return_pixels)
        grids.append(out.tokens)
        return out

    NuwaPipeline._generate_group = keep_tokens
    try:
        videos = []
        for first in range(0, len(ex), 16):
            last = min(first + 16, len(ex))
            videos.extend(pipe(**ex.chunk(first, last), seed=recipe_args.seed + first, output_type="np", batch_size=16,
                               num_candidates=1, num_outputs_per_input=candidates))
    finally:
        NuwaPipeline._generate_group = inner
    videos = (torch.from_numpy(__import__("numpy").stack(videos)).clamp(0, 1) * 255).round().to(torch.uint8)
    videos = videos.reshape(-1, *videos.shape[2:]).numpy()  # (n * candidates, T, H, W, 3), input-major
    tokens = torch.cat(grids)  # (n * candidates, T, h, w)
    wanted = [next(m for m in MOTIONS if m in text) for text in ex.texts]
    asked = [m for m in wanted for _ in range(candidates)]
    scores = classifier.predict_scores(videos)  # (n * candidates, 4), MOTIONS' order; read as attribute_accuracy
    read = [MOTIONS[i] for i in scores.argmax(-1).tolist()]
    right = label_set_matches(scores, classifier.label_presence(asked)).float().view(n, candidates)
    swapper = AttributeSwapper(processor.tokenizer, int(model.config.text_pad_token_id), ("motion",))
    limit = int(model.config.max_text_length)
    posteriors, likelihoods, readings = [], [], []
    with torch.inference_mode():
        for index, text in enumerate(ex.texts):
            ids = processor(text=[text], max_length=limit, padding="max_length", return_tensors="pt")["input_ids"][0]
            (_, value, alternatives), = swapper.swaps(ids)
            order = [value] + [other for other, _ in swapper.groups["motion"][0] if other != value]  # the rows
            grid = tokens[index * candidates:(index + 1) * candidates]
            k = alternatives.shape[0]
            rows = grid.repeat_interleave(k, dim=0)
            mask = torch.ones(rows.shape, dtype=torch.bool)
            if code == "TV2V":
                mask[:, 0] = False
            losses = model.token_grid_losses(rows, input_ids=alternatives.repeat(candidates, 1),
                                             position_mask=mask).view(candidates, k)
            whole = model.token_grid_losses(grid, input_ids=ids[None].expand(candidates, -1))
            posteriors.append(torch.log_softmax(-losses, dim=1)[:, 0])
            likelihoods.append(-whole)
            readings.extend(order[int(i)] for i in losses.argmin(dim=1).tolist())
    posterior, likelihood = torch.stack(posteriors), torch.stack(likelihoods)  # (n, candidates)
    agree = sum(m == r for m, r in zip(readings, read)) / len(read)
    confident = posterior.exp().flatten()
    flat = right.flatten()
    bins = {}
    for low, high in ((0.0, 0.5), (0.5, 0.9), (0.9, 1.01)):
        inside = (confident >= low) & (confident < high)
        if inside.any():
            bins[f"posterior {low}-{min(high, 1.0)}"] = {"candidates": int(inside.sum()),
                                                       "classifier right": round(float(flat[inside].mean()), 3)}
    picks = {}
    base = right[torch.arange(n), likelihood.argmax(dim=1)]
    for w in weights:
        score = posterior * 1e6 + likelihood if w is None else likelihood + w * posterior
        chosen = right[torch.arange(n), score.argmax(dim=1)]
        diff = chosen - base
        label = "posterior alone" if w is None else f"likelihood + {w} x log posterior"
        picks[label] = {"accuracy": round(float(chosen.mean()), 3),
                        "standard_error": round(error(float(chosen.mean()), n), 3),
                        "vs likelihood": round(float(diff.mean()), 3),
                        "paired standard_error": round(float(diff.std(unbiased=True) / math.sqrt(n)), 3)}
    return {"conditions": n, "candidates": candidates,
            "classifier right, mean over candidates (one sample)": round(float(right.mean()), 3),
            "any candidate right (oracle)": round(float(right.max(dim=1).values.mean()), 3),
            "model's motion reading agrees with the classifier's": round(agree, 3),
            "model's motion reading is the asked motion": round(sum(
                r == a for r, a in zip(readings, asked)) / len(asked), 3),
            "classifier right by the posterior of the asked motion": bins, "best of candidates": picks}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "nuwa-tiny"))
    parser.add_argument("--work-dir", required=True, help="a recipe work dir holding scorers/ (e.g. runs/v10)")
    parser.add_argument("--tasks", default="T2V,TV2V")
    parser.add_argument("--conditions", type=int, default=100)
    parser.add_argument("--task-conditions", default="TI2I=500",
                        help="per-task conditions over --conditions (the recipe's tune_tasks reads TI2I at 500)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--no-diagnostic", action="store_true")
    parser.add_argument("--agreement", action="store_true",
                        help="instead of the evaluate_task rows: per-candidate reads of one sampling pass "
                             "(candidate_agreement), the posterior against the motion classifier")
    parser.add_argument("--out", default=None)
    a = parser.parse_args(argv)
    torch.set_num_threads(1)
    recipe = load_recipe()
    rargs = recipe.parse_args(["--work-dir", a.work_dir, "--output", a.model, "--eval-samples", str(a.conditions)])
    context = recipe.evaluation_context(rargs, Path(a.work_dir))
    memoise_generation()
    results = {}
    if not a.no_diagnostic:
        started = time.time()
        results["real videos"] = real_video_diagnostic(context, rargs, a.split, a.conditions)
        results["real videos"]["seconds"] = round(time.time() - started, 1)
        print("real videos:", json.dumps(results["real videos"]), flush=True)
    n = a.candidates
    if a.agreement:
        for code in [c.strip() for c in a.tasks.split(",") if c.strip()]:
            started = time.time()
            results[f"{code}: agreement"] = candidate_agreement(context, rargs, code, a.split, a.conditions, n)
            results[f"{code}: agreement"]["seconds"] = round(time.time() - started, 1)
            print(f"{code}: agreement", json.dumps(results[f"{code}: agreement"], indent=1), flush=True)
            if a.out:
                Path(a.out).write_text(json.dumps(results, indent=1))
        return
    per_task = {code.strip(): int(k) for code, k in (item.split("=") for item in a.task_conditions.split(",")
                                                     if item.strip())}
    for code in [c.strip() for c in a.tasks.split(",") if c.strip()]:
        rargs.eval_samples = per_task.get(code, a.conditions)
        variants = [("one sample", {"num_candidates": 1}, None),
                    (f"best of {n} by likelihood", {"scorer": "likelihood", "num_candidates": n}, None)]
        if code in MOTION_TASKS:
            variants.append((f"best of {n} by posterior motion", {"scorer": "attribute_posterior", "num_candidates": n},
                             (("motion",), False)))
        if code == "TV2V":
            variants.append((f"best of {n} by posterior motion, whole grid",
                             {"scorer": "attribute_posterior", "num_candidates": n}, (("motion",), True)))
        variants.append((f"best of {n} by posterior all", {"scorer": "attribute_posterior", "num_candidates": n},
                         (("motion", "digit", "colour"), False)))
        for label, sampling, variant in variants:
            if variant is not None:
                posterior_variant(*variant)
            started = time.time()
            table = recipe.evaluate_task(rargs, context, code, a.split, sampling, frechet=False)
            rows = {r["metric"]: r["value"] for r in table["rows"]}
            heads = [m.format(n=table["num_samples"]) for m in HEADS[code]]
            read = {SHORT[m]: round(float(rows[f]), 3) for m, f in zip(HEADS[code], heads) if f in rows}
            read_errors = {k: round(error(v, table["num_samples"]), 3) for k, v in read.items()}
            results[f"{code}: {label}"] = {"rows": read, "standard_errors": read_errors,
                                           "conditions": table["num_samples"],
                                           "seconds": round(time.time() - started, 1)}
            print(f"{code}: {label}", json.dumps(results[f"{code}: {label}"]), flush=True)
            if a.out:
                Path(a.out).write_text(json.dumps(results, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
