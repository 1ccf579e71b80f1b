"""Decoding per token: KV-cached generate() of a 10x21x21 video (4,410 tokens) with a paper-like 20.9M-parameter preset,
batch 1, top-k 16, one process: on a GPU the steps replayed from a CUDA graph (generate's default there,
``cuda_graph=True``; fp32, then bf16) and eager (``cuda_graph=False``), then the module path (fast_decoding=False,
every step through forward). Per row: whole video, ms per token, first vs last frame (per-step minimum over runs,
bench_generate.StepClock), p90, whether the graph was captured (else the logged fallback reason), what the capture
took and how many captures there were (one per dtype: the first run captures, inside its time; a later run replays
the graph the model kept, and the row's total is the best run); a warm-up row on a 2x21x21 grid (includes the kernels'
JIT compiles and one capture). Tiny (no CUDA): NuwaConfig.tiny on a 2x3x3 grid,
the graph rows skipped.

    python benchmarks/time_decoding.py [--tiny] [--out DIR] [--runs 2]
"""

import logging
import math
import statistics
import time

import harness
import torch
from bench_generate import StepClock
from transformers import LogitsProcessorList

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.ops import select_backend

# NuwaConfig.paper() (49,408-token text vocabulary, 77 text tokens, 10x21x21 visual grid, the paper's extents) narrowed
# to width 256 (4 heads of 64), 4 + 4 layers and 1,024-code codebooks: 20.86M parameters.
PAPER_LIKE = dict(hidden_size=256, num_attention_heads=4, encoder_layers=4, decoder_layers=4, intermediate_size=1024,
                  visual_vocab_size=1024, sketch_vocab_size=1024)


def build_model(run):
    """(model, text ids, grid, warm-up grid) for the run's mode; the preset is recorded in run.data."""
    grid, warm = ((2, 3, 3), (1, 3, 3)) if run.tiny else ((10, 21, 21), (2, 21, 21))
    config = NuwaConfig.tiny(max_visual_grid=grid) if run.tiny else NuwaConfig.paper(**PAPER_LIKE)
    run.data["preset"] = {"name": "tiny" if run.tiny else "paper-like",
                          "built_as": f"NuwaConfig.tiny(max_visual_grid={grid})" if run.tiny else
                          f"NuwaConfig.paper(**{PAPER_LIKE})"}
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(config).eval().to("cuda" if run.cuda else "cpu")
    text = torch.randint(0, config.text_vocab_size, (1, 5 if run.tiny else 16), device=model.device)
    probe = torch.zeros(1, config.num_attention_heads, 1, config.head_dim, device=model.device)
    run.data.update(parameters_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 3), grid=grid, batch=1,
                    dtype="float32", attention_implementation=model.config._attn_implementation,
                    decode_step_backend=select_backend(probe, probe, probe, query_offset=1),
                    prefill_backend_no_grad=select_backend(probe, probe, probe, query_offset=None))
    return model, text, grid, warm


