"""``nuwa-hf train`` / ``examples/train_nuwa.py``: multi-task NUWA training on the built-in worlds or users' folders.

One process::

    python examples/train_nuwa.py --output-dir runs/tiny --vqgan runs/vqgan --sketch-vqgan runs/vqgan-seg

Several processes (DDP; gloo on CPU, NCCL on GPUs), same arguments::

    torchrun --standalone --nproc_per_node 2 examples/train_nuwa.py --output-dir runs/tiny ...
    torchrun --nproc_per_node 8 examples/train_nuwa.py --model-preset paper --fsdp-config examples/configs/fsdp_paper.json ...

Run ``--help`` for every option. The run resumes automatically from the newest complete checkpoint in
``--output-dir`` (``--resume never`` to start over, or a checkpoint path). Running a finished run again (its
checkpoint at ``--max-steps``, its ``training_summary.json`` written) changes nothing and says so; raise
``--max-steps`` to train further. Ctrl-C / SIGTERM ends the step in progress and saves it as a checkpoint before
stopping, also under torchrun, where the processes agree on the step (:mod:`nuwa_hf.training.interruption`; exit code
128 + the signal's number).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from transformers import TrainingArguments, set_seed

from .arguments import arguments_from_namespace, build_parser

from .checkpointing import STAGING_DIRNAME, is_complete_checkpoint, last_complete_checkpoint
from .collator import NuwaTaskCollator
from .interruption import StopOnSignal
from .mixture import TaskMixtureDataset
from .tasks import get_task, parse_tasks
from .token_cache import tokenize_task_dataset
from .trainer import NuwaTrainer

logger = logging.getLogger("nuwa_hf.training")

CAPTION_TOKENIZER_DIR = "_caption_tokenizer"
SUMMARY_FILE = "training_summary.json"


def _parse_mapping(spec: Optional[str], cast, what: str) -> Optional[Dict[str, object]]:
    if not spec:
        return None
    mapping = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ValueError(f"{what} must look like 't2i=32,t2v=8'; got {item!r}.")
        name, value = item.split("=", 1)
        mapping[get_task(name).name] = cast(value)
    return mapping


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad values of a parsed namespace with the flag's name (the dataclasses' checks)."""
    arguments_from_namespace(args)


def parse_args(argv: Optional[List[str]] = None) -> Tuple[argparse.Namespace, Callable[[], TrainingArguments]]:
    """``argv`` (or one .json / .yaml file of the same options) -> (every option as one namespace, a function giving
    the run's ``TrainingArguments``, to call once the process is set up). Unknown flags and bad choices exit as
    argparse does (status 2); bad values raise ValueError naming the flag."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        # transformers' example-script convention: every option in one file (keys are the dataclass fields)
        read = parser.parse_json_file if argv[0].endswith(".json") else parser.parse_yaml_file
        data, tokenizers, model, run, hub = read(argv[0])
    else:
        data, tokenizers, model, run, hub = arguments_from_namespace(parser.parse_args(argv))
    merged = {}
    for group in (data, tokenizers, model, run, hub):
        merged.update(dataclasses.asdict(group))
    return argparse.Namespace(**merged), functools.partial(run.training_arguments, hub)


# --------------------------------------------------------------------------------------------------------------------
# Data


def load_task_dataset(task_name: str, args, folder: Optional[str], num_classes: Optional[int]):
    """Raw examples of one task: a built-in world, or the user's folder."""
    from .. import data

    task = get_task(task_name)
    size = args.image_size
    if folder is not None:
        if task.name == "t2i":
            return data.load_image_folder(folder, size=size)
        if task.name in ("t2v", "v2v"):
            return data.load_video_folder(folder, num_frames=args.num_frames, size=size)
        if task.name == "s2i":
            return data.load_sketch_pairs(folder, size=size, num_classes=num_classes)
        raise ValueError(f"no folder loader for task {task.name!r}; train it on the built-in world (drop --train-data).")
    per_task = _parse_mapping(getattr(args, "task_num_samples", None), int, "--task-num-samples") or {}
    return data.world_rows(task.name, "train", per_task.get(task.name, args.num_samples), seed=args.world_seed, world=args.world,
                           image_size=size, num_frames=args.num_frames)


