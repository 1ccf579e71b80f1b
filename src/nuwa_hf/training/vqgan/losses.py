"""Losses of VQ-GAN training beyond the quantiser's: adversarial losses, VQ-GAN's adaptive weight, perceptual loss.

NUWA equation 5 adds a perceptual loss ||CNN(I) - CNN(I_hat)||^2 and a GAN loss to the VQ-VAE objective. No
perceptual network (VGG / LPIPS) can be downloaded on this project's machines, so [`PerceptualLoss`] wraps whatever
frozen feature extractor the user has on disk.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """`mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat)))`, halved as in taming-transformers."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def non_saturating_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """`-log D(x) - log(1 - D(x_hat))` (the paper's equation 5 form), halved."""
    return 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """`-mean(D(x_hat))`."""
    return -fake_logits.mean()


def non_saturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """`-log D(x_hat)`."""
    return F.softplus(-fake_logits).mean()


ADVERSARIAL_LOSSES = {
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
    "non_saturating": (non_saturating_generator_loss, non_saturating_discriminator_loss),
}


def adaptive_adversarial_weight(
    reconstruction_loss: torch.Tensor,
    generator_loss: torch.Tensor,
    last_layer_weight: torch.Tensor,
    max_weight: float = 1e4,
    eps: float = 1e-4,
) -> torch.Tensor:
    """
    VQ-GAN's adaptive weight lambda = ||grad_L rec|| / (||grad_L gan|| + eps), with L the decoder's last layer.

    It scales the adversarial term so that its gradient at the output layer is as large as the reconstruction
    term's, which keeps the GAN from swamping (or vanishing beside) the reconstruction as training moves on.

    Args:
        reconstruction_loss, generator_loss (`torch.FloatTensor`, scalar): losses still attached to the graph.
        last_layer_weight (`torch.nn.Parameter`): weight of the decoder's output convolution.

    Returns:
        `torch.FloatTensor`, scalar, detached, in `[0, max_weight]`.
    """
    reconstruction_grad = torch.autograd.grad(reconstruction_loss, last_layer_weight, retain_graph=True)[0]
    generator_grad = torch.autograd.grad(generator_loss, last_layer_weight, retain_graph=True)[0]
    weight = reconstruction_grad.norm() / (generator_grad.norm() + eps)
    return weight.clamp(0.0, max_weight).detach()


class PerceptualLoss(nn.Module):
    r"""
    Feature-matching loss with a frozen, user-supplied backbone: mean over layers of the squared distance between
    channel-normalised features of the input and the reconstruction (LPIPS without its learned per-channel weights).

    Args:
        backbone (`torch.nn.Module`): maps `(N, 3, H, W)` normalised images to a tensor, a list/tuple of tensors, or a
            `transformers` output with `feature_maps` or `hidden_states` (e.g. `AutoBackbone` or
            `AutoModel.from_pretrained(local_dir, use_safetensors=True)` with `output_hidden_states=True`). It is frozen
            and put in eval mode.
        image_mean, image_std (`Sequence[float]`): normalisation the backbone expects, applied to `[0, 1]` images
            (defaults: ImageNet statistics).
        input_size (`int`, *optional*): resize (bilinear) to this side first, if the backbone needs a fixed size.
        call_kwargs (`dict`, *optional*): extra keyword arguments for every backbone call
            (e.g. `{"output_hidden_states": True}`).
    """

    def __init__(
        self,
        backbone: nn.Module,
        image_mean: Sequence[float] = (0.485, 0.456, 0.406),
        image_std: Sequence[float] = (0.229, 0.224, 0.225),
        input_size: int | None = None,
        call_kwargs: dict | None = None,
    ):
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"`backbone` must be a torch.nn.Module, got {type(backbone).__name__}.")
        self.backbone = backbone.eval().requires_grad_(False)
        self.register_buffer(
            "image_mean", torch.tensor(image_mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.register_buffer(
            "image_std", torch.tensor(image_std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )
        self.input_size = input_size
        self.call_kwargs = dict(call_kwargs or {})

    def train(self, mode: bool = True) -> "PerceptualLoss":
        # The backbone stays in eval mode: its batch-norm statistics must not drift toward the training images.
        super().train(mode)
        self.backbone.eval()
        return self

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        images = ((images + 1.0) / 2.0 - self.image_mean) / self.image_std
        if self.input_size is not None:
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        output = self.backbone(images, **self.call_kwargs)
        for name in ("feature_maps", "hidden_states"):
            value = getattr(output, name, None)
            if value is None and isinstance(output, dict):
                value = output.get(name)
            if value is not None:
                output = value
                break
        features = [output] if isinstance(output, torch.Tensor) else list(output)
        if not features or not all(isinstance(f, torch.Tensor) for f in features):
            raise TypeError(
                "The perceptual backbone must return a tensor, a list of tensors, or an output with `feature_maps` / "
                f"`hidden_states`; got {type(output).__name__}."
            )
        return features

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            reconstruction, target (`torch.FloatTensor` of shape `(N, 3, H, W)`): images in `[-1, 1]`.

        Returns:
            `torch.FloatTensor`, scalar.
        """
        with torch.no_grad():
            target_features = self._features(target)
        losses = []
        for rec, tgt in zip(self._features(reconstruction), target_features):
            # Unit-normalise along channels (dim 1 for conv maps, last dim for token sequences) so that every layer
            # counts alike whatever its scale.
            dim = 1 if rec.ndim == 4 else -1
            losses.append((F.normalize(rec, dim=dim) - F.normalize(tgt, dim=dim)).pow(2).sum(dim=dim).mean())
        return torch.stack(losses).mean()
