"""Helpers shared by the training tests (importable because conftest.py puts this folder on sys.path)."""

import json
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration

REPO = Path(__file__).resolve().parents[2]
TEXT_VOCAB = 40
TEXT_PAD = 0
VISUAL_VOCAB = 16
SKETCH_VOCAB = 8
TEXT_LENGTH = 6


def make_token_dataset(task: str, num_examples: int, seed: int, frames: int = 2, side: int = 4) -> Dataset:
    """Tokenised examples of ``task`` whose targets depend on their condition (so there is something to learn)."""
    rng = np.random.default_rng(seed)
    grid = (1 if task in ("t2i", "s2i") else frames, side, side)
    columns = {"labels": [], "input_ids": [], "sketch_tokens": []}
    for _ in range(num_examples):
        code = int(rng.integers(1, VISUAL_VOCAB))
        labels = np.full(grid, code, dtype=np.int32)
        labels[..., 0, :] = rng.integers(0, VISUAL_VOCAB, size=labels[..., 0, :].shape)
        columns["labels"].append(labels)
        ids = np.full(TEXT_LENGTH, TEXT_PAD, dtype=np.int32)
        ids[:3] = [1, 2 + code, 39]
        columns["input_ids"].append(ids)
        columns["sketch_tokens"].append(np.full(grid, code % SKETCH_VOCAB, dtype=np.int32))
    keep = {"t2i": ("labels", "input_ids"), "t2v": ("labels", "input_ids"), "v2v": ("labels",),
            "s2i": ("labels", "sketch_tokens"), "s2v": ("labels", "sketch_tokens")}[task]
    return Dataset.from_dict({k: columns[k] for k in keep}).with_format("numpy", dtype=None)


def make_tiny_model(seed: int = 0, **overrides) -> NuwaForConditionalGeneration:
    torch.manual_seed(seed)
    config = NuwaConfig.tiny(
        text_vocab_size=TEXT_VOCAB, visual_vocab_size=VISUAL_VOCAB, sketch_vocab_size=SKETCH_VOCAB, hidden_size=32,
        num_attention_heads=2, encoder_layers=1, decoder_layers=1, intermediate_size=64, max_text_length=TEXT_LENGTH,
        max_visual_grid=(2, 4, 4), max_sketch_grid=(2, 4, 4), text_pad_token_id=TEXT_PAD, **overrides,
    )
    return NuwaForConditionalGeneration(config)


def tiny_run_args(output_dir, vqgan_folders, max_steps=12, extra=()):
    """Arguments of a seconds-long run of examples/train_nuwa.py on three tasks of 16x16 worlds."""
    return [
        "--output-dir", str(output_dir), "--tasks", "t2i,v2v,s2i", "--num-samples", "16", "--image-size", "16",
        # the multi-digit worlds draw 2-frame videos (GODIVA's "then" motions of the default world need 3)
        "--num-frames", "2", "--world", "multi_digit", "--vqgan", vqgan_folders["vqgan"], "--sketch-vqgan", vqgan_folders["sketch_vqgan"],
        "--batch-size", "4", "--max-steps", str(max_steps), "--save-steps", "4", "--logging-steps", "1",
        "--text-vocab-size", "600", "--max-text-length", "12", "--no-progress", "--seed", "0",
        "--model-config", json.dumps({"hidden_size": 32, "num_attention_heads": 2, "encoder_layers": 1,
                                      "decoder_layers": 1, "intermediate_size": 64}),
        *extra,
    ]


def rank_pid(launcher_pid: int, rank: int) -> int:
    """The pid of torchrun's worker process of ``rank`` (read from /proc: the worker's RANK variable)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher_pid and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no worker of rank {rank} under torchrun {launcher_pid}")


def signal_agreement_worker(rank: int, world_size: int, port: int, signalled_rank: int, signal_step: int,
                            results) -> None:
    """One process of a gloo group (``torch.multiprocessing.spawn``): steps the way Trainer calls its callbacks, with
    :class:`~nuwa_hf.training.interruption.StopOnSignal` on the real process group; ``signalled_rank`` receives
    SIGTERM during step ``signal_step``. Puts ``(rank, step it stopped at, signal number, seconds per step end)``
    into ``results``."""
    import os
    import signal
    import time

    import torch.distributed as dist
    from transformers import TrainerControl

    from nuwa_hf.training.interruption import StopOnSignal

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        callback = StopOnSignal()
        step, started = 0, time.perf_counter()
        while step < 1000:
            step += 1
            if rank == signalled_rank and step == signal_step:
                callback._handle(signal.SIGTERM, None)  # as the handler is called when the signal arrives
            control = callback.on_step_end(None, None, TrainerControl())
            if control.should_training_stop:
                break
        results.put((rank, step, callback.signal_number, control.should_save,
                     (time.perf_counter() - started) / step))
    finally:
        dist.destroy_process_group()
