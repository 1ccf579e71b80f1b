#!/usr/bin/env python
"""Train the small scorers that ``nuwa_hf.evaluation`` reads generated samples with, on the project's own worlds.

The package holds the scorers' networks, their loading and their held-out measurement (``nuwa_hf.evaluation``); how
they are trained lives here, outside ``src/``. Needs the ``data`` extra (the built-in worlds):
``pip install "nuwa-hf[data]"``.

    # the default scorers for video tasks (or --visual image), into the cache that `nuwa-hf evaluate --scorers cached`
    # and nuwa_hf.evaluation.default_scorers() read (<NUWA_HF_CACHE>/scorers/; minutes on a CPU)
    python examples/train_scorers.py default --visual video

    # the MNIST digit reader the demo page uses (checkpoints/mnist-digit-reader was made this way)
    python examples/train_scorers.py digit-reader --out checkpoints/mnist-digit-reader

As a module (``sys.path`` holding ``examples/``): :func:`fit` trains any scorer in place on arrays and measures it on
held-out ones (``fit(DigitClassifier(), images, labels, held_images, held_labels, "MNIST train")``);
:func:`fit_dual_encoder` builds a text-visual encoder's vocabulary from the captions and trains it;
:func:`train_video_scorers` / :func:`train_image_scorers` / :func:`train_digit_classifier` train on the worlds;
:func:`train_default_scorers` fills the cache.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nuwa_hf.evaluation.image_inputs import as_texts, check_same_count, split_into_batches
from nuwa_hf.evaluation.scorers import (
    AttributeClassifier,
    DigitClassifier,
    DigitSetClassifier,
    TextVisualDualEncoder,
    VideoFeatureNetwork,
)
from nuwa_hf.evaluation.scorers.scorer_base import CONFIG_NAME
from nuwa_hf.evaluation.scorers.word_tokenizer import build_vocabulary
from nuwa_hf.evaluation.scorers.world_scorers import IMAGE_SCORERS, VIDEO_SCORERS
from nuwa_hf.file_io import cache_root

BatchLoss = Callable[[Sequence[torch.Tensor]], torch.Tensor]


# ---- the training loop -----------------------------------------------------------------------------------------

def fit_minibatches(
    model: torch.nn.Module,
    tensors: Sequence[torch.Tensor],
    batch_loss: BatchLoss,
    epochs: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    seed: int = 0,
    progress: bool = False,
) -> List[float]:
    """Train ``model`` in place (Adam on shuffled mini-batches, seeded, CPU friendly); returns each epoch's mean loss.

    ``tensors`` are aligned on their first axis (inputs, targets, ...); each step calls ``batch_loss`` on the
    same random rows of every tensor. The learning rate decays linearly to 0 (stable ends on tiny budgets).
    """
    count = len(tensors[0])
    if any(len(tensor) != count for tensor in tensors):
        raise ValueError(f"Training tensors must share their first axis, got lengths {[len(t) for t in tensors]}.")
    if count == 0:
        raise ValueError("No training examples.")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the model's own randomness (dropout) follows the same seed
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    steps_per_epoch = len(split_into_batches(count, batch_size))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / (epochs * steps_per_epoch))
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * steps_per_epoch, desc=f"training {type(model).__name__}")
    epoch_losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for batch in split_into_batches(count, batch_size):
            rows = order[batch]
            loss = batch_loss([tensor[rows] for tensor in tensors])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(rows)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        epoch_losses.append(total / count)
    if bar is not None:
        bar.close()
    model.eval()
    return epoch_losses


# ---- one fit per scorer ----------------------------------------------------------------------------------------

def random_shift(images: torch.Tensor, max_shift: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Translate each image (N, C, H, W) by up to ``max_shift`` pixels in x and y, filling with black.

    Generated digits are rarely centred as precisely as MNIST's; training on shifted copies keeps the classifier from
    reading position as identity.
    """
    if max_shift == 0:
        return images
    height, width = images.shape[-2:]
    padded = F.pad(images, (max_shift, max_shift, max_shift, max_shift))
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=generator)
    rows = (offsets[:, :1] + torch.arange(height)).view(-1, 1, height, 1)
    columns = (offsets[:, 1:] + torch.arange(width)).view(-1, 1, 1, width)
    batch = torch.arange(len(images)).view(-1, 1, 1, 1)
    channel = torch.arange(images.shape[1]).view(1, -1, 1, 1)
    return padded[batch, channel, rows, columns]


