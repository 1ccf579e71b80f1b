"""Loading a NUWA model folder with errors in NUWA's terms, and the checksum manifest that catches corrupted weights.

``NuwaForConditionalGeneration.from_pretrained(path)`` checks a local ``path`` before transformers reads it, so a user
gets one :class:`NuwaModelFolderError` naming the folder, the file and the fix instead of a deep error: a path that
does not exist, a file instead of a folder, a missing or unreadable config.json, a config of another model type,
missing, empty or truncated weights, and weights whose bytes differ from the checksum manifest (``checksums.json``,
written by ``save_pretrained``; checked when present).
"""

from __future__ import annotations

import json
import os
import struct
import warnings
from pathlib import Path

from ...file_io import atomic_write_json, sha256_file

CHECKSUM_MANIFEST = "checksums.json"
PUBLISH_JOURNAL = ".nuwa-publish-journal.json"  # nuwa_hf.file_io.PUBLISH_JOURNAL: a save that was interrupted
_WEIGHT_SUFFIX = ".safetensors"


class NuwaModelFolderError(Exception):
    """A model folder (or Hub snapshot) cannot be loaded as NUWA: the message names the folder, the file and the fix.

    Deliberately not a ValueError / OSError: ``transformers.pipeline`` catches those while trying model classes and
    re-raises them as one generic "could not load the model" error with tracebacks inside; this one reaches the user
    as it is."""


def _weight_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob(f"*{_WEIGHT_SUFFIX}") if path.is_file())


def write_checksum_manifest(folder: str | os.PathLike) -> Path:
    """Record the sha256 of every ``*.safetensors`` file of ``folder`` in ``checksums.json`` (written atomically)."""
    folder = Path(folder)
    manifest = {"algorithm": "sha256", "files": {path.name: sha256_file(path) for path in _weight_files(folder)}}
    return atomic_write_json(folder / CHECKSUM_MANIFEST, manifest)


def _safetensors_problem(path: Path) -> str | None:
    """None when ``path`` is a whole safetensors file (header readable, data as long as the header says), else why."""
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    try:
        with open(path, "rb") as handle:
            header_length = struct.unpack("<Q", handle.read(8))[0]
            if header_length > size - 8:
                return f"is truncated: its header alone claims {header_length} bytes of a {size}-byte file"
            header = json.loads(handle.read(header_length))
    except (struct.error, ValueError, UnicodeDecodeError) as error:
        return f"is not a safetensors file (unreadable header: {error})"
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    expected = 8 + header_length + max(ends, default=0)
    if size < expected:
        return f"is truncated: {size} bytes, but its header describes {expected}"
    return None


