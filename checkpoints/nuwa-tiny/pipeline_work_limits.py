"""Bounds on the work one pipeline call (or one ``nuwa-hf generate``) may start, checked before any work starts.

Every size that drives time or memory has a limit derived from the model or from a memory estimate; past it the call
fails at once with a message that names the limit and the way past it (``allow_large=True``, ``--allow-large`` on the
command line), instead of running for hours or being killed by the out-of-memory killer.

=====================  ==============================================================================================
size                   limit
=====================  ==============================================================================================
video frames           ``MAX_FRAMES_FACTOR`` (4) x the model's trained length ``config.max_visual_grid[0]``: T2V and
                       TV2V ``num_frames``, V2V ``num_condition_frames + num_frames_to_predict``. Past the trained
                       length every frame costs one more slide of the window.
candidates             ``MAX_CANDIDATES`` (64) per output (the paper reranks 60).
rows                   ``MAX_ROWS`` (256) sequences per input: outputs per input x candidates.
batch memory           the decoder's key/value cache for one chunk of ``batch_size`` rows (doubled under guidance,
                       twice that for activations; see :func:`estimate_chunk_bytes`) must fit in
                       ``MEMORY_FRACTION`` (80 %) of the free memory of the model's device.
saved picture size     ``MAX_SAVED_SIDE`` (4096) pixels per side after ``upscale`` (the command line's
                       ``--upscale``; a strip of frames counts its whole width).
=====================  ==============================================================================================
"""

from __future__ import annotations

import os
from typing import Optional

MAX_FRAMES_FACTOR = 4
MAX_CANDIDATES = 64
MAX_ROWS = 256
MEMORY_FRACTION = 0.8
MAX_SAVED_SIDE = 4096

OPT_IN = "pass allow_large=True (command line: --allow-large) to go past it deliberately"


class WorkLimitError(ValueError):
    """A call would start more work than its documented limit allows (see :mod:`nuwa_hf.pipelines.work_limits`)."""


def max_frames_for(trained_frames: int) -> int:
    """The most frames one call may ask for: ``MAX_FRAMES_FACTOR`` x the model's trained length."""
    return MAX_FRAMES_FACTOR * max(int(trained_frames), 1)


def check_frames(frames: int, trained_frames: int, what: str, allow_large: bool = False) -> None:
    """``frames`` (the video length a call asks for, named ``what`` in the message) against :func:`max_frames_for`."""
    limit = max_frames_for(trained_frames)
    if frames > limit and not allow_large:
        raise WorkLimitError(
            f"{what} asks for {frames} frames, past this model's limit of {limit} ({MAX_FRAMES_FACTOR} x its trained "
            f"length of {trained_frames} frames; every frame past the trained length slides the window once more). "
            f"Ask for at most {limit} frames, or {OPT_IN}."
        )


def check_rows(num_outputs: int, num_candidates: int, allow_large: bool = False) -> int:
    """Candidates per output and rows per input against ``MAX_CANDIDATES`` and ``MAX_ROWS``; returns the rows.

    (Inputs are generated ``batch_size`` at a time, so only the rows of one input are bounded here; the memory of a
    batch is :func:`check_chunk_memory`'s.)"""
    if num_candidates > MAX_CANDIDATES and not allow_large:
        raise WorkLimitError(
            f"num_candidates={num_candidates} is past the limit of {MAX_CANDIDATES} candidates per output (the paper "
            f"reranks 60): ask for fewer, or {OPT_IN}."
        )
    rows = num_outputs * num_candidates
    if rows > MAX_ROWS and not allow_large:
        raise WorkLimitError(
            f"Each input would generate {rows} sequences ({num_outputs} output(s) x {num_candidates} candidate(s)), "
            f"past the limit of {MAX_ROWS} per input: ask for fewer outputs or candidates, or {OPT_IN}."
        )
    return rows


def estimate_chunk_bytes(config, grid: tuple[int, int, int], rows: int, guidance: bool, dtype_bytes: int = 4) -> int:
    """Memory of one generation chunk: the decoder's key/value cache ``rows x layers x 2 x (T*h*w + 1) x hidden``
    (twice the rows under classifier-free guidance, which runs a second, unconditioned pass), times 2 for the
    activations and the logits around it. An estimate to refuse hopeless calls, not an exact figure."""
    frames, height, width = grid
    positions = frames * height * width + 1
    cache = rows * (2 if guidance else 1) * int(config.decoder_layers) * 2 * positions * int(config.hidden_size)
    return 2 * cache * dtype_bytes


def free_memory_bytes(device) -> Optional[int]:
    """Free memory of ``device``: CUDA's ``mem_get_info``, else the host's MemAvailable; None when unknown."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_chunk_memory(config, grid: tuple[int, int, int], rows: int, guidance: bool, device, dtype_bytes: int = 4,
                       allow_large: bool = False, rows_per_input: int = 1) -> None:
    """Refuse ``rows`` generated together (inputs of a batch x ``rows_per_input``: outputs x candidates) whose
    :func:`estimate_chunk_bytes` exceeds ``MEMORY_FRACTION`` of the free memory; the message says what fits."""
    if allow_large:
        return
    needed = estimate_chunk_bytes(config, grid, rows, guidance, dtype_bytes)
    free = free_memory_bytes(device)
    if free is None or needed <= MEMORY_FRACTION * free:
        return
    per_row = max(needed // max(rows, 1), 1)
    fits = int(MEMORY_FRACTION * free // per_row)
    if fits >= rows_per_input and rows_per_input >= 1:
        advice = f"lower batch_size to {fits // rows_per_input} or less"
    elif fits >= 1:
        advice = f"ask for at most {fits} outputs x candidates per input"
    else:
        advice = "ask for fewer frames (the grid is too large)"
    raise WorkLimitError(
        f"Generating {rows} row(s) of a {grid[0]}x{grid[1]}x{grid[2]} token grid together needs about "
        f"{needed / 2**30:.1f} GiB (estimated) but the device {device} has {free / 2**30:.1f} GiB free: {advice}, "
        f"or {OPT_IN}."
    )


def check_saved_size(width: int, height: int, upscale: int, frames: int = 1, allow_large: bool = False) -> None:
    """A picture of ``width x height`` (a strip of ``frames`` frames side by side) enlarged ``upscale`` times must have
    sides of at most ``MAX_SAVED_SIDE`` pixels."""
    strip_width = frames * width + (frames - 1) * 2
    side = max(strip_width, height) * upscale
    if side > MAX_SAVED_SIDE and not allow_large:
        largest = max(MAX_SAVED_SIDE // max(strip_width, height), 1)
        raise WorkLimitError(
            f"upscale={upscale} would write pictures {side} pixels wide or high (outputs are {width}x{height}"
            f"{f', {frames} frames in a strip' if frames > 1 else ''}), past the limit of {MAX_SAVED_SIDE}: use an "
            f"upscale of at most {largest}, or {OPT_IN}."
        )
