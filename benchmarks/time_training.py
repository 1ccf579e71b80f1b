"""One training step (forward, backward, AdamW) of the paper-like preset (time_decoding.PAPER_LIKE, 20.9M parameters)
on 10x21x21 text-to-video batches of 2, fp32 and bf16 autocast, one process: the model's 3DNA attention ("nuwa_3dna":
the Triton kernel on a GPU), dense masked attention ("sdpa", the baseline of the ratios) and lucidrains' nuwa-pytorch
0.7.8 ("nuwa_pytorch", built at the same width, depth, heads, text length, frames and token grid; its row records
`skipped` with the reason where the package cannot be imported). Per row: median ms, visual tokens per second, and on
a GPU the peak memory of the timed steps (torch.cuda.max_memory_allocated: weights, gradients, AdamW state,
activations) and what stays allocated between steps. Each dtype builds fresh models from the same seed, and only one
model is on the device at a time.
nuwa-pytorch 0.7.8 does not train in bf16: under autocast its attention fills masked bf16 scores with float32's
largest value (RuntimeError: value cannot be converted to type c10::BFloat16 without overflow), and with bf16 weights
its talking-heads convolution gets float32 probabilities; its bf16 row records that error.
Tiny (no CUDA): NuwaConfig.tiny on 2x3x3 grids (square frames: nuwa-pytorch's grid is frames x n x n), fp32 and bf16
autocast on the CPU.

    python benchmarks/time_training.py [--tiny] [--out DIR]
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import importlib.util
import math
import sys
import time
import types

import harness
import torch
from time_decoding import PAPER_LIKE

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration

NUWA_PYTORCH_VERSION = "0.7.8"
# What the nuwa-pytorch row leaves out or sets differently from the package's defaults, and why (recorded in the JSON).
NUWA_PYTORCH_NOTES = {
    "import": "nuwa_pytorch.nuwa_pytorch (the transformer) is loaded without the package's __init__, which also "
              "imports the VQ-GAN, its trainer and the CLIP tokenizer (torchvision, vector-quantize-pytorch, ftfy): "
              "the transformer needs only torch, einops and unfoldNd",
    "vq_gan": "not built: the step takes precomputed video token ids (NUWA.forward accepts a long tensor and then "
              "never calls its VQ-GAN); NUWA.__init__ reads only image_size, num_layers and codebook_size from it, "
              "given by a size-only stand-in (image_size = 16 x grid side, 4 downsamplings, codebook = visual "
              "vocabulary)",
    "enc_reversible": "True: in 0.7.8 the non-reversible text encoder (Transformer.forward) does not take the "
                      "rotary_pos_emb argument that NUWA.embed_text passes (TypeError); the reversible one does. The "
                      "text is 16 tokens, so its recomputation in the backward pass costs little",
    "bf16": "0.7.8 does not train in bf16: under autocast its attention fills masked bf16 scores with float32's "
            "largest value (RuntimeError: value cannot be converted to type c10::BFloat16 without overflow); with "
            "bf16 weights its talking-heads convolution gets float32 probabilities (expected scalar type Float but "
            "found BFloat16). The bf16 row records the autocast attempt's error",
    "cond_dropout_prob": "0.0 (package default 0.2), as nuwa_hf's forward drops no condition",
    "kept_defaults": "sandwich norm, GEGLU feed-forward (2/3 of dim*ff_mult inner: the same parameter count as a "
                     "4x GELU MLP), talking heads, token shift in the decoder, 3DNA over unfoldNd neighbourhoods, "
                     "embed_gradient_frac 0.2",
}


def load_nuwa_pytorch():
    """nuwa-pytorch's ``nuwa_pytorch.nuwa_pytorch`` module (the ``NUWA`` class), or ``ImportError`` saying why not."""
    try:
        version = importlib.metadata.version("nuwa-pytorch")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("nuwa-pytorch is not installed (bash benchmarks/gpu_check.sh --prepare-wheels carries "
                          f"nuwa-pytorch=={NUWA_PYTORCH_VERSION} and its pure-Python dependencies)") from None
    if version != NUWA_PYTORCH_VERSION:
        raise ImportError(f"nuwa-pytorch {version} is installed; this comparison is written for {NUWA_PYTORCH_VERSION} "
                          f"(pip install nuwa-pytorch=={NUWA_PYTORCH_VERSION} --no-deps)")
    spec = importlib.util.find_spec("nuwa_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nuwa-pytorch's metadata is installed but its nuwa_pytorch package is not on the path")
    added = "nuwa_pytorch" not in sys.modules
    if added:  # the package object without running its __init__ (see NUWA_PYTORCH_NOTES["import"])
        package = types.ModuleType("nuwa_pytorch")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__, package.__spec__ = spec.origin, spec
        sys.modules["nuwa_pytorch"] = package
    try:
        return importlib.import_module("nuwa_pytorch.nuwa_pytorch")
    except ImportError as exc:
        if added:
            for name in [n for n in sys.modules if n == "nuwa_pytorch" or n.startswith("nuwa_pytorch.")]:
                del sys.modules[name]
        raise ImportError(f"nuwa-pytorch {version} is installed but its transformer cannot be imported: {exc} "
                          "(it needs einops and unfoldNd)") from exc


