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
from typing import Optional

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


# safetensors' dtypes and their sizes in bits; NUWA's weights are the floating ones.
_SAFETENSORS_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "I16": 16, "U16": 16, "I32": 32, "U32": 32, "I64": 64, "U64": 64,
                     "F16": 16, "BF16": 16, "F32": 32, "F64": 64, "C64": 64, "F8_E5M2": 8, "F8_E4M3": 8,
                     "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F6_E2M3": 6, "F6_E3M2": 6, "F4": 4}
_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}
# Largest JSON file of a model folder read whole (config.json, checksums.json, generation_config.json, the processor's
# and tokenizer's files): a NUWA folder's are a few kB; a CLIP BPE tokenizer.json is about 3.6 MB.
MAX_JSON_BYTES = 64 * 2**20


def _read_header(path: Path) -> tuple[dict | None, str | None]:
    """``(header, None)`` for a whole safetensors file, else ``(None, why not)``. Every tensor entry is checked the
    way safetensors will read it (known dtype, whole non-negative shape, data offsets that cover exactly its bytes,
    one after the other), so a damaged or hostile header is named here instead of failing inside the loader."""
    size = path.stat().st_size
    if size == 0:
        return None, "is empty (0 bytes)"
    try:
        with open(path, "rb") as handle:
            header_length = struct.unpack("<Q", handle.read(8))[0]
            if header_length > size - 8:
                return None, f"is truncated: its header alone claims {header_length} bytes of a {size}-byte file"
            if header_length > 100 * 2**20:
                return None, f"is not a safetensors file this loader reads: its header claims {header_length} bytes"
            header = json.loads(handle.read(header_length))
    except (struct.error, ValueError, UnicodeDecodeError, RecursionError) as error:
        return None, f"is not a safetensors file (unreadable header: {error})"
    if not isinstance(header, dict):
        return None, f"is not a safetensors file (its header is a JSON {type(header).__name__}, not an object)"
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        if (dtype not in _SAFETENSORS_BITS or not isinstance(shape, list) or not isinstance(offsets, list)
                or len(offsets) != 2 or not all(type(v) is int and v >= 0 for v in shape + offsets)):
            return None, (f"is damaged or not a safetensors file: the header's entry for tensor {name!r} is not a "
                          f"dtype, shape and data offsets ({str(entry)[:120]})")
        count = 1
        for side in shape:
            count *= side
        if count * _SAFETENSORS_BITS[dtype] != 8 * (offsets[1] - offsets[0]):
            return None, (f"is damaged: tensor {name!r} of shape {shape} ({dtype}) would need "
                          f"{count * _SAFETENSORS_BITS[dtype] // 8:,} bytes, but its data offsets span "
                          f"{offsets[1] - offsets[0]:,}")
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    position = 0
    for begin, end, name in spans:
        if begin != position:
            return None, f"is damaged: tensor {name!r} starts at byte {begin} of the data, not {position}"
        position = end
    expected = 8 + header_length + position
    if size < expected:
        return None, f"is truncated: {size} bytes, but its header describes {expected}"
    return header, None


def _safetensors_problem(path: Path) -> str | None:
    """None when ``path`` is a whole safetensors file (header readable, data as long as the header says), else why."""
    return _read_header(path)[1]


def _read_json(path: Path):
    """The JSON value of a model folder's file; ``OSError`` / ``ValueError`` when it is too large or unreadable."""
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"it is {size / 2**20:.0f} MB, past the {MAX_JSON_BYTES // 2**20} MB a model folder's JSON "
                         "file may have (NUWA's are a few kB)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError("it nests arrays or objects too deeply to read") from None


