"""Model cards filled by code: ``huggingface_hub.ModelCard`` from the templates in ``model_cards/`` (package data).

    >>> from nuwa_hf.hub.model_cards import write_default_card
    >>> write_default_card("checkpoints/nuwa-tiny", evaluation=tables, timings=timings, command="python ...")

``write_default_card`` renders ``model_cards/nuwa-tiny.md`` (Jinja, through ``ModelCard.from_template``) with the card
metadata (pipeline_tag, license, datasets, metrics, tags, library), the folder's parts and sizes, the measured quality
table (``quality_markdown``), the exact commands, the durations and the seeds, and writes ``<folder>/README.md``.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

# The repository's model_cards/ folder, reached through the package's model_cards symlink (a wheel holds a copy).
TEMPLATE_DIR = Path(__file__).resolve().parent / "model_cards"
DEFAULT_TEMPLATE = "nuwa-tiny.md"

DATASETS = ["mnist"]
DEFAULT_LIMITATIONS = (
    "Tiny and trained for a few hours on a CPU: 32x32 frames, short videos, a vocabulary of a few hundred caption "
    "tokens. It knows one digit per picture, six colours and GODIVA's four motions (the exact words are listed above); "
    "prompts outside that (several digits, places, other objects or motions) are out of distribution: their unknown "
    "words are named in a warning and left out, and a prompt left with no known word but the captions' fillers is "
    "refused.",
    "The scene (sketch) tasks only know the scene world's classes; any other class map is out of distribution.",
    "The quality numbers are read by small scorers the project trained on the same worlds (their own held-out "
    "accuracy is stated with each number); they are not comparable with the paper's numbers on MSCOCO / Kinetics.",
    "FID / KID use the real FID Inception on 32x32 images upsampled to 299x299 at a few dozen samples: biased and "
    "noisy, only for comparing checkpoints of this model with each other.",
    "Completion and manipulations are zero-shot (constrained decoding): the kept tokens are exactly the input's (image "
    "completion's: the picture's with the region blacked out), and the pipelines paste the input's own pixels back outside the region (a 2-pixel blended "
    "seam), so only the region and its seam are new.",
    "Image completion's 'digit kept' is measured from the known part alone (the held-out picture with the region "
    "black); the pipeline blanks the region of any picture before encoding it, as diffusers' inpainting does, because "
    "the VQ-GAN encoder's receptive field would carry the region's own pixels into the kept tokens beside it (with the "
    "whole picture encoded as given the same weights read 0.70 instead of 0.46; `blank_region=False` gives that "
    "behaviour; benchmarks/README.md 'Completing from the known part alone').",
    "No safety filtering is needed for this data domain; do not use it as a component of a product.",
)

PART_DESCRIPTIONS = {
    "config.json": "NuwaConfig (architecture, grids)",
    "generation_config.json": "default sampling settings (top-k, guidance scale)",
    "model.safetensors": "NUWA encoder-decoder weights, with its VQ-GAN (32x32 RGB frames <-> 8x8 token grids) and "
                         "VQ-GAN-Seg (32x32 class maps <-> 8x8 token grids) inside",
    "processor_config.json": "NuwaProcessor settings",
    "tokenizer.json": "caption BPE tokenizer",
    "tokenizer_config.json": "tokenizer settings and the training captions' words (`caption_words`: the prompt words "
                             "the model knows)",
    "samples": "sample outputs shown in this card",
    "checksums.json": "sha256 of the weights, checked when the model loads",
}


def human_size(num_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.1f} {unit}" if unit != "B" else f"{int(num_bytes)} B"
        num_bytes /= 1024
    return f"{num_bytes:.1f} GB"


def folder_parts(folder: os.PathLike) -> list:
    """Top-level entries of a model folder with a description and their size (README.md left out)."""
    folder = Path(folder)
    rows = []
    for entry in sorted(folder.iterdir()):
        if entry.name == "README.md":
            continue
        size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file()) if entry.is_dir() else entry.stat().st_size
        what = PART_DESCRIPTIONS.get(entry.name, "")
        rows.append({"path": entry.name + ("/" if entry.is_dir() else ""), "what": what, "size": human_size(size)})
    return rows


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def quality_markdown(evaluation: Mapping[str, Mapping[str, Any]], targets: Optional[Mapping[str, str]] = None) -> str:
    """One Markdown table over all tasks: task, metric, value, scorer, the scorer's own held-out accuracy, target."""
    targets = targets or {}
    lines = ["| task | metric | value | scorer | scorer's own held-out accuracy | target |", "|---|---|---|---|---|---|"]
    for task, table in evaluation.items():
        for row in table.get("rows", []):
            held_out = row.get("scorer_held_out")
            if isinstance(held_out, Mapping):
                metrics = held_out.get("metrics") if isinstance(held_out.get("metrics"), Mapping) else \
                    held_out.get("accuracy") if isinstance(held_out.get("accuracy"), Mapping) else held_out
                where = f" on {held_out['split']}" if "split" in held_out else \
                    f" on {held_out['examples']} held-out examples" if "examples" in held_out else ""
                chance = held_out.get("chance")
                chance = ", chance " + ", ".join(_format(v) for v in chance.values()) if isinstance(chance, Mapping) else ""
                held_out = ", ".join(f"{k} {_format(v)}" for k, v in metrics.items()
                                     if not isinstance(v, (dict, list)) and k not in ("num_examples", "split", "examples")
                                     ) + where + chance
            target = targets.get(f"{task}:{row['metric']}", "")
            value = _format(row.get("value"))
            if isinstance(row.get("ci95"), (list, tuple)) and len(row["ci95"]) == 2:  # 95% interval of a share
                value += f" ({row['ci95'][0]:.2f}-{row['ci95'][1]:.2f})"
            cells = [task, row["metric"], value, str(row.get("scorer") or ""), _format(held_out)
                     if held_out not in (None, "") else "", target]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def card_data(evaluation: Optional[Mapping[str, Any]] = None, **overrides) -> "ModelCardData":  # noqa: F821
    from huggingface_hub import ModelCardData

    fields = dict(
        license="mit", library_name="nuwa-hf", pipeline_tag="text-to-image", datasets=list(DATASETS),
        metrics=["accuracy", "ssim", "psnr", "fid", "kid"], language=["en"],
        tags=["nuwa", "nuwa-hf", "text-to-video", "video-prediction", "sketch-to-image", "image-to-image", "vq-gan",
              "3d-nearby-attention", "tiny", "cpu"],
    )
    fields.update(overrides)
    return ModelCardData(**fields)


