"""The fast decoding step's static form (NuwaDecodingStep.static_step: fixed shapes, the position a device tensor).

First, ``generate()`` of the shipped checkpoint's text-to-image grid (its decoder and generation config: 1x8x8,
batch 1, top-k 8, guidance 3.0; its transformer weights without the VQ-GANs, so diffusers is not needed), seeded,
with the steps replayed from a CUDA graph (``cuda_graph=True``, the default on a GPU) and eager
(``cuda_graph=False``): ms per token of calls that replay the graph captured by the model's first call for the grid,
same tokens?, that first call's time and what its capture took (on the CPU: the eager row only). Then the static step
by hand, greedy over the whole grid with the next id fed back on the device: eager, and on a GPU replayed from one
captured CUDA graph (same tokens?). Then two probes on one cached decoding step of the module path:
torch.compile(fullgraph) and CUDA-graph capture (recorded as answers, not timed). Model and grid as time_decoding.py.

    python benchmarks/time_static_step.py [--tiny] [--out DIR]
"""

import math
import time
from pathlib import Path

import harness
import torch
import torch._dynamo
from time_decoding import CaptureClock, build_model

from nuwa_hf.models.nuwa import decoding_nuwa
from nuwa_hf.models.nuwa.decoding_nuwa import NuwaDecodingStep
from nuwa_hf.models.nuwa.generation_nuwa import make_generation_cache


def probe(fn) -> dict:
    try:
        fn()
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 (the probe's answer is the exception)
        answer = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:800]}"}
        if exc.__context__ is not None and str(exc.__context__)[:200] not in str(exc):
            answer["during"] = f"{type(exc.__context__).__name__}: {str(exc.__context__)[:800]}"
        return answer


def shipped_text_to_image(run) -> None:
    """generate() of the shipped checkpoint's T2I grid with and without the CUDA graph (rows of ``run``)."""
    from safetensors.torch import load_file
    from transformers import GenerationConfig

    from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration

    folder = Path(__file__).resolve().parents[1] / "checkpoints" / "nuwa-tiny"
    config = NuwaConfig.from_pretrained(folder)
    config.vqgan_config = config.sketch_vqgan_config = None  # the transformer only: no diffusers
    model = NuwaForConditionalGeneration(config).eval()
    weights = {k: v for k, v in load_file(folder / "model.safetensors").items() if "vqgan" not in k}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model.generation_config = GenerationConfig.from_pretrained(folder)
    device = "cuda" if run.cuda else "cpu"
    model.to(device)
    text = torch.randint(1, config.text_vocab_size - 1, (1, config.max_text_length),
                         generator=torch.Generator().manual_seed(0)).to(device)
    grid = (1, 8, 8)
    tokens, captures = {}, CaptureClock()
    for graph in (False, True):
        label = "generate_shipped_t2i_cuda_graph" if graph else "generate_shipped_t2i_eager"
        if graph and not run.cuda:
            run.add(impl=label, skipped="no CUDA device")
            continue

        def call():
            torch.manual_seed(0)
            tokens[graph] = model.generate(input_ids=text, visual_grid=grid, cuda_graph=graph)

        first_call_ms = None
        if graph:  # the model's first graph call for this grid captures; later calls reuse its cache and graph
            decoding_nuwa._REUSED.pop(model, None)
            harness.sync()
            start = time.perf_counter()
            call()
            harness.sync()
            first_call_ms = (time.perf_counter() - start) * 1e3
        row = harness.time_call(call, warmup=2, repeats=5 if run.cuda else 2)  # whole calls: a few are enough
        row["ms_per_token"] = row["ms"] / math.prod(grid)
        if graph:
            row["same_tokens_as_eager"] = bool(torch.equal(tokens[True], tokens[False]))
            row["first_call_ms"] = first_call_ms  # capture included
            row["captures"] = len(captures.seconds)  # 1: every later call replayed the first call's graph
            row["capture_ms_min"] = min(captures.seconds) * 1e3 if captures.seconds else None
        run.add(impl=label, grid=grid, batch=1, generation="checkpoint's generation_config (top-k 8, guidance 3.0)",
                **row)


