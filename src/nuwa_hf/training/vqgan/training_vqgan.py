"""Training of NUWA's visual tokenizers ([`NuwaVQGAN`] for images/frames, [`NuwaSegVQGAN`] for sketches).

Built on 🤗 Accelerate, not on `transformers.Trainer`. A VQ-GAN step is two alternating optimisation problems
(the autoencoder and the patch discriminator, each with its own optimizer and learning rate), VQ-GAN's adaptive
weight needs `torch.autograd.grad` of two losses with respect to the decoder's last layer inside the step, and
dead-code restarts rewrite codebook rows (and their Adam moments) between steps. `Trainer` is organised around one
model, one loss and one optimizer; bending it to this would fight its loss scaling, gradient accumulation and
checkpoint format. Accelerate keeps the loop explicit and still gives device placement, DDP across processes
(`accelerate launch` / `torchrun`) and mixed precision.

Objective (NUWA equations 4-5, taming-transformers' weighting):
    images:   |I - I_hat| (or squared) + perceptual_weight * P(I, I_hat)
              + codebook_weight * ||sg[E(I)] - B[z]||^2 + commitment_weight * ||E(I) - sg[B[z]]||^2
              + lambda * disc_weight * G(I_hat),   lambda = VQ-GAN's adaptive weight, from `disc_start` on
    sketches: cross-entropy(logits, class map) + the same quantiser terms (+ the GAN term on class probabilities if
              `disc_weight > 0`; off by default, the paper trains VQ-GAN-Seg with cross-entropy).
Dead codes are restarted: codes whose running usage falls far below the uniform rate are moved onto encoder outputs
of the current batch (Jukebox / "codebook reset"). Reported: codebook perplexity and share of codes used, PSNR/SSIM
for images, pixel accuracy/FWIoU for sketches (the paper's table 4).
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import logging
import math
import os
import re
import shutil
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ...file_io import atomic_directory, atomic_write_json
from .checkpointing import load_optimizer_state, save_optimizer_state, save_pretrained_atomically
from .discriminator import NuwaPatchDiscriminator
from .losses import ADVERSARIAL_LOSSES, adaptive_adversarial_weight
from ...evaluation.psnr import psnr_per_image
from ...evaluation.segmentation import confusion_matrix, scores_from_confusion
from ...evaluation.ssim import ssim_per_image
from ...models.vqgan.modeling_seg_vqgan import NuwaSegVQGAN
from ...models.vqgan.modeling_vqgan import NuwaVQGAN
from ...models.vqgan.quantization import codebook_usage


logger = logging.getLogger(__name__)

_CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
_MODEL_WEIGHTS = "diffusion_pytorch_model.safetensors"


@dataclass
class VQGANTrainingArguments:
    """
    Settings of [`train_vqgan`]. Defaults train the tiny presets on two CPU cores in a few minutes.

    Args:
        output_dir (`str`): the trained model is saved here (`from_pretrained(output_dir)`), checkpoints in
            `output_dir/checkpoint-<step>`.
        max_steps (`int`): optimisation steps.
        batch_size (`int`): samples per step and process.
        learning_rate (`float`): Adam learning rate of the autoencoder (and of the discriminator unless
            `disc_learning_rate` is set). `adam_betas` default to taming-transformers' (0.5, 0.9).
        warmup_steps (`int`): linear learning-rate warm-up.
        lr_schedule (`str`): `"cosine"` (decay to 10% of the base rate at `max_steps`, which lets the codebook and
            decoder settle) or `"constant"`.
        reconstruction_loss (`str`): `"l1"` (taming) or `"l2"` (the paper's equation 4); images only.
        foreground_weight (`float`): extra weight of foreground pixels in the reconstruction loss (images only; 0 =
            plain mean). Foreground = brightness above 10% on a dark background; each image's weights are normalised
            to mean 1, so pictures without background (textures) keep the plain loss. Sparse strokes (a coloured
            MNIST digit covers ~5% of a frame) otherwise cost the mean loss so little that the codebook never learns
            their colours.
        codebook_weight, commitment_weight (`float`): weights of the two quantiser terms (beta = 0.25 in VQ-VAE).
        perceptual_weight (`float`): weight of the perceptual term when a perceptual loss is given.
        disc_weight (`float`, *optional*): weight of the adversarial term; `None` means 0.8 for images and 0 (off)
            for sketches. `0` disables the discriminator.
        disc_start (`int`): step from which the adversarial term is on (the autoencoder first learns to reconstruct).
        disc_loss (`str`): `"hinge"` or `"non_saturating"`.
        disc_layers, disc_channels (`int`): size of the patch discriminator.
        restart_dead_codes (`bool`): move unused codes onto encoder outputs every `restart_every` steps, during the
            first `restart_until` share of training (the codebook then settles, which keeps re-encoding stable).
        dead_code_threshold (`float`): a code is dead when its running hit rate is below this share of the uniform
            rate (tokens per step / codebook size). `usage_decay` is the decay of that running rate.
        logging_steps, eval_steps, save_steps (`int`): intervals; 0 disables. Evaluation also runs at the end.
        save_total_limit (`int`, *optional*): keep only the newest checkpoints.
        eval_max_samples (`int`, *optional*): evaluate on at most this many samples.
        resume_from_checkpoint (`str`, *optional*): a checkpoint folder, or `"latest"` for the newest one in
            `output_dir`.
        input_column (`str`, *optional*): key of the input when dataset items are dicts (defaults: `"pixel_values"`
            for images, `"sketch_maps"` for sketches).
        seed (`int`): seeds initialisation-independent randomness (data order, restarts).
        show_progress (`bool`): tqdm progress bar on the main process.
        mixed_precision (`str`): passed to `Accelerator` (`"no"`, `"fp16"`, `"bf16"`).
        use_cpu (`bool`, *optional*): train on the CPU; by default when no CUDA device is present. Runs on several
            processes under `torchrun` or `accelerate launch` (DDP, gloo on CPU).
    """

    output_dir: str
    max_steps: int = 1000
    batch_size: int = 16
    learning_rate: float = 3e-4
    disc_learning_rate: float | None = None
    adam_betas: tuple[float, float] = (0.5, 0.9)
    warmup_steps: int = 0
    lr_schedule: str = "cosine"
    reconstruction_loss: str = "l1"
    foreground_weight: float = 0.0
    codebook_weight: float = 1.0
    commitment_weight: float = 0.25
    perceptual_weight: float = 1.0
    disc_weight: float | None = None
    disc_start: int = 500
    disc_loss: str = "hinge"
    disc_layers: int = 2
    disc_channels: int = 32
    restart_dead_codes: bool = True
    restart_every: int = 25
    restart_until: float = 0.8
    dead_code_threshold: float = 0.03
    usage_decay: float = 0.99
    logging_steps: int = 25
    eval_steps: int = 250
    save_steps: int = 500
    save_total_limit: int | None = 2
    eval_batch_size: int = 64
    eval_max_samples: int | None = 512
    resume_from_checkpoint: str | None = None
    input_column: str | None = None
    seed: int = 0
    show_progress: bool = True
    mixed_precision: str = "no"
    use_cpu: bool | None = None

    def __post_init__(self):
        if self.reconstruction_loss not in ("l1", "l2"):
            raise ValueError(f"`reconstruction_loss` must be 'l1' or 'l2', got {self.reconstruction_loss!r}.")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"`lr_schedule` must be 'constant' or 'cosine', got {self.lr_schedule!r}.")
        if self.disc_loss not in ADVERSARIAL_LOSSES:
            raise ValueError(f"`disc_loss` must be one of {sorted(ADVERSARIAL_LOSSES)}, got {self.disc_loss!r}.")
        for name in ("max_steps", "batch_size", "restart_every", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        for name in ("logging_steps", "eval_steps", "save_steps", "warmup_steps", "disc_start", "foreground_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}.")
        if not 0.0 <= self.restart_until <= 1.0:
            raise ValueError(f"`restart_until` is a share of max_steps in [0, 1], got {self.restart_until}.")
        if not 0.0 < self.usage_decay < 1.0:
            raise ValueError(f"`usage_decay` must lie in (0, 1), got {self.usage_decay}.")
        self.adam_betas = tuple(self.adam_betas)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class VQGANTrainingResult:
    """
    What [`train_vqgan`] returns.

    Attributes:
        history (`list[dict]`): training logs (losses, codebook perplexity/usage of the batch, restarts, throughput).
        eval_history (`list[dict]`): evaluation results with their step.
        final_metrics (`dict`): the last evaluation.
        output_dir (`str`): where the model was saved.
    """

    history: list[dict]
    eval_history: list[dict]
    final_metrics: dict
    output_dir: str


class _ReconstructionModule(nn.Module):
    """The part of the step that DDP wraps: encode, quantise, decode (one forward per step)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor):
        latents = self.model.encode_latents(inputs)
        quantized = self.model.quantize_latents(latents)
        reconstruction = self.model.decode_quantized(quantized.quantized)
        return reconstruction, quantized, latents


