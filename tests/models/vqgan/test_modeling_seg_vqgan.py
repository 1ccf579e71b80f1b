"""NuwaSegVQGAN: class maps one-hot in, token grids, class logits out."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from diffusers import VQModel

from nuwa_hf.models.vqgan import NuwaSegVQGAN


NUM_CLASSES = 5


@pytest.fixture(scope="module")
def seg():
    torch.manual_seed(0)
    return NuwaSegVQGAN.tiny(num_classes=NUM_CLASSES).eval()


def random_maps(*shape, seed=0):
    return torch.randint(0, NUM_CLASSES, shape, generator=torch.Generator().manual_seed(seed))


def test_one_hot_has_one_channel_per_class(seg):
    maps = random_maps(2, 32, 32)
    one_hot = seg.one_hot(maps)
    assert one_hot.shape == (2, NUM_CLASSES, 32, 32)
    assert torch.equal(one_hot.sum(dim=1), torch.ones(2, 32, 32))
    assert torch.equal(one_hot.argmax(dim=1), maps)


def test_class_maps_to_tokens_to_logits_and_class_maps(seg):
    maps = random_maps(3, 32, 32)
    tokens = seg.encode_to_indices(maps)
    assert tokens.shape == (3, 8, 8) and tokens.dtype == torch.long
    with torch.no_grad():
        logits = seg.decode_to_logits(tokens)
    assert logits.shape == (3, NUM_CLASSES, 32, 32)
    decoded = seg.decode_to_class_map(tokens)
    assert decoded.shape == (3, 32, 32) and decoded.dtype == torch.long
    assert torch.equal(decoded, logits.argmax(dim=1))


def test_video_sketches_code_as_their_frames(seg):
    video = random_maps(2, 4, 32, 32, seed=1)
    tokens = seg.encode_video(video, chunk_size=3)
    assert tokens.shape == (2, 4, 8, 8)
    assert torch.equal(tokens[1], seg.encode_to_indices(video[1]))
    maps = seg.decode_video_to_class_map(tokens, chunk_size=2)
    assert maps.shape == (2, 4, 32, 32)
    assert torch.equal(maps[0], seg.decode_to_class_map(tokens[0]))
    with torch.no_grad():
        assert seg.decode_video_to_logits(tokens).shape == (2, 4, NUM_CLASSES, 32, 32)


def test_save_and_load_keep_the_number_of_classes(seg, tmp_path):
    seg.save_pretrained(tmp_path)
    reloaded = NuwaSegVQGAN.from_pretrained(tmp_path)
    assert reloaded.num_classes == NUM_CLASSES
    maps = random_maps(2, 32, 32, seed=2)
    assert torch.equal(reloaded.encode_to_indices(maps), seg.encode_to_indices(maps))
    assert VQModel.from_pretrained(tmp_path).config.in_channels == NUM_CLASSES


def test_bad_sketches_raise_clear_errors(seg):
    with pytest.raises(ValueError, match=r"num_classes=5"):
        seg.encode_to_indices(torch.full((1, 32, 32), NUM_CLASSES))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        seg.encode_to_indices(torch.full((1, 32, 32), -1))
    with pytest.raises(TypeError, match="class-index maps"):
        seg.encode_to_indices(seg.one_hot(random_maps(1, 32, 32)))
    with pytest.raises(ValueError, match="not divisible"):
        seg.encode_to_indices(random_maps(1, 30, 32))
    with pytest.raises(ValueError, match="no frames"):
        seg.encode_video(torch.zeros(1, 0, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match="must equal `num_classes`"):
        NuwaSegVQGAN(num_classes=4, in_channels=3)
    with pytest.raises(ValueError, match="num_classes"):
        NuwaSegVQGAN(num_classes=1)
