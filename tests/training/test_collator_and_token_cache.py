"""NuwaTaskCollator and tokenize_task_dataset: tokens cached once equal tokens computed on the fly; the null condition;
clear errors for batches that cannot be one model call."""

import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk

import nuwa_hf.training.token_cache as token_cache
from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN
from nuwa_hf.training import NuwaTaskCollator, TaskMixtureDataset, tokenize_task_dataset

from nuwa_training_support import TEXT_LENGTH, TEXT_PAD


class WordTokenizer:
    """A stand-in text tokenizer: one id per word, the interface the collator uses."""

    pad_token_id = 0

    def __init__(self):
        self.vocab = {}

    def __call__(self, texts, padding=False, truncation=False, max_length=None, add_special_tokens=True, return_tensors=None):
        rows = [[1] + [self.vocab.setdefault(w, 2 + len(self.vocab)) for w in t.split()] + [39] for t in texts]
        if truncation:
            rows = [r[:max_length] for r in rows]
        if padding == "max_length":
            rows = [r + [self.pad_token_id] * (max_length - len(r)) for r in rows]
        if return_tensors == "pt":
            return {"input_ids": torch.tensor(rows)}
        return {"input_ids": rows}

    def get_vocab(self):
        return dict(self.vocab)


def _raw_world(tmp_path, num=6):
    rng = np.random.default_rng(0)
    ds = Dataset.from_dict({
        "image": [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(num)],
        "text": [f"a {c} digit" for c in ["red", "blue", "green", "red", "blue", "green"][:num]],
        "sketch": [rng.integers(0, 4, (16, 16)).astype(np.int64) for _ in range(num)],
    })
    ds.save_to_disk(str(tmp_path / "raw"))  # on disk, so that map() caches next to it as it does for the worlds
    return load_from_disk(str(tmp_path / "raw")).with_format("numpy", dtype=None)


@pytest.fixture
def tokenizers():
    torch.manual_seed(0)
    vqgan = NuwaVQGAN.tiny(image_size=16, grid_size=4, codebook_size=32, base_channels=16, max_channels=32).eval()
    seg = NuwaSegVQGAN.tiny(num_classes=4, image_size=16, grid_size=4, codebook_size=16, base_channels=16, max_channels=32).eval()
    return vqgan, seg, WordTokenizer()


