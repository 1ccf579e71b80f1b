"""KV-cached generation against full recomputation, for a 10x21x21-token video with the tiny preset (batch 1, CPU).

Measured in one process:
  cached     model.generate(...) with the KV cache: every step is a 3DNA window gather over the cache.
  recompute  what a cache-less implementation (nuwa-pytorch) does: at every step, a forward pass over the whole
             prefix. Running all 4,410 steps takes tens of minutes on 2 cores, so by default the script times
             --recompute-samples prefix lengths spread over the video (each a real forward pass, exactly the one
             generate(use_cache=False) makes at that step) and integrates them (trapezoid rule over all 4,410 steps).
             --full-recompute runs the real uncached generate() end to end instead. Two baselines: recomputation
             with the same 3DNA attention, and with dense masked attention (sdpa), as a plain implementation would.
  per-token  time per token in the first frame and in the last frame of the cached run.

Run:  python benchmarks/bench_generate.py [--threads N] [--full-recompute]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration

GRID = (10, 21, 21)


class StepClock(LogitsProcessor):
    """Records the time at which each decoding step reaches the logits processors."""

    def __init__(self):
        self.stamps = []

    def __call__(self, input_ids, scores):
        self.stamps.append(time.perf_counter())
        return scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--recompute-samples", type=int, default=12)
    parser.add_argument("--full-recompute", action="store_true")
    parser.add_argument("--cached-runs", type=int, default=3)
    parser.add_argument("--attention", nargs="+", default=["nuwa_3dna", "sdpa"],
                        help="attention implementations for the recompute baseline (sdpa = dense masked attention)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(NuwaConfig.tiny(max_visual_grid=GRID)).eval()
    text = torch.randint(0, model.config.text_vocab_size, (1, 12))
    total = GRID[0] * GRID[1] * GRID[2]
    frame = GRID[1] * GRID[2]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; tiny preset "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params), grid {GRID} = {total} tokens, batch 1")

    model.generate(input_ids=text, visual_grid=(1, 4, 4))  # warm-up
    # Several cached runs: the per-step minimum over runs filters out other processes' interference.
    runs, step_times = [], []
    for _ in range(args.cached_runs):
        clock = StepClock()
        torch.manual_seed(0)
        start = time.perf_counter()
        seq = model.generate(input_ids=text, visual_grid=GRID, do_sample=True, top_k=16,
                             logits_processor=LogitsProcessorList([clock]))
        runs.append(time.perf_counter() - start)
        step_times.append([b - a for a, b in zip(clock.stamps, clock.stamps[1:])])
    steps = [min(column) for column in zip(*step_times)]
    cached = min(runs)
    first = statistics.median(steps[: frame - 1])
    last = statistics.median(steps[-frame:])
    print(f"cached generate: {cached:.1f} s ({cached / total * 1e3:.2f} ms/token), best of {args.cached_runs}")
    print(f"per token: first frame {first * 1e3:.2f} ms, last frame {last * 1e3:.2f} ms, ratio last/first {last / first:.2f}")

    for implementation in args.attention:
        model.set_attn_implementation(implementation)
        if args.full_recompute:
            start = time.perf_counter()
            model.generate(input_ids=text, visual_grid=GRID, do_sample=True, top_k=16, use_cache=False)
            recompute = time.perf_counter() - start
            how = "measured end to end"
        else:
            encoder_outputs = model.encode_condition(input_ids=text)
            n = args.recompute_samples
            lengths = sorted({max(1, round(total * i / (n - 1))) for i in range(n)})
            times = []
            with torch.no_grad():
                for length in lengths:
                    ids = seq[:, :length]
                    model(decoder_input_ids=ids, encoder_outputs=encoder_outputs, visual_grid=GRID)  # plans, masks
                    best = float("inf")
                    for _ in range(2):
                        start = time.perf_counter()
                        model(decoder_input_ids=ids, encoder_outputs=encoder_outputs, visual_grid=GRID)
                        best = min(best, time.perf_counter() - start)
                    times.append(best)
                    print(f"  [{implementation}] recompute step with a prefix of {length:5d} tokens: {best * 1e3:8.1f} ms",
                          flush=True)
            # Trapezoid rule over steps 1..total.
            recompute = sum((b - a) * (ta + tb) / 2 for a, b, ta, tb in zip(lengths, lengths[1:], times, times[1:]))
            recompute += times[0]
            how = f"integrated from {len(lengths)} measured prefix lengths"
        print(f"recompute generate with {implementation} attention: {recompute:.1f} s ({how}); "
              f"speed-up of the KV cache: {recompute / cached:.1f}x", flush=True)


if __name__ == "__main__":
    main()
