"""Crash-safe checkpoint files for VQ-GAN training: atomic folders, and optimiser state without pickle.

A checkpoint folder is written under a hidden temporary name in the same parent and renamed into place only once
complete, so an interrupted save never leaves a folder that loads as if it were whole. Optimiser state goes to
safetensors (tensors) + JSON (everything else) so that resuming never unpickles a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import torch
from safetensors.torch import load_file, save_file


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[str]:
    """
    Context manager yielding a temporary folder that replaces `path` when the block exits without error.

    The temporary folder lives beside `path` (same file system, so the rename is atomic); on error it is removed
    and `path` is left as it was.
    """
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
    try:
        yield staging
        if os.path.exists(path):
            # rename(2) cannot replace a non-empty folder: move the old one aside first, then drop it.
            retired = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.replace(path, os.path.join(retired, name))
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def atomic_write_json(path: str | os.PathLike, payload) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        raise


def save_pretrained_atomically(model, directory: str | os.PathLike) -> None:
    """
    `model.save_pretrained(directory)` with every written file swapped in by rename, so that a reader never sees a
    half-written weights file. Other files already in `directory` (such as checkpoints) are kept.
    """
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".model.tmp-", dir=directory)
    try:
        model.save_pretrained(staging, safe_serialization=True)
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_optimizer_state(optimizer: torch.optim.Optimizer, directory: str | os.PathLike, name: str) -> None:
    """Store `optimizer.state_dict()` as `{name}.safetensors` (tensors) + `{name}.json` (the rest)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for param_id, param_state in state["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    save_file(tensors, os.path.join(directory, f"{name}.safetensors"))
    with open(os.path.join(directory, f"{name}.json"), "w", encoding="utf-8") as handle:
        json.dump({"param_groups": state["param_groups"], "scalars": scalars}, handle)


def load_optimizer_state(optimizer: torch.optim.Optimizer, directory: str | os.PathLike, name: str) -> None:
    """Inverse of [`save_optimizer_state`]."""
    tensor_file = os.path.join(directory, f"{name}.safetensors")
    meta_file = os.path.join(directory, f"{name}.json")
    for file in (tensor_file, meta_file):
        if not os.path.isfile(file):
            raise FileNotFoundError(f"Optimizer state file {file} is missing: the checkpoint is incomplete.")
    tensors = load_file(tensor_file)
    with open(meta_file, encoding="utf-8") as handle:
        meta = json.load(handle)
    state: dict[int, dict] = {}
    for flat_key, value in tensors.items():
        param_id, key = flat_key.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    for param_id, values in meta["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