def warn_about_cropped_pictures(folders: Dict[str, str], size: int) -> Dict[str, int]:
    """Say, once per run, which of the users' pictures the loaders centre-crop: a picture (or GIF clip) whose sides
    are not square is cut to its middle square before it is resized to ``size`` x ``size``, so the model never sees
    its edges. The warning names how many, their sizes and the fix. Returns {task: pictures cropped}."""
    from collections import Counter

    from ..data.user_folders import cropped_files

    counts = {}
    for task, folder in folders.items():
        cropped = cropped_files(folder, size)
        if not cropped:
            continue
        counts[task] = len(cropped)
        sizes = Counter(f"{width}x{height}" for _, (width, height) in cropped)
        shown = ", ".join(f"{name} ({count})" for name, count in sizes.most_common(6))
        more = f" and {len(sizes) - 6} other sizes" if len(sizes) > 6 else ""
        logger.warning(
            "%d picture(s) of --train-data %s=%s are not square (width x height: %s%s; the first: %s). Training "
            "centre-crops each to its middle square before resizing it to %dx%d, so the model never sees the edges "
            "cut off (the fine-tuned model's pipelines crop input pictures the same way). To keep whole pictures, pad "
            "them to squares yourself (e.g. PIL.ImageOps.pad(image, (side, side))), or crop them where you want, "
            "before training.", len(cropped), task, folder, shown, more, cropped[0][0], size, size)
    return counts


def _captions(datasets: Dict[str, object]) -> List[str]:
    """The captions of the text tasks, read from the raw column (a user folder's lazy decoding of its media is not
    run for them)."""
    captions: List[str] = []
    for name, dataset in datasets.items():
        if get_task(name).condition == "text":
            column = dataset.with_format(None)["text"] if hasattr(dataset, "with_format") else dataset["text"]
            captions.extend(str(text) for text in column)
    return captions


def record_run_caption_words(tokenizer, raw: Dict[str, object], source: str, log: bool) -> List[str]:
    """Make this run's caption words known to the prompt vocabulary of the model it saves, and say so.

    A tokenizer from elsewhere (``--init-from``, ``--tokenizer``) was fitted to other captions: words of the user's
    ("cat" for a model trained on digits) reach the model as sub-word pieces, and its ``caption_words`` record
    (tokenizer_config.json, which decides the words the pipelines keep in a prompt) does not have them, so the
    fine-tuned model's pipelines would leave out the very words it was fine-tuned on. They are added to the record
    (:func:`~nuwa_hf.processing.vocabulary.add_caption_words`), and a warning names them with their pieces. A
    tokenizer without a record (an older folder, a stock CLIPTokenizer) is given one: the words its whole-word tokens
    made known before plus this run's caption words. Returns the words that were new.
    """
    from ..processing.vocabulary import CAPTION_WORDS_FIELD, add_caption_words

    captions = _captions(raw)
    if tokenizer is None or not captions:
        return []
    new, started = add_caption_words(tokenizer, captions)
    if started and log:
        logger.warning(
            "The tokenizer of %s has no caption_words record (tokenizer_config.json), so the words it knows were "
            "judged by its whole-word tokens. The saved tokenizer gets a record of those %d words plus this run's "
            "caption words: the fine-tuned model's pipelines keep the same words as before and yours.", source,
            len(tokenizer.init_kwargs[CAPTION_WORDS_FIELD]) - len(new))
    if new and log:
        shown = ", ".join(f"{word!r} -> {' + '.join(repr(p) for p in tokenizer.tokenize(word))}" for word in new[:8])
        more = f" and {len(new) - 8} more" if len(new) > 8 else ""
        logger.warning(
            "%d word(s) of this run's captions are new to the tokenizer of %s, which was fitted to other captions: "
            "%s%s. They reach the model as these sub-word pieces, whose meaning it learns from your examples "
            "alone. They are added to the saved tokenizer's caption_words (tokenizer_config.json), so the "
            "fine-tuned model's pipelines keep them in prompts.", len(new), source, shown, more)
    return new


