"""Text tokenizers for NUWA: the paper's CLIP BPE for paper-scale models, a small trained BPE for tiny ones.

NUWA tokenises text with a lower-cased byte-pair encoding of 49,408 tokens (the paper, section 3.1), which is
CLIP's. [`build_clip_tokenizer`] rebuilds it from CLIP's merges file. [`train_caption_tokenizer`] learns a small set
of merges from a caption corpus and keeps everything else of CLIP's tokenizer, for tiny models whose embedding table
should not carry 49k rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import CLIPTokenizer

from .clip_vocabulary import clip_vocabulary_path, read_clip_merges
from .vocabulary import CAPTION_WORDS_FIELD, caption_words


START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
CLIP_VOCAB_SIZE = 49408
CLIP_MAX_LENGTH = 77


def byte_to_unicode_table() -> dict[int, str]:
    """
    The reversible byte -> printable character table of byte-level BPE (GPT-2 / CLIP).

    Printable Latin-1 bytes map to themselves; the 68 others (controls, space, ...) map to code points from 256 up,
    in byte order. The dict's order (printable bytes first) is the order of CLIP's first 256 vocabulary entries.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {byte: chr(byte) for byte in printable}
    next_code_point = 256
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(next_code_point)
            next_code_point += 1
    return table


def _clip_layout_vocabulary(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's vocabulary layout: 256 byte symbols, the same with `</w>`, one token per merge, then start and end."""
    byte_symbols = list(byte_to_unicode_table().values())
    tokens = byte_symbols + [symbol + "</w>" for symbol in byte_symbols]
    seen = set(tokens)
    for merge in merges:
        token = "".join(merge)
        if token not in seen:
            seen.add(token)
            tokens.append(token)
    tokens += [START_TOKEN, END_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def build_clip_tokenizer(
    vocab_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    model_max_length: int = CLIP_MAX_LENGTH,
    download: bool = True,
) -> CLIPTokenizer:
    """
    The paper's text tokenizer: CLIP's lower-cased 49,408-token BPE, as a `transformers.CLIPTokenizer`.

    Args:
        vocab_path (`str`, *optional*): a local `bpe_simple_vocab_16e6.txt.gz`; by default it is fetched once from the
            `open-clip-torch` wheel on PyPI and cached (see `nuwa_hf.processing.clip_vocabulary`).
        cache_dir (`str`, *optional*): cache folder (default `$NUWA_HF_CACHE` or `~/.cache/nuwa_hf`).
        model_max_length (`int`, defaults to 77): the paper's text length.
        download (`bool`, defaults to `True`): allow the one-time download.

    Returns:
        `CLIPTokenizer` with 49,408 tokens; `<|startoftext|>` = 49406, `<|endoftext|>` = 49407 (also padding).
    """
    path = vocab_path if vocab_path is not None else clip_vocabulary_path(cache_dir, download=download)
    merges = read_clip_merges(path)
    # vocab= / merges= must be passed as objects: CLIPTokenizer silently ignores vocab_file= / merges_file=.
    tokenizer = CLIPTokenizer(vocab=_clip_layout_vocabulary(merges), merges=merges, model_max_length=model_max_length)
    if len(tokenizer) != CLIP_VOCAB_SIZE:
        raise ValueError(f"Built a CLIP tokenizer with {len(tokenizer)} tokens instead of {CLIP_VOCAB_SIZE}.")
    return tokenizer


def train_caption_tokenizer(
    captions: Iterable[str],
    vocab_size: int = 1024,
    model_max_length: int = 32,
    min_frequency: int = 2,
) -> CLIPTokenizer:
    """
    Train a small BPE on captions for tiny NUWA models, with everything else exactly as in the paper's tokenizer.

    The result is a `CLIPTokenizer` (a `PreTrainedTokenizerFast`): same lower-casing, same word splitting, same
    byte-level symbols with `</w>` word ends, same `<|startoftext|>` / `<|endoftext|>` tokens (the latter also pads),
    same vocabulary layout; only the merges are learned from `captions`. All 256 bytes stay in the vocabulary, so no
    input is ever unknown. The captions' words are recorded as the init argument `caption_words` (sorted, as
    `nuwa_hf.processing.vocabulary.caption_words` splits them), which `save_pretrained` writes into
    `tokenizer_config.json` and `from_pretrained` reads back: the vocabulary functions (which prompt words the model
    knows) read it, since a BPE also holds word endings ("an" of "cyan") as whole tokens.

    Args:
        captions (`Iterable[str]`): the training corpus (e.g. the captions of the training set).
        vocab_size (`int`, defaults to 1024): at most this many tokens (514 byte symbols and special tokens, plus the
            merges); fewer when the corpus has fewer merges occurring `min_frequency` times.
        model_max_length (`int`, defaults to 32): longest encoding, start and end tokens included.
        min_frequency (`int`, defaults to 2): a pair must occur this often to become a merge.

    Returns:
        `CLIPTokenizer`; save it with `save_pretrained`, load it with `AutoTokenizer.from_pretrained`.
    """
    if isinstance(captions, str):
        raise TypeError("`captions` must be an iterable of strings (a corpus), not a single string.")
    corpus = list(captions)
    bad = [i for i, caption in enumerate(corpus) if not isinstance(caption, str)]
    if bad:
        raise TypeError(f"Every caption must be a str; item {bad[0]} is {type(corpus[bad[0]]).__name__}.")
    if not any(caption.strip() for caption in corpus):
        raise ValueError("Cannot train a tokenizer on an empty corpus: give at least one non-empty caption.")
    fixed = 2 * 256 + 2
    if vocab_size <= fixed:
        raise ValueError(
            f"`vocab_size` must exceed {fixed} (256 byte symbols, the same with `</w>`, 2 special tokens), got {vocab_size}."
        )
    if model_max_length < 3:
        raise ValueError(f"`model_max_length` must be at least 3 (start, one token, end), got {model_max_length}.")

    # Borrow the paper tokenizer's normaliser and word splitter so that training sees exactly what encoding will.
    reference = CLIPTokenizer().backend_tokenizer
    trainable = Tokenizer(BPE(end_of_word_suffix="</w>"))
    trainable.normalizer = reference.normalizer
    trainable.pre_tokenizer = reference.pre_tokenizer
    trainer = BpeTrainer(
        # The trainer's own count includes its alphabet; ask for enough and keep the most frequent merges below.
        vocab_size=vocab_size + 2 * 256,
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    trainable.train_from_iterator(corpus, trainer=trainer)
    learned = json.loads(trainable.to_str())["model"]["merges"]
    merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in learned]
    merges = merges[: vocab_size - fixed]
    return CLIPTokenizer(vocab=_clip_layout_vocabulary(merges), merges=merges, model_max_length=model_max_length,
                         **{CAPTION_WORDS_FIELD: caption_words(corpus)})