class DeadCodeRestarter:
    """
    Tracks a running hit rate per code and moves dead codes onto encoder outputs (codebook reset).

    Args:
        codebook_size (`int`): K.
        decay (`float`): decay of the running hit rate per step.
        threshold (`float`): a code is dead below `threshold * tokens_per_step / K` hits per step.
    """

    def __init__(self, codebook_size: int, decay: float, threshold: float):
        self.codebook_size = codebook_size
        self.decay = decay
        self.threshold = threshold
        self.hit_rate = torch.zeros(codebook_size, dtype=torch.float64)
        self.tokens_per_step = 0.0

    def update(self, counts: torch.Tensor) -> None:
        """Fold one step's code histogram `(K,)` (summed over processes) into the running rate."""
        counts = counts.detach().double().cpu()
        self.tokens_per_step = float(counts.sum())
        self.hit_rate.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)

    def dead_codes(self) -> torch.Tensor:
        """`(K,)` bool mask of the codes to restart."""
        uniform_rate = self.tokens_per_step / self.codebook_size
        return self.hit_rate < self.threshold * uniform_rate

    @torch.no_grad()
    def restart(
        self,
        codebook: torch.nn.Parameter,
        latents: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        accelerator,
    ) -> int:
        """
        Move the dead codes onto randomly chosen latent vectors of the batch; clear their Adam moments.

        Args:
            codebook (`torch.nn.Parameter` of shape `(K, D)`): the codebook weights, changed in place.
            latents (`torch.FloatTensor` of shape `(N, D, h, w)`): pre-quantisation latents of this process' batch.

        Returns:
            `int`: number of codes restarted.
        """
        dead = self.dead_codes()
        num_dead = int(dead.sum())
        if num_dead == 0:
            return 0
        candidates = latents.detach().permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        choice = torch.randint(0, candidates.shape[0], (num_dead,), generator=generator)
        replacement = candidates[choice.to(candidates.device)].to(codebook.dtype)
        # Every process must write the same rows: take process 0's choice.
        if accelerator.num_processes > 1:
            from accelerate.utils import broadcast

            replacement = broadcast(replacement.contiguous(), from_process=0)
        rows = dead.nonzero().squeeze(1).to(codebook.device)
        codebook.data[rows] = replacement.to(codebook.device)
        state = optimizer.state.get(codebook, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][rows] = 0.0
        # Give restarted codes the uniform rate so they are judged only after they had a chance to be used.
        self.hit_rate[dead] = self.tokens_per_step / self.codebook_size
        return num_dead


