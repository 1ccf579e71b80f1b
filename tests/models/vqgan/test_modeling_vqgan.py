"""NuwaVQGAN: pixels <-> index grids, video frame by frame, save/load, and the errors users meet first."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from diffusers import VQModel

from nuwa_hf.models.vqgan import NuwaVQGAN


@pytest.fixture(scope="module")
def vqgan():
    torch.manual_seed(0)
    return NuwaVQGAN.tiny().eval()


def random_pixels(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator) * 2 - 1


def test_tiny_preset_is_small_and_codes_32_pixels_to_8_tokens(vqgan):
    parameters = sum(p.numel() for p in vqgan.parameters())
    assert parameters * 4 < 5 * 2**20, "the default tiny model must fit in a few MB"
    assert vqgan.downsample_factor == 4
    assert vqgan.token_grid_size(32, 32) == (8, 8)
    assert vqgan.codebook_size == 256
    assert NuwaVQGAN.tiny(image_size=64, grid_size=8).downsample_factor == 8


def test_pixels_to_tokens_to_pixels_keeps_shapes_and_ranges(vqgan):
    pixels = random_pixels(3, 3, 32, 32)
    tokens = vqgan.encode_to_indices(pixels)
    assert tokens.shape == (3, 8, 8) and tokens.dtype == torch.long
    assert 0 <= int(tokens.min()) and int(tokens.max()) < vqgan.codebook_size
    with torch.no_grad():
        decoded = vqgan.decode_from_indices(tokens)
    assert decoded.shape == (3, 3, 32, 32) and decoded.dtype == torch.float32
    assert float(decoded.min()) >= -1.0 and float(decoded.max()) <= 1.0


def test_non_square_inputs_give_non_square_grids(vqgan):
    tokens = vqgan.encode_to_indices(random_pixels(1, 3, 16, 40))
    assert tokens.shape == (1, 4, 10)
    assert vqgan.decode_from_indices(tokens).shape == (1, 3, 16, 40)


def test_a_video_codes_as_its_frames_whatever_the_chunk_size(vqgan):
    video = random_pixels(2, 5, 3, 32, 32, seed=1)
    tokens = vqgan.encode_video(video, chunk_size=2)
    assert tokens.shape == (2, 5, 8, 8)
    for b in range(2):
        assert torch.equal(tokens[b], vqgan.encode_to_indices(video[b]))
    assert torch.equal(tokens, vqgan.encode_video(video, chunk_size=16))
    with torch.no_grad():
        frames = vqgan.decode_video(tokens, chunk_size=3)
        assert frames.shape == (2, 5, 3, 32, 32)
        torch.testing.assert_close(frames[1], vqgan.decode_from_indices(tokens[1]), rtol=1e-5, atol=1e-5)


def test_save_and_load_round_trip_through_safetensors_and_plain_vqmodel(vqgan, tmp_path):
    vqgan.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    reloaded = NuwaVQGAN.from_pretrained(tmp_path)
    pixels = random_pixels(2, 3, 32, 32, seed=2)
    assert torch.equal(reloaded.encode_to_indices(pixels), vqgan.encode_to_indices(pixels))
    # The folder is a plain diffusers VQModel too: its own quantiser picks the same codes.
    plain = VQModel.from_pretrained(tmp_path)
    with torch.no_grad():
        plain_indices = plain.quantize(plain.encode(pixels).latents)[2][2].view(2, 8, 8)
    assert torch.equal(plain_indices, vqgan.encode_to_indices(pixels))


def test_pickled_weights_are_refused(vqgan, tmp_path):
    vqgan.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "diffusion_pytorch_model.bin").is_file()
    with pytest.raises(OSError, match="safetensors"):
        NuwaVQGAN.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "pixels, error, words",
    [
        (torch.zeros(1, 4, 32, 32), ValueError, "4 channels"),
        (torch.zeros(1, 3, 30, 32), ValueError, "not divisible"),
        (torch.full((1, 3, 32, 32), 255.0), ValueError, "[-1, 1]"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), TypeError, "float"),
        (torch.zeros(3, 32, 32), ValueError, "(B, 3, H, W)"),
    ],
)
def test_bad_pixels_raise_clear_errors(vqgan, pixels, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        vqgan.encode_to_indices(pixels)


def test_bad_token_grids_and_empty_videos_raise_clear_errors(vqgan):
    with pytest.raises(ValueError, match="codebook has 256 codes"):
        vqgan.decode_from_indices(torch.full((1, 8, 8), 256))
    with pytest.raises(TypeError, match="integer indices"):
        vqgan.decode_from_indices(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="no frames"):
        vqgan.encode_video(torch.zeros(1, 0, 3, 32, 32))
    with pytest.raises(ValueError, match="no frames"):
        vqgan.decode_video(torch.zeros(1, 0, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="chunk_size"):
        vqgan.encode_video(torch.zeros(1, 2, 3, 32, 32), chunk_size=-1)
    with pytest.raises(ValueError, match="4 channels"):
        vqgan.encode_video(torch.zeros(1, 2, 4, 32, 32))


def test_paper_preset_geometry():
    config = NuwaVQGAN.paper.__func__  # the preset builds a 70M-parameter model; check its arithmetic on a tiny twin
    twin = NuwaVQGAN.paper(
        block_out_channels=(8, 8, 8, 8, 8), latent_channels=8, vq_embed_dim=8, norm_num_groups=4, layers_per_block=1
    )
    assert config is not None
    assert twin.downsample_factor == 16
    assert twin.token_grid_size(336, 336) == (21, 21)
    assert twin.codebook_size == 12288
    assert twin.encode_to_indices(random_pixels(1, 3, 336, 336)).shape == (1, 21, 21)
