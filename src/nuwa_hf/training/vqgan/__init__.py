"""Training the visual tokenizers (stage 1 of the paper): the VQ-GAN and the VQ-GAN-Seg, with their losses,
discriminator, metrics and crash-safe checkpoints. The networks themselves live in ``nuwa_hf.models.vqgan``."""

from .discriminator import NuwaPatchDiscriminator
from .losses import PerceptualLoss
from .training_vqgan import VQGANTrainingArguments, VQGANTrainingResult, evaluate_vqgan, train_vqgan

__all__ = [
    "NuwaPatchDiscriminator",
    "PerceptualLoss",
    "VQGANTrainingArguments",
    "VQGANTrainingResult",
    "evaluate_vqgan",
    "train_vqgan",
]