def _is_sketch_model(model) -> bool:
    return isinstance(model, NuwaSegVQGAN)


def _extract_input(item, key: str):
    if isinstance(item, dict) or hasattr(item, "keys"):
        if key not in item:
            raise KeyError(
                f"Dataset items are dicts without the key {key!r} (keys: {list(item.keys())}); set `input_column`."
            )
        item = item[key]
    if not isinstance(item, torch.Tensor):
        item = torch.as_tensor(item)
    return item


def pixel_reconstruction_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, kind: str = "l1", foreground_weight: float = 0.0
) -> torch.Tensor:
    """L1 or L2 between ``reconstruction`` and ``target`` (both ``(B, C, H, W)`` in [-1, 1]), a scalar.

    With ``foreground_weight`` w > 0 a pixel whose brightness (max over channels, mapped to [0, 1]) exceeds 0.1
    weighs 1 + w, others 1, and each image's weights are rescaled to mean 1: a dark picture with sparse strokes gets
    its strokes emphasised, a picture that is all foreground (or all background) keeps the plain mean.
    """
    error = reconstruction.float() - target.float()
    error = error.abs() if kind == "l1" else error.pow(2)
    if foreground_weight <= 0:
        return error.mean()
    brightness = (target.float().amax(dim=1, keepdim=True) + 1) / 2  # (B, 1, H, W)
    weight = 1.0 + foreground_weight * (brightness > 0.1).float()
    weight = weight / weight.mean(dim=(2, 3), keepdim=True)
    return (error * weight).mean()


