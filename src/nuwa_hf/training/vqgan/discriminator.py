"""The patch discriminator of VQ-GAN training (a PatchGAN in the style of pix2pix / taming-transformers).

It scores overlapping patches rather than whole images, which pushes the decoder toward locally realistic texture
while the reconstruction loss keeps the global layout. Saved and loaded like any diffusers model (safetensors).
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class NuwaPatchDiscriminator(ModelMixin, ConfigMixin):
    r"""
    Convolutional patch discriminator: `(N, C, H, W)` images in `[-1, 1]` (or class probabilities) -> `(N, 1, H', W')`
    real/fake logits, one per receptive-field patch.

    Args:
        in_channels (`int`, defaults to 3): image channels (the number of classes for sketches).
        base_channels (`int`, defaults to 64): width of the first layer; doubles per layer up to 8x.
        num_layers (`int`, defaults to 3): stride-2 layers; each halves the resolution (use 2 for 32x32 inputs).
        norm_num_groups (`int`, defaults to 8): GroupNorm groups. GroupNorm instead of taming's BatchNorm keeps the
            real and the fake batch from sharing statistics and needs no synchronisation across processes.
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3, norm_num_groups: int = 8):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        channels = base_channels
        for index in range(1, num_layers + 1):
            next_channels = base_channels * min(2**index, 8)
            # The last block keeps the resolution: it widens the receptive field without shrinking the patch map.
            stride = 2 if index < num_layers else 1
            layers += [
                nn.Conv2d(channels, next_channels, kernel_size=4, stride=stride, padding=1, bias=False),
                nn.GroupNorm(min(norm_num_groups, next_channels), next_channels),
                nn.LeakyReLU(0.2),
            ]
            channels = next_channels
        layers.append(nn.Conv2d(channels, 1, kernel_size=4, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # DCGAN initialisation, as in pix2pix and taming: small weights keep the early logits near zero.
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.GroupNorm):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """`(N, C, H, W)` -> patch logits `(N, 1, H', W')`."""
        return self.layers(images)
