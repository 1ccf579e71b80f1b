"""Training throughput of NUWA's tiny preset on this machine's CPU cores, in visual tokens per second.

It runs ``NuwaTrainer`` exactly as ``examples/train_nuwa.py`` does, on the token-cache fast path (grids tokenised once
up front), in the setting recommended for the shipped tiny checkpoint: 32x32 frames coded to 8x8 tokens by a 4x
VQ-GAN with 256 codes, 4-frame videos, a 128-code sketch VQ-GAN, 24-token prompts, and the five trainable tasks mixed
(T2I, T2V, V2V, S2I, S2V). Batches hold the same number of visual tokens for every task (32 images or 8 videos of
8x8 tokens = 2,048 tokens by default).

Reported, over ``--steps`` optimiser steps after ``--warmup`` steps (each step timed from the callback that opens it
to the one that closes it, so data loading and the optimiser are included):

- visual tokens per second per task and overall (total tokens / total step time), and per CPU-second of the process
  (less sensitive to other processes sharing the cores);
- the one-time cost of the token cache: frames per second through the tiny VQ-GAN and sketch maps per second through
  the tiny VQ-GAN-Seg (random weights: the speed does not depend on them).

The machine's load average is printed with the figures: other processes on the same cores slow every number here.

Run:  python benchmarks/bench_training.py [--steps 30] [--warmup 3] [--attn nuwa_3dna] [--threads 2] [--model-config '{...}']
      OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 benchmarks/bench_training.py --threads 1   (DDP)

With several processes the figures are for all of them together (tokens of every process per second of wall time)
and the CPU-second figure is the main process's.
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

VISUAL_CODES, SKETCH_CODES, TEXT_VOCAB, TEXT_LENGTH = 256, 128, 600, 24


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
    """Wall time of every optimiser step, with the task of its batch."""

    def __init__(self, collator):
        self.collator = collator
        self.records = []
        self._start = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        wall, cpu = time.perf_counter() - self._start[0], time.process_time() - self._start[1]
        self.records.append((self.collator.last_task, self.collator.last_tokens, wall, cpu))


class RecordingCollator(NuwaTaskCollator):
    def __call__(self, examples):
        batch = super().__call__(examples)
        self.last_task, self.last_tokens = batch["task"], int(batch["labels"].numel())
        return batch


def bench_training(args) -> dict:
    tasks = ("t2i", "t2v", "v2v", "s2i", "s2v")
    datasets = {task: synthetic_grids(task, args.examples, args.frames, args.side, seed=i) for i, task in enumerate(tasks)}
    overrides = json.loads(args.model_config) if args.model_config else {}
    config = NuwaConfig.tiny(
        visual_vocab_size=VISUAL_CODES, sketch_vocab_size=SKETCH_CODES, text_vocab_size=TEXT_VOCAB,
        max_text_length=TEXT_LENGTH, max_visual_grid=(args.frames, args.side, args.side),
        max_sketch_grid=(args.frames, args.side, args.side), **overrides,
    )
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(config)
    model.set_attn_implementation(args.attn)
    collator = RecordingCollator(max_text_length=TEXT_LENGTH)
    timer = StepTimer(collator)
    per_video = args.frames * args.side * args.side
    image_batch = max(1, args.tokens_per_batch // (args.side * args.side))
    video_batch = max(1, args.tokens_per_batch // per_video)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = nuwa_training_arguments(
            output_dir, max_steps=args.warmup + args.steps, per_device_train_batch_size=video_batch,
            save_strategy="no", logging_steps=10_000, disable_tqdm=True,
        )
        trainer = NuwaTrainer(
            model=model, args=training_args, train_dataset=TaskMixtureDataset(datasets), data_collator=collator,
            task_batch_sizes={"t2i": image_batch, "s2i": image_batch, "t2v": video_batch, "v2v": video_batch,
                              "s2v": video_batch},
            callbacks=[timer],
        )
        trainer.train()
    measured = timer.records[args.warmup:]
    by_task = defaultdict(lambda: [0, 0.0, []])
    for task, tokens, seconds, _ in measured:
        by_task[task][0] += tokens * trainer.accelerator.num_processes
        by_task[task][1] += seconds
        by_task[task][2].append(seconds)
    # Under torchrun every process trains the same task in a step (task blocks = processes), with equal batches.
    world = trainer.accelerator.num_processes
    total_tokens = sum(r[1] for r in measured) * world
    total_seconds = sum(r[2] for r in measured)
    cpu_seconds = sum(r[3] for r in measured)
    return {
        "processes": trainer.accelerator.num_processes,
        "is_main_process": trainer.is_world_process_zero(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "attention": args.attn,
        "batch": {"image": image_batch, "video": video_batch, "visual_tokens": args.tokens_per_batch},
        "steps_measured": len(measured),
        "visual_tokens_per_second": round(total_tokens / total_seconds, 1),
        # CPU seconds of this process (all its threads): less sensitive than wall time to other processes' load.
        "visual_tokens_per_cpu_second": round(sum(r[1] for r in measured) / cpu_seconds, 1),  # this process
        "cpu_utilisation": round(cpu_seconds / total_seconds, 2),
        "seconds_per_step_median": round(statistics.median(r[2] for r in measured), 3),
        "per_task": {
            task: {"steps": len(times), "visual_tokens_per_second": round(tokens / seconds, 1),
                   "seconds_per_step_median": round(statistics.median(times), 3)}
            for task, (tokens, seconds, times) in sorted(by_task.items())
        },
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--examples", type=int, default=256, help="examples per task")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--side", type=int, default=8, help="token grid side (frames are 4x larger)")
    parser.add_argument("--tokens-per-batch", type=int, default=2048)
    parser.add_argument("--attn", default="nuwa_3dna", help="attention implementation: nuwa_3dna, sdpa or eager")
    parser.add_argument("--model-config", default=None, help="JSON NuwaConfig overrides of the tiny preset")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, = cores)")
    parser.add_argument("--cache-frames", type=int, default=512, help="frames coded to time the token cache (0: skip)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    report = {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
              "load_average_before": [round(x, 2) for x in load_before]}
    report["training"] = bench_training(args)
    if not report["training"]["is_main_process"]:
        return 0
    if args.cache_frames:
        report["token_cache"] = bench_token_cache(args)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]

    train = report["training"]
    print(f"tiny NUWA, {train['parameters'] / 1e6:.2f}M parameters, attention {train['attention']}, "
          f"{train['processes']} process(es) x {torch.get_num_threads()} thread(s), load average {report['load_average_before'][0]} -> "
          f"{report['load_average_after'][0]}")
    print(f"{'task':6} {'steps':>5} {'s/step':>8} {'visual tok/s':>13}")
    for task, row in train["per_task"].items():
        print(f"{task:6} {row['steps']:5d} {row['seconds_per_step_median']:8.3f} {row['visual_tokens_per_second']:13.1f}")
    print(f"{'all':6} {train['steps_measured']:5d} {train['seconds_per_step_median']:8.3f} "
          f"{train['visual_tokens_per_second']:13.1f}   ({train['visual_tokens_per_cpu_second']} per CPU-second, "
          f"{train['cpu_utilisation']} cores busy on average)")
    if "token_cache" in report:
        cache = report["token_cache"]
        print(f"token cache: {cache['vqgan_frames_per_second']} frames/s (VQ-GAN), "
              f"{cache['sketch_vqgan_maps_per_second']} maps/s (VQ-GAN-Seg)")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
