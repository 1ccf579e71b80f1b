"""From user inputs to NUWA's token grids and back: text tokenizers, the image processor and the processor."""

from .clip_vocabulary import clip_vocabulary_path
from .image_processing_nuwa import NuwaImageProcessor
from .processing_nuwa import NuwaProcessor
from .tokenization_nuwa import build_clip_tokenizer, train_caption_tokenizer

__all__ = [
    "NuwaImageProcessor",
    "NuwaProcessor",
    "build_clip_tokenizer",
    "train_caption_tokenizer",
    "clip_vocabulary_path",
]
