"""Fine-tuning a trained VQ-GAN's decoder alone, with its encoder and codebook frozen.

Why: a NUWA model is trained on the token grids its VQ-GAN's encoder and codebook produce. Retraining the whole VQ-GAN
changes what every token means, so NUWA would have to be trained again from the start. The decoder only turns tokens
back into pixels: it can be improved at any time and every NUWA trained on the tokens keeps working, because
`encode_to_indices` is unchanged bit for bit (tested).

What it is for: the default checkpoint's VQ-GAN was trained mostly on digits on black. Its decoder draws the scene
world's coloured shapes as faint blobs, and shapes cover ~12% of a scene's pixels, so the plain mean loss hardly sees
them. Here the loss weights the pixels that a per-pixel weight map marks (the shapes of the scene world's exact class
maps). Digit frames in every batch keep the decoder's digits.

Loss per pixel: ``w * (|x_hat - x| + (x_hat - x)^2)``, normalised by the batch's mean weight. The codes are looked up
once (no gradient reaches the encoder or the codebook).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from ...models.vqgan.modeling_vqgan import NuwaVQGAN


@dataclass
class DecoderFinetuningResult:
    """
    Attributes:
        steps (`int`): optimisation steps taken.
        seconds (`float`): wall time.
        losses (`list[float]`): the weighted loss every `log_every` steps (first and last included).
    """

    steps: int
    seconds: float
    losses: list = field(default_factory=list)


def finetune_vqgan_decoder(
    vqgan: NuwaVQGAN,
    pixels: torch.Tensor,
    pixel_weights: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    learning_rate: float = 3e-4,
    seed: int = 0,
    log_every: int = 100,
) -> DecoderFinetuningResult:
    """
    Train `vqgan.decoder` and `vqgan.post_quant_conv` in place; the encoder, `quant_conv` and the codebook are frozen.

    Args:
        vqgan ([`NuwaVQGAN`]): a trained VQ-GAN (changed in place, left in eval mode).
        pixels (`torch.FloatTensor` of shape `(N, 3, H, W)`): training frames in `[-1, 1]`, every kind of picture
            the decoder must keep drawing (e.g. scenes and digits).
        pixel_weights (`torch.FloatTensor` of shape `(N, H, W)`): loss weight of every pixel (1 = plain; e.g.
            `1 + (w - 1) * shape_mask` to weight the shapes w times).
        steps (`int`): optimisation steps (Adam, constant learning rate).
        batch_size (`int`): frames per step, drawn at random with `seed`.

    Returns:
        [`DecoderFinetuningResult`].
    """
    vqgan._check_pixels(pixels, "pixels", "(N, 3, H, W)", channel_dim=1)  # the VQ-GAN's own rule for its inputs
    if pixel_weights.shape != (pixels.shape[0], pixels.shape[2], pixels.shape[3]):
        raise ValueError(f"pixel_weights must be (N, H, W) = {(pixels.shape[0], *pixels.shape[2:])} to match the "
                         f"pixels; got {tuple(pixel_weights.shape)}.")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}.")
    started = time.time()
    for parameter in vqgan.parameters():
        parameter.requires_grad_(False)
    trained = list(vqgan.decoder.parameters()) + list(vqgan.post_quant_conv.parameters())
    for parameter in trained:
        parameter.requires_grad_(True)
    vqgan.eval()
    with torch.no_grad():  # the codes never change: look them up once
        codes = torch.cat([vqgan.quantize_latents(vqgan.encode_latents(pixels[i:i + 256])).quantized
                           for i in range(0, len(pixels), 256)])
    optimizer = torch.optim.Adam(trained, lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    vqgan.decoder.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(pixels), (batch_size,), generator=generator)
        error = vqgan.decode_quantized(codes[index]) - pixels[index]
        weight = pixel_weights[index][:, None].to(error.dtype)
        loss = ((error.abs() + error.pow(2)) * weight).mean() / weight.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == 1 or step == steps or step % log_every == 0:
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"The decoder fine-tuning loss is {value} at step {step}: lower the "
                                         f"learning rate ({learning_rate}).")
            losses.append(round(value, 5))
    vqgan.eval()
    for parameter in trained:
        parameter.requires_grad_(False)
    return DecoderFinetuningResult(steps=steps, seconds=round(time.time() - started, 1), losses=losses)