def fit_digit_classifier(model: DigitClassifier, images: Any, labels: Any, held_out_images: Any, held_out_labels: Any,
                         trained_on: str, held_out_split: str = "test", epochs: int = 2, batch_size: int = 64,
                         learning_rate: float = 2e-3, max_shift: int = 2, seed: int = 0,
                         progress: bool = False) -> DigitClassifier:
    """Train on (images, labels), with random shifts of up to ``max_shift`` pixels, then measure accuracy on the
    held-out pair. Returns the model."""
    pixels = model.preprocess(images)
    targets = model.label_ids(labels)
    shift_generator = torch.Generator().manual_seed(seed + 1)

    def batch_loss(batch):
        inputs, wanted = batch
        return F.cross_entropy(model(random_shift(inputs, max_shift, shift_generator)), wanted)

    fit_minibatches(model, [pixels, targets], batch_loss, epochs, batch_size, learning_rate, seed, progress)
    model.measure_held_out(held_out_images, held_out_labels, held_out_split, trained_on)
    return model


def fit_label_set_classifier(model, samples: Any, labels: Any, held_out_samples: Any, held_out_labels: Any,
                             trained_on: str, held_out_split: str = "test", epochs: int = 3, batch_size: int = 32,
                             learning_rate: float = 2e-3, seed: int = 0, progress: bool = False):
    """An ``AttributeClassifier`` (``MotionClassifier``) or ``DigitSetClassifier``: multi-label, binary cross-entropy
    per value; then set-match accuracy on the held-out pair. Returns the model."""
    inputs = model.preprocess(samples)
    presence = model.label_presence(labels)
    fit_minibatches(model, [inputs, presence],
                    lambda batch: F.binary_cross_entropy_with_logits(model(batch[0]), batch[1]),
                    epochs, batch_size, learning_rate, seed, progress)
    model.measure_held_out(held_out_samples, held_out_labels, held_out_split, trained_on)
    return model


def fit_video_feature_network(model: VideoFeatureNetwork, videos: Any, digits: Any, motions: Any,
                              held_out_videos: Any, held_out_digits: Any, held_out_motions: Any, trained_on: str,
                              held_out_split: str = "test", epochs: int = 3, batch_size: int = 32,
                              learning_rate: float = 2e-3, seed: int = 0,
                              progress: bool = False) -> VideoFeatureNetwork:
    """Train both heads (digits shown, motions) on the training videos, then measure both on the held-out ones."""
    clips = model.preprocess(videos)
    digit_truth, motion_truth = model.digit_presence(digits), model.motion_presence(motions)

    def batch_loss(batch):
        inputs, digit_targets, motion_targets = batch
        _, digit_logits, motion_logits = model(inputs)
        # Each head's loss is a mean over its own values, so both tasks weigh the same whatever their sizes
        # (summing let the ten hard digit terms drown the four motion terms: motion stayed at chance).
        return (F.binary_cross_entropy_with_logits(digit_logits, digit_targets)
                + F.binary_cross_entropy_with_logits(motion_logits, motion_targets))

    fit_minibatches(model, [clips, digit_truth, motion_truth], batch_loss, epochs, batch_size, learning_rate, seed,
                    progress)
    model.measure_held_out(held_out_videos, held_out_digits, held_out_motions, held_out_split, trained_on)
    return model


def fit_text_visual(model: TextVisualDualEncoder, samples: Any, texts: Sequence[str], held_out_samples: Any,
                    held_out_texts: Sequence[str], trained_on: str, held_out_split: str = "test", epochs: int = 5,
                    batch_size: int = 32, learning_rate: float = 2e-3, seed: int = 0,
                    progress: bool = False) -> TextVisualDualEncoder:
    """CLIP's symmetric InfoNCE, except that samples of a batch sharing a caption are all positives for each other
    (template captions repeat); then zero-shot caption accuracy on the held-out pair."""
    texts = as_texts(texts)
    clips = model.preprocess_visual(samples)
    check_same_count(clips, texts, "visual samples", "texts")
    ids, lengths = model.tokenizer(texts)
    caption_ids = torch.tensor([sorted(set(texts)).index(text) for text in texts])

    def batch_loss(batch):
        batch_clips, batch_ids, batch_lengths, batch_captions = batch
        logits = model.log_logit_scale.clamp(max=math.log(100)).exp() * (
            model.encode_clips(batch_clips) @ model.encode_tokens(batch_ids, batch_lengths).T)
        same = (batch_captions[:, None] == batch_captions[None, :]).float()
        targets = same / same.sum(dim=1, keepdim=True)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2

    fit_minibatches(model, [clips, ids, lengths, caption_ids], batch_loss, epochs, batch_size, learning_rate, seed,
                    progress)
    model.measure_held_out(held_out_samples, held_out_texts, held_out_split, trained_on)
    return model


