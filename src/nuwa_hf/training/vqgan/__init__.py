"""Training the visual tokenizers (stage 1 of the paper): the VQ-GAN and the VQ-GAN-Seg, with their losses,
discriminator, metrics and crash-safe checkpoints. The networks themselves live in ``nuwa_hf.models.vqgan``."""

from .decoder_finetuning import DecoderFinetuningResult, finetune_vqgan_decoder
from .discriminator import NuwaPatchDiscriminator
from .losses import PerceptualLoss
from .training_vqgan import VQGANTrainingArguments, VQGANTrainingResult, evaluate_vqgan, train_vqgan

__all__ = [
    "DecoderFinetuningResult",
    "NuwaPatchDiscriminator",
    "PerceptualLoss",
    "VQGANTrainingArguments",
    "VQGANTrainingResult",
    "evaluate_vqgan",
    "finetune_vqgan_decoder",
    "train_vqgan",
]