def read_nuwa_config(folder: str | os.PathLike) -> tuple[dict | None, str | None]:
    """``(config dict, None)`` for a folder whose config.json is a NUWA config, else ``(None or the dict, problem)``
    where the problem names the fix. Shared by loading (:func:`check_model_files`) and publishing
    (``nuwa_hf.hub.check_model_folder``)."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        return None, ("no config.json, so it is not a saved model folder: save one with `model.save_pretrained(folder)` "
                      "(or pass the folder that holds config.json)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        return None, (f"config.json is not valid JSON ({error}): the file is damaged; save the model again or download "
                      "the folder again")
    if not isinstance(config, dict) or config.get("model_type") != "nuwa":
        found = config.get("model_type") if isinstance(config, dict) else None
        return (config if isinstance(config, dict) else None), (
            f"config.json is for model_type {found!r}, not 'nuwa': this folder holds another kind of model; load it "
            "with its own class, or pass a NUWA folder")
    return config, None


# nuwa-hf's own modules, as code references name them: in a code repository of nuwa_hf.hub.push_code
# ("org/repo--v0_1_0/modeling_nuwa.NuwaModel"), or in folders saved before 0.2, which carried a copy of them.
_OWN_AUTO_MAP_MODULES = ("configuration_nuwa", "modeling_nuwa", "processing_nuwa", "image_processing_nuwa")
# Files besides config.json whose ``auto_map`` may name code (AutoProcessor, AutoTokenizer, AutoImageProcessor).
_CODE_NAMING_FILES = ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json")


def _module_of(reference) -> str:
    """``"repo--folder/module.Class"``, ``"repo--module.Class"`` or ``"module.Class"`` -> ``"module"``."""
    return str(reference).split("--")[-1].rsplit(".", 1)[0].rsplit("/", 1)[-1]


def _own_pipeline_modules(task: str) -> tuple:
    """The module names of nuwa-hf's pipeline of ``task``: ``text_to_image`` (code repository) or
    ``pipeline_text_to_image`` (the copy folders saved before 0.2 carried)."""
    name = str(task).removeprefix("nuwa-").replace("-", "_")
    return name, f"pipeline_{name}"


def strip_code_references(folder: str | os.PathLike,
                          files: tuple = ("config.json",) + _CODE_NAMING_FILES) -> list[str]:
    """Drop every reference to code from a folder's ``files``: config.json's ``auto_map`` and ``custom_pipelines``,
    the processor's and tokenizer's ``auto_map`` (the image processor's inside processor_config.json too). Returns the
    files changed; weights and the checksum manifest are not touched."""
    changed = []
    for name in files:
        path = Path(folder) / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        found = [data.pop(key) for key in ("auto_map", "custom_pipelines") if key in data]
        if isinstance(data.get("image_processor"), dict) and "auto_map" in data["image_processor"]:
            found.append(data["image_processor"].pop("auto_map"))
        if found:
            atomic_write_json(path, data)
            changed.append(name)
    return changed


def _foreign_auto_map(auto_map, where: str) -> list[str]:
    refused = []
    for auto_class, references in sorted(auto_map.items() if isinstance(auto_map, dict) else []):
        for reference in references if isinstance(references, (list, tuple)) else [references]:
            if reference and _module_of(reference) not in _OWN_AUTO_MAP_MODULES:
                refused.append(f"{where} {auto_class} -> {_module_of(reference)}.py")
    return refused


def other_auto_maps(folder: str | os.PathLike) -> dict:
    """``{file name: auto_map}`` of the folder's processor and tokenizer configs that have one (unreadable: skipped)."""
    found = {}
    for name in _CODE_NAMING_FILES:
        try:
            auto_map = json.loads((Path(folder) / name).read_text(encoding="utf-8")).get("auto_map")
        except (OSError, ValueError, AttributeError):
            continue
        if auto_map:
            found[name] = auto_map
    return found


def foreign_code_note(config: dict, others: dict | None = None) -> str | None:
    """What a NUWA folder names as code that is not nuwa-hf's: config.json's ``auto_map`` classes and
    ``custom_pipelines`` implementations, and the ``auto_map`` of ``others`` (:func:`other_auto_maps`: processor and
    tokenizer configs). That code is refused, i.e. never imported, when the installed package loads the folder
    (``from_pretrained``, ``AutoModel*``, ``AutoProcessor``, ``pipeline()`` and the CLI use nuwa-hf's registered
    classes, and ``trust_remote_code`` is off by default). None when it names only nuwa-hf's own modules, or no code."""
    refused = _foreign_auto_map(config.get("auto_map"), "auto_map")
    pipelines = config.get("custom_pipelines") if isinstance(config.get("custom_pipelines"), dict) else {}
    for task, entry in sorted(pipelines.items()):
        impl = entry.get("impl") if isinstance(entry, dict) else None
        if impl and _module_of(impl) not in _own_pipeline_modules(task):
            refused.append(f"custom_pipelines {task} -> {_module_of(impl)}.py")
    for name, auto_map in sorted((others or {}).items()):
        refused += _foreign_auto_map(auto_map, f"{name} auto_map")
    if not refused:
        return None
    return (f"the folder names code that is not nuwa-hf's ({'; '.join(refused)}); it was not run: the installed "
            "nuwa-hf classes load this folder. Do not pass trust_remote_code=True for it unless you have read that "
            "code; re-save the model with `save_pretrained` to drop the references.")


def weights_file_problem(path: str | os.PathLike) -> str | None:
    """None when ``path`` is a whole safetensors file, else what is wrong with it (empty, truncated, not safetensors)."""
    return _safetensors_problem(Path(path))


def _finish_interrupted_save(folder: Path, text: str) -> None:
    """A ``save_pretrained`` killed while moving its files into ``folder`` left its journal: finish the moves, so the
    folder is the new save as a whole (``nuwa_hf.file_io.finish_folder_publish``)."""
    try:
        from nuwa_hf.file_io import finish_folder_publish
    except ImportError:  # the remote-code copy without nuwa_hf
        finish_folder_publish = None
    try:
        if finish_folder_publish is None:
            raise OSError("nuwa_hf is not installed here")
        finish_folder_publish(folder)
    except OSError as error:
        raise NuwaModelFolderError(
            f"{text!r} was being saved when the save stopped, and the save could not be finished here ({error}): "
            "save the model again, or load it once where nuwa_hf is installed and the folder is writable."
        ) from None


def check_model_files(path: str | os.PathLike) -> None:
    """Raise :class:`NuwaModelFolderError` when the local ``path`` cannot be a loadable NUWA model folder.

    Hub repository ids (``"org/name"``, which do not exist locally) pass unchecked; transformers resolves them.
    """
    text = os.fspath(path)
    folder = Path(text)
    looks_local = os.path.isabs(text) or text.startswith((".", "~")) or text.count("/") > 1 or os.sep in text[:1]
    if folder.is_file():
        raise NuwaModelFolderError(
            f"{text!r} is a file, not a model folder: pass the folder that holds config.json and model.safetensors "
            f"(here probably {str(folder.parent)!r})."
        )
    if not folder.exists():
        if looks_local:
            raise NuwaModelFolderError(
                f"{text!r} does not exist: pass a NUWA model folder (e.g. checkpoints/nuwa-tiny) or a Hub repository id "
                "'owner/name'."
            )
        return
    if (folder / PUBLISH_JOURNAL).is_file():
        _finish_interrupted_save(folder, text)
    config, problem = read_nuwa_config(folder)
    if problem:
        raise NuwaModelFolderError(f"{text!r}: {problem}.")
    note = foreign_code_note(config, other_auto_maps(folder))
    if note:
        warnings.warn(f"{text!r}: {note}", UserWarning, stacklevel=3)
    weights = _weight_files(folder)
    if not weights:
        pickles = [p.name for p in folder.glob("*.bin")]
        fix = (f"it holds pickle weights {pickles}, which NUWA never loads (unpickling runs code): re-save them with "
               "`model.save_pretrained(folder)` (safetensors) from a trusted environment" if pickles else
               "save the model with `model.save_pretrained(folder)` or download the folder again")
        raise NuwaModelFolderError(f"{text!r} has no model.safetensors: {fix}.")
    for file in weights:
        problem = _safetensors_problem(file)
        if problem:
            raise NuwaModelFolderError(
                f"{text}/{file.name} {problem}: the download or copy was cut short or the file is damaged; download or "
                "copy the folder again (or save the model again)."
            )
    manifest_file = folder / CHECKSUM_MANIFEST
    if manifest_file.is_file():
        try:
            expected = json.loads(manifest_file.read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise NuwaModelFolderError(
                f"{text}/{CHECKSUM_MANIFEST} is unreadable ({error}): restore it, or delete it to load without the check."
            ) from None
        for name, digest in sorted(expected.items()):
            file = folder / name
            if not file.is_file():
                raise NuwaModelFolderError(
                    f"{text}/{name} is listed in {CHECKSUM_MANIFEST} but missing: copy or download the folder again."
                )
            if sha256_file(file) != digest:
                raise NuwaModelFolderError(
                    f"{text}/{name} does not match its sha256 in {CHECKSUM_MANIFEST}: the weights are corrupted (or were "
                    "changed after saving); download or copy the folder again. If you changed them on purpose, save "
                    "the model with `save_pretrained`, which writes a new manifest."
                )
