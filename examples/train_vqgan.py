#!/usr/bin/env python
"""Train NUWA's visual tokenizer: a VQ-GAN for images / video frames, or a VQ-GAN-Seg for sketches.

Data: a folder of pictures (`--data-dir`, searched recursively), or procedural coloured shapes with exact
segmentation maps (the default, `--synthetic N`). Pictures are resized and centre-cropped by NuwaImageProcessor;
for `--model seg` the files must be class-index maps (PNG in mode 'L' or 'P') and `--num-classes` is required.
Video frames are images here: extract them into the folder first.

Examples:

    # tiny VQ-GAN on 4,096 generated 32x32 pictures, a few minutes on 2 CPU cores
    python examples/train_vqgan.py --output-dir runs/vqgan

    # VQ-GAN-Seg for sketches with 4 classes, on generated segmentation maps
    python examples/train_vqgan.py --model seg --output-dir runs/vqgan_seg

    # your own pictures, 64x64 frames -> 8x8 tokens, with a perceptual loss from a local transformers backbone
    python examples/train_vqgan.py --data-dir ~/pictures --image-size 64 --grid-size 8 \\
        --perceptual-backbone ~/models/resnet-18 --output-dir runs/vqgan64

    # multi-process (DDP on CPU): accelerate launch --multi_gpu --num_processes 2 examples/train_vqgan.py ...

The model lands in --output-dir (load it with NuwaVQGAN.from_pretrained / NuwaSegVQGAN.from_pretrained), beside
checkpoints (checkpoint-<step>/, resumable with --resume), training_log.json and reconstructions.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN
from nuwa_hf.training.vqgan.losses import PerceptualLoss
from nuwa_hf.data.toy_shapes import SHAPE_CLASSES, generate_shapes
from nuwa_hf.training.vqgan.training_vqgan import VQGANTrainingArguments, train_vqgan
from nuwa_hf.processing import NuwaImageProcessor


PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", choices=("vqgan", "seg"), default="vqgan", help="images/frames or sketches")
    parser.add_argument("--output-dir", default="runs/vqgan")
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", help="folder of pictures (or of class-map PNGs with --model seg)")
    data.add_argument(
        "--synthetic", type=int, default=4096, help="number of generated shape pictures if no --data-dir"
    )
    data.add_argument("--num-classes", type=int, help="sketch classes (--model seg with --data-dir)")
    data.add_argument("--eval-fraction", type=float, default=0.05, help="share of the data held out for evaluation")
    model = parser.add_argument_group("model")
    model.add_argument("--image-size", type=int, default=32)
    model.add_argument("--grid-size", type=int, default=8, help="tokens per side")
    model.add_argument("--codebook-size", type=int, default=256)
    model.add_argument("--codebook-dim", type=int, default=16)
    model.add_argument("--base-channels", type=int, default=32)
    model.add_argument("--max-channels", type=int, default=64)
    model.add_argument("--init-from", help="start from a saved model folder instead of a fresh tiny preset")
    train = parser.add_argument_group("training")
    train.add_argument("--steps", type=int, default=1000)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=3e-4)
    train.add_argument("--reconstruction-loss", choices=("l1", "l2"), default="l1")
    train.add_argument("--disc-start", type=int, help="step at which the GAN loss starts (default: half of --steps)")
    train.add_argument("--disc-weight", type=float, help="default 0.8 for images, 0 (off) for sketches")
    train.add_argument("--restart-every", type=int, default=25, help="dead-code restart interval (0: never)")
    train.add_argument("--perceptual-backbone", help="local transformers model folder used for a perceptual loss")
    train.add_argument("--perceptual-weight", type=float, default=1.0)
    train.add_argument("--eval-every", type=int, default=250)
    train.add_argument("--save-every", type=int, default=500)
    train.add_argument("--resume", nargs="?", const="latest", help="resume from a checkpoint folder (default: latest)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def list_pictures(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--data-dir {folder} is not a folder.")
    found = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(PICTURE_SUFFIXES)
    )
    if not found:
        raise FileNotFoundError(f"No pictures ({', '.join(PICTURE_SUFFIXES)}) under {folder}.")
    return found


def load_dataset(args, processor: NuwaImageProcessor) -> tuple[torch.Tensor, int | None]:
    """All samples as one tensor: (N, 3, S, S) pixels in [-1, 1], or (N, S, S) class maps; plus the class count."""
    if args.data_dir is None:
        images, maps = generate_shapes(args.synthetic, image_size=args.image_size, seed=args.seed)
        if args.model == "seg":
            return torch.from_numpy(maps.astype(np.int64)), len(SHAPE_CLASSES)
        return processor(images, return_tensors="pt")["pixel_values"], None
    paths = list_pictures(args.data_dir)
    chunks = []
    for start in range(0, len(paths), 256):
        pictures = [Image.open(path) for path in paths[start : start + 256]]
        if args.model == "seg":
            chunks.append(processor.preprocess_sketches(pictures, return_tensors="pt")["sketch_maps"])
        else:
            chunks.append(processor([p.convert("RGB") for p in pictures], return_tensors="pt")["pixel_values"])
    return torch.cat(chunks), args.num_classes


def build_model(args, num_classes: int | None):
    if args.init_from:
        model_class = NuwaSegVQGAN if args.model == "seg" else NuwaVQGAN
        return model_class.from_pretrained(args.init_from, use_safetensors=True)
    sizes = dict(
        image_size=args.image_size,
        grid_size=args.grid_size,
        codebook_size=args.codebook_size,
        codebook_dim=args.codebook_dim,
        base_channels=args.base_channels,
        max_channels=args.max_channels,
    )
    if args.model == "seg":
        return NuwaSegVQGAN.tiny(num_classes=num_classes, **sizes)
    return NuwaVQGAN.tiny(**sizes)


def build_perceptual_loss(path: str | None) -> PerceptualLoss | None:
    if path is None:
        return None
    from transformers import AutoModel

    if not os.path.isdir(path):
        raise FileNotFoundError(f"--perceptual-backbone {path} is not a local model folder.")
    backbone = AutoModel.from_pretrained(path, use_safetensors=True, local_files_only=True)
    return PerceptualLoss(backbone, call_kwargs={"output_hidden_states": True})


def save_reconstructions(model, samples: torch.Tensor, processor: NuwaImageProcessor, path: str) -> None:
    """A picture grid: originals on the top row, reconstructions below (atomic write)."""
    model.eval()
    with torch.no_grad():
        tokens = model.encode_to_indices(samples)
        if isinstance(model, NuwaSegVQGAN):
            decoded = model.decode_to_class_map(tokens)
            rows = [processor.postprocess_sketches(m, output_type="pil") for m in (samples, decoded)]
            rows = [[image.convert("RGB") for image in row] for row in rows]
        else:
            decoded = model.decode_from_indices(tokens)
            rows = [processor.postprocess(p, output_type="pil") for p in (samples, decoded)]
    width, height = rows[0][0].size
    grid = Image.new("RGB", (width * len(rows[0]), height * 2))
    for row_index, row in enumerate(rows):
        for column, image in enumerate(row):
            grid.paste(image, (column * width, row_index * height))
    fd, staging = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".png")
    os.close(fd)
    grid.save(staging)
    os.replace(staging, path)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model == "seg" and args.data_dir and not args.num_classes:
        raise SystemExit("--model seg with --data-dir needs --num-classes.")
    if args.image_size % args.grid_size:
        raise SystemExit(f"--image-size {args.image_size} must be a multiple of --grid-size {args.grid_size}.")
    torch.manual_seed(args.seed)

    processor = NuwaImageProcessor(
        size={"shortest_edge": args.image_size},
        crop_size={"height": args.image_size, "width": args.image_size},
        num_sketch_classes=args.num_classes,
    )
    samples, num_classes = load_dataset(args, processor)
    order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(args.seed))
    held_out = max(1, int(len(samples) * args.eval_fraction))
    eval_set, train_set = samples[order[:held_out]], samples[order[held_out:]]
    print(
        f"{len(train_set)} training and {len(eval_set)} evaluation samples of {tuple(samples.shape[1:])}",
        file=sys.stderr,
    )

    model = build_model(args, num_classes)
    parameters = sum(p.numel() for p in model.parameters())
    grid = args.image_size // model.downsample_factor
    print(
        f"{type(model).__name__}: {parameters / 1e6:.2f}M parameters, {model.codebook_size} codes, "
        f"{args.image_size}px -> {grid}x{grid} tokens",
        file=sys.stderr,
    )

    training_args = VQGANTrainingArguments(
        output_dir=args.output_dir,
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        reconstruction_loss=args.reconstruction_loss,
        disc_start=args.disc_start if args.disc_start is not None else args.steps // 2,
        disc_weight=args.disc_weight,
        restart_dead_codes=args.restart_every > 0,
        restart_every=max(1, args.restart_every),
        perceptual_weight=args.perceptual_weight,
        eval_steps=args.eval_every,
        save_steps=args.save_every,
        resume_from_checkpoint=args.resume,
        seed=args.seed,
    )
    result = train_vqgan(
        model,
        list(train_set),
        training_args,
        eval_dataset=list(eval_set),
        perceptual_loss=build_perceptual_loss(args.perceptual_backbone),
    )
    save_reconstructions(model, eval_set[:8], processor, os.path.join(args.output_dir, "reconstructions.png"))
    metrics = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.final_metrics.items()}
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