def main():
    run = harness.Run("static_step", harness.parse_args(__doc__))
    shipped_text_to_image(run)  # first: short, and the stage's time limit may stop the long rows below
    model, text, grid, _ = build_model(run)
    total, encoded = math.prod(grid), model.encode_condition(input_ids=text)

    def fresh():
        ids = torch.full((1, 1), model.config.visual_bos_token_id, dtype=torch.long, device=model.device)
        return NuwaDecodingStep(model, encoded, grid), ids, torch.zeros(1, dtype=torch.long, device=model.device)

    def greedy(one_step, ids, position, steps=total):
        tokens = []
        harness.sync()
        start = time.perf_counter()
        for p in range(steps):
            position.fill_(p)
            ids.copy_(one_step()[:, -1].argmax(-1, keepdim=True))
            tokens.append(ids.clone())
        harness.sync()
        return time.perf_counter() - start, torch.cat(tokens, dim=1)

    step, ids, position = fresh()
    with torch.no_grad():
        greedy(lambda: step.static_step(ids, position), ids, position, min(total, 32))  # warm-up (JIT compiles)
        step, ids, position = fresh()
        eager_s, eager_tokens = greedy(lambda: step.static_step(ids, position), ids, position)
    rows = [run.add(impl="static_step_eager", seconds=eager_s, ms=eager_s / total * 1e3)]
    if not run.cuda:
        rows.append(run.add(impl="static_step_cuda_graph", skipped="no CUDA device"))
    else:
        row = run.add(impl="static_step_cuda_graph", error="process died in capture")  # updated if it lives
        try:
            step, ids, position = fresh()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.no_grad():  # warm-up outside the capture, as CUDA graphs require
                for _ in range(3):
                    step.static_step(ids, position)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.no_grad():
                captured = step.static_step(ids, position)
            graphed_s, graphed_tokens = greedy(lambda: graph.replay() or captured, ids, position)
            del row["error"]
            row.update(seconds=graphed_s, ms=graphed_s / total * 1e3,
                       same_greedy_tokens=bool(torch.equal(graphed_tokens, eager_tokens)))
        except Exception as exc:  # noqa: BLE001 (recorded)
            row["error"] = f"{type(exc).__name__}: {str(exc)[:800]}"
        rows.append(row)
    harness.ratios(rows, baseline=rows[0], keys=("ms",))  # speedup_vs_static_step_eager

    # Probes on one cached decoding step of the module path (forward with a transformers cache).
    cache = make_generation_cache(model.config.decoder_layers, grid)
    bos = torch.full((1, 1), model.config.visual_bos_token_id, dtype=torch.long, device=model.device)
    next_ids = torch.zeros((1, 1), dtype=torch.long, device=model.device)
    with torch.no_grad():
        model(decoder_input_ids=bos, encoder_outputs=encoded, visual_grid=grid, cache=cache)  # step 0, eager

    def compiled_step():
        torch._dynamo.reset()
        with torch.no_grad():
            torch.compile(model, fullgraph=True, backend="eager")(
                decoder_input_ids=next_ids, encoder_outputs=encoded, visual_grid=grid, cache=cache)

    def captured_step():
        with torch.no_grad(), torch.cuda.graph(torch.cuda.CUDAGraph()):
            model(decoder_input_ids=next_ids, encoder_outputs=encoded, visual_grid=grid, cache=cache)

    run.data["note"] = "compiled / graphed generate() is not measured: these probes only answer whether it could be"
    run.data["torch_compile_fullgraph_probe"] = {
        "probe": "torch.compile(model, fullgraph=True, backend='eager') on one cached decoding step",
        **(probe(compiled_step) if run.time_left() else {"skipped": "budget"})}
    # Last in the process: a failed capture can leave the CUDA context unusable (saved first: a crash shows).
    run.data["cuda_graph_capture_probe"] = {"ok": False, "error": "process died in capture"}
    run.save()
    run.data["cuda_graph_capture_probe"] = {"probe": "torch.cuda.graph capture of one cached decoding step",
                                            **(probe(captured_step) if run.cuda else {"skipped": "no CUDA device"})}
    run.done()


if __name__ == "__main__":
    main()
