"""Turning one batch of raw examples into the token grids NUWA trains on (shared by the token cache and the collator).

Shapes (B = examples in the batch):

    image   uint8 (B, H, W, 3)      -> visual tokens (B, 1, H/f, W/f)   with the VQ-GAN (f = its down-sampling factor)
    video   uint8 (B, T, H, W, 3)   -> visual tokens (B, T, H/f, W/f)   frame by frame, as in the paper
    sketch  int   (B, H, W)         -> sketch tokens (B, 1, H/g, W/g)   with the VQ-GAN-Seg
            int   (B, T, H, W)      -> sketch tokens (B, T, H/g, W/g)
    text    list of B str           -> input_ids (B, max_text_length), padded with the tokenizer's pad id
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Optional, Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)


def _stack(values, name: str) -> np.ndarray:
    try:
        return np.stack([np.asarray(v) for v in values])
    except ValueError as error:
        shapes = sorted({tuple(np.asarray(v).shape) for v in values})
        raise ValueError(
            f"the {name} of one batch have different shapes {shapes}; resize them to one size first "
            "(the built-in worlds take image_size=..., NuwaImageProcessor resizes users' data)."
        ) from error


def pixels_to_model_range(pixels: np.ndarray) -> torch.Tensor:
    """uint8 pixels (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1], the VQ-GAN's input range."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise TypeError(
            f"pixels must be uint8 in [0, 255] with channels last (..., H, W, 3), got dtype {array.dtype}; "
            "the built-in worlds and folder loaders produce that."
        )
    if array.shape[-1] != 3:
        raise ValueError(f"pixels must have 3 channels last (..., H, W, 3), got shape {array.shape}.")
    tensor = torch.from_numpy(np.ascontiguousarray(array)).float().div_(127.5).sub_(1.0)
    return tensor.movedim(-1, -3)


@torch.no_grad()
def encode_visual(vqgan, pixels: Sequence, video: bool) -> torch.Tensor:
    """Images (B, H, W, 3) or videos (B, T, H, W, 3), uint8 -> visual tokens (B, T, h, w) (T = 1 for images)."""
    if vqgan is None:
        raise ValueError("raw pixels need a VQ-GAN to tokenise them: pass visual_tokenizer=NuwaVQGAN.from_pretrained(...).")
    array = _stack(pixels, "videos" if video else "images")
    expected = 5 if video else 4
    if array.ndim != expected:
        layout = "(B, T, H, W, 3)" if video else "(B, H, W, 3)"
        raise ValueError(f"{'videos' if video else 'images'} must stack to {layout}, got shape {array.shape}.")
    tensor = pixels_to_model_range(array)
    if video:
        tokens = vqgan.encode_video(tensor)
    else:
        tokens = vqgan.encode_to_indices(tensor)[:, None]
    return tokens.long().cpu()


@torch.no_grad()
def encode_sketch(sketch_vqgan, class_maps: Sequence, video: bool) -> torch.Tensor:
    """Class maps (B, H, W) or (B, T, H, W), integer ids -> sketch tokens (B, T, h, w) (T = 1 for image sketches)."""
    if sketch_vqgan is None:
        raise ValueError(
            "sketch tasks need a sketch VQ-GAN to tokenise the class maps: pass "
            "sketch_tokenizer=NuwaSegVQGAN.from_pretrained(...)."
        )
    array = _stack(class_maps, "sketches")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"sketches must be integer class-id maps, got dtype {array.dtype}.")
    expected = 4 if video else 3
    if array.ndim != expected:
        layout = "(B, T, H, W)" if video else "(B, H, W)"
        raise ValueError(f"{'video' if video else 'image'} sketches must stack to {layout}, got shape {array.shape}.")
    tensor = torch.from_numpy(np.ascontiguousarray(array)).long()
    if video:
        tokens = sketch_vqgan.encode_video(tensor)
    else:
        tokens = sketch_vqgan.encode_to_indices(tensor)[:, None]
    return tokens.long().cpu()


def encode_text(tokenizer, texts: Sequence[str], max_text_length: int) -> torch.Tensor:
    """Captions -> input_ids (B, max_text_length): start/end tokens as the tokenizer adds them, padded to the fixed
    length with its pad id, truncated (with a warning) when longer."""
    if tokenizer is None:
        raise ValueError("text tasks need a tokenizer: pass text_tokenizer=AutoTokenizer.from_pretrained(...).")
    if tokenizer.pad_token_id is None:
        raise ValueError("the text tokenizer has no pad token; set tokenizer.pad_token before training.")
    texts = [str(t) for t in texts]
    full = tokenizer(texts, add_special_tokens=True)["input_ids"]
    too_long = sum(len(ids) > max_text_length for ids in full)
    if too_long:
        logger.warning(
            "%d of %d captions are longer than max_text_length=%d tokens and were truncated (the model never reads "
            "their ends): shorten them, or, for a model trained from scratch, raise --max-text-length (a model "
            "fine-tuned with --init-from keeps its own). Words the tokenizer does not know take several tokens "
            "each.", too_long, len(texts), max_text_length,
        )
    encoded = tokenizer(
        texts, padding="max_length", truncation=True, max_length=max_text_length, add_special_tokens=True,
        return_tensors="pt",
    )
    return encoded["input_ids"].long()


def module_fingerprint(module: Optional[torch.nn.Module]) -> str:
    """A hash of a model's weights and config: tokens cached with one VQ-GAN are never reused with another."""
    if module is None:
        return "none"
    digest = hashlib.sha256()
    config = getattr(module, "config", None)
    if config is not None:
        as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        digest.update(json.dumps(as_dict, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of a text tokenizer's vocabulary and rules."""
    if tokenizer is None:
        return "none"
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