def _load_batch(dataset, indices: list[int], key: str) -> torch.Tensor:
    return torch.stack([_extract_input(dataset[i], key) for i in indices])


def _model_inputs(model, batch: torch.Tensor) -> torch.Tensor:
    """Network input: pixels as they are, class maps one-hot."""
    return model.one_hot(batch) if _is_sketch_model(model) else batch.to(model.dtype)


def _validate_batch(model, batch: torch.Tensor, name: str = "training batch") -> None:
    if _is_sketch_model(model):
        model._check_class_map(batch, name, "(B, H, W)")
    else:
        model._check_pixels(batch, name, "(B, 3, H, W)", channel_dim=1)


@torch.no_grad()
def evaluate_vqgan(
    model, dataset, batch_size: int = 64, max_samples: int | None = None, input_column: str | None = None
) -> dict:
    """
    Reconstruction quality and codebook usage of a VQ-GAN on a dataset (in order, no shuffling).

    Args:
        model ([`NuwaVQGAN`] or [`NuwaSegVQGAN`]).
        dataset: map-style dataset of `(3, H, W)` pixels in `[-1, 1]` or `(H, W)` class maps (or dicts holding them
            under `input_column`).

    Returns:
        `dict`: images: `psnr`, `ssim` (means over images), `l1`, `mse`; sketches: `pixel_accuracy`,
        `frequency_weighted_iou`, `mean_iou`; both: `perplexity`, `usage` (over all tokens of the set), `num_samples`.
    """
    sketch = _is_sketch_model(model)
    key = input_column or ("sketch_maps" if sketch else "pixel_values")
    total = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    if total == 0:
        raise ValueError("Cannot evaluate on an empty dataset.")
    was_training = model.training
    model.eval()
    all_indices, psnrs, ssims, l1s, mses = [], [], [], [], []
    confusion = torch.zeros(0)
    for start in range(0, total, batch_size):
        batch = _load_batch(dataset, list(range(start, min(start + batch_size, total))), key).to(model.device)
        if start == 0:
            _validate_batch(model, batch, "evaluation batch")
        latents = model.encode_latents(_model_inputs(model, batch))
        quantized = model.quantize_latents(latents)
        output = model.decode_quantized(quantized.quantized)
        all_indices.append(quantized.indices.cpu())
        if sketch:
            batch_confusion = confusion_matrix(output.argmax(dim=1).cpu(), batch.cpu(), model.num_classes)
            confusion = batch_confusion if confusion.numel() == 0 else confusion + batch_confusion
        else:
            reconstruction = output.clamp(-1, 1).float()
            target = batch.float()
            # The VQ-GANs work in [-1, 1]: a data range of 2.
            psnrs.append(psnr_per_image(reconstruction, target, data_range=2.0).cpu())
            if min(target.shape[-2:]) >= 11:
                ssims.append(ssim_per_image(reconstruction, target, data_range=2.0).cpu())
            l1s.append((reconstruction - target).abs().flatten(1).mean(1).cpu())
            mses.append((reconstruction - target).pow(2).flatten(1).mean(1).cpu())
    model.train(was_training)
    metrics = codebook_usage(torch.cat(all_indices), model.codebook_size)
    metrics["num_samples"] = total
    if sketch:
        scores = scores_from_confusion(confusion)
        metrics.update({key: scores[key] for key in ("pixel_accuracy", "frequency_weighted_iou", "mean_iou")})
    else:
        metrics["psnr"] = float(torch.cat(psnrs).clamp(max=100.0).mean())
        if ssims:
            metrics["ssim"] = float(torch.cat(ssims).mean())
        metrics["l1"] = float(torch.cat(l1s).mean())
        metrics["mse"] = float(torch.cat(mses).mean())
    return metrics