def render_card(template_path: os.PathLike, data, **template_kwargs):
    from huggingface_hub import ModelCard

    return ModelCard.from_template(data, template_path=str(template_path), **template_kwargs)


def sample_pictures(folder: os.PathLike) -> list:
    """``[{"file", "caption"}]`` of the pictures in ``<folder>/samples/`` described by its ``prompts.json`` (written by
    the default recipe's ``samples`` stage); empty when there are none."""
    index = Path(folder) / "samples" / "prompts.json"
    if not index.is_file():
        return []
    samples = []
    for name, prompt in json.loads(index.read_text()).items():
        if not (index.parent / name).is_file():
            continue
        if isinstance(prompt, Mapping) and "caption" in prompt:  # a picture that says what it shows
            caption = str(prompt["caption"])
        elif isinstance(prompt, Mapping):  # a sheet: one row per seed, one column per prompt
            caption = (f"Text-to-image, {len(prompt.get('prompts', []))} prompts left to right "
                       f"(`{'`, `'.join(prompt.get('prompts', []))}`), rows: {', '.join(prompt.get('rows', []))}.")
        else:
            caption = f"Text-to-video: `{prompt}`"
        samples.append({"file": name, "caption": caption})
    return samples


def folder_vocabulary(folder: os.PathLike) -> list:
    """``[(kind, "word, word, ...")]``: the prompt words the folder's caption tokenizer knows (empty without one)."""
    if not (Path(folder) / "tokenizer.json").is_file():
        return []
    from ..processing.vocabulary import read_folder_tokenizer, vocabulary_by_kind

    try:
        tokenizer = read_folder_tokenizer(folder)
    except Exception:  # not a tokenizers file (a placeholder in tests, a damaged copy): the card goes without the list
        return []
    return [(kind, ", ".join(items)) for kind, items in vocabulary_by_kind(tokenizer).items() if items]


def write_default_card(
    folder: os.PathLike,
    *,
    evaluation: Mapping[str, Any],
    timings: Mapping[str, Any],
    command: str,
    nuwa_argv: Union[Sequence[str], Sequence[Sequence[str]]],
    settings: Mapping[str, Any],
    quality_intro: str = "",
    quality_notes: str = "",
    training_details: str = "",
    targets: Optional[Mapping[str, str]] = None,
    template: Optional[os.PathLike] = None,
    repo_path: Optional[str] = None,
) -> Path:
    """Render the default checkpoint's card into ``<folder>/README.md`` and return its path."""
    from ..data.scene_rendering import SCENE_CLASSES, sketch_class_legend
    from ..media import palette_text

    folder = Path(folder)
    # one run's argv, or a list of them (runs in order, e.g. pre-training then a continued run)
    nuwa_runs = [list(nuwa_argv)] if not nuwa_argv or isinstance(nuwa_argv[0], str) else [list(a) for a in nuwa_argv]
    parts = folder_parts(folder)
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and f.name != "README.md")
    timing_rows = []
    for stage, info in timings.items():
        details = {k: v for k, v in info.items() if k not in ("seconds", "final_metrics", "files", "reports")}
        if "final_metrics" in info:
            details["final_metrics"] = {k: (round(v, 4) if isinstance(v, float) else v)
                                        for k, v in (info["final_metrics"] or {}).items()}
        timing_rows.append({"stage": stage, "seconds": info.get("seconds"),
                            "details": json.dumps(details, default=str).replace("|", "\\|")})
    seeds = (f"`--seed {settings.get('seed')}`: world seed of every training split, and the seed of every training run "
             "(VQ-GANs, NUWA, scorers) and of evaluation sampling. Evaluation conditions: "
             "`nuwa_hf.data.task_examples.task_examples(task, n, 32, 4, split='test', seed=seed)`.")
    card = render_card(
        template or TEMPLATE_DIR / DEFAULT_TEMPLATE,
        card_data(),
        samples=sample_pictures(folder),
        model_name="nuwa-tiny",
        repo_path=repo_path or "checkpoints/nuwa-tiny",
        image_size=settings.get("image_size", 32),
        num_frames=settings.get("num_frames", 4),
        parts=parts,
        total_size=human_size(total),
        quality_intro=quality_intro,
        quality_table=quality_markdown(evaluation, targets) if evaluation else "_Not evaluated yet._",
        quality_notes=quality_notes,
        limitations=list(DEFAULT_LIMITATIONS),
        command=command,
        nuwa_command="\n".join("nuwa-hf train " + " ".join(shlex.quote(a) for a in argv) for argv in nuwa_runs),
        training_details=training_details,
        threads=settings.get("threads", 1),
        timings=timing_rows,
        seeds=seeds,
        sketch_classes=sketch_class_legend(),
        sketch_palette=palette_text(len(SCENE_CLASSES)),
        vocabulary=folder_vocabulary(folder),
    )
    path = folder / "README.md"
    card.save(str(path))
    return path