def load_text_tokenizer(args, raw: Dict[str, object], training_args):
    """The caption tokenizer: --tokenizer, the one next to --init-from, or a BPE trained once on the captions."""
    from transformers import AutoTokenizer

    for folder in (args.tokenizer, args.init_from):
        if folder and os.path.exists(os.path.join(folder, "tokenizer_config.json")):
            return AutoTokenizer.from_pretrained(folder)
    if args.tokenizer:
        raise ValueError(f"--tokenizer {args.tokenizer!r} holds no tokenizer_config.json; save one with save_pretrained.")
    from ..processing.tokenization_nuwa import train_caption_tokenizer

    folder = os.path.join(args.output_dir, CAPTION_TOKENIZER_DIR)
    # local=False: the run folder is shared by every node, so only the first process of all writes into it.
    with training_args.main_process_first(local=False, desc="caption tokenizer"):
        # Kept in the run folder: a resumed run must use exactly the tokenizer its checkpoints were trained with.
        if not os.path.exists(os.path.join(folder, "tokenizer_config.json")):
            captions = _captions(raw)
            tokenizer = train_caption_tokenizer(captions, vocab_size=args.text_vocab_size,
                                                model_max_length=args.max_text_length)
            tokenizer.save_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    return tokenizer


def visual_tokenizers_of_model_folder(folder: str):
    """The VQ-GAN and VQ-GAN-Seg (or None) saved inside a NUWA model folder, read without building the transformer:
    their configs from config.json and only their weights (``model.vqgan.*``, ``model.sketch_vqgan.*``) from the
    safetensors files. Old-layout folders keep them in ``vqgan/`` and ``vqgan_seg/``."""
    from safetensors import safe_open

    from ..models.nuwa.convert_nuwa_legacy_folder import LEGACY_SUBFOLDERS, is_legacy_folder, model_weight_files
    from ..models.vqgan import NuwaSegVQGAN, NuwaVQGAN

    classes = {"vqgan": NuwaVQGAN, "sketch_vqgan": NuwaSegVQGAN}
    if is_legacy_folder(folder):
        return tuple(
            classes[name].from_pretrained(os.path.join(folder, sub), use_safetensors=True).eval()
            if os.path.isfile(os.path.join(folder, sub, "config.json")) else None
            for name, sub in LEGACY_SUBFOLDERS.items()
        )
    with open(os.path.join(folder, "config.json")) as handle:
        config = json.load(handle)
    files = model_weight_files(Path(folder))
    found = []
    for name, model_class in classes.items():
        if not config.get(f"{name}_config"):
            found.append(None)
            continue
        tokenizer = model_class.from_config(config[f"{name}_config"])
        state = {}
        for file in files:
            with safe_open(file, framework="pt") as weights:
                for key in weights.keys():
                    for prefix in (f"model.{name}.", f"{name}."):
                        if key.startswith(prefix):
                            state[key[len(prefix):]] = weights.get_tensor(key)
        tokenizer.load_state_dict(state)
        found.append(tokenizer.eval())
    return tuple(found)


def load_visual_tokenizers(args, task_names: Sequence[str]):
    """The VQ-GAN and VQ-GAN-Seg: the given folders (--vqgan, --sketch-vqgan), else the model's own from --init-from
    (safetensors only)."""
    from ..models.vqgan import NuwaSegVQGAN, NuwaVQGAN

    inherited = visual_tokenizers_of_model_folder(args.init_from) if args.init_from else (None, None)
    vqgan = NuwaVQGAN.from_pretrained(args.vqgan, use_safetensors=True).eval() if args.vqgan else inherited[0]
    sketch_vqgan = (NuwaSegVQGAN.from_pretrained(args.sketch_vqgan, use_safetensors=True).eval()
                    if args.sketch_vqgan else inherited[1])
    if vqgan is None:
        raise ValueError(
            "--vqgan is required: NUWA learns VQ-GAN tokens. Train one first with examples/train_vqgan.py and pass its "
            "folder."
        )
    if sketch_vqgan is None and any(get_task(n).condition == "sketch" for n in task_names):
        raise ValueError(
            "sketch tasks (s2i, s2v) need --sketch-vqgan (a NuwaSegVQGAN folder from examples/train_vqgan.py), or "
            "leave them out of --tasks."
        )
    return vqgan, sketch_vqgan


