"""What a complete NUWA model folder ("Hub layout") holds, and a check that names what is missing.

    folder/config.json                         NuwaConfig (model_type "nuwa"), with                required
                                                 vqgan_config: the NuwaVQGAN inside the model    required
                                                 sketch_vqgan_config: the NuwaSegVQGAN           sketch tasks only
    folder/model.safetensors                   NUWA weights, VQ-GANs included (or               required
                                               model.safetensors.index.json + its shards)
    folder/processor_config.json               NuwaProcessor settings (image processor inside)  required
    folder/tokenizer_config.json (+ files)     the caption tokenizer                            required
    folder/generation_config.json              default decoding settings                        recommended
    folder/README.md                           the model card                                   recommended

Folders of the old layout (the VQ-GANs in ``vqgan/`` and ``vqgan_seg/`` beside the model) pass with a warning: the
model converts them while loading; ``python -m nuwa_hf.models.nuwa.convert_nuwa_legacy_folder`` converts them once.

Files that are never part of the model (hidden files and folders, ``__pycache__``, ``*.pyc``, ``*.tmp``) are left out
of :func:`list_model_files` and of uploads, and so is the training state of a run folder (``nuwa-hf train
--output-dir`` holds the final model beside its ``checkpoint-N/`` folders, with optimizer, scheduler and RNG state as
pickles, and the ``_incomplete_checkpoints/`` staging area): pushing the run folder publishes the model; to share a
checkpoint, push that checkpoint's folder itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..models.nuwa.loading_nuwa import read_nuwa_config, weights_file_problem

# Where the old layout kept the VQ-GANs (now inside the model).
VQGAN_SUBFOLDER = "vqgan"
SEG_VQGAN_SUBFOLDER = "vqgan_seg"
# fnmatch patterns ("*" also matches "/"), applied to '/'-separated paths relative to the folder.
IGNORE_PATTERNS = [".*", "*/.*", "__pycache__", "__pycache__/*", "*/__pycache__/*", "*.pyc", "*.tmp",
                   # a training run folder's state beside its final model (nuwa_hf.training.checkpointing)
                   "checkpoint-*/*", "_incomplete_checkpoints/*"]


class IncompleteModelFolderError(ValueError):
    """A folder lacks a part of a NUWA model (``missing`` lists each one with the way to fix it)."""

    def __init__(self, folder, missing: list[str]):
        self.folder = str(folder)
        self.missing = list(missing)
        lines = "\n".join(f"  - {item}" for item in self.missing)
        super().__init__(f"{self.folder!r} is not a complete NUWA model folder:\n{lines}")


@dataclass
class ModelFolderReport:
    """The result of :func:`check_model_folder`: the files that make up the model and non-fatal remarks."""

    folder: Path
    files: list[str]
    warnings: list[str] = field(default_factory=list)
    has_sketch_vqgan: bool = False
    has_model_card: bool = False


def list_model_files(folder: str | os.PathLike) -> list[str]:
    """The '/'-separated relative paths of the files of ``folder`` that belong to the model, sorted."""
    from huggingface_hub.utils import filter_repo_objects

    root = Path(folder)
    paths = [path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()]
    return sorted(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS))


def _weights_problem(root: Path, base: str, files: set, where: str) -> str | None:
    """None when ``where`` holds ``base`` weights (single file or a complete sharded index), else the problem."""
    prefix = f"{where}/" if where else ""
    if f"{prefix}{base}" in files:
        return None
    index_name = f"{prefix}{base}.index.json"
    if index_name in files:
        try:
            shards = set(json.loads((root / index_name).read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"{index_name} is unreadable ({error})"
        lost = sorted(shard for shard in shards if f"{prefix}{shard}" not in files)
        return f"{index_name} names shards that are missing: {lost}" if lost else None
    stem = base.rsplit(".", 1)[0]
    if any(name.startswith(prefix) and name[len(prefix):] in (f"{stem}.bin", "pytorch_model.bin") for name in files):
        return f"{prefix or './'} holds pickle weights (.bin) but no {base}: re-save with safe_serialization=True"
    return f"no {prefix}{base} (or sharded {base}.index.json)"


def check_model_folder(folder: str | os.PathLike, *, require_sketch_vqgan: bool = False) -> ModelFolderReport:
    """Check that ``folder`` is a complete NUWA model folder (layout in the module docstring).

    Raises:
        IncompleteModelFolderError: listing every missing or broken required part with its fix.
    Returns:
        A :class:`ModelFolderReport` (its ``warnings`` name the missing recommended parts).
    """
    root = Path(folder)
    if not root.is_dir():
        raise IncompleteModelFolderError(folder, [f"no such folder (looked for {root.resolve()})"])
    files = list_model_files(root)
    present = set(files)
    missing: list[str] = []
    warnings: list[str] = []

    # The same config and weight-file checks as loading (models/nuwa/loading_nuwa.py): a folder that would not load
    # is not published.
    config, problem = read_nuwa_config(root)
    if problem:
        missing.append(problem)
        config = None
    problem = _weights_problem(root, "model.safetensors", present, "")
    if problem:
        missing.append(f"model weights: {problem}; save them with `model.save_pretrained(folder)`")
    for name in sorted(name for name in present if "/" not in name and name.endswith(".safetensors")):
        problem = weights_file_problem(root / name)
        if problem:
            missing.append(f"{name} {problem}: save the model again with `model.save_pretrained(folder)`")
    for name in ("processor_config.json", "tokenizer_config.json"):
        if name not in present:
            missing.append(f"no {name}: save the processor with `processor.save_pretrained(folder)`")
    legacy = config is not None and config.get("vqgan_config") is None and f"{VQGAN_SUBFOLDER}/config.json" in present
    has_sketch_vqgan = bool((config or {}).get("sketch_vqgan_config"))
    if legacy:
        warnings.append(
            "old layout: the VQ-GANs sit in vqgan/ and vqgan_seg/ beside the model; it still loads (converted on the "
            "fly), but convert it once with `python -m nuwa_hf.models.nuwa.convert_nuwa_legacy_folder --input "
            f"{folder} --output NEW_FOLDER`"
        )
        for subfolder, required in ((VQGAN_SUBFOLDER, True), (SEG_VQGAN_SUBFOLDER, False)):
            if not any(name.startswith(subfolder + "/") for name in present):
                continue
            problem = _weights_problem(root, "diffusion_pytorch_model.safetensors", present, subfolder)
            if f"{subfolder}/config.json" not in present:
                problem = f"no {subfolder}/config.json"
            if problem:
                missing.append(f"{subfolder}/ (old layout): {problem}")
        has_sketch_vqgan = f"{SEG_VQGAN_SUBFOLDER}/config.json" in present
    elif config is not None and not config.get("vqgan_config"):
        missing.append(
            "config.json has no vqgan_config: the model has no VQ-GAN to turn pictures into tokens; attach the one it "
            "was trained with (`model.set_visual_tokenizers(vqgan=...)`) and save the model again"
        )
    if config is not None and not has_sketch_vqgan:
        if require_sketch_vqgan:
            missing.append("the model has no sketch VQ-GAN (config.sketch_vqgan_config): sketch tasks need one; attach "
                           "it with `model.set_visual_tokenizers(sketch_vqgan=...)` and save the model again")
        else:
            warnings.append("no sketch VQ-GAN: the sketch tasks (S2I, S2V) will not load from this model")
    if missing:
        raise IncompleteModelFolderError(folder, missing)

    if "generation_config.json" not in present:
        warnings.append("no generation_config.json: generate() falls back to defaults derived from config.json")
    auto_map = (config or {}).get("auto_map") or {}
    local_code = sorted({reference.split(".")[0] + ".py" for reference in auto_map.values()
                         if isinstance(reference, str) and "--" not in reference})
    if local_code:
        warnings.append(f"config.json's auto_map names code in the folder ({local_code}), as folders saved before "
                        "nuwa-hf 0.2 did: model folders hold data only; re-save the model with save_pretrained (or "
                        "nuwa_hf.hub.point_folder_to_code(folder, None)) to drop the references, and publish the code "
                        "once with nuwa_hf.hub.push_code for users without nuwa-hf (trust_remote_code=True)")
    if "README.md" not in present:
        warnings.append("no README.md: the repository will have no model card")
    run_state = sorted(path.name + "/" for path in root.glob("checkpoint-*") if path.is_dir())
    if run_state:
        warnings.append(f"left out: {', '.join(run_state)} (the training run's checkpoints: optimizer, scheduler and "
                        "RNG state, not part of the model); to share a checkpoint, push its folder itself")
    return ModelFolderReport(folder=root, files=files, warnings=warnings,
                             has_sketch_vqgan=has_sketch_vqgan,
                             has_model_card="README.md" in present)


def git_blob_sha1(data: bytes) -> str:
    """git's object id of a file's content (the Hub's oid for a regular, non-LFS file)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def file_digests(path: str | os.PathLike) -> tuple[int, str, str]:
    """(size, git blob sha1, sha256) of a file, read once in chunks."""
    size = os.path.getsize(path)
    sha1 = hashlib.sha1(b"blob %d\x00" % size)
    sha256 = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha1.update(chunk)
            sha256.update(chunk)
    return size, sha1.hexdigest(), sha256.hexdigest()
