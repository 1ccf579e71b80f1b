"""Crash-safe checkpoint files for VQ-GAN training: the model saved file by file with renames, and optimiser state
without pickle.

Checkpoint folders are written with :func:`nuwa_hf.file_io.atomic_directory` (renamed into place only once complete).
Optimiser state goes to safetensors (tensors) + JSON (everything else) so that resuming never unpickles a file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import torch
from safetensors.torch import load_file, save_file


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