class FallbackLog(logging.Handler):
    """The warnings NUWA's decoding loop logs when a CUDA graph capture fails (then it decodes eagerly)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []
        logging.getLogger("nuwa_hf.models.nuwa.sampling_nuwa").addHandler(self)

    def emit(self, record):
        self.messages.append(record.getMessage())


class CaptureClock:
    """Wall time of each CUDA graph capture (``NuwaCudaGraphStep.capture``: its warm-up steps and the capture), so a
    row can say what the capture adds to the first call; later calls of the same shapes replay the kept graph."""

    def __init__(self):
        from nuwa_hf.models.nuwa.decoding_nuwa import NuwaCudaGraphStep

        self.seconds = []
        original = NuwaCudaGraphStep.capture

        def timed(step, tokens):
            harness.sync()
            start = time.perf_counter()
            try:
                return original(step, tokens)
            finally:
                harness.sync()
                self.seconds.append(time.perf_counter() - start)

        NuwaCudaGraphStep.capture = timed


def step_statistics(step_times, grid) -> dict:
    """Per-token times (seconds between decoding steps, min over runs) -> first/last frame medians in ms."""
    frame, steps = grid[1] * grid[2], [min(column) for column in zip(*step_times)]
    first, last = statistics.median(steps[: max(1, frame - 1)]), statistics.median(steps[-frame:])
    return {"steps": len(steps), "per_token_ms_median": statistics.median(steps) * 1e3, "first_frame_ms": first * 1e3,
            "last_frame_ms": last * 1e3, "last_over_first": last / first,
            "per_token_ms_p90": sorted(steps)[int(0.9 * (len(steps) - 1))] * 1e3}


def main():
    args = harness.parse_args(__doc__, lambda p: p.add_argument("--runs", type=int, default=None))
    run = harness.Run("decoding", args)
    model, text, grid, warm = build_model(run)

    fallbacks, captures = FallbackLog(), CaptureClock()

    def generate(visual_grid, **options):
        clock = StepClock()
        torch.manual_seed(0)
        harness.sync()
        start = time.perf_counter()
        sequence = model.generate(input_ids=text, visual_grid=visual_grid, do_sample=True, top_k=16,
                                  logits_processor=LogitsProcessorList([clock]), **options)
        harness.sync()
        assert sequence.shape == (1, 1 + math.prod(visual_grid)), sequence.shape
        return time.perf_counter() - start, [b - a for a, b in zip(clock.stamps, clock.stamps[1:])]

    total, steps = generate(warm, cuda_graph=run.cuda)  # compiles the kernels' decode variants, fills caches
    run.add(impl="warm-up (fast, includes JIT compiles)", grid=warm, total_s=total, **step_statistics([steps], warm))
    estimate = statistics.median(steps) * math.prod(grid) * 1.3 + 2
    paths = [("fast_step_cuda_graph", dict(cuda_graph=True), torch.float32),
             ("fast_step_cuda_graph_bf16", dict(cuda_graph=True), torch.bfloat16),
             ("fast_step", dict(cuda_graph=False), torch.float32),
             ("module_path", dict(fast_decoding=False), torch.float32)]
    rows = []
    for label, options, dtype in paths:
        if "cuda_graph" in label and not run.cuda:
            rows.append(run.add(impl=label, grid=grid, skipped="no CUDA device"))
            continue
        model.to(dtype)
        fast, runs, step_times = "module" not in label, [], []
        fallbacks.messages.clear()
        captures.seconds.clear()
        for _ in range(args.runs or (1 if run.tiny else 2)) if fast else range(1):
            if (runs or not fast) and not run.time_left(estimate * (1 if fast else 3)):
                break  # the first fast run always runs; the module path takes ~2-3x its time
            if run.cuda:
                torch.cuda.reset_peak_memory_stats()
            total, steps = generate(grid, **options)
            runs.append(total)
            step_times.append(steps)
            estimate = min(runs) * 1.2
        model.to(torch.float32)
        if not runs:
            rows.append(run.add(impl=label, grid=grid, skipped="budget"))
            continue
        row = dict(impl=label, grid=grid, dtype=str(dtype).replace("torch.", ""), runs_s=runs, total_s=min(runs),
                   ms=min(runs) / math.prod(grid) * 1e3, runs=len(runs), **step_statistics(step_times, grid))
        if "cuda_graph" in label:
            row["captured"] = not fallbacks.messages
            row["capture_ms"] = min(captures.seconds) * 1e3 if captures.seconds else None
            row["captures"] = len(captures.seconds)  # once per cache: a later run of the same dtype replays it
            if fallbacks.messages:
                row["fallback"] = fallbacks.messages[0][:600]
        if run.cuda:
            row["peak_mem_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        rows.append(run.add(**row))
    timed = {row["impl"]: row for row in rows}
    harness.ratios(rows, baseline=timed["module_path"], keys=("ms",))  # speedup_vs_module_path
    harness.ratios(rows, baseline=timed["fast_step"], keys=("ms",))  # speedup_vs_fast_step (eager)
    run.data["note"] = "ms = whole video / tokens (best run); frame figures: per-step minimum over runs"
    run.done()


if __name__ == "__main__":
    main()
