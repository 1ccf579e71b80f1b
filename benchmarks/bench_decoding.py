"""Per-token decoding time: generate()'s default path (NUWA's decoding loop over a NuwaDecodingCache, the decoder's
modules reading it) against the full forward with a transformers cache (fast_decoding=False), in one process, and
against transformers' stock sampling loop over the same cache (decoding_loop="transformers").

All paths are ``model.generate(...)``; ``fast_decoding=False`` runs every step through the model's forward (the path
before issue 16). Rounds alternate between the paths and each figure is the best of its rounds, so all see the
same machine load; the ratios are what to read, the absolute times drift with the machine.

  shipped     checkpoints/nuwa-tiny with its folder-wide generation_config (top-k 8, guidance 3.0; the T2I
              pipeline runs the same, the T2V pipeline top-k 32 from its task_sampling entry):
              T2I (1x8x8) and T2V (4x8x8, the largest grid it was trained for) at batch 1 and 8.
  preset      the same table for the paper-like 20.9M preset (below; random weights, 77 random text tokens, top-k 32,
              guidance 3.0).
  videos      10x21x21 = 4,410 tokens at batch 1, text condition, top-k 16, no guidance: the tiny preset
              (NuwaConfig.tiny) and the paper-like 20.9M preset (width 256, 4 heads, 4+4 layers, 1,024 codes, 77
              text tokens; benchmarks/gpu_check.py builds the same). Time for the whole video and per token in the
              first and the last frame (the window cache keeps the cost flat). ``--video-reference`` also runs the
              module path on these videos (minutes).
Checks that all paths sample the same tokens for the same seed.

Run:  python benchmarks/bench_decoding.py [--threads N] [--rounds 3] [--skip-videos] [--video-reference]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_generate import StepClock  # a logits processor stamping each step (both paths call processors per token)
from transformers import LogitsProcessorList

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration

PAPER_LIKE = dict(hidden_size=256, num_attention_heads=4, encoder_layers=4, decoder_layers=4, intermediate_size=1024,
                  visual_vocab_size=1024, sketch_vocab_size=1024)
VIDEO_GRID = (10, 21, 21)


PATHS = {"module": dict(fast_decoding=False), "stock loop": dict(decoding_loop="transformers"),
         "fast": dict(decoding_loop="nuwa")}


def timed_generate(model, path: str, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    start = time.perf_counter()
    out = model.generate(**PATHS[path], **kwargs)
    return time.perf_counter() - start, out


def bench_shipped(rounds: int) -> None:
    model = NuwaForConditionalGeneration.from_pretrained("checkpoints/nuwa-tiny").eval()
    from nuwa_hf import NuwaProcessor

    processor = NuwaProcessor.from_pretrained("checkpoints/nuwa-tiny")
    prompts = ["a red 7", "the digit seven in red", "A BLUE 3 in the bottom right!", "green five", "a yellow 2",
               "white zero moving up", "purple 4", "an orange one"]
    print(f"\nshipped checkpoint (checkpoints/nuwa-tiny, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
          f"params), generation_config: top_k={model.generation_config.top_k}, "
          f"guidance_scale={model.generation_config.guidance_scale}")

    def inputs(batch):
        text = processor(text=prompts[:batch], return_tensors="pt")
        return dict(input_ids=text["input_ids"], attention_mask=text.get("attention_mask"))

    bench_table(model, inputs, rounds, {})


def bench_preset(rounds: int) -> None:
    """The paper-like 20.9M preset (random weights) on the shipped model's task grids, sampled as the pipelines do
    (top-k 32, guidance 3.0, 77 text tokens)."""
    torch.manual_seed(0)
    config = NuwaConfig.paper(**PAPER_LIKE)
    model = NuwaForConditionalGeneration(config).eval()
    print(f"\npaper-like preset ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, random weights), "
          "77 text tokens, top_k=32, guidance_scale=3.0")
    text = torch.randint(1, config.text_vocab_size, (8, 77))
    bench_table(model, lambda batch: dict(input_ids=text[:batch]), rounds,
                dict(do_sample=True, top_k=32, guidance_scale=3.0))


def bench_table(model, inputs, rounds: int, generation: dict) -> None:
    print("| task | grid | batch | module path ms/step | fast, transformers' loop ms/step | fast ms/step | "
          "fast ms/token | speed-up | NUWA's loop vs transformers' | same tokens |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task, grid in (("T2I", (1, 8, 8)), ("T2V", (4, 8, 8))):
        for batch in (1, 8):
            kwargs = dict(**inputs(batch), visual_grid=grid, **generation)
            steps = grid[0] * grid[1] * grid[2]
            for path in PATHS:  # warm-up every path
                timed_generate(model, path, **kwargs)
            times = {path: [] for path in PATHS}
            outputs = {}
            for _ in range(rounds):
                for path in PATHS:
                    seconds, outputs[path] = timed_generate(model, path, **kwargs)
                    times[path].append(seconds / steps)
            module, stock, fast = (min(times[path]) for path in PATHS)
            same = all(torch.equal(outputs["fast"], outputs[path]) for path in PATHS)
            print(f"| {task} | {'x'.join(map(str, grid))} | {batch} | {module * 1e3:.2f} | {stock * 1e3:.2f} | "
                  f"{fast * 1e3:.2f} | {fast / batch * 1e3:.3f} | {module / fast:.1f}x | {stock / fast:.2f}x | "
                  f"{'yes' if same else 'NO'} |", flush=True)


def bench_video(name: str, config: NuwaConfig, reference: bool, text_length: int) -> None:
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(config).eval()
    text = torch.randint(0, config.text_vocab_size, (1, text_length))
    total = VIDEO_GRID[0] * VIDEO_GRID[1] * VIDEO_GRID[2]
    frame = VIDEO_GRID[1] * VIDEO_GRID[2]
    params = sum(p.numel() for p in model.parameters()) / 1e6
    model.generate(input_ids=text, visual_grid=(1, 4, 4))  # warm-up
    for fast in (True, False) if reference else (True,):
        clock = StepClock()
        seconds, _ = timed_generate(model, "fast" if fast else "module", input_ids=text, visual_grid=VIDEO_GRID, do_sample=True, top_k=16,
                                    logits_processor=LogitsProcessorList([clock]))
        steps = [b - a for a, b in zip(clock.stamps, clock.stamps[1:])]
        first = statistics.median(steps[: frame - 1])
        last = statistics.median(steps[-frame:])
        print(f"| {name} ({params:.1f}M) | {'fast' if fast else 'module path'} | {seconds:.1f} s | "
              f"{seconds / total * 1e3:.2f} | {first * 1e3:.2f} | {last * 1e3:.2f} | {last / first:.2f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-videos", action="store_true")
    parser.add_argument("--skip-preset", action="store_true", help="skip the paper-like preset's T2I / T2V table")
    parser.add_argument("--video-reference", action="store_true", help="also time the module path on the videos")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_shipped(args.rounds)
    if not args.skip_preset:
        bench_preset(args.rounds)
    if args.skip_videos:
        return
    print(f"\n10x21x21 video ({VIDEO_GRID[0] * VIDEO_GRID[1] * VIDEO_GRID[2]} tokens), batch 1, text condition, "
          "top-k 16, no guidance")
    print("| preset | path | whole video | ms/token | first frame ms/token | last frame ms/token | last/first |")
    print("|---|---|---|---|---|---|---|")
    bench_video("tiny preset", NuwaConfig.tiny(max_visual_grid=VIDEO_GRID), args.video_reference, text_length=12)
    bench_video("paper-like preset", NuwaConfig.paper(**PAPER_LIKE), args.video_reference, text_length=77)


if __name__ == "__main__":
    main()
