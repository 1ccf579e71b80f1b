"""Vector quantisation for the NUWA VQ-GANs: nearest-code lookup with separate codebook and commitment losses.

diffusers' `VectorQuantizer.forward` returns one blended loss, and in its default "legacy" mode the commitment weight
beta multiplies the codebook term instead of the commitment term. Training needs the two terms apart (equation 4 of
the NUWA paper: ||sg[E(I)] - B[z]||^2 + beta ||E(I) - sg[B[z]]||^2), so the lookup is done here against the same
`nn.Embedding` that diffusers stores, which keeps checkpoints interchangeable with `VQModel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class QuantizerOutput:
    """
    Result of quantising a latent grid.

    Attributes:
        quantized (`torch.FloatTensor` of shape `(N, D, h, w)`):
            The chosen codes, with a straight-through gradient to the latents.
        indices (`torch.LongTensor` of shape `(N, h, w)`):
            Index of the nearest code for every grid cell.
        codebook_loss (`torch.FloatTensor`, scalar):
            `mean((sg[latents] - codes)^2)`: moves the codes toward the encoder outputs.
        commitment_loss (`torch.FloatTensor`, scalar):
            `mean((latents - sg[codes])^2)`: keeps the encoder close to its codes (weighted by beta by the caller).
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor


def nearest_code_indices(latents: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """
    Index of the nearest codebook vector (squared Euclidean distance) for every cell of a latent grid.

    Args:
        latents (`torch.FloatTensor` of shape `(N, D, h, w)`): pre-quantisation latents.
        codebook (`torch.FloatTensor` of shape `(K, D)`): the codebook vectors.

    Returns:
        `torch.LongTensor` of shape `(N, h, w)`.
    """
    n, d, h, w = latents.shape
    flat = latents.permute(0, 2, 3, 1).reshape(-1, d)
    # ||z||^2 is the same for every code, so argmin over ||e||^2 - 2 z.e equals argmin over ||z - e||^2 and
    # avoids cdist's sqrt; the matmul is what dominates either way.
    scores = codebook.pow(2).sum(dim=1)[None, :] - 2.0 * flat @ codebook.t()
    return scores.argmin(dim=1).view(n, h, w)


def quantize(latents: torch.Tensor, codebook: torch.Tensor) -> QuantizerOutput:
    """
    Replace every latent vector by its nearest code (equations 2-3 of the NUWA paper).

    Args:
        latents (`torch.FloatTensor` of shape `(N, D, h, w)`): encoder output after `quant_conv`.
        codebook (`torch.FloatTensor` of shape `(K, D)`): the codebook (`vqmodel.quantize.embedding.weight`).

    Returns:
        [`QuantizerOutput`]
    """
    indices = nearest_code_indices(latents.detach(), codebook)
    codes = F.embedding(indices, codebook).permute(0, 3, 1, 2)
    codebook_loss = F.mse_loss(codes, latents.detach())
    commitment_loss = F.mse_loss(latents, codes.detach())
    # Straight-through estimator: the forward value is the code, the gradient flows to the encoder unchanged.
    quantized = latents + (codes - latents).detach()
    return QuantizerOutput(
        quantized=quantized, indices=indices, codebook_loss=codebook_loss, commitment_loss=commitment_loss
    )


def codebook_usage(indices: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """
    How evenly a batch of token grids uses the codebook.

    Args:
        indices (`torch.LongTensor` of any shape): code indices in `[0, codebook_size)`.
        codebook_size (`int`): number of codes K.

    Returns:
        `dict` with `perplexity` (exp of the entropy of the code histogram: 1 when one code is used, K when all are
        used equally) and `usage` (share of the K codes that occur at least once).
    """
    counts = torch.bincount(indices.reshape(-1).cpu(), minlength=codebook_size).double()
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {"perplexity": float(entropy.exp()), "usage": float((counts > 0).double().mean())}
