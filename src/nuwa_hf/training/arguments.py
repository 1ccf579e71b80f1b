"""The options of ``nuwa-hf train`` as dataclasses, parsed by transformers' ``HfArgumentParser``.

Each dataclass is one group of ``--help`` (data, tokenizers, model, training, hub); every field is a flag under its
own name with ``-`` or ``_`` (``--num-samples`` = ``--num_samples``), booleans that default to True get a ``--no-``
form (``--no-token-cache``), and ``__post_init__`` refuses bad values with the flag's name. The same dataclasses
load from a JSON or YAML file (``HfArgumentParser.parse_json_file`` / ``parse_yaml_file``).
:meth:`NuwaRunArguments.training_arguments` is the one place where the run's options become ``TrainingArguments``.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import List, Literal, Optional, Tuple

from transformers import HfArgumentParser, TrainingArguments

from .recipe import PAPER_RECIPE, nuwa_training_arguments
from .tasks import TASKS


def _at_least_one(obj, names) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}.")


@dataclass
class NuwaDataArguments:
    _argument_group_name = "data"

    tasks: str = field(default="all", metadata={
        "help": f"comma-separated tasks among {', '.join(TASKS)}, or pretraining / finetuning / all"})
    train_data: List[str] = field(default_factory=list, metadata={
        "action": "extend", "metavar": "TASK=FOLDER",
        "help": "use a folder of your own for TASK instead of the built-in world: its files and a metadata.jsonl "
                "with one line per file, {\"file_name\": \"0001.png\", \"text\": \"a caption\"} (datasets' "
                "imagefolder convention; t2i: images, t2v / v2v: videos or GIFs, s2i: sketch/image pairs with "
                "\"sketch_file_name\"); with --init-from, caption words new to its tokenizer are added to the saved "
                "model's prompt words; repeatable"})
    num_samples: int = field(default=2000, metadata={"help": "examples per task drawn from the built-in worlds"})
    task_num_samples: Optional[str] = field(default=None, metadata={
        "metavar": "TASK=N,...", "help": "per-task examples from the built-in worlds, e.g. t2i=60000,t2v=20000 (all "
                                         "60,000 MNIST training digits for t2i); other tasks take --num-samples"})
    image_size: int = field(default=32, metadata={"help": "frame side in pixels (worlds and folders)"})
    num_frames: int = field(default=4, metadata={"help": "frames per video"})
    world_seed: int = field(default=0, metadata={"help": "seed of the built-in worlds"})
    world: Literal["large_digits", "multi_digit"] = field(default="large_digits", metadata={
        "help": "built-in world set (nuwa_hf.data.task_worlds): one large digit per image or video (default), or the "
                "harder multi-digit benchmark worlds of checkpoints v1-v4"})
    token_cache: bool = field(default=True, metadata={
        "help": "tokenise every example once up front; --no-token-cache runs the VQ-GANs on every batch (slower)"})
    tokenize_batch_size: int = field(default=64, metadata={"help": "examples per VQ-GAN call when tokenising"})

    def __post_init__(self):
        _at_least_one(self, ("num_samples", "image_size", "num_frames", "tokenize_batch_size"))


@dataclass
class NuwaTokenizerArguments:
    _argument_group_name = "tokenizers"

    vqgan: Optional[str] = field(default=None, metadata={
        "help": "folder of a NuwaVQGAN (examples/train_vqgan.py writes one); default: the VQ-GAN inside the "
                "--init-from model"})
    sketch_vqgan: Optional[str] = field(default=None, metadata={
        "help": "folder of a NuwaSegVQGAN, for s2i / s2v; default: the sketch VQ-GAN inside the --init-from model"})
    tokenizer: Optional[str] = field(default=None, metadata={
        "help": "folder of a text tokenizer; default: a BPE trained on the captions"})
    text_vocab_size: int = field(default=1024, metadata={"help": "vocabulary of the trained caption BPE"})
    max_text_length: int = field(default=24, metadata={"help": "prompt length in tokens"})

    def __post_init__(self):
        _at_least_one(self, ("max_text_length",))


@dataclass
class NuwaModelArguments:
    _argument_group_name = "model"

    model_preset: Literal["tiny", "paper"] = field(default="tiny", metadata={"help": "NuwaConfig preset"})
    model_config: Optional[str] = field(default=None, metadata={
        "help": 'JSON object of NuwaConfig overrides, e.g. \'{"hidden_size": 128, "decoder_layers": 4}\'; with '
                '--init-from only fields that keep the weights\' shapes, e.g. \'{"rope_3d": true}\''})
    attn_implementation: Optional[Literal["nuwa_3dna", "nuwa_3dna_train", "sdpa", "eager"]] = field(
        default=None, metadata={
            "help": "attention used while training (the same 3D nearby attention either way; only speed differs): "
                    "default nuwa_3dna_train, the fastest exact kernel per grid (nuwa_hf.training.fast_attention); "
                    "nuwa_3dna forces the tiled kernels, sdpa / eager a dense mask. Not saved: the trained model "
                    "loads with its default"})
    init_from: Optional[str] = field(default=None, metadata={
        "help": "start from a trained NUWA folder (fine-tuning, e.g. s2i/s2v after pre-training)"})


@dataclass
class NuwaRunArguments:
    """The run: optimisation, checkpoints, processes. ``output_dir`` is required."""

    _argument_group_name = "training"

    output_dir: str = field(metadata={"help": "run folder: checkpoints, logs and the final model"})
    max_steps: int = field(default=1000, metadata={"help": "optimiser steps"})
    batch_size: int = field(default=16, metadata={"help": "examples per batch and process"})
    task_batch_sizes: Optional[str] = field(default=None, metadata={
        "metavar": "TASK=N,...", "help": "per-task batch sizes, e.g. t2i=32,t2v=8 (images are 1/T the tokens of videos)"})
    task_weights: Optional[str] = field(default=None, metadata={
        "metavar": "TASK=W,...", "help": "relative share of batches per task; default: in proportion to the examples"})
    task_block_size: Optional[int] = field(default=None, metadata={
        "help": "consecutive batches of one task; default: the number of processes (every process trains the same "
                "task in a step). With --gradient-accumulation-steps k on one process, k reproduces k processes exactly"})
    condition_dropout: float = field(default=0.1, metadata={
        "help": "probability of the null condition, for classifier-free guidance"})
    learning_rate: float = field(default=PAPER_RECIPE["learning_rate"], metadata={"help": "peak learning rate"})
    warmup_ratio: float = field(default=PAPER_RECIPE["warmup_steps"], metadata={
        "help": "linear warm-up, as a fraction of --max-steps"})
    lr_scheduler: str = field(default=PAPER_RECIPE["lr_scheduler_type"], metadata={
        "help": "learning-rate schedule after the warm-up (transformers' lr_scheduler_type)"})
    weight_decay: float = field(default=PAPER_RECIPE["weight_decay"], metadata={"help": "AdamW weight decay"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    max_grad_norm: float = field(default=PAPER_RECIPE["max_grad_norm"], metadata={"help": "gradient clipping norm"})
    logging_steps: int = field(default=10, metadata={"help": "log losses and throughput every N steps"})
    save_steps: int = field(default=200, metadata={"help": "write a checkpoint every N steps"})
    save_total_limit: int = field(default=2, metadata={"help": "complete checkpoints kept"})
    resume: str = field(default="auto", metadata={
        "help": "'auto' (newest complete checkpoint in --output-dir if any), 'never', or a checkpoint path"})
    seed: int = field(default=0, metadata={"help": "seed of the initial weights, batches and condition dropout"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})
    threads: Optional[int] = field(default=None, metadata={
        "help": "torch threads per process; 1 is much faster on a CPU shared with other jobs (idle OpenMP threads "
                "spin), default: torch's choice"})
    bf16: bool = field(default=False, metadata={
        "help": "bf16 mixed precision (on CPUs with AVX512-BF16: 1.3-1.4x the fp32 speed of the default recipe; "
                "losses within bf16 rounding of fp32, not equal)"})
    no_progress: bool = field(default=False, metadata={"help": "no progress bars"})
    report_to: str = field(default="none", metadata={"help": "logging integrations (tensorboard, wandb, ...)"})
    fsdp_config: Optional[str] = field(default=None, metadata={
        "help": "shard the model with FSDP, configured by this JSON file (examples/configs/fsdp_paper.json)"})
    deepspeed: Optional[str] = field(default=None, metadata={
        "help": "DeepSpeed JSON config (examples/configs/deepspeed_zero3.json)"})
    fsdp2: bool = field(default=False, metadata={
        "help": "shard parameters, gradients and optimizer state with torch FSDP2 (each encoder/decoder layer a unit) "
                "on any device, CPU processes included; checkpoints become sharded (torch.distributed.checkpoint) "
                "and resume on any number of processes (nuwa_hf.training.sharded_trainer)"})
    activation_checkpointing: bool = field(default=False, metadata={
        "help": "with --fsdp2: recompute each layer's activations in backward (less memory, ~1/3 more compute)"})

    def __post_init__(self):
        _at_least_one(self, ("max_steps", "batch_size", "logging_steps", "save_steps", "gradient_accumulation_steps",
                             "threads", "task_block_size"))
        if not 0.0 <= self.condition_dropout < 1.0:
            raise ValueError(f"--condition-dropout must lie in [0, 1), got {self.condition_dropout}.")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"--warmup-ratio must lie in [0, 1), got {self.warmup_ratio}.")
        if self.learning_rate <= 0:
            raise ValueError(f"--learning-rate must be positive, got {self.learning_rate}.")
        if self.fsdp2 and (self.fsdp_config or self.deepspeed):
            raise ValueError("--fsdp2 shards the model itself: drop --fsdp-config / --deepspeed, or drop --fsdp2.")
        if self.activation_checkpointing and not self.fsdp2:
            raise ValueError("--activation-checkpointing needs --fsdp2.")

    def training_arguments(self, hub: "NuwaHubArguments") -> TrainingArguments:
        """``TrainingArguments`` of this run: the paper's recipe (:func:`nuwa_training_arguments`) with these options."""
        return nuwa_training_arguments(
            self.output_dir,
            max_steps=self.max_steps,
            per_device_train_batch_size=self.batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            learning_rate=self.learning_rate,
            warmup_steps=self.warmup_ratio,
            lr_scheduler_type=self.lr_scheduler,
            weight_decay=self.weight_decay,
            max_grad_norm=self.max_grad_norm,
            logging_steps=self.logging_steps,
            save_steps=self.save_steps,
            save_total_limit=self.save_total_limit,
            seed=self.seed,
            dataloader_num_workers=self.num_workers,
            bf16=self.bf16,
            disable_tqdm=self.no_progress,
            report_to=self.report_to,
            fsdp=bool(self.fsdp_config),
            fsdp_config=self.fsdp_config,
            deepspeed=self.deepspeed,
            push_to_hub=hub.push_to_hub,
            hub_model_id=hub.hub_model_id,
            hub_strategy=hub.hub_strategy,
            hub_private_repo=hub.hub_private_repo or None,
        )