# --------------------------------------------------------------------------------------------------------------------
# Model


def build_processor(tokenizer, sketch_vqgan, args):
    """A NuwaProcessor (tokenizer, image processor): saved with every checkpoint and the final model, which are then
    complete model folders for the pipelines. None without a text tokenizer (no text task)."""
    if tokenizer is None:
        return None
    from ..processing import NuwaImageProcessor, NuwaProcessor

    image_processor = NuwaImageProcessor(
        size={"shortest_edge": args.image_size}, crop_size={"height": args.image_size, "width": args.image_size},
        num_sketch_classes=sketch_vqgan.num_classes if sketch_vqgan is not None else None,
    )
    return NuwaProcessor(image_processor=image_processor, tokenizer=tokenizer, max_text_length=args.max_text_length)


def _grids(mixture: TaskMixtureDataset, collator: NuwaTaskCollator) -> Dict[str, dict]:
    """Visual and condition grid of every task, read from one collated example each."""
    grids = {}
    for name in mixture.task_names:
        batch = collator([mixture[mixture.task_range(name).start]])
        grids[name] = {"visual_grid": list(batch["labels"].shape[1:])}
        if "sketch_tokens" in batch:
            grids[name]["sketch_grid"] = list(batch["sketch_tokens"].shape[1:])
    return grids


def build_model(args, grids, tokenizer, vqgan, sketch_vqgan, resume_checkpoint: Optional[str]):
    from ..models.nuwa import NuwaConfig, NuwaForConditionalGeneration

    if resume_checkpoint is not None:
        # The weights come from the checkpoint (Trainer loads them); the architecture must be the checkpoint's.
        config = NuwaConfig.from_pretrained(resume_checkpoint)
        model = NuwaForConditionalGeneration(config)
    elif args.init_from:
        overrides = _init_from_overrides(args.model_config)
        model = NuwaForConditionalGeneration.from_pretrained(args.init_from, use_safetensors=True, **overrides)
        config = model.config
        if overrides:
            logger.warning("--init-from %s with --model-config %s.", args.init_from, json.dumps(overrides))
        # A run on longer clips (or larger frames) than the model was trained on grows its position tables: learned
        # rows kept, new rows start from the last learned one (NuwaPreTrainedModel.resize_grid_embeddings).
        grown = {}
        for key, field_name in (("max_visual_grid", "visual_grid"), ("max_sketch_grid", "sketch_grid")):
            needed = [max([g[field_name][i] for g in grids.values() if field_name in g] or [0]) for i in range(3)]
            have = list(getattr(config, key))
            if any(n > h for n, h in zip(needed, have)):
                grown[key] = [max(n, h) for n, h in zip(needed, have)]
        if "max_visual_grid" in grown and "max_sketch_grid" not in grown:  # sketch videos follow the frame count
            sketch = list(config.max_sketch_grid)
            grown["max_sketch_grid"] = [max(sketch[0], grown["max_visual_grid"][0]), sketch[1], sketch[2]]
        if grown:
            logger.warning("--init-from %s: growing the position tables to %s for this run's grids.",
                           args.init_from, ", ".join(f"{k}={tuple(v)}" for k, v in grown.items()))
            model.resize_grid_embeddings(**grown)
    else:
        overrides = json.loads(args.model_config) if args.model_config else {}
        if not isinstance(overrides, dict):
            raise ValueError("--model-config must be a JSON object of NuwaConfig fields.")
        visual = [max(g["visual_grid"][i] for g in grids.values()) for i in range(3)]
        sketch = [max([g["sketch_grid"][i] for g in grids.values() if "sketch_grid" in g] or [1]) for i in range(3)]
        if sketch_vqgan is not None:
            # Room for sketches of the run's geometry even when this run has no sketch task (pre-training), so that
            # fine-tuning on S2I / S2V later can start from this model (--init-from).
            side = args.image_size // sketch_vqgan.downsample_factor
            sketch = [max(sketch[0], visual[0]), max(sketch[1], side), max(sketch[2], side)]
        derived = dict(visual_vocab_size=vqgan.codebook_size, max_visual_grid=visual, max_text_length=args.max_text_length)
        if tokenizer is not None:
            derived.update(text_vocab_size=len(tokenizer), text_pad_token_id=int(tokenizer.pad_token_id))
        if sketch_vqgan is not None:
            derived.update(sketch_vocab_size=sketch_vqgan.codebook_size, max_sketch_grid=sketch)
        derived.update(overrides)
        preset = NuwaConfig.tiny if args.model_preset == "tiny" else NuwaConfig.paper
        config = preset(**derived)
        model = NuwaForConditionalGeneration(config)
    check_model_fits(model.config, grids, tokenizer, vqgan, sketch_vqgan, args.max_text_length)
    if resume_checkpoint is None:
        # The model owns (copies of) the VQ-GANs it learns the tokens of, so every checkpoint and the final folder are
        # complete models. Copies: the collator keeps coding data with its own on the CPU wherever the model goes.
        model.set_visual_tokenizers(vqgan=copy.deepcopy(vqgan),
                                    sketch_vqgan=copy.deepcopy(sketch_vqgan) if sketch_vqgan is not None else None)
    return model