def read_nuwa_config(folder: str | os.PathLike) -> tuple[dict | None, str | None]:
    """``(config dict, None)`` for a folder whose config.json is a NUWA config, else ``(None or the dict, problem)``
    where the problem names the fix. Shared by loading (:func:`check_model_files`) and publishing
    (``nuwa_hf.hub.check_model_folder``)."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        return None, ("no config.json, so it is not a saved model folder: save one with `model.save_pretrained(folder)` "
                      "(or pass the folder that holds config.json)")
    try:
        config = _read_json(config_file)
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
    problem = config_values_problem(config)
    if problem:
        raise NuwaModelFolderError(f"{text}/config.json: {problem}; fix it in config.json, or use the config.json saved "
                                   "with these weights.")
    note = foreign_code_note(config, other_auto_maps(folder))
    if note:
        warnings.warn(f"{text!r}: {note}", UserWarning, stacklevel=3)
    weights = _weight_files(folder)
    if not weights:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        fix = (f"it holds pickle weights {pickles}, which NUWA never loads (unpickling runs code): re-save them with "
               "`model.save_pretrained(folder)` (safetensors) from a trusted environment" if pickles else
               "save the model with `model.save_pretrained(folder)` or download the folder again")
        raise NuwaModelFolderError(f"{text!r} has no model.safetensors: {fix}.")
    headers = {}
    for file in weights:
        headers[file.name], problem = _read_header(file)
        if problem:
            raise NuwaModelFolderError(
                f"{text}/{file.name} {problem}: the download or copy was cut short or the file is damaged; download or "
                "copy the folder again (or save the model again)."
            )
    _check_manifest(folder, text)
    _check_weights_fit_the_config(folder, text, config, headers)
    _check_generation_config(folder, text, config)


_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def config_values_problem(config: dict) -> str | None:
    """What :func:`~.configuration_nuwa.check_config_values` finds wrong in a config.json's values (the defaults of
    :class:`NuwaConfig` fill what it leaves out), or None. Runs before transformers builds any module, so an absurd
    size is refused before it is allocated."""
    import inspect

    from .configuration_nuwa import NuwaConfig, check_config_values

    values = {name: parameter.default for name, parameter in inspect.signature(NuwaConfig.__init__).parameters.items()
              if parameter.default is not inspect.Parameter.empty}
    values.update(config)
    try:
        check_config_values(values)
        for name in ("vqgan_config", "sketch_vqgan_config"):
            if values.get(name) is not None and not isinstance(values[name], dict):
                raise ValueError(f"{name} must be the VQ-GAN's config as an object (or null), got {str(values[name])[:80]}")
    except ValueError as error:
        return str(error).rstrip(".")
    return None


def _check_manifest(folder: Path, text: str) -> None:
    manifest_file = folder / CHECKSUM_MANIFEST
    if not manifest_file.is_file():
        return
    fix = "restore it, or delete it to load without the check"
    try:
        manifest = _read_json(manifest_file)
        expected = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise NuwaModelFolderError(f"{text}/{CHECKSUM_MANIFEST} is unreadable ({error}): {fix}.") from None
    algorithm = manifest.get("algorithm", "sha256")
    if algorithm != "sha256":
        raise NuwaModelFolderError(
            f"{text}/{CHECKSUM_MANIFEST} records {algorithm!r} digests; nuwa-hf checks sha256 only: {fix} (a save with "
            "`save_pretrained` writes a sha256 manifest)."
        )
    if not isinstance(expected, dict) or not all(isinstance(d, str) for d in expected.values()):
        raise NuwaModelFolderError(
            f"{text}/{CHECKSUM_MANIFEST} is unreadable (its 'files' must map file names to sha256 hex strings, got "
            f"{str(expected)[:100]}): {fix}."
        )
    for name, digest in sorted(expected.items()):
        if not name or Path(name).name != name or name in (".", ".."):
            raise NuwaModelFolderError(
                f"{text}/{CHECKSUM_MANIFEST} names {name!r}, which is not a file of this folder (a manifest lists the "
                f"folder's own weight files by name): {fix}."
            )
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


def _check_weights_fit_the_config(folder: Path, text: str, config: dict, headers: dict) -> None:
    """The weights are floating point and hold as many encoder and decoder layers as config.json says (read from the
    safetensors headers, before any module is built)."""
    import re

    integer = sorted(f"{name} ({entry['dtype']})" for header in headers.values() for name, entry in header.items()
                     if name != "__metadata__" and entry["dtype"] not in _FLOAT_DTYPES)
    if integer:
        raise NuwaModelFolderError(
            f"{text} stores {len(integer)} weight(s) as integers or booleans ({', '.join(integer[:3])}"
            f"{', ...' if len(integer) > 3 else ''}), but NUWA's weights are floating point: the file is quantized "
            "or holds another model's tensors; use the model.safetensors saved with `save_pretrained`."
        )
    found = {"encoder": set(), "decoder": set()}
    for header in headers.values():
        for name in header:
            match = re.match(r"model\.(encoder|decoder)\.layers\.(\d+)\.", name)
            if match:
                found[match.group(1)].add(int(match.group(2)))
    if not found["encoder"] and not found["decoder"]:
        return  # not this layout (e.g. a converted or custom file): transformers' own checks apply
    for part in ("encoder", "decoder"):
        stored = max(found[part], default=-1) + 1
        declared = config.get(f"{part}_layers")
        if declared is not None and int(declared) != stored:
            raise NuwaModelFolderError(
                f"{text}/config.json declares {part}_layers={declared}, but the weights hold {stored} {part} layers: "
                "the config was edited or belongs to other weights; use the config.json saved with these weights."
            )


def _check_generation_config(folder: Path, text: str, config: dict) -> None:
    """generation_config.json, when present, is a JSON object whose sampling settings are usable: the rules of the
    sampling options (``visual_generation_nuwa.check_sampling_options``) for its own fields and each task_sampling
    entry, the visual <bos> id the model has, and whole counts."""
    file = folder / "generation_config.json"
    if not file.is_file():
        return
    where = f"{text}/generation_config.json"
    fix = "fix it, or delete the file to use the defaults"
    try:
        data = _read_json(file)
    except (OSError, ValueError) as error:
        raise NuwaModelFolderError(f"{where} is not valid JSON ({error}): {fix}.") from None
    if not isinstance(data, dict):
        raise NuwaModelFolderError(f"{where} holds a JSON {type(data).__name__}, not an object: {fix}.")
    from .visual_generation_nuwa import TASK_SAMPLING_KEYS, check_integer, check_sampling_options

    try:
        check_sampling_options({key: data.get(key) for key in ("do_sample", "temperature", "top_k", "top_p",
                                                                 "guidance_scale")})
        for key in ("num_return_sequences", "num_beams"):
            if data.get(key) is not None:
                check_integer(key, data[key], minimum=1, maximum=1024)
        table = data.get("task_sampling")
        if table is not None and not isinstance(table, dict):
            raise ValueError(f"task_sampling must map task names to settings, got {str(table)[:80]}")
        for task, entry in sorted((table or {}).items()):
            if not isinstance(entry, dict):
                raise ValueError(f"task_sampling[{task!r}] must be an object of settings, got {str(entry)[:80]}")
            unknown = sorted(set(entry) - set(TASK_SAMPLING_KEYS) - {"scorer", "num_candidates"})
            if unknown:
                raise ValueError(f"task_sampling[{task!r}] has unknown setting(s) {unknown}: the settings are "
                                 f"{', '.join(TASK_SAMPLING_KEYS)}, scorer and num_candidates")
            try:
                check_sampling_options({key: entry.get(key) for key in TASK_SAMPLING_KEYS})
                if entry.get("num_candidates") is not None:
                    check_integer("num_candidates", entry["num_candidates"], minimum=1, maximum=1024)
            except (TypeError, ValueError) as error:
                raise ValueError(f"task_sampling[{task!r}]: {error}".rstrip(".")) from None
    except (TypeError, ValueError) as error:
        raise NuwaModelFolderError(f"{where}: {str(error).rstrip('.')}; {fix}.") from None
    bos = config.get("visual_vocab_size")
    for key in ("decoder_start_token_id", "bos_token_id", "pad_token_id"):
        value = data.get(key)
        if value is not None and bos is not None and value != bos:
            raise NuwaModelFolderError(
                f"{where}: {key} is {value!r}, but this model's visual <bos> (and pad) id is {bos} "
                f"(visual_vocab_size): {fix}."
            )


def snapshot_problems(snapshot: str | os.PathLike, repo_id: str, *, revision: Optional[str] = None,
                      cache_dir: Optional[str | os.PathLike] = None) -> Optional[list[str]]:
    """Files the cached tree listing of ``repo_id@revision`` names but ``snapshot`` lacks (or has at another size).

    Returns:
        The problems (empty when complete), or ``None`` when no listing is cached (completeness unknown).
    """
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    try:
        listing = get_cached_repo_tree(repo_id, revision=revision, cache_dir=cache_dir)
    except CachedRepoTreeNotFoundError:
        return None
    problems = []
    for entry in listing:
        path = Path(snapshot, *entry.path.split("/"))
        if not path.is_file():
            problems.append(f"{entry.path}: listed by the Hub, not in the snapshot")
        elif entry.size is not None and path.stat().st_size != entry.size:
            problems.append(f"{entry.path}: {path.stat().st_size} bytes in the snapshot, {entry.size} on the Hub")
    return problems