class TokenGridOnly:
    """What ``NUWA.__init__`` reads from its VQ-GAN: the frame size in pixels, the number of 2x downsamplings and the
    codebook size. ``copy_for_eval()`` gives None, so the NUWA module holds no VQ-GAN (the step feeds token ids)."""

    def __init__(self, side: int, codebook_size: int, num_layers: int = 4):
        self.image_size, self.num_layers, self.codebook_size = side * 2 ** num_layers, num_layers, codebook_size

    def copy_for_eval(self):
        return None


def nuwa_pytorch_kwargs(config: NuwaConfig, grid) -> dict:
    """nuwa-pytorch ``NUWA`` keyword arguments for the size of ``config`` on a (frames, n, n) ``grid``."""
    frames, height, width = grid
    if height != width:
        raise ValueError(f"nuwa-pytorch's NUWA takes square token frames; got a {grid} grid (use frames x n x n)")
    if config.intermediate_size % config.hidden_size:
        raise ValueError(f"intermediate_size {config.intermediate_size} is not a multiple of hidden_size "
                         f"{config.hidden_size}; nuwa-pytorch's feed-forward width is hidden_size x ff_mult")
    extent = tuple(config.video_extent)
    if any(e is None or e % 2 == 0 for e in extent):
        raise ValueError(f"nuwa-pytorch's 3DNA kernel size must be odd per axis; the config's video_extent is {extent}")
    heads, head_dim = config.num_attention_heads, config.head_dim
    return dict(dim=config.hidden_size, max_video_frames=frames, text_num_tokens=config.text_vocab_size,
                text_max_seq_len=config.max_text_length, text_enc_depth=config.encoder_layers, text_enc_heads=heads,
                text_enc_dim_head=head_dim, enc_reversible=True, dec_depth=config.decoder_layers, dec_heads=heads,
                dec_dim_head=head_dim, dec_reversible=False, attn_dropout=config.attention_dropout,
                ff_dropout=config.dropout, sparse_3dna_kernel_size=extent,
                ff_mult=config.intermediate_size // config.hidden_size)


def build_nuwa_pytorch(module, config: NuwaConfig, grid):
    """nuwa-pytorch's NUWA at the size of ``config``; returns (model, the keyword arguments it was built with)."""
    kwargs = nuwa_pytorch_kwargs(config, grid)
    ff_mult = kwargs.pop("ff_mult")
    if ff_mult != 4:  # NUWA.__init__ has no ff_mult argument; its Transformer's default is 4
        raise ValueError(f"nuwa-pytorch's NUWA fixes the feed-forward at 4x hidden_size; the config has {ff_mult}x")
    model = module.NUWA(vae=TokenGridOnly(grid[1], config.visual_vocab_size), **kwargs)
    return model, kwargs


def parameters_m(model) -> float:
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 3)