@dataclass
class NuwaHubArguments:
    _argument_group_name = "hub"

    push_to_hub: bool = field(default=False, metadata={"help": "publish the model (and checkpoints) to the Hub"})
    hub_model_id: Optional[str] = field(default=None, metadata={"help": "repository, e.g. you/nuwa-tiny"})
    hub_strategy: Literal["end", "every_save", "checkpoint", "all_checkpoints"] = field(
        default="every_save", metadata={"help": "what is pushed when (transformers' hub_strategy)"})
    hub_private_repo: bool = field(default=False, metadata={"help": "create the repository private"})


ARGUMENT_CLASSES = (NuwaDataArguments, NuwaTokenizerArguments, NuwaModelArguments, NuwaRunArguments, NuwaHubArguments)


def build_parser() -> HfArgumentParser:
    """The ``nuwa-hf train`` parser: an ``HfArgumentParser`` over :data:`ARGUMENT_CLASSES`."""
    return HfArgumentParser(
        ARGUMENT_CLASSES,
        prog="nuwa-hf train",
        description="Train NUWA on a mixture of tasks with transformers' Trainer (one process, or several under "
        "torchrun / accelerate launch).",
    )


def arguments_from_namespace(namespace: argparse.Namespace) -> Tuple:
    """The dataclasses (in :data:`ARGUMENT_CLASSES` order) of a parsed namespace; their checks run here."""
    values = vars(namespace)
    return tuple(
        cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.init and f.name in values})
        for cls in ARGUMENT_CLASSES
    )


def parse_arguments(argv: Optional[List[str]] = None) -> Tuple:
    """``argv`` -> (data, tokenizers, model, run, hub) dataclasses; ``--help`` and unknown flags as argparse does."""
    return arguments_from_namespace(build_parser().parse_args(argv))
