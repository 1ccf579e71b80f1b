"""What reranking costs: seconds per output of one sample against the best of ``--candidates`` samples by the model's
own scorers (``scorer="likelihood"``: one teacher-forced pass over the candidates; ``scorer="condition_gain"``: a
second one under the null condition; ``scorer="attribute_posterior"``: one pass per alternative caption, 16 for "a red
7", 20 for a video prompt naming a motion too; prompted tasks only), in one process, on the same seeds, rounds
interleaved, best of ``--rounds``.

    python benchmarks/bench_reranking.py [--model checkpoints/nuwa-tiny] [--tasks T2I,T2V,S2I] [--candidates 4]
        [--scorers likelihood,condition_gain,attribute_posterior]

Prints, per task, the seconds per output of each option and its ratio to one sample (one thread, like the other
CPU benchmarks). The quality side of the comparison is the recipe's reranking test (``examples/
train_default_checkpoint.py --stages tune_tasks``; docs/pilot_study.md, "Reranking by the condition gain").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = {"T2I": ["a red 7", "a green 3", "the digit 5 in blue", "a yellow 0"],
           "T2V": ["the digit 3 is moving up then down", "a red 7 moving left then right"]}


def inputs_of(task: str, pipe) -> tuple[list, dict]:
    """The calls' inputs and fixed options: prompts for the text tasks, validation sketches for S2I."""
    if task in PROMPTS:
        return PROMPTS[task], {"num_frames": 6} if task == "T2V" else {}
    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples

    size = int(pipe.processor.image_processor.output_size[0])
    ex = task_examples("nuwa-sketch-to-image", 4, size, 1, split="validation", seed=0,
                       num_sketch_classes=data.NUM_SCENE_CLASSES)
    return list(ex.inputs["sketch"]), {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "nuwa-tiny"))
    parser.add_argument("--tasks", default="T2I,T2V,S2I")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scorers", default="likelihood,condition_gain,attribute_posterior",
                        help="the model's scorers to time against one sample (attribute_posterior: prompted tasks)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from transformers import AutoModelForSeq2SeqLM, pipeline

    from nuwa_hf.pipelines.pipeline_base import TASK_CODES, load_nuwa_processor

    model = AutoModelForSeq2SeqLM.from_pretrained(args.model, use_safetensors=True).eval()
    processor = load_nuwa_processor(args.model)
    every = {"one sample": {"num_candidates": 1}, **{
        name: {"scorer": name, "num_candidates": args.candidates} for name in args.scorers.split(",") if name}}
    report = {}
    for task in args.tasks.split(","):
        options = {name: extra for name, extra in every.items()
                   if task in PROMPTS or extra.get("scorer") != "attribute_posterior"}  # it reads a prompt
        pipe = pipeline(TASK_CODES[task], model=model, processor=processor)
        pipe.set_progress_bar_config(disable=True)
        batch, fixed = inputs_of(task, pipe)
        pipe(batch[:1], seed=0, **fixed, **options["one sample"])  # warm-up
        best = {name: float("inf") for name in options}
        for _ in range(args.rounds):
            for name, extra in options.items():
                started = time.perf_counter()
                pipe(batch, seed=0, batch_size=len(batch), **fixed, **extra)
                best[name] = min(best[name], (time.perf_counter() - started) / len(batch))
        report[task] = {name: {"seconds_per_output": round(s, 4), "x one sample": round(s / best["one sample"], 2)}
                        for name, s in best.items()}
        print(task, json.dumps(report[task]), flush=True)
    print(json.dumps({"candidates": args.candidates, "rounds": args.rounds, "threads": 1, "tasks": report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