def fit_dual_encoder(samples: Any, texts: Sequence[str], held_out_samples: Any, held_out_texts: Sequence[str],
                     trained_on: str, held_out_split: str = "test", epochs: int = 5, batch_size: int = 32,
                     learning_rate: float = 2e-3, seed: int = 0, progress: bool = False,
                     **config: Any) -> TextVisualDualEncoder:
    """A new ``TextVisualDualEncoder`` (``config`` = its constructor arguments) with the vocabulary of ``texts``,
    trained and measured."""
    texts = as_texts(texts)
    torch.manual_seed(seed)
    encoder = TextVisualDualEncoder(build_vocabulary(texts), **config)
    return fit_text_visual(encoder, samples, texts, held_out_samples, held_out_texts, trained_on, held_out_split,
                           epochs, batch_size, learning_rate, seed, progress)


def fit(scorer, *args: Any, **kwargs: Any):
    """Train ``scorer`` in place with the fit of its class (arguments as there) and return it."""
    if isinstance(scorer, DigitClassifier):
        return fit_digit_classifier(scorer, *args, **kwargs)
    if isinstance(scorer, (AttributeClassifier, DigitSetClassifier)):
        return fit_label_set_classifier(scorer, *args, **kwargs)
    if isinstance(scorer, VideoFeatureNetwork):
        return fit_video_feature_network(scorer, *args, **kwargs)
    if isinstance(scorer, TextVisualDualEncoder):
        return fit_text_visual(scorer, *args, **kwargs)
    raise TypeError(f"No training for {type(scorer).__name__}.")


# ---- training on the built-in worlds ---------------------------------------------------------------------------

def train_digit_classifier(num_train: Optional[int] = None, epochs: int = 2, seed: int = 0,
                           progress: bool = True) -> DigitClassifier:
    """A ``DigitClassifier`` trained on MNIST train (all 50,000 digits by default), held out on MNIST test."""
    from nuwa_hf.data import load_mnist

    images, labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    if num_train is not None:
        images, labels = images[:num_train], labels[:num_train]
    return fit(DigitClassifier(), images, labels, test_images, test_labels, f"MNIST train ({len(labels):,} digits)",
               "MNIST test", epochs=epochs, seed=seed, progress=progress)


def columns(dataset: Any, names: tuple) -> Dict[str, Any]:
    """Stacked columns of a (numpy-formatted) world dataset; list columns stay per-sample lists."""
    rows = dataset[:]
    return {name: (np.asarray(rows[name]) if name in ("video", "image") else
                   [value.tolist() if hasattr(value, "tolist") else value for value in rows[name]])
            for name in names}


