"""Training throughput of the default recipe's NUWA on this machine's CPU cores, old path against new, in one process.

The model and batches are those of ``examples/train_default_checkpoint.py`` (the default recipe): hidden 128, 4 heads,
2 encoder + 4 decoder layers (1.62M parameters), 32x32 frames coded to 8x8 tokens by a VQ-GAN with 256 codes,
4-frame videos with a whole-grid video window, a 64-code sketch VQ-GAN, 24-token prompts, the five trainable tasks
mixed (T2I, T2V, V2V, S2I, S2V), 16 images or 8 videos per batch and process. ``NuwaTrainer`` runs exactly as
``nuwa-hf train`` does, on the token-cache fast path (grids tokenised once up front).

Paths (``--paths``), each a fresh ``NuwaTrainer`` on the same initial weights and data:

- ``old``: today's path, the model's tiled ``"nuwa_3dna"`` attention (``training_attention=None``);
- ``new``: the default now, ``"nuwa_3dna_train"`` (same values, the fastest exact kernel per grid,
  :mod:`nuwa_hf.training.fast_attention`);
- ``new-bf16``: the new path with ``--bf16`` (bf16 autocast: not the same losses, within bf16 rounding).

The paths are interleaved: ``--repeats`` rounds, each round trains every path for ``--warmup`` + ``--steps`` optimiser
steps (the order rotates between rounds), so a change in the machine's load hits all paths alike. Each step is timed
from the callback that opens it to the one that closes it (data loading and the optimiser included). Printed: visual
tokens per second of each path per round, and each path's ratio to ``old`` in the same round (median, min, max).

Run:  python benchmarks/bench_training.py --threads 1 [--steps 10] [--repeats 3] [--paths old,new,new-bf16]
      OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 benchmarks/bench_training.py --threads 1   (DDP)

With several processes the figures are for all of them together (tokens of every process per second of wall time).
``--cache-frames N`` also times the one-time cost of the token cache (frames/s through the VQ-GANs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np
import torch
from datasets import Dataset
from transformers import TrainerCallback

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.training import NuwaTaskCollator, NuwaTrainer, TaskMixtureDataset, nuwa_training_arguments

VISUAL_CODES, SKETCH_CODES, TEXT_VOCAB, TEXT_LENGTH = 256, 64, 640, 24
# examples/train_default_checkpoint.py --nuwa-config (the default recipe's model)
RECIPE_MODEL = {"hidden_size": 128, "num_attention_heads": 4, "encoder_layers": 2, "decoder_layers": 4,
                "intermediate_size": 512, "dropout": 0.0, "image_extent": [1, 3, 3], "video_extent": [None, None, None]}
PATHS = {"old": dict(training_attention=None, bf16=False), "new": dict(training_attention="auto", bf16=False),
         "new-bf16": dict(training_attention="auto", bf16=True)}
TASKS = ("t2i", "t2v", "v2v", "s2i", "s2v")


def synthetic_grids(task: str, num_examples: int, frames: int, side: int, seed: int) -> Dataset:
    """Tokenised examples of one task (random codes: the step time does not depend on their values)."""
    rng = np.random.default_rng(seed)
    grid = (1 if task in ("t2i", "s2i") else frames, side, side)
    columns = {"labels": rng.integers(0, VISUAL_CODES, (num_examples, *grid), dtype=np.int32)}
    if task in ("t2i", "t2v"):
        columns["input_ids"] = rng.integers(1, TEXT_VOCAB, (num_examples, TEXT_LENGTH), dtype=np.int32)
    if task in ("s2i", "s2v"):
        columns["sketch_tokens"] = rng.integers(0, SKETCH_CODES, (num_examples, *grid), dtype=np.int32)
    return Dataset.from_dict({k: list(v) for k, v in columns.items()}).with_format("numpy", dtype=None)


class StepTimer(TrainerCallback):
    """Wall and CPU time of every optimiser step, from the end of the previous step to the end of this one (so the
    batch's loading and collation, which Trainer does before ``on_step_begin``, count), with its task and tokens."""

    def __init__(self):
        self.records = []
        self.trainer = None
        self._last = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        now = (time.perf_counter(), time.process_time())
        task, tokens = self.trainer.last_batch
        self.records.append((task, tokens, now[0] - self._last[0], now[1] - self._last[1]))
        self._last = now


class RecordingTrainer(NuwaTrainer):
    """Notes the task and visual tokens of the batch it trains on. (A collator cannot: accelerate's data loader
    fetches one batch ahead.)"""

    def compute_loss(self, model, inputs, *args, **kwargs):
        self.last_batch = (inputs.get("task"), int(inputs["labels"].numel()))
        return super().compute_loss(model, inputs, *args, **kwargs)


def model_config(args) -> NuwaConfig:
    overrides = dict(RECIPE_MODEL)
    overrides.update(json.loads(args.model_config) if args.model_config else {})
    return NuwaConfig.tiny(
        visual_vocab_size=VISUAL_CODES, sketch_vocab_size=SKETCH_CODES, text_vocab_size=TEXT_VOCAB,
        max_text_length=TEXT_LENGTH, max_visual_grid=(args.frames, args.side, args.side),
        max_sketch_grid=(args.frames, args.side, args.side), **overrides,
    )


def run_path(args, path: str, datasets, config, round_number: int) -> dict:
    """Train ``path`` for warmup + steps optimiser steps from the same initial weights; its throughput."""
    settings = PATHS[path]
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(config)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = nuwa_training_arguments(
            output_dir, max_steps=args.warmup + args.steps, per_device_train_batch_size=args.video_batch,
            save_strategy="no", logging_steps=10_000, disable_tqdm=True, bf16=settings["bf16"],
            seed=round_number,  # every round draws other batches; within a round all paths see the same ones
        )
        trainer = RecordingTrainer(
            model=model, args=training_args, train_dataset=TaskMixtureDataset(datasets),
            data_collator=NuwaTaskCollator(max_text_length=TEXT_LENGTH),
            task_batch_sizes={"t2i": args.image_batch, "s2i": args.image_batch, "t2v": args.video_batch,
                              "v2v": args.video_batch, "s2v": args.video_batch},
            training_attention=settings["training_attention"], callbacks=[timer],
        )
        timer.trainer = trainer
        trainer.train()
    measured = timer.records[args.warmup:]
    world = trainer.accelerator.num_processes
    # Under torchrun every process trains the same task in a step (task blocks = processes), with equal batches.
    tokens = sum(r[1] for r in measured) * world
    seconds = sum(r[2] for r in measured)
    by_task = defaultdict(lambda: [0, 0.0])
    for task, task_tokens, wall, _ in measured:
        by_task[task][0] += task_tokens * world
        by_task[task][1] += wall
    return {
        "path": path, "round": round_number, "processes": world, "is_main_process": trainer.is_world_process_zero(),
        "steps": len(measured), "visual_tokens_per_second": tokens / seconds,
        "visual_tokens_per_cpu_second": sum(r[1] for r in measured) / sum(r[3] for r in measured),
        "seconds_per_step_median": statistics.median(r[2] for r in measured),
        "per_task": {task: t / s for task, (t, s) in sorted(by_task.items())},
    }


@torch.no_grad()
def bench_token_cache(args) -> dict:
    """Frames/s through the tiny VQ-GAN and sketch maps/s through the tiny VQ-GAN-Seg: the one-time caching cost."""
    from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN

    torch.manual_seed(0)
    image_size = args.side * 4
    vqgan = NuwaVQGAN.tiny(image_size=image_size, grid_size=args.side, codebook_size=VISUAL_CODES).eval()
    seg = NuwaSegVQGAN.tiny(num_classes=6, image_size=image_size, grid_size=args.side, codebook_size=SKETCH_CODES).eval()
    frames = torch.rand(args.cache_frames, 3, image_size, image_size) * 2 - 1
    maps = torch.randint(0, 6, (args.cache_frames, image_size, image_size))
    results = {}
    for name, fn, data in (("vqgan_frames_per_second", vqgan.encode_to_indices, frames),
                           ("sketch_vqgan_maps_per_second", seg.encode_to_indices, maps)):
        fn(data[:64])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(data), 64):
            fn(data[i:i + 64])
        results[name] = round(len(data) / (time.perf_counter() - start), 1)
    return results


