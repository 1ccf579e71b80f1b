"""Per-token decoding cost of this checkout against another version of the package (a git worktree), in alternating
processes: CPU ms per token of ``model.generate(...)``'s default path.

Two versions of the code cannot share a process, so each round starts one process per version (in turn, so both see
the same machine load) and each figure is the best over rounds of the best within a process. CPU time
(``time.process_time``) rather than wall time: other work on the machine shifts it less. The ratio is what to read.
In this checkout's processes ``generate(..., decoding_loop="transformers")`` (transformers' stock loop over the same
decoding cache) is timed too, as a third column.

  shipped   checkpoints/nuwa-tiny with its own generation_config: T2I (1x8x8) and T2V (4x8x8) at batch 1 and 8.
  preset    the paper-like 20.9M preset of bench_decoding.py (random weights, 77 text tokens, top-k 32, guidance 3.0).

Run:  python benchmarks/bench_decoding_versions.py --baseline /path/to/worktree [--rounds 3] [--repeats 3]
          [--models shipped,preset]
(for instance a detached worktree of the commit to compare with: ``git worktree add --detach ../base <commit>``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [(model, task, grid, batch) for model in ("shipped", "preset")
         for task, grid in (("T2I", (1, 8, 8)), ("T2V", (4, 8, 8))) for batch in (1, 8)]


def worker(checkpoint: str, repeats: int, models: list) -> None:
    """Time every case in this process (the package imported from PYTHONPATH); print one JSON line."""
    import torch

    from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration, NuwaProcessor

    torch.set_num_threads(1)
    shipped = NuwaForConditionalGeneration.from_pretrained(checkpoint).eval()
    processor = NuwaProcessor.from_pretrained(checkpoint)
    prompts = ["a red 7", "the digit seven in red", "A BLUE 3 in the bottom right!", "green five", "a yellow 2",
               "white zero moving up", "purple 4", "an orange one"]
    text = processor(text=prompts, return_tensors="pt")
    torch.manual_seed(0)
    preset = NuwaForConditionalGeneration(NuwaConfig.paper(
        hidden_size=256, num_attention_heads=4, encoder_layers=4, decoder_layers=4, intermediate_size=1024,
        visual_vocab_size=1024, sketch_vocab_size=1024)).eval()
    preset_text = torch.randint(1, preset.config.text_vocab_size, (8, 77))
    loops = ["nuwa", "transformers"] if "decoding_loop" in inspect.signature(shipped.generate).parameters else [None]
    result = {}
    for name, task, grid, batch in CASES:
        if name not in models:
            continue
        if name == "shipped":
            model, kwargs = shipped, dict(input_ids=text["input_ids"][:batch],
                                          attention_mask=text["attention_mask"][:batch])
        else:
            model, kwargs = preset, dict(input_ids=preset_text[:batch], do_sample=True, top_k=32, guidance_scale=3.0)
        steps = grid[0] * grid[1] * grid[2]
        for loop in loops:
            extra = {} if loop is None else dict(decoding_loop=loop)
            model.generate(**kwargs, visual_grid=grid, **extra)  # warm-up
            best = float("inf")
            for _ in range(repeats):
                torch.manual_seed(0)
                start = time.process_time()
                model.generate(**kwargs, visual_grid=grid, **extra)
                best = min(best, time.process_time() - start)
            result[f"{name} {task} b{batch} {loop or 'default'}"] = best / steps * 1e3
    print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="root of the other version's checkout (its src/ is imported)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed generate() calls per case within a process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--models", default="shipped,preset", help="which tables (comma-separated)")
    parser.add_argument("--checkpoint", default=os.path.join(os.path.dirname(HERE), "checkpoints", "nuwa-tiny"))
    args = parser.parse_args()
    if args.worker:
        return worker(args.checkpoint, args.repeats, args.models.split(","))
    if not args.baseline:
        parser.error("--baseline /path/to/the/other/checkout is required")
    sources = {"baseline": os.path.join(os.path.abspath(args.baseline), "src"),
               "this": os.path.join(os.path.dirname(HERE), "src")}
    best = {}
    for round_ in range(args.rounds):
        for label, src in sources.items():
            env = dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1")
            out = subprocess.run([sys.executable, __file__, "--worker", "--repeats", str(args.repeats),
                                  "--checkpoint", args.checkpoint, "--models", args.models], env=env, capture_output=True, text=True,
                                 check=True).stdout
            for key, value in json.loads(out.strip().splitlines()[-1]).items():
                best[(label, key)] = min(best.get((label, key), float("inf")), value)
            print(f"round {round_ + 1}: {label} done", file=sys.stderr, flush=True)
    print(f"CPU ms per step (one step = one token of each row), best of {args.rounds} alternating processes x "
          f"{args.repeats} calls; baseline: {args.baseline}")
    print("| model | task | batch | baseline | this, transformers' loop | this, NUWA's loop | this / baseline |")
    print("|---|---|---|---|---|---|---|")
    for name, task, grid, batch in CASES:
        if name not in args.models.split(","):
            continue
        key = f"{name} {task} b{batch}"
        base, stock, ours = (best.get(("baseline", f"{key} default")), best.get(("this", f"{key} transformers")),
                             best.get(("this", f"{key} nuwa")))
        print(f"| {name} | {task} {'x'.join(map(str, grid))} | {batch} | {base:.3f} | {stock:.3f} | {ours:.3f} | "
              f"{ours / base:.2f} |")


if __name__ == "__main__":
    main()