def test_cached_grids_equal_on_the_fly_grids_and_are_reused(tmp_path, tokenizers, monkeypatch):
    vqgan, seg, words = tokenizers
    raw = _raw_world(tmp_path)
    kwargs = dict(visual_tokenizer=vqgan, sketch_tokenizer=seg, text_tokenizer=words, max_text_length=TEXT_LENGTH, batch_size=4)
    cached = tokenize_task_dataset(raw, "s2i", **kwargs)
    assert cached.column_names == ["labels", "sketch_tokens"]
    assert cached[0]["labels"].shape == (1, 4, 4) and cached[0]["labels"].dtype == np.int32

    expected = vqgan.encode_to_indices(torch.from_numpy(np.stack(raw["image"])).float().div(127.5).sub(1).permute(0, 3, 1, 2))
    assert torch.equal(torch.from_numpy(np.stack(cached["labels"]))[:, 0].long(), expected)

    collator = NuwaTaskCollator(visual_tokenizer=vqgan, sketch_tokenizer=seg, max_text_length=TEXT_LENGTH)
    from_cache = collator(list(TaskMixtureDataset({"s2i": cached})))
    on_the_fly = collator(list(TaskMixtureDataset({"s2i": raw})))
    assert torch.equal(from_cache["labels"], on_the_fly["labels"])
    assert torch.equal(from_cache["sketch_tokens"], on_the_fly["sketch_tokens"])

    # Same inputs again: the Arrow cache answers; only the one-example shape probe runs the VQ-GAN.
    calls = []
    original = token_cache.encode_task_batch
    monkeypatch.setattr(token_cache, "encode_task_batch", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = tokenize_task_dataset(raw, "s2i", **kwargs)
    assert len(calls) == 1 and again.cache_files == cached.cache_files
    # Other VQ-GAN weights: recomputed, not served from the stale cache.
    with torch.no_grad():
        vqgan.quantize.embedding.weight.mul_(-1)
    recomputed = tokenize_task_dataset(raw, "s2i", **kwargs)
    assert len(calls) > 2 and recomputed.cache_files != cached.cache_files


def test_text_condition_dropout_gives_an_all_padding_prompt(tmp_path, tokenizers):
    vqgan, _, words = tokenizers
    raw = _raw_world(tmp_path, num=4)
    mixture = TaskMixtureDataset({"t2i": tokenize_task_dataset(raw, "t2i", visual_tokenizer=vqgan, text_tokenizer=words, max_text_length=TEXT_LENGTH)})
    collator = NuwaTaskCollator(text_tokenizer=words, max_text_length=TEXT_LENGTH)
    batch = collator([mixture[(0, False)], mixture[(1, True)], mixture[(2, False)]])
    assert batch["task"] == "t2i" and batch["input_ids"].shape == (3, TEXT_LENGTH)
    assert (batch["input_ids"][1] == TEXT_PAD).all()
    assert batch["input_ids"][0, 0] == 1 and (batch["input_ids"][0] != TEXT_PAD).sum() == 5  # <start> a red digit <end>


def test_dropped_sketch_batch_becomes_a_none_condition_batch(token_datasets):
    mixture = TaskMixtureDataset(token_datasets)
    collator = NuwaTaskCollator(max_text_length=TEXT_LENGTH)
    s2i = mixture.task_range("s2i")
    kept = collator([mixture[(s2i[0], False)], mixture[(s2i[1], False)]])
    dropped = collator([mixture[(s2i[0], True)], mixture[(s2i[1], True)]])
    assert kept["sketch_tokens"].shape == (2, 1, 4, 4)
    assert "sketch_tokens" not in dropped and "input_ids" not in dropped
    assert torch.equal(kept["labels"], dropped["labels"])


def test_batches_that_cannot_be_one_model_call_are_refused(token_datasets):
    mixture = TaskMixtureDataset(token_datasets)
    collator = NuwaTaskCollator(max_text_length=TEXT_LENGTH)
    with pytest.raises(ValueError, match="mixes tasks"):
        collator([mixture[0], mixture[len(mixture) - 1]])
    odd = TaskMixtureDataset({"v2v": Dataset.from_dict({"labels": [np.zeros((2, 4, 4), np.int32), np.zeros((1, 4, 4), np.int32)]}).with_format("numpy")})
    with pytest.raises(ValueError, match="different shapes"):
        collator([odd[0], odd[1]])
    with pytest.raises(ValueError, match="needs a VQ-GAN|need a VQ-GAN"):
        NuwaTaskCollator()([{"task": "v2v", "video": np.zeros((2, 16, 16, 3), np.uint8)}])


def test_a_users_image_folder_at_another_size_is_not_served_stale_grids(tmp_path, tokenizers):
    import json

    from PIL import Image

    from nuwa_hf.data import load_image_folder

    vqgan, _, words = tokenizers
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    with open(folder / "metadata.jsonl", "w") as handle:
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
            handle.write(json.dumps({"file_name": f"{i}.png", "text": f"photo {i}"}) + "\n")
    kwargs = dict(visual_tokenizer=vqgan, text_tokenizer=words, max_text_length=TEXT_LENGTH)
    small = tokenize_task_dataset(load_image_folder(folder, size=16), "t2i", **kwargs)
    large = tokenize_task_dataset(load_image_folder(folder, size=32), "t2i", **kwargs)
    assert small[0]["labels"].shape == (1, 4, 4) and large[0]["labels"].shape == (1, 8, 8)
