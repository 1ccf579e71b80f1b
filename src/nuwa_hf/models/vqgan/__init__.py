"""Visual tokenizers of NUWA: the VQ-GAN for images and video frames, the VQ-GAN-Seg for sketches (their training:
``nuwa_hf.training.vqgan``)."""

from .modeling_seg_vqgan import NuwaSegVQGAN
from .modeling_vqgan import NuwaVQGAN, VisualTokenizerMixin
from .quantization import QuantizerOutput, codebook_usage, quantize

__all__ = [
    "NuwaVQGAN",
    "NuwaSegVQGAN",
    "VisualTokenizerMixin",
    "QuantizerOutput",
    "codebook_usage",
    "quantize",
]
