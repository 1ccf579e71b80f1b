"""Convert a NUWA model folder of the old layout to the current one.

Old layout (nuwa-hf <= 0.1, checkpoints made before the VQ-GANs became part of the model)::

    folder/config.json, model.safetensors        NUWA (encoder, decoder, head)
    folder/vqgan/config.json + weights           NuwaVQGAN, held by the processor
    folder/vqgan_seg/config.json + weights       NuwaSegVQGAN, held by the processor

Current layout: one model. ``config.json`` carries ``vqgan_config`` / ``sketch_vqgan_config`` and model.safetensors
the VQ-GAN weights under ``model.vqgan.*`` / ``model.sketch_vqgan.*`` (the Chameleon / Emu3 / Janus layout), so
``model.save_pretrained`` / ``push_to_hub`` alone give a folder every pipeline can use. Every other file (processor,
tokenizer, generation config, model card, samples) is copied unchanged.

Run::

    python -m nuwa_hf.models.nuwa.convert_nuwa_legacy_folder --input old-folder --output new-folder

``NuwaForConditionalGeneration.from_pretrained(old_folder)`` also converts on the fly (with a warning), so old folders
keep loading; converting once saves that work on every load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from safetensors.torch import load_file, save_file

from .configuration_nuwa import visual_tokenizer_config

# sub-model attribute -> the old sub-folder that held it
LEGACY_SUBFOLDERS = {"vqgan": "vqgan", "sketch_vqgan": "vqgan_seg"}
_LEGACY_WEIGHTS = "diffusion_pytorch_model.safetensors"
_MODEL_WEIGHTS = "model.safetensors"
_SHARD_INDEX = "model.safetensors.index.json"


def is_legacy_folder(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is a NUWA model folder whose VQ-GAN sits in ``vqgan/`` instead of inside the model."""
    folder = Path(folder)
    config_file = folder / "config.json"
    if not (config_file.is_file() and (folder / LEGACY_SUBFOLDERS["vqgan"] / "config.json").is_file()):
        return False
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return False
    return config.get("model_type") == "nuwa" and config.get("vqgan_config") is None


def model_weight_files(folder: Path) -> list[Path]:
    """The model.safetensors file of ``folder``, or the shards its index names."""
    if (folder / _SHARD_INDEX).is_file():
        index = json.loads((folder / _SHARD_INDEX).read_text())
        return [folder / name for name in sorted(set(index["weight_map"].values()))]
    if (folder / _MODEL_WEIGHTS).is_file():
        return [folder / _MODEL_WEIGHTS]
    raise FileNotFoundError(f"{folder} has no {_MODEL_WEIGHTS} (nor a sharded index): it holds no NUWA weights.")


def convert_legacy_folder(input_folder: str | os.PathLike, output_folder: str | os.PathLike,
                          overwrite: bool = False) -> Path:
    """Write the current layout of the old-layout folder ``input_folder`` to ``output_folder``.

    The output is staged in a temporary folder next to ``output_folder`` and renamed into place, so an interrupted
    conversion leaves nothing half-written.

    Raises:
        ValueError: ``input_folder`` is not an old-layout NUWA folder.
        FileExistsError: ``output_folder`` exists and ``overwrite`` is False.
    """
    source, target = Path(input_folder), Path(output_folder)
    if not is_legacy_folder(source):
        raise ValueError(
            f"{source} is not an old-layout NUWA folder (config.json of model_type 'nuwa' without vqgan_config, plus "
            "vqgan/config.json): nothing to convert."
        )
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; choose a new output folder or pass overwrite=True (--overwrite).")
    if target.resolve() == source.resolve():
        raise ValueError("the output folder must differ from the input folder (the input is read while writing).")

    config = json.loads((source / "config.json").read_text())
    weights: dict = {}
    for path in model_weight_files(source):
        weights.update(load_file(path))
    # A NuwaForConditionalGeneration keeps the base model under "model."; a bare NuwaModel has no prefix.
    prefix = "model." if any(key.startswith("model.") for key in weights) else ""
    for attribute, subfolder in LEGACY_SUBFOLDERS.items():
        sub = source / subfolder
        if not (sub / "config.json").is_file():
            continue
        config[f"{attribute}_config"] = visual_tokenizer_config(json.loads((sub / "config.json").read_text()))
        for key, tensor in load_file(sub / _LEGACY_WEIGHTS).items():
            weights[f"{prefix}{attribute}.{key}"] = tensor

    skipped = set(LEGACY_SUBFOLDERS.values()) | {"config.json", _MODEL_WEIGHTS, _SHARD_INDEX}
    skipped |= {path.name for path in model_weight_files(source)}
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.converting-"))
    try:
        for entry in source.iterdir():
            if entry.name in skipped or entry.name.startswith("."):
                continue
            if entry.is_dir():
                shutil.copytree(entry, staging / entry.name)
            else:
                shutil.copy2(entry, staging / entry.name)
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        save_file({key: tensor.contiguous() for key, tensor in weights.items()}, staging / _MODEL_WEIGHTS,
                  metadata={"format": "pt"})
        from .loading_nuwa import strip_code_references, write_checksum_manifest

        write_checksum_manifest(staging)
        # Model folders hold no code now: the copy of nuwa-hf's modules older folders carried, and what named it, go.
        for path in [*staging.glob("*.py"), staging / "model_index.json"]:
            path.unlink(missing_ok=True)
        strip_code_references(staging)
        for path in [staging, *staging.rglob("*")]:  # shared model folders: readable by all, like a git checkout
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="the old-layout model folder (with vqgan/)")
    parser.add_argument("--output", required=True, help="where to write the converted folder")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    args = parser.parse_args(argv)
    try:
        written = convert_legacy_folder(args.input, args.output, overwrite=args.overwrite)
    except (ValueError, FileExistsError, FileNotFoundError) as error:
        parser.exit(2, f"error: {error}\n")
    print(f"converted {args.input} -> {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
