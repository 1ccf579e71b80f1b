"""Kept pixels stay kept: an editing task returns the input's own pixels outside the edited region and in the given
frames, as an image editor (or diffusers' inpainting overlay) does. NUWA edits tokens: outside the region the tokens
are the input's, but the VQ-GAN's decoding of them is a reconstruction (a tinted stroke, a brownish black). The
region is pasted back over the original with a seam of ``seam`` pixels on each side of its edge blended (a box blur
of the region's pixel mask), so no hard edge shows; every pixel farther than ``seam`` from the region is the
original exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_SEAM = 2  # pixels on each side of the region's edge (a token is 4 pixels in the shipped model)


def region_alpha(token_mask: torch.Tensor, size: tuple[int, int], seam: int = DEFAULT_SEAM) -> torch.Tensor:
    """A token mask ``(h, w)`` (True = generated) -> per-pixel weight of the generated pixels ``(H, W)`` in [0, 1]:
    1 inside the region farther than ``seam`` from its edge, 0 outside farther than ``seam``, a ramp in between."""
    mask = token_mask.to(torch.float32)[None, None]
    alpha = F.interpolate(mask, size=size, mode="nearest")
    if seam > 0:
        alpha = F.avg_pool2d(alpha, 2 * seam + 1, stride=1, padding=seam, count_include_pad=False)
    return alpha[0, 0]


def keep_original_pixels(pixels: torch.Tensor, original: torch.Tensor, *, token_masks: torch.Tensor = None,
                         known_frames: int = 0, output_from_frame: int = 0, seam: int = DEFAULT_SEAM) -> torch.Tensor:
    """Paste the original pixels back into decoded outputs.

    Args:
        pixels: decoded outputs ``(B, n, T, 3, H, W)`` in [-1, 1] (n outputs per input; frames from
            ``output_from_frame``).
        original: the inputs' own pixels ``(B, F, 3, H, W)`` in [-1, 1], as the processor prepared them.
        token_masks: for region edits, ``(B, h, w)`` True where tokens were generated (frame 0 is the image).
        known_frames: for videos with given frames, how many leading frames were given (kept whole).
        output_from_frame: the first frame the outputs hold.

    Returns:
        ``pixels`` with the kept parts replaced (a new tensor).
    """
    out = pixels.clone()
    original = original.to(device=pixels.device, dtype=pixels.dtype)
    if token_masks is not None:
        for index in range(pixels.shape[0]):
            alpha = region_alpha(token_masks[index], tuple(pixels.shape[-2:]), seam).to(pixels.device, pixels.dtype)
            out[index, :, 0] = alpha * pixels[index, :, 0] + (1 - alpha) * original[index, 0][None]
    for frame in range(output_from_frame, min(known_frames, output_from_frame + pixels.shape[2])):
        out[:, :, frame - output_from_frame] = original[:, frame][:, None]
    return out