def free_device_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def time_row(run, impl: str, dtype: str, step, tokens_per_step: int, **extra) -> dict:
    """One row: the first call alone (JIT compiles included), then the harness's warm-up and median."""
    if not run.time_left():
        return run.add(impl=impl, dtype=dtype, skipped="budget")
    try:
        harness.sync()
        start = time.perf_counter()
        step()
        harness.sync()
        first_call_s = time.perf_counter() - start
        row = dict(impl=impl, dtype=dtype, **extra, **run.time(step), first_call_s=round(first_call_s, 3))
        row["visual_tokens_per_s"] = tokens_per_step / (row["ms"] * 1e-3)
        if run.cuda:  # weights and AdamW state: what stays between steps (gradients are set to None)
            row["resident_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        else:
            row["peak_mem_mib"] = None
    except Exception as exc:  # noqa: BLE001 (recorded; e.g. out of memory for the dense mask)
        row = dict(impl=impl, dtype=dtype, **extra, **error_fields(exc))
    return run.add(**row)


def error_fields(exc: BaseException) -> dict:
    """``error``: the exception's one line (for the table); ``traceback``: its tail as a list (the JSON only)."""
    return {"error": f"{type(exc).__name__}: {exc}"[:300], "traceback": harness.error_text(exc).splitlines()}


def training_step(model, forward, dtype: str):
    """``step()``: ``forward()`` (the loss) under autocast when bf16, backward, AdamW, gradients set to None."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    device_type = next(model.parameters()).device.type

    def step():
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = forward()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main():
    args = harness.parse_args(__doc__)
    if torch.cuda.is_available():  # a step is tens of ms: fewer calls than the harness's kernel defaults (10 + 50)
        args.warmup = 2 if args.warmup is None else args.warmup
        args.repeats = 10 if args.repeats is None else args.repeats
    run = harness.Run("training", args)
    device = "cuda" if run.cuda else "cpu"
    grid, batch = ((2, 3, 3), 2) if run.tiny else ((10, 21, 21), 2)
    config = NuwaConfig.tiny(max_visual_grid=grid) if run.tiny else NuwaConfig.paper(**PAPER_LIKE, dropout=0.0)
    g = torch.Generator().manual_seed(0)
    text = torch.randint(1, config.text_vocab_size, (batch, 5 if run.tiny else 16), generator=g).to(device)
    labels = torch.randint(0, config.visual_vocab_size, (batch, *grid), generator=g).to(device)
    tokens = batch * math.prod(grid)
    run.data.update(grid=grid, batch=batch, text_tokens=text.shape[1], tokens_per_step=tokens,
                    optimizer="AdamW (lr 1e-4)", preset="tiny" if run.tiny else "paper-like",
                    peak_memory="torch.cuda.max_memory_allocated over the timed steps (MiB)" if run.cuda else
                    "n/a: no CUDA device (peak_mem_mib is null on the CPU)")
    try:
        nuwa_pytorch, unavailable = load_nuwa_pytorch(), None
        run.data["nuwa_pytorch"] = {"version": NUWA_PYTORCH_VERSION, "notes": NUWA_PYTORCH_NOTES}
    except ImportError as exc:
        nuwa_pytorch, unavailable = None, str(exc)
        run.data["nuwa_pytorch"] = {"skipped": unavailable}
    run.save()

    rows = []
    for dtype in ("fp32", "bf16"):
        # nuwa_hf's model: both attention implementations on the same weights, then freed
        torch.manual_seed(0)
        model = NuwaForConditionalGeneration(config).train().to(device)
        run.data["parameters_m"] = parameters_m(model)
        step = training_step(model, lambda: model(input_ids=text, labels=labels).loss, dtype)
        for attention in ("sdpa", "nuwa_3dna"):
            model.set_attn_implementation(attention)
            rows.append(time_row(run, attention, dtype, step, tokens, params_m=parameters_m(model)))
        del model, step
        free_device_memory()
        # nuwa-pytorch's NUWA at the same size, on the same text and token ids
        if unavailable:
            rows.append(run.add(impl="nuwa_pytorch", dtype=dtype, skipped=unavailable))
            continue
        try:
            torch.manual_seed(0)
            theirs, kwargs = build_nuwa_pytorch(nuwa_pytorch, config, grid)
            theirs = theirs.train().to(device)
        except Exception as exc:  # noqa: BLE001 (recorded: the other rows stand)
            rows.append(run.add(impl="nuwa_pytorch", dtype=dtype, **error_fields(exc)))
            continue
        run.data["nuwa_pytorch"]["built_as"] = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
        step = training_step(theirs, lambda: theirs(text=text, video=labels, return_loss=True, cond_dropout_prob=0.0),
                             dtype)
        rows.append(time_row(run, "nuwa_pytorch", dtype, step, tokens, params_m=parameters_m(theirs)))
        del theirs, step
        free_device_memory()
    for dtype in ("fp32", "bf16"):
        same = [r for r in rows if r["dtype"] == dtype]
        for baseline in ("sdpa", "nuwa_pytorch"):  # speedup_vs_sdpa, speedup_vs_nuwa_pytorch: same dtype, same run
            for row in [r for r in same if r["impl"] == baseline and r.get("ms")]:
                harness.ratios(same, baseline=row, keys=("ms",))
    run.done()


if __name__ == "__main__":
    main()