def sample_frames(videos: np.ndarray, labels: list, frames_per_video: int, seed: int) -> tuple[np.ndarray, list]:
    """``frames_per_video`` random frames of each video (N, T, H, W, C), each labelled with its video's labels."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, videos.shape[1], (len(videos), frames_per_video))
    frames = np.concatenate([videos[np.arange(len(videos)), picks[:, k]] for k in range(frames_per_video)])
    return frames, list(labels) * frames_per_video


def train_video_scorers(num_train: int = 2000, num_held_out: int = 500, image_size: int = 64, num_frames: int = 10,
                        epochs: int = 4, seed: int = 0, progress: bool = True) -> Dict[str, Any]:
    """Motion classifier, FVD feature network, text-video dual encoder and a frame digit reader, trained on
    captioned Moving MNIST.

    Returns {"motion_classifier", "video_features", "text_video", "frame_digits"}.
    """
    from nuwa_hf.data import captioned_moving_mnist
    from nuwa_hf.evaluation.scorers import MotionClassifier

    train = columns(captioned_moving_mnist("train", num_train, seed=seed, image_size=image_size,
                                           num_frames=num_frames), ("video", "text", "digits", "motion"))
    test = columns(captioned_moving_mnist("test", num_held_out, seed=seed, image_size=image_size,
                                          num_frames=num_frames), ("video", "text", "digits", "motion"))
    world = f"captioned Moving MNIST train ({num_train:,} videos)"
    motion = fit(MotionClassifier(), train["video"], train["motion"], test["video"], test["motion"], world,
                 "captioned Moving MNIST test", epochs=epochs, seed=seed, progress=progress)
    features = fit(VideoFeatureNetwork(), train["video"], train["digits"], train["motion"], test["video"],
                   test["digits"], test["motion"], world, "captioned Moving MNIST test", epochs=epochs, seed=seed,
                   progress=progress)
    text_visual = fit_dual_encoder(train["video"], train["text"], test["video"], test["text"], world,
                                   "captioned Moving MNIST test", epochs=2 * epochs, seed=seed, progress=progress)
    frames, frame_digits = sample_frames(train["video"], train["digits"], 3, seed)
    held_out_frames, held_out_digits = sample_frames(test["video"], test["digits"], 1, seed + 1)
    digit_reader = fit(DigitSetClassifier(image_size=image_size), frames, frame_digits, held_out_frames,
                       held_out_digits, f"{world}, 3 frames each", "captioned Moving MNIST test frames",
                       epochs=epochs, seed=seed, progress=progress)
    return {"motion_classifier": motion, "video_features": features, "text_video": text_visual,
            "frame_digits": digit_reader}


def train_image_scorers(num_train: int = 3000, num_held_out: int = 500, image_size: int = 64, epochs: int = 4,
                        seed: int = 0, progress: bool = True) -> Dict[str, Any]:
    """Colour classifier, text-image dual encoder (both RGB) and a digit reader, trained on the text-to-image digit
    world.

    Returns {"color_classifier", "text_image", "image_digits"}.
    """
    from nuwa_hf.data import COLORS, digit_images

    names = ("image", "text", "color", "digits")
    train = columns(digit_images("train", num_train, seed=seed, image_size=image_size), names)
    test = columns(digit_images("test", num_held_out, seed=seed, image_size=image_size), names)
    world = f"coloured digit images train ({num_train:,} images)"
    color = fit(AttributeClassifier("color", COLORS, visual="image", channels=3), train["image"], train["color"],
                test["image"], test["color"], world, "coloured digit images test", epochs=epochs, seed=seed,
                progress=progress)
    text_image = fit_dual_encoder(train["image"], train["text"], test["image"], test["text"], world,
                                  "coloured digit images test", epochs=2 * epochs, seed=seed, progress=progress,
                                  visual="image", channels=3)
    digit_reader = fit(DigitSetClassifier(image_size=image_size), train["image"], train["digits"], test["image"],
                       test["digits"], world, "coloured digit images test", epochs=epochs, seed=seed,
                       progress=progress)
    return {"color_classifier": color, "text_image": text_image, "image_digits": digit_reader}


def train_default_scorers(visual: str = "video", cache=None, progress: bool = True) -> Dict[str, Path]:
    """Train the default scorers for image or video tasks that ``<cache>/scorers/`` lacks and save them there, where
    ``nuwa_hf.evaluation.default_scorers`` (and ``nuwa-hf evaluate --scorers cached``) load them. Returns the
    folders."""
    if visual not in ("image", "video"):
        raise ValueError(f"visual must be 'image' or 'video', got {visual!r}.")
    folder = cache_root(cache) / "scorers"
    names = IMAGE_SCORERS if visual == "image" else VIDEO_SCORERS
    missing = [name for name in names if not (folder / name / CONFIG_NAME).is_file()]
    if missing:
        trained = (train_image_scorers if visual == "image" else train_video_scorers)(progress=progress)
        for name in missing:
            trained[name].save_pretrained(folder / name)
    return {name: folder / name for name in names}


def train_digit_reader(folder, num_train: int = 30000, seed: int = 0) -> DigitClassifier:
    """Train the MNIST digit reader (``num_train`` MNIST train digits, two epochs; a few minutes on 2 cores) and save
    it to ``folder`` atomically. Returns it; its MNIST test accuracy is in ``reader.report("digit")``."""
    folder = Path(folder)
    reader = train_digit_classifier(num_train=num_train, epochs=2, seed=seed, progress=False)
    staging = folder.with_name(folder.name + f".partial-{os.getpid()}")
    reader.save_pretrained(staging)
    if folder.exists():  # another process finished first: keep its copy
        shutil.rmtree(staging, ignore_errors=True)
    else:
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, folder)  # atomic: a reader is never seen half-written
    return reader


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    default = commands.add_parser("default", help="the default scorers, into the cache default_scorers() reads")
    default.add_argument("--visual", choices=("image", "video"), default="video")
    default.add_argument("--cache", default=None, help="cache folder (default: $NUWA_HF_CACHE or ~/.cache/nuwa_hf)")
    reader = commands.add_parser("digit-reader", help="the MNIST digit reader of the demo page")
    reader.add_argument("--out", default=None, help="folder to write (default: the cache default_digit_reader reads)")
    reader.add_argument("--num-train", type=int, default=30000)
    reader.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "default":
        for name, folder in train_default_scorers(args.visual, args.cache).items():
            print(name, folder)
        return 0
    from nuwa_hf.evaluation.digit_reading import cached_reader_folder

    folder = Path(args.out) if args.out else cached_reader_folder(args.num_train, args.seed)
    trained = train_digit_reader(folder, args.num_train, args.seed)
    print(folder, trained.report("digit"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
