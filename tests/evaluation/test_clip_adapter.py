"""Real CLIP weights on disk plug into the CLIPSIM metric. A tiny random CLIPModel stands in for them here."""

import string
from pathlib import Path

import evaluate
import numpy as np
import pytest
import torch

from nuwa_hf.evaluation import LocalClipScorer, clip_similarity
from nuwa_hf.evaluation.scorers.clip_adapter import CLIP_MEAN, CLIP_STD


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder = tmp_path_factory.mktemp("tiny_clip")
    vocabulary = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in string.ascii_lowercase:
        vocabulary.setdefault(letter, len(vocabulary))
        vocabulary.setdefault(letter + "</w>", len(vocabulary))
    CLIPTokenizer(vocab=vocabulary, merges=[]).save_pretrained(folder)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocabulary), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    return folder


def test_similarity_is_the_models_own_cosine(clip_folder):
    scorer = LocalClipScorer(clip_folder)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    texts = ["a red digit", "moving up"]
    pixels = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    tokens = scorer.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        output = scorer.model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                              pixel_values=pixels)
    expected = (output.logits_per_image / scorer.model.logit_scale.exp()).diagonal()
    assert torch.allclose(scorer.similarity(images, texts), expected, atol=1e-5)
    result = clip_similarity(images, texts, scorer)
    assert "external" in result["clipsim_scorer"] and result["clipsim_name"].startswith("CLIPSIM-style (CLIP from")


def test_videos_average_frames_and_module_takes_a_path(clip_folder):
    frames = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    videos = np.stack([frames, frames[::-1]])
    texts = ["a", "b"]
    per_frame = LocalClipScorer(clip_folder).similarity(np.concatenate([frames, frames[::-1]]), ["a"] * 3 + ["b"] * 3)
    video_scores = LocalClipScorer(clip_folder, visual="video").similarity(videos, texts)
    assert torch.allclose(video_scores, per_frame.view(2, 3).mean(dim=1), atol=1e-5)
    module = evaluate.load(str(Path(__file__).resolve().parents[2] / "metrics" / "clipsim"), "video")
    result = module.compute(predictions=videos, references=texts, clip_model_path=str(clip_folder))
    assert result["clipsim"] == pytest.approx(float(video_scores.mean()), abs=1e-5)


def test_pickled_weights_are_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="safetensors"):
        LocalClipScorer(tmp_path)
