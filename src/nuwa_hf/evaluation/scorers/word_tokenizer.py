"""A word-level tokenizer (Hugging Face ``tokenizers``) over a vocabulary built from training captions.

Template captions ("the digit 3 is moving up then down") use a few dozen words, so a word vocabulary is exact and
tiny; it is stored as a plain word list inside the scorer's config.json, so no tokenizer file needs to be trusted.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, List, Sequence

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

PAD_TOKEN, UNKNOWN_TOKEN = "[PAD]", "[UNK]"


def _word_splitter() -> Tokenizer:
    tokenizer = Tokenizer(models.WordLevel(vocab={PAD_TOKEN: 0, UNKNOWN_TOKEN: 1}, unk_token=UNKNOWN_TOKEN))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def build_vocabulary(texts: Iterable[str], min_count: int = 1) -> List[str]:
    """[PAD], [UNK], then every word seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
    splitter = _word_splitter()
    counts: Counter = Counter()
    for text in texts:
        words = [word for word, _ in splitter.pre_tokenizer.pre_tokenize_str(splitter.normalizer.normalize_str(text))]
        counts.update(words)
    kept = sorted((word for word, count in counts.items() if count >= min_count), key=lambda w: (-counts[w], w))
    return [PAD_TOKEN, UNKNOWN_TOKEN] + kept


class WordTokenizer:
    """texts -> (token ids (N, L) int64 padded with 0, lengths (N,) int64), truncated to ``max_length`` words."""

    def __init__(self, vocabulary: Sequence[str], max_length: int = 32):
        if list(vocabulary[:2]) != [PAD_TOKEN, UNKNOWN_TOKEN]:
            raise ValueError(f"A vocabulary must start with {PAD_TOKEN!r}, {UNKNOWN_TOKEN!r}: build it with "
                             "build_vocabulary.")
        self.vocabulary = list(vocabulary)
        self.tokenizer = _word_splitter()
        self.tokenizer.model = models.WordLevel(vocab={word: index for index, word in enumerate(vocabulary)},
                                                unk_token=UNKNOWN_TOKEN)
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token=PAD_TOKEN)

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([encoding.ids for encoding in encodings], dtype=torch.long)
        lengths = torch.tensor([max(1, sum(encoding.attention_mask)) for encoding in encodings], dtype=torch.long)
        return ids, lengths