def _sorted_checkpoints(output_dir: str) -> list[str]:
    found = []
    for path in glob.glob(os.path.join(output_dir, "checkpoint-*")):
        match = _CHECKPOINT_PATTERN.match(os.path.basename(path))
        if match and os.path.isdir(path):
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def _resolve_resume_path(args: VQGANTrainingArguments) -> str | None:
    if args.resume_from_checkpoint is None:
        return None
    if args.resume_from_checkpoint == "latest":
        checkpoints = _sorted_checkpoints(args.output_dir)
        if not checkpoints:
            raise FileNotFoundError(
                f"`resume_from_checkpoint='latest'` but {args.output_dir} holds no checkpoint-<step> folder."
            )
        return checkpoints[-1]
    if not os.path.isdir(os.path.join(args.resume_from_checkpoint, "model")):
        raise FileNotFoundError(
            f"{args.resume_from_checkpoint} is not a VQ-GAN checkpoint folder (no model/ inside); pass a "
            "checkpoint-<step> folder written by train_vqgan, or 'latest'."
        )
    return args.resume_from_checkpoint


def _load_weights_into(module: nn.Module, weights_file: str, what: str) -> None:
    if not os.path.isfile(weights_file):
        raise FileNotFoundError(f"{weights_file} is missing: the checkpoint's {what} weights are incomplete.")
    try:
        module.load_state_dict(load_file(weights_file), strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"The checkpoint's {what} weights do not fit the given model ({error}); resume with a model built with "
            "the same configuration as the checkpoint."
        ) from None