def _spread(values):
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default="old,new,new-bf16", help=f"comma-separated among {', '.join(PATHS)}")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (each trains every path)")
    parser.add_argument("--steps", type=int, default=10, help="timed optimiser steps per path and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, first-call costs)")
    parser.add_argument("--examples", type=int, default=128, help="examples per task")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--side", type=int, default=8, help="token grid side (frames are 4x larger)")
    parser.add_argument("--image-batch", type=int, default=16, help="images per batch and process (t2i, s2i)")
    parser.add_argument("--video-batch", type=int, default=8, help="videos per batch and process (t2v, v2v, s2v)")
    parser.add_argument("--model-config", default=None, help="JSON NuwaConfig overrides of the default recipe's model")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = cores)")
    parser.add_argument("--cache-frames", type=int, default=0, help="frames coded to time the token cache (0: skip)")
    args = parser.parse_args(argv)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = [p for p in paths if p not in PATHS]
    if unknown or not paths:
        parser.error(f"--paths: unknown {unknown}; choose among {', '.join(PATHS)}")

    if args.threads:
        torch.set_num_threads(args.threads)
    report = {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
              "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    config = model_config(args)
    datasets = {task: synthetic_grids(task, args.examples, args.frames, args.side, seed=i) for i, task in enumerate(TASKS)}
    runs = []
    for round_number in range(args.repeats):
        shift = round_number % len(paths)
        for path in paths[shift:] + paths[:shift]:  # rotate the order: no path always runs first
            runs.append(run_path(args, path, datasets, config, round_number))
    if not runs[0]["is_main_process"]:
        return 0
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    report["parameters"] = sum(p.numel() for p in NuwaForConditionalGeneration(config).parameters())
    report["processes"] = runs[0]["processes"]
    report["runs"] = runs
    by_round = defaultdict(dict)
    for run in runs:
        by_round[run["round"]][run["path"]] = run
    summary = {}
    for path in paths:
        throughput = [by_round[r][path]["visual_tokens_per_second"] for r in sorted(by_round)]
        summary[path] = {"visual_tokens_per_second": _spread(throughput)}
        if "old" in paths:
            ratios = [by_round[r][path]["visual_tokens_per_second"] / by_round[r]["old"]["visual_tokens_per_second"]
                      for r in sorted(by_round)]
            summary[path]["ratio_to_old"] = _spread(ratios)
    report["summary"] = summary
    if args.cache_frames:
        report["token_cache"] = bench_token_cache(args)

    print(f"default-recipe NUWA, {report['parameters'] / 1e6:.2f}M parameters, {report['processes']} process(es) x "
          f"{torch.get_num_threads()} thread(s), {args.repeats} rounds x {args.steps} steps per path, load average "
          f"{report['load_average_before'][0]} -> {report['load_average_after'][0]}")
    print(f"{'path':9} " + " ".join(f"{'round ' + str(r):>10}" for r in sorted(by_round))
          + f" {'ratio to old (median, min-max)':>32}")
    for path in paths:
        row = " ".join(f"{by_round[r][path]['visual_tokens_per_second']:10.0f}" for r in sorted(by_round))
        ratio = summary[path].get("ratio_to_old")
        text = f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})" if ratio else ""
        print(f"{path:9} {row} {text:>32}")
    for path in paths:
        per_task = {task: [by_round[r][path]["per_task"][task] for r in by_round if task in by_round[r][path]["per_task"]]
                    for task in TASKS}
        print(f"  {path:9} per task (median over rounds, visual tokens/s): "
              + ", ".join(f"{task} {statistics.median(v):.0f}" for task, v in per_task.items() if v))
    if "token_cache" in report:
        cache = report["token_cache"]
        print(f"token cache: {cache['vqgan_frames_per_second']} frames/s (VQ-GAN), "
              f"{cache['sketch_vqgan_maps_per_second']} maps/s (VQ-GAN-Seg)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
