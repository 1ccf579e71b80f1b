"""An untrained tiny NUWA model folder in the layout every pipeline loads: for tests, smoke runs and trying the CLI.

    >>> from support.tiny_model_folder import save_untrained_tiny_model
    >>> folder = save_untrained_tiny_model("/tmp/nuwa-untrained")
    >>> # nuwa-hf generate --task text-to-image --model /tmp/nuwa-untrained --prompt "a red 3" --out out/

Layout (what ``pipeline(task, model=folder)`` reads):

    folder/config.json, generation_config.json, model.safetensors      NuwaForConditionalGeneration
    folder/processor_config.json, tokenizer files                       NuwaProcessor (caption BPE + image processor)
    folder/vqgan/                                                       NuwaVQGAN (32x32 RGB -> 8x8 tokens)
    folder/vqgan_seg/                                                   NuwaSegVQGAN (32x32 class maps -> 8x8 tokens)

The weights are random: outputs have the right shapes and types but show noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

TINY_CAPTIONS = (
    "the digit 0 is moving up then down", "the digit 3 is moving left then right",
    "the digit 7 is moving down then up", "the digit 5 is moving right then left",
    "a red 3 in the top left", "a blue 8 in the center", "a green 1 at the bottom right",
    "a red circle on grass above water", "a blue square on sand", "a yellow triangle under the sky",
)


def save_untrained_tiny_model(
    folder: str | os.PathLike,
    *,
    seed: int = 0,
    image_size: int = 32,
    grid_size: int = 8,
    max_frames: int = 4,
    num_sketch_classes: int = 8,
    with_sketch_vqgan: bool = True,
    with_vqgan: bool = True,
) -> Path:
    """Write an untrained tiny NUWA (with its VQ-GAN and VQ-GAN-Seg) + processor to ``folder`` and return its path."""
    from nuwa_hf.models.nuwa import NuwaConfig, NuwaForConditionalGeneration
    from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN
    from nuwa_hf.processing import NuwaImageProcessor, NuwaProcessor, train_caption_tokenizer

    folder = Path(folder)
    torch.manual_seed(seed)
    visual_codes, sketch_codes, text_length = 64, 32, 16
    tokenizer = train_caption_tokenizer(list(TINY_CAPTIONS) * 4, vocab_size=600, model_max_length=text_length)
    vqgan = NuwaVQGAN.tiny(image_size=image_size, grid_size=grid_size, codebook_size=visual_codes, base_channels=16,
                           max_channels=32)
    seg_vqgan = NuwaSegVQGAN.tiny(num_classes=num_sketch_classes, image_size=image_size, grid_size=grid_size,
                                  codebook_size=sketch_codes, base_channels=16, max_channels=32) if with_sketch_vqgan else None
    image_processor = NuwaImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
        num_sketch_classes=num_sketch_classes,
    )
    processor = NuwaProcessor(image_processor=image_processor, tokenizer=tokenizer, max_text_length=text_length)
    config = NuwaConfig.tiny(
        text_vocab_size=max(len(tokenizer), 64), visual_vocab_size=visual_codes, sketch_vocab_size=sketch_codes,
        hidden_size=32, num_attention_heads=2, encoder_layers=1, decoder_layers=1, intermediate_size=64,
        max_text_length=text_length, max_visual_grid=(max_frames, grid_size, grid_size),
        max_sketch_grid=(max_frames, grid_size, grid_size), text_pad_token_id=int(tokenizer.pad_token_id),
    )
    model = NuwaForConditionalGeneration(config).eval()
    model.set_visual_tokenizers(vqgan=vqgan if with_vqgan else None, sketch_vqgan=seg_vqgan)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
