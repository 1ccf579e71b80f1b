"""Use real CLIP weights a user has on disk (a transformers ``CLIPModel`` folder) wherever a text-visual scorer fits.

The folder is what ``CLIPModel.save_pretrained`` writes (config.json + model.safetensors) plus its tokenizer files.
Weights load from safetensors only and never from the network. Images are resized and normalised here (bicubic to
the vision tower's size, CLIP's mean/std, or those of a preprocessor_config.json beside the weights), which avoids the
torchvision-backed image processors that do not load on this stack. Videos are scored frame by frame and averaged,
as NUWA does for CLIPSIM on videos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ...file_io import PathLike
from ..image_inputs import as_float_images, as_float_videos, as_texts, check_same_count, split_into_batches

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class LocalClipScorer:
    """``similarity(samples, texts)`` -> (N,) cosine similarities with a local CLIP; ``visual``: "image" or "video"."""

    def __init__(self, folder: PathLike, visual: str = "image"):
        from transformers import AutoTokenizer, CLIPModel

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} has no config.json: point clip_model_path at a CLIPModel folder.")
        if not list(folder.glob("*.safetensors")):
            raise FileNotFoundError(
                f"{folder} has no .safetensors weights; nuwa-hf never loads pickled weights. Convert them with "
                "CLIPModel.from_pretrained(folder).save_pretrained(folder, safe_serialization=True) in a trusted "
                "setting."
            )
        if visual not in ("image", "video"):
            raise ValueError(f"visual must be 'image' or 'video', got {visual!r}.")
        self.model = CLIPModel.from_pretrained(folder, use_safetensors=True, local_files_only=True).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.visual = visual
        mean, std = CLIP_MEAN, CLIP_STD
        preprocessor = folder / "preprocessor_config.json"
        if preprocessor.is_file():
            settings = json.loads(preprocessor.read_text())
            mean, std = settings.get("image_mean", mean), settings.get("image_std", std)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        self.name = f"CLIP from {folder.name}"

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """float (N, 3, H, W) in [0, 1] -> unit-length (N, E)."""
        size = self.model.config.vision_config.image_size
        outputs = []
        for rows in split_into_batches(len(images), batch_size):
            pixels = F.interpolate(images[rows], size=(size, size), mode="bicubic", align_corners=False,
                                   antialias=True).clamp(0, 1)
            features = self.model.get_image_features(pixel_values=(pixels - self.mean) / self.std)
            outputs.append(F.normalize(getattr(features, "pooler_output", features), dim=-1))
        return torch.cat(outputs)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(as_texts(texts), padding=True, truncation=True, return_tensors="pt")
        features = self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return F.normalize(getattr(features, "pooler_output", features), dim=-1)

    def similarity(self, samples: Any, texts: Sequence[str]) -> torch.Tensor:
        texts = as_texts(texts)
        text_embeddings = self.encode_texts(texts)
        if self.visual == "image":
            images = as_float_images(samples)
            check_same_count(images, texts, "images", "texts")
            return (self.encode_images(images) * text_embeddings).sum(-1)
        videos = as_float_videos(samples)
        check_same_count(videos, texts, "videos", "texts")
        frames = self.encode_images(videos.reshape(-1, *videos.shape[2:])).reshape(*videos.shape[:2], -1)
        return (frames * text_embeddings[:, None, :]).sum(-1).mean(dim=1)
