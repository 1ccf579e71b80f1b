"""Visual tokenizers of NUWA: the VQ-GAN for images and video frames, the VQ-GAN-Seg for sketches, and their training."""

from .discriminator import NuwaPatchDiscriminator
from .losses import PerceptualLoss
from .modeling_seg_vqgan import NuwaSegVQGAN
from .modeling_vqgan import NuwaVQGAN, VisualTokenizerMixin
from .quantization import QuantizerOutput, codebook_usage, quantize
from .training_vqgan import VQGANTrainingArguments, VQGANTrainingResult, evaluate_vqgan, train_vqgan

__all__ = [
    "NuwaVQGAN",
    "NuwaSegVQGAN",
    "NuwaPatchDiscriminator",
    "PerceptualLoss",
    "VisualTokenizerMixin",
    "QuantizerOutput",
    "codebook_usage",
    "quantize",
    "VQGANTrainingArguments",
    "VQGANTrainingResult",
    "evaluate_vqgan",
    "train_vqgan",
]