def train_vqgan(
    model: NuwaVQGAN | NuwaSegVQGAN,
    train_dataset,
    args: VQGANTrainingArguments,
    eval_dataset=None,
    perceptual_loss: nn.Module | None = None,
    discriminator: NuwaPatchDiscriminator | None = None,
    accelerator=None,
) -> VQGANTrainingResult:
    """
    Train a [`NuwaVQGAN`] (images / video frames) or a [`NuwaSegVQGAN`] (sketches) in place.

    Args:
        model: the model to train (e.g. `NuwaVQGAN.tiny()`); trained in place and saved to `args.output_dir`.
        train_dataset: map-style dataset (`len` and integer indexing, e.g. a list, a torch `Dataset` or a
            `datasets.Dataset` with torch format) of `(3, H, W)` float pixels in `[-1, 1]` for [`NuwaVQGAN`], or
            `(H, W)` long class maps for [`NuwaSegVQGAN`]; items may be dicts holding them under `args.input_column`.
            Video frames are images here: flatten videos to frames.
        args ([`VQGANTrainingArguments`]).
        eval_dataset (*optional*): same format; defaults to the first `eval_max_samples` training samples.
        perceptual_loss (`torch.nn.Module`, *optional*): `(reconstruction, target) -> scalar`, such as
            [`PerceptualLoss`] around a backbone you have locally. Images only.
        discriminator ([`NuwaPatchDiscriminator`], *optional*): defaults to a new one sized by `args`.
        accelerator (`accelerate.Accelerator`, *optional*): defaults to `Accelerator(cpu=args.use_cpu, ...)`.

    Returns:
        [`VQGANTrainingResult`]
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    if not isinstance(model, (NuwaVQGAN, NuwaSegVQGAN)):
        raise TypeError(f"`model` must be a NuwaVQGAN or NuwaSegVQGAN, got {type(model).__name__}.")
    if not hasattr(train_dataset, "__len__") or not hasattr(train_dataset, "__getitem__"):
        raise TypeError("`train_dataset` must be map-style (support len() and integer indexing).")
    sketch = _is_sketch_model(model)
    if sketch and perceptual_loss is not None:
        raise ValueError("A perceptual loss applies to RGB images; the sketch VQ-GAN trains with cross-entropy.")
    key = args.input_column or ("sketch_maps" if sketch else "pixel_values")
    disc_weight = args.disc_weight if args.disc_weight is not None else (0.0 if sketch else 0.8)
    use_discriminator = disc_weight > 0

    if accelerator is None:
        # Without cpu=True, Accelerator ignores torchrun's process group on a machine without GPUs and each process
        # would train alone on the whole data.
        use_cpu = args.use_cpu if args.use_cpu is not None else not torch.cuda.is_available()
        accelerator = Accelerator(cpu=use_cpu, mixed_precision=args.mixed_precision)
    world = accelerator.num_processes
    global_batch = args.batch_size * world
    if len(train_dataset) < global_batch:
        raise ValueError(
            f"The training set has {len(train_dataset)} samples, fewer than one batch ({args.batch_size} x "
            f"{world} processes); lower `batch_size` or add data."
        )
    steps_per_epoch = len(train_dataset) // global_batch
    _validate_batch(model, _load_batch(train_dataset, list(range(min(2, len(train_dataset)))), key))

    torch.manual_seed(args.seed)
    if use_discriminator and discriminator is None:
        discriminator = NuwaPatchDiscriminator(
            in_channels=model.config.out_channels, base_channels=args.disc_channels, num_layers=args.disc_layers
        )
    generator_loss_fn, discriminator_loss_fn = ADVERSARIAL_LOSSES[args.disc_loss]

    model.train()
    reconstruction_module = _ReconstructionModule(model)
    generator_optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, betas=args.adam_betas)
    schedule = functools.partial(
        _learning_rate_factor, warmup_steps=args.warmup_steps, max_steps=args.max_steps, kind=args.lr_schedule
    )
    generator_scheduler = torch.optim.lr_scheduler.LambdaLR(generator_optimizer, schedule)
    prepared = [reconstruction_module, generator_optimizer]
    if use_discriminator:
        discriminator.train()
        discriminator_optimizer = torch.optim.Adam(
            discriminator.parameters(), lr=args.disc_learning_rate or args.learning_rate, betas=args.adam_betas
        )
        prepared += [discriminator, discriminator_optimizer]
    prepared = accelerator.prepare(*prepared)
    reconstruction_module, generator_optimizer = prepared[0], prepared[1]
    if use_discriminator:
        discriminator, discriminator_optimizer = prepared[2], prepared[3]
    if perceptual_loss is not None:
        perceptual_loss = perceptual_loss.to(accelerator.device)
    restarter = DeadCodeRestarter(model.codebook_size, args.usage_decay, args.dead_code_threshold)
    restart_generator = torch.Generator().manual_seed(args.seed + 1)

    history: list[dict] = []
    eval_history: list[dict] = []
    step = 0
    resume_path = _resolve_resume_path(args)
    if resume_path is not None:
        _load_weights_into(model, os.path.join(resume_path, "model", _MODEL_WEIGHTS), "model")
        load_optimizer_state(_raw_optimizer(generator_optimizer), resume_path, "generator_optimizer")
        if use_discriminator:
            disc_file = os.path.join(resume_path, "discriminator", _MODEL_WEIGHTS)
            _load_weights_into(accelerator.unwrap_model(discriminator), disc_file, "discriminator")
            load_optimizer_state(_raw_optimizer(discriminator_optimizer), resume_path, "discriminator_optimizer")
        with open(os.path.join(resume_path, "trainer_state.json"), encoding="utf-8") as handle:
            state = json.load(handle)
        step = int(state["step"])
        history, eval_history = state.get("history", []), state.get("eval_history", [])
        extra = load_file(os.path.join(resume_path, "training_state.safetensors"))
        restarter.hit_rate = extra["code_hit_rate"].double()
        restarter.tokens_per_step = float(state.get("tokens_per_step", 0.0))
        restart_generator.set_state(extra["restart_rng"])
        generator_scheduler.last_epoch = step
        logger.info("Resumed from %s at step %d", resume_path, step)

    def save_checkpoint(at_step: int) -> None:
        if not accelerator.is_main_process:
            return
        with atomic_directory(os.path.join(args.output_dir, f"checkpoint-{at_step}")) as staging:
            model.save_pretrained(os.path.join(staging, "model"), safe_serialization=True)
            save_optimizer_state(_raw_optimizer(generator_optimizer), staging, "generator_optimizer")
            if use_discriminator:
                accelerator.unwrap_model(discriminator).save_pretrained(os.path.join(staging, "discriminator"))
                save_optimizer_state(_raw_optimizer(discriminator_optimizer), staging, "discriminator_optimizer")
            save_file(
                {"code_hit_rate": restarter.hit_rate.clone(), "restart_rng": restart_generator.get_state()},
                os.path.join(staging, "training_state.safetensors"),
            )
            with open(os.path.join(staging, "trainer_state.json"), "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "step": at_step,
                        "tokens_per_step": restarter.tokens_per_step,
                        "history": history,
                        "eval_history": eval_history,
                        "args": args.to_dict(),
                    },
                    handle,
                    indent=2,
                )
        if args.save_total_limit is not None:
            for stale in _sorted_checkpoints(args.output_dir)[: -args.save_total_limit]:
                shutil.rmtree(stale, ignore_errors=True)

    eval_source = eval_dataset if eval_dataset is not None else train_dataset

    def write_training_log(finished: bool) -> None:
        atomic_write_json(
            os.path.join(args.output_dir, "training_log.json"),
            {"history": history, "eval_history": eval_history, "args": args.to_dict(), "finished": finished},
        )

    def run_evaluation(at_step: int) -> dict:
        metrics = {}
        if accelerator.is_main_process:
            metrics = evaluate_vqgan(model, eval_source, args.eval_batch_size, args.eval_max_samples, key)
            metrics["step"] = at_step
            eval_history.append(metrics)
            logger.info("eval at step %d: %s", at_step,
                        ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        accelerator.wait_for_everyone()
        return metrics

    last_layer = model.decoder.conv_out.weight
    progress = tqdm(
        total=args.max_steps,
        initial=step,
        desc="VQ-GAN-Seg" if sketch else "VQ-GAN",
        disable=not (args.show_progress and accelerator.is_local_main_process),
    )
    window_start, window_samples = time.perf_counter(), 0
    last_eval: dict = {}
    while step < args.max_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        order = torch.randperm(len(train_dataset), generator=torch.Generator().manual_seed(args.seed * 100003 + epoch))
        for batch_number in range(offset, steps_per_epoch):
            if step >= args.max_steps:
                break
            start = batch_number * global_batch + accelerator.process_index * args.batch_size
            batch = _load_batch(train_dataset, order[start : start + args.batch_size].tolist(), key).to(
                accelerator.device
            )
            inputs = _model_inputs(model, batch)
            adversarial_on = use_discriminator and step >= args.disc_start

            # ---- autoencoder step
            if use_discriminator:
                accelerator.unwrap_model(discriminator).requires_grad_(False)
            with accelerator.autocast():
                reconstruction, quantized, latents = reconstruction_module(inputs)
                if sketch:
                    reconstruction_loss = F.cross_entropy(reconstruction.float(), batch)
                else:
                    reconstruction_loss = pixel_reconstruction_loss(
                        reconstruction, inputs, args.reconstruction_loss, args.foreground_weight
                    )
                nll = reconstruction_loss
                perceptual_value = None
                if perceptual_loss is not None and args.perceptual_weight > 0:
                    perceptual_value = perceptual_loss(reconstruction.float(), inputs.float())
                    nll = nll + args.perceptual_weight * perceptual_value
                quantizer_loss = (
                    args.codebook_weight * quantized.codebook_loss + args.commitment_weight * quantized.commitment_loss
                )
                loss = nll + quantizer_loss
                adaptive_weight = generator_adv = None
                if adversarial_on:
                    fake_inputs = reconstruction.softmax(dim=1) if sketch else reconstruction
                    generator_adv = generator_loss_fn(accelerator.unwrap_model(discriminator)(fake_inputs))
                    adaptive_weight = adaptive_adversarial_weight(nll, generator_adv, last_layer)
                    loss = loss + disc_weight * adaptive_weight * generator_adv
            generator_optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            generator_optimizer.step()
            generator_scheduler.step()

            # ---- discriminator step: real and fake in one forward, so DDP sees a single forward per backward
            discriminator_value = None
            if adversarial_on:
                accelerator.unwrap_model(discriminator).requires_grad_(True)
                real_inputs = inputs if not sketch else inputs.float()
                fake_inputs = (reconstruction.softmax(dim=1) if sketch else reconstruction).detach()
                with accelerator.autocast():
                    logits = discriminator(torch.cat([real_inputs, fake_inputs]))
                    real_logits, fake_logits = logits.chunk(2)
                    discriminator_value = discriminator_loss_fn(real_logits, fake_logits)
                discriminator_optimizer.zero_grad(set_to_none=True)
                accelerator.backward(discriminator_value)
                discriminator_optimizer.step()

            # ---- codebook bookkeeping
            counts = torch.bincount(quantized.indices.reshape(-1), minlength=model.codebook_size)
            if world > 1:
                counts = accelerator.reduce(counts, reduction="sum")
            restarter.update(counts)
            restarted = 0
            step += 1
            # The check after the first step doubles as a data-dependent codebook initialisation: every code that
            # the freshly initialised encoder did not reach is moved onto one of its outputs.
            restart_window = step <= args.restart_until * args.max_steps
            if args.restart_dead_codes and restart_window and (step == 1 or step % args.restart_every == 0):
                restarted = restarter.restart(
                    model.quantize.embedding.weight,
                    latents,
                    _raw_optimizer(generator_optimizer),
                    restart_generator,
                    accelerator,
                )
            window_samples += batch.shape[0] * world
            progress.update(1)

            if args.logging_steps and (step % args.logging_steps == 0 or step == args.max_steps):
                elapsed = time.perf_counter() - window_start
                usage = codebook_usage(quantized.indices, model.codebook_size)
                record = {
                    "step": step,
                    "loss": float(loss.detach()),
                    "reconstruction_loss": float(reconstruction_loss.detach()),
                    "codebook_loss": float(quantized.codebook_loss.detach()),
                    "commitment_loss": float(quantized.commitment_loss.detach()),
                    "batch_perplexity": usage["perplexity"],
                    "batch_usage": usage["usage"],
                    "alive_codes": float((~restarter.dead_codes()).double().mean()),
                    "restarted_codes": restarted,
                    "learning_rate": generator_scheduler.get_last_lr()[0],
                    "samples_per_second": window_samples / max(elapsed, 1e-9),
                    "tokens_per_second": window_samples * quantized.indices[0].numel() / max(elapsed, 1e-9),
                }
                if perceptual_value is not None:
                    record["perceptual_loss"] = float(perceptual_value.detach())
                if generator_adv is not None:
                    record["generator_adversarial_loss"] = float(generator_adv.detach())
                    record["adaptive_weight"] = float(adaptive_weight)
                if discriminator_value is not None:
                    record["discriminator_loss"] = float(discriminator_value.detach())
                history.append(record)
                window_start, window_samples = time.perf_counter(), 0
                if accelerator.is_main_process:
                    # Progress is visible without the progress bar (logs of background runs), and the log on disk
                    # is current, so an interrupted run keeps its history.
                    logger.info("step %d/%d: loss %.4f, reconstruction %.4f, batch perplexity %.1f, lr %.2e, %.1f samples/s",
                                step, args.max_steps, record["loss"], record["reconstruction_loss"],
                                record["batch_perplexity"], record["learning_rate"], record["samples_per_second"])
                    write_training_log(finished=False)
                postfix = {"loss": f"{record['loss']:.4f}", "ppl": f"{record['batch_perplexity']:.1f}"}
                if last_eval:
                    postfix.update(
                        {"PA": f"{last_eval['pixel_accuracy']:.3f}"}
                        if sketch
                        else {"PSNR": f"{last_eval['psnr']:.2f}"}
                    )
                progress.set_postfix(postfix)
            if args.eval_steps and step % args.eval_steps == 0 and step < args.max_steps:
                last_eval = run_evaluation(step)
            if args.save_steps and step % args.save_steps == 0 and step < args.max_steps:
                save_checkpoint(step)
                accelerator.wait_for_everyone()
    progress.close()

    final_metrics = run_evaluation(step)
    if accelerator.is_main_process:
        save_pretrained_atomically(model, args.output_dir)
        write_training_log(finished=True)
    accelerator.wait_for_everyone()
    return VQGANTrainingResult(
        history=history, eval_history=eval_history, final_metrics=final_metrics, output_dir=args.output_dir
    )


def _learning_rate_factor(step: int, warmup_steps: int, max_steps: int, kind: str) -> float:
    """Multiplier of the base learning rate at `step`: linear warm-up, then constant or cosine decay to 10%."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _raw_optimizer(optimizer):
    """The torch optimizer inside accelerate's wrapper (state_dict / state live there)."""
    return getattr(optimizer, "optimizer", optimizer)
