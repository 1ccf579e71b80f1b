"""finetune_vqgan_decoder: the decoder learns, the tokens do not move, the weight map steers what it learns."""

import pytest
import torch

from nuwa_hf.models.vqgan import NuwaVQGAN
from nuwa_hf.training.vqgan.decoder_finetuning import finetune_vqgan_decoder


def tiny_vqgan(seed=0):
    torch.manual_seed(seed)
    return NuwaVQGAN.tiny(image_size=16, grid_size=4, codebook_size=16, base_channels=16, max_channels=32).eval()


def pictures(n=24, seed=0):
    """Flat grey backgrounds with a bright red square (the 'shape') at a random place; its mask."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.full((n, 3, 16, 16), -0.2)
    mask = torch.zeros(n, 16, 16)
    for i in range(n):
        top, left = torch.randint(0, 10, (2,), generator=g).tolist()
        pixels[i, :, top:top + 6, left:left + 6] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]
        mask[i, top:top + 6, left:left + 6] = 1
    return pixels, mask


def test_only_the_decoder_changes_and_every_token_keeps_its_index():
    vqgan = tiny_vqgan()
    pixels, mask = pictures()
    before = {name: tensor.clone() for name, tensor in vqgan.state_dict().items()}
    tokens_before = vqgan.encode_to_indices(pixels)
    finetune_vqgan_decoder(vqgan, pixels, 1 + 4 * mask, steps=5, batch_size=8)
    after = vqgan.state_dict()
    changed = {name for name in after if not torch.equal(after[name], before[name])}
    assert changed and all(name.startswith(("decoder.", "post_quant_conv.")) for name in changed), changed
    assert torch.equal(vqgan.encode_to_indices(pixels), tokens_before)
    assert not any(p.requires_grad for p in vqgan.parameters()) and not vqgan.training


def test_the_loss_falls_and_the_weighted_pixels_are_learnt_better():
    pixels, mask = pictures()

    def shape_error(weight):
        vqgan = tiny_vqgan()
        result = finetune_vqgan_decoder(vqgan, pixels, 1 + (weight - 1) * mask, steps=60, batch_size=12,
                                        learning_rate=2e-3, log_every=20)
        with torch.no_grad():
            error = (vqgan.decode_from_indices(vqgan.encode_to_indices(pixels)) - pixels).abs().mean(1)
        return result, float(error[mask.bool()].mean())

    plain, plain_error = shape_error(1.0)
    weighted, weighted_error = shape_error(10.0)
    assert plain.losses[-1] < plain.losses[0] and plain.steps == 60 and len(plain.losses) == 4
    assert weighted_error < plain_error, (weighted_error, plain_error)


@pytest.mark.parametrize("bad, message", [
    (dict(pixels=torch.zeros(2, 1, 16, 16)), "(N, 3, H, W)"),
    (dict(pixel_weights=torch.ones(2, 8, 8)), "pixel_weights must be (N, H, W)"),
    (dict(steps=0), "steps must be a positive int"),
])
def test_bad_arguments_name_the_problem(bad, message):
    args = dict(pixels=torch.zeros(2, 3, 16, 16), pixel_weights=torch.ones(2, 16, 16), steps=1)
    args.update(bad)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        finetune_vqgan_decoder(tiny_vqgan(), args.pop("pixels"), args.pop("pixel_weights"), **args)