# NuwaConfig fields a run may change on a trained model (--init-from with --model-config): none changes a weight's
# shape. 3D RoPE can be switched on for a continuation: it rotates queries and keys, no new parameters.
INIT_FROM_OVERRIDABLE = ("rope_3d", "rope_theta", "dropout", "attention_dropout", "text_extent", "image_extent",
                         "video_extent", "sketch_image_extent", "sketch_video_extent")


def _init_from_overrides(model_config: Optional[str]) -> dict:
    overrides = json.loads(model_config) if model_config else {}
    if not isinstance(overrides, dict):
        raise ValueError("--model-config must be a JSON object of NuwaConfig fields.")
    refused = sorted(set(overrides) - set(INIT_FROM_OVERRIDABLE))
    if refused:
        raise ValueError(
            f"--model-config {', '.join(refused)} cannot change with --init-from: the trained weights fix them. "
            f"Fields a continuation may change: {', '.join(INIT_FROM_OVERRIDABLE)} (grids grow by themselves)."
        )
    return overrides


def check_model_fits(config, grids, tokenizer, vqgan, sketch_vqgan, max_text_length: int) -> None:
    """Clear errors when a loaded model does not match the data's tokenizers or grids."""
    if config.visual_vocab_size != vqgan.codebook_size:
        raise ValueError(
            f"the model predicts {config.visual_vocab_size} visual codes but the VQ-GAN has {vqgan.codebook_size}; "
            "use the VQ-GAN the model was trained with."
        )
    if sketch_vqgan is not None and config.sketch_vocab_size != sketch_vqgan.codebook_size:
        raise ValueError(
            f"the model reads {config.sketch_vocab_size} sketch codes but the sketch VQ-GAN has "
            f"{sketch_vqgan.codebook_size}; use the sketch VQ-GAN the model was trained with."
        )
    if tokenizer is not None:
        if len(tokenizer) > config.text_vocab_size:
            raise ValueError(
                f"the tokenizer has {len(tokenizer)} tokens but the model only {config.text_vocab_size}; use the "
                "tokenizer saved with the model (--tokenizer)."
            )
        if max_text_length != config.max_text_length:
            raise ValueError(
                f"--max-text-length {max_text_length} differs from the model's max_text_length "
                f"{config.max_text_length}; pass --max-text-length {config.max_text_length}."
            )
    for name, grid in grids.items():
        if any(g > m for g, m in zip(grid["visual_grid"], config.max_visual_grid)):
            raise ValueError(
                f"task {name} has visual grid {grid['visual_grid']}, larger than the model's max_visual_grid "
                f"{config.max_visual_grid}; lower --image-size / --num-frames."
            )
        if "sketch_grid" in grid and any(g > m for g, m in zip(grid["sketch_grid"], config.max_sketch_grid)):
            raise ValueError(
                f"task {name} has sketch grid {grid['sketch_grid']}, larger than the model's max_sketch_grid "
                f"{config.max_sketch_grid}; lower --image-size / --num-frames."
            )


