"""A small CLIP-style dual encoder trained contrastively on captioned data, for a CLIPSIM-style text-visual score.

No CLIP weights can be had offline. This encoder maps videos (or images, as one-frame videos) and captions into one
``embedding_size``-wide space: a ``VideoBackbone3D`` on the visual side, word embeddings and a bidirectional GRU on
the text side (word order matters: "up then down" is not "down then up"). Training is CLIP's symmetric InfoNCE, with
one change for template captions: samples in a batch that share a caption are all positives for each other.

Its held-out report is zero-shot caption accuracy: for each held-out sample, is its own caption the most similar
among all distinct held-out captions?
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..image_inputs import as_float_images, as_texts, check_same_count
from .scorer_base import TrainedScorer
from .video_backbone import VideoBackbone3D, preprocess_videos
from .word_tokenizer import WordTokenizer


class TextVisualDualEncoder(TrainedScorer):
    """``visual`` is "video" (inputs (N, T, ...)) or "image" (inputs (N, ...), encoded as one-frame videos)."""

    def __init__(self, vocabulary: Sequence[str], visual: str = "video", channels: int = 1, frame_size: int = 32,
                 width: int = 16, time_bins: int = 4, word_size: int = 64, embedding_size: int = 64,
                 max_length: int = 32):
        if visual not in ("video", "image"):
            raise ValueError(f"visual must be 'video' or 'image', got {visual!r}.")
        super().__init__(vocabulary=list(vocabulary), visual=visual, channels=channels, frame_size=frame_size,
                         width=width, time_bins=time_bins, word_size=word_size, embedding_size=embedding_size,
                         max_length=max_length)
        self.tokenizer = WordTokenizer(vocabulary, max_length)
        self.visual_backbone = VideoBackbone3D(channels, width, time_bins)
        self.visual_projection = torch.nn.Linear(self.visual_backbone.output_size, embedding_size)
        self.word_embedding = torch.nn.Embedding(len(vocabulary), word_size, padding_idx=0)
        self.text_rnn = torch.nn.GRU(word_size, word_size, batch_first=True, bidirectional=True)
        self.text_projection = torch.nn.Linear(2 * word_size, embedding_size)
        # CLIP's learnable temperature, started at 1/0.07.
        self.log_logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def short_name(self) -> str:
        """"text-video dual encoder" or "text-image dual encoder"."""
        return f"{'text-video' if self.config['visual'] == 'video' else 'text-image'} dual encoder"

    # -- encoders ---------------------------------------------------------------------------------------------------

    def preprocess_visual(self, samples: Any) -> torch.Tensor:
        """Raw images or videos (per ``visual``) -> float (N, C, T, S, S)."""
        if self.config["visual"] == "image":
            images = as_float_images(samples, channels=self.config["channels"])
            samples = images.unsqueeze(1)  # one-frame videos (N, 1, C, H, W)
        return preprocess_videos(samples, self.config["channels"], self.config["frame_size"])

    def encode_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """Preprocessed visuals -> unit-length embeddings (N, E)."""
        return F.normalize(self.visual_projection(self.visual_backbone(clips)), dim=-1)

    def encode_tokens(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Token ids (N, L) and lengths (N,) -> unit-length embeddings (N, E)."""
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.word_embedding(ids), lengths.cpu(), batch_first=True,
                                                         enforce_sorted=False)
        _, last_hidden = self.text_rnn(packed)  # (2 directions, N, word_size)
        return F.normalize(self.text_projection(torch.cat([last_hidden[0], last_hidden[1]], dim=-1)), dim=-1)

    def encode_visual(self, samples: Any, batch_size: int = 64) -> torch.Tensor:
        return torch.cat(self.in_batches(self.preprocess_visual(samples), batch_size, self.encode_clips))

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        with self.evaluating():
            return self.encode_tokens(*self.tokenizer(as_texts(texts)))

    def similarity(self, samples: Any, texts: Sequence[str]) -> torch.Tensor:
        """Cosine similarity (N,) between each visual sample and its paired text."""
        texts = as_texts(texts)
        visual = self.encode_visual(samples)
        check_same_count(visual, texts, "visual samples", "texts")
        return (visual * self.encode_texts(texts)).sum(-1)

    # -- validation -------------------------------------------------------------------------------------------------

    def measure_held_out(self, samples: Any, texts: Sequence[str], split: str, trained_on: str) -> dict:
        texts = as_texts(texts)
        candidates = sorted(set(texts))
        visual = self.encode_visual(samples)
        check_same_count(visual, texts, "visual samples", "texts")
        best = (visual @ self.encode_texts(candidates).T).argmax(-1)
        correct = [candidates[index] == text for index, text in zip(best.tolist(), texts)]
        most_common = max(candidates, key=texts.count)
        return self.record_held_out(
            {"caption_top1_accuracy": sum(correct) / len(correct)},
            {"caption_top1_accuracy": texts.count(most_common) / len(texts)},
            f"{split} ({len(candidates)} distinct captions)", len(texts), trained_on,
        )