# --------------------------------------------------------------------------------------------------------------------
# Entry point


def _resolve_resume(args) -> Optional[str]:
    mode = args.resume
    if mode == "never":
        return None
    if mode == "auto":
        return last_complete_checkpoint(args.output_dir)
    if not is_complete_checkpoint(mode):
        raise ValueError(
            f"--resume {mode!r} is not a complete checkpoint folder (a checkpoint-N folder with its completion "
            "marker); pass 'auto', 'never' or another checkpoint."
        )
    return mode


def _checkpoint_step(checkpoint: str) -> Optional[int]:
    """The optimiser step a checkpoint was saved at (its trainer_state.json), or None when unreadable."""
    try:
        with open(os.path.join(checkpoint, "trainer_state.json"), encoding="utf-8") as handle:
            return int(json.load(handle)["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_summary(output_dir: str) -> Optional[dict]:
    """The run's training_summary.json, or None when absent or unreadable."""
    try:
        with open(os.path.join(output_dir, SUMMARY_FILE), encoding="utf-8") as handle:
            summary = json.load(handle)
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def finished_run(args, resume_checkpoint: Optional[str]) -> Optional[dict]:
    """The summary of a run that is already complete, or None.

    Complete: the checkpoint to resume from was saved at step ``--max-steps`` (or later) and the run folder's
    training_summary.json was written at that step, after the final model (so the model is there too). Rerunning such
    a run would train no step and replace the real summary with ``train_loss 0.0``; ``main`` keeps it instead.
    """
    if resume_checkpoint is None:
        return None
    step = _checkpoint_step(resume_checkpoint)
    if step is None or step < args.max_steps:
        return None
    summary = _read_summary(args.output_dir)
    if summary is None or summary.get("global_step") != step:
        return None
    return summary


def _last_logged_losses(log_history: List[dict]) -> Dict[str, float]:
    last = next((entry for entry in reversed(log_history) if "loss" in entry), {})
    return {key: value for key, value in last.items() if key.startswith("loss")}


def main(argv: Optional[List[str]] = None) -> int:
    """Run training; returns 0 on success. ``argv`` defaults to ``sys.argv[1:]``; see ``--help``."""
    args, make_training_arguments = parse_args(argv)
    task_names = parse_tasks(args.tasks)
    folders = _parse_mapping(",".join(args.train_data), str, "--train-data") or {}
    unknown = set(folders) - set(task_names)
    if unknown:
        raise ValueError(f"--train-data names tasks {sorted(unknown)} that are not in --tasks {','.join(task_names)}.")
    task_batch_sizes = _parse_mapping(args.task_batch_sizes, int, "--task-batch-sizes")
    task_weights = _parse_mapping(args.task_weights, float, "--task-weights")
    _parse_mapping(args.task_num_samples, int, "--task-num-samples")  # a bad spec fails before any work

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    os.makedirs(args.output_dir, exist_ok=True)
    training_args = make_training_arguments()
    if training_args.should_log:
        logger.info("tasks: %s; %d process(es)", ", ".join(task_names), training_args.world_size)
    resume_checkpoint = _resolve_resume(args)
    if resume_checkpoint and not args.fsdp2 and os.path.isdir(os.path.join(resume_checkpoint, "sharded_state")):
        raise ValueError(
            f"{resume_checkpoint!r} is a sharded checkpoint (written with --fsdp2): resume it with --fsdp2 (on any "
            "number of processes), or export its weights with nuwa_hf.training.consolidate_sharded_checkpoint."
        )

    finished = finished_run(args, resume_checkpoint)
    if finished is not None:
        # Nothing left to train: keep the model and the real summary (a rerun used to rewrite it with train_loss 0.0).
        if training_args.should_log:
            logger.warning(
                "%s is a finished run: %s is at step %d of --max-steps %d, and its model and %s (train_loss %s) are "
                "kept unchanged. To train further raise --max-steps; to start over pass --resume never or another "
                "--output-dir.", args.output_dir, os.path.basename(resume_checkpoint), finished["global_step"],
                args.max_steps, SUMMARY_FILE, finished.get("train_loss"))
        return 0

    vqgan, sketch_vqgan = load_visual_tokenizers(args, task_names)
    num_classes = sketch_vqgan.num_classes if sketch_vqgan is not None else None
    with training_args.main_process_first(desc="task datasets"):
        raw = {name: load_task_dataset(name, args, folders.get(name), num_classes) for name in task_names}
    if training_args.should_log:
        warn_about_cropped_pictures(folders, args.image_size)
    needs_text = any(get_task(n).condition == "text" for n in task_names)
    # A text-trained model keeps its tokenizer through a sketch-only fine-tuning (--init-from), so that the result is
    # still a complete model folder.
    inherited = args.init_from and os.path.isfile(os.path.join(args.init_from, "tokenizer_config.json"))
    tokenizer = load_text_tokenizer(args, raw, training_args) if (needs_text or args.tokenizer or inherited) else None
    if tokenizer is not None:
        record_run_caption_words(tokenizer, raw, args.tokenizer or args.init_from or "this run",
                                 log=training_args.should_log)

    collator = NuwaTaskCollator(
        text_tokenizer=tokenizer, visual_tokenizer=vqgan, sketch_tokenizer=sketch_vqgan,
        max_text_length=args.max_text_length,
    )
    if args.token_cache:
        with training_args.main_process_first(desc="token grids"):
            datasets = {
                name: tokenize_task_dataset(
                    dataset, name, visual_tokenizer=vqgan, sketch_tokenizer=sketch_vqgan, text_tokenizer=tokenizer,
                    max_text_length=args.max_text_length, batch_size=args.tokenize_batch_size,
                )
                for name, dataset in raw.items()
            }
    else:
        datasets = raw
    mixture = TaskMixtureDataset(datasets)
    grids = _grids(mixture, collator)
    set_seed(args.seed)  # the initial weights are part of what --seed reproduces
    model = build_model(args, grids, tokenizer, vqgan, sketch_vqgan, resume_checkpoint)
    # A checkpoint already at --max-steps whose run did not write its summary (stopped after the last checkpoint):
    # resuming would train one step past --max-steps (transformers skips the trained batches, then steps once before
    # it checks the limit). Its weights are the final ones: take them and only finish the run (final model, summary).
    training_done = (resume_checkpoint is not None and not args.fsdp2
                     and (_checkpoint_step(resume_checkpoint) or 0) >= args.max_steps)
    if training_done:
        from ..models.nuwa import NuwaForConditionalGeneration

        model = NuwaForConditionalGeneration.from_pretrained(resume_checkpoint, use_safetensors=True)
    if args.attn_implementation:
        model.set_attn_implementation(args.attn_implementation)
    if training_args.should_log:
        for name in task_names:
            logger.info("%s: %d examples, grids %s", name, len(datasets[name]), grids[name])
        logger.info("model: %.2fM parameters", sum(p.numel() for p in model.parameters()) / 1e6)

    sharding = {}
    if args.fsdp2:
        from .sharded_trainer import ShardedNuwaTrainer

        sharding = dict(activation_checkpointing=args.activation_checkpointing)
    trainer = (ShardedNuwaTrainer if args.fsdp2 else NuwaTrainer)(
        model=model,
        args=training_args,
        train_dataset=mixture,
        data_collator=collator,
        processing_class=build_processor(tokenizer, sketch_vqgan, args),
        task_batch_sizes=task_batch_sizes,
        task_weights=task_weights,
        condition_dropout=args.condition_dropout,
        task_block_size=args.task_block_size,
        # an explicit --attn-implementation is kept as given; otherwise the fastest exact 3DNA kernel per grid
        training_attention=None if args.attn_implementation else "auto",
        **sharding,
    )
    if resume_checkpoint and training_args.should_log:
        logger.info("resuming from %s", resume_checkpoint)
    started = time.time()
    if training_done:
        from transformers import TrainerState

        trainer.state = TrainerState.load_from_json(os.path.join(resume_checkpoint, "trainer_state.json"))
        if training_args.should_log:
            logger.warning(
                "%s is at step %d of --max-steps %d but the run did not finish writing its model and %s: writing them "
                "now without training (train_loss is unknown: null; last_logged_losses come from the checkpoint).",
                resume_checkpoint, trainer.state.global_step, args.max_steps, SUMMARY_FILE)
        train_loss = None
    else:
        # Every process: in a run of several, they agree at each step end whether any was signalled.
        stop_on_signal = StopOnSignal()
        trainer.add_callback(stop_on_signal)
        stop_on_signal.install()
        try:
            train_loss = trainer.train(resume_from_checkpoint=resume_checkpoint).training_loss
        finally:
            stop_on_signal.uninstall()
        if stop_on_signal.signal_number is not None and trainer.state.global_step < args.max_steps:
            # Stopped early, with a checkpoint of the last step: no final model or summary (the run is not finished).
            step = trainer.state.global_step
            checkpoint = os.path.join(args.output_dir, f"checkpoint-{step}")
            if training_args.should_save:  # the process that published it (the others may not share the folder)
                if not is_complete_checkpoint(checkpoint):
                    raise RuntimeError(f"training stopped on {stop_on_signal.signal_name} at step {step} but "
                                       f"{checkpoint} was not written completely.")
                logger.warning(
                    "stopped by %s at step %d of --max-steps %d; %s holds every step trained. Run the same command "
                    "again to resume from it.", stop_on_signal.signal_name, step, args.max_steps, checkpoint)
                _remove_empty_staging(args.output_dir)
            return 128 + stop_on_signal.signal_number
    elapsed = time.time() - started
    tokens_per_process = torch.tensor([float(trainer.visual_tokens_trained)], device=training_args.device)
    if trainer.accelerator.num_processes > 1:
        tokens_per_process = trainer.accelerator.gather(tokens_per_process)
    tokens_per_process = [int(t) for t in tokens_per_process.cpu().tolist()]

    shard_report = trainer.elements_per_process() if args.fsdp2 else None  # a collective: before the main-only part
    trainer.save_model(args.output_dir)  # the model with its VQ-GANs, and the processor when there is one
    trained_now = trainer.state.global_step - ((_checkpoint_step(resume_checkpoint) or 0) if resume_checkpoint else 0)
    if resume_checkpoint and trained_now <= 0:
        # No step trained in this process, so a mean loss over its steps (transformers reports 0.0) says nothing:
        # keep the loss of the run that trained them, when its summary says it, else null.
        previous = _read_summary(args.output_dir) or {}
        train_loss = previous.get("train_loss") if previous.get("global_step") == trainer.state.global_step else None
    if trainer.args.should_save:
        summary = {
            "tasks": list(task_names),
            "grids": grids,
            "examples": {name: len(datasets[name]) for name in task_names},
            "global_step": trainer.state.global_step,
            "train_loss": train_loss,
            "last_logged_losses": _last_logged_losses(trainer.state.log_history),
            "resumed_from": resume_checkpoint,
            "processes": training_args.world_size,
            "seconds": round(elapsed, 2),
            "visual_tokens_per_process": tokens_per_process,
            "visual_tokens_per_second": round(sum(tokens_per_process) / elapsed, 1) if elapsed > 0 else None,
        }
        if shard_report is not None:
            summary["elements_per_process"] = shard_report
        with open(os.path.join(args.output_dir, SUMMARY_FILE), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)
        logger.info("saved the model to %s (%s)", args.output_dir, json.dumps(summary))
    trainer.accelerator.wait_for_everyone()
    if trainer.args.should_save:
        _remove_empty_staging(args.output_dir)
    return 0


def _remove_empty_staging(output_dir: str) -> None:
    """The staging area is empty after a clean end (or stop); leave it only if something is in it."""
    try:
        os.rmdir(os.path.join(output_dir, STAGING_DIRNAME))
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
