"""NUWA's visual tokenizer for images and video frames: a VQ-GAN built on diffusers' `VQModel`.

`VQModel` is the taming-transformers VQ-GAN network (the one NUWA uses, section 3.1 of the paper). It lacks what a
token-level model needs: pixels -> index grid, index grid -> pixels, and video coded frame by frame. Those are added
here; weights and config stay `VQModel`'s, so a folder written by `NuwaVQGAN.save_pretrained` also loads with
`diffusers.VQModel.from_pretrained`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from diffusers import VQModel

from .quantization import QuantizerOutput, nearest_code_indices, quantize


# A decoded or user-given pixel tensor may overshoot [-1, 1] by rounding; anything beyond this is a scaling mistake
# (for example pixels in [0, 255] or [0, 1] passed without the image processor).
_PIXEL_RANGE_TOLERANCE = 1e-2


def _check_int_tensor(name: str, tensor, expected_ndim: int, layout: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of shape {layout}, got {type(tensor).__name__}.")
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"`{name}` must hold integer indices (torch.long), got dtype {tensor.dtype}.")
    if tensor.ndim != expected_ndim:
        raise ValueError(
            f"`{name}` must have shape {layout}, got a {tensor.ndim}-D tensor of shape {tuple(tensor.shape)}."
        )


class VisualTokenizerMixin:
    """
    Index-grid coding shared by [`NuwaVQGAN`] and [`NuwaSegVQGAN`].

    Expects the `VQModel` sub-modules `encoder`, `quant_conv`, `quantize`, `post_quant_conv`, `decoder` and a `config`
    with `block_out_channels`, `num_vq_embeddings`, `in_channels`, `out_channels` and `norm_type`.
    """

    default_chunk_size = 16

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load a saved model; weights are read from safetensors only (never unpickled). See `ModelMixin.from_pretrained`."""
        kwargs.setdefault("use_safetensors", True)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @property
    def codebook_size(self) -> int:
        """`int`: number of codes K in the codebook; token ids lie in `[0, K)`."""
        return int(self.config.num_vq_embeddings)

    @property
    def downsample_factor(self) -> int:
        """`int`: pixels per token along each side (every encoder block but the last halves the resolution)."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    @property
    def codebook_dim(self) -> int:
        """`int`: dimension of a codebook vector."""
        return int(self.quantize.embedding.weight.shape[1])

    def token_grid_size(self, height: int, width: int) -> tuple[int, int]:
        """
        Token grid `(h, w)` that a `height x width` input codes to.

        Raises:
            ValueError: if a side is not a positive multiple of [`downsample_factor`].
        """
        factor = self.downsample_factor
        if height <= 0 or width <= 0 or height % factor or width % factor:
            raise ValueError(
                f"Input size {height}x{width} is not divisible by the VQ-GAN's down-sampling factor {factor}: resize or "
                f"crop to a multiple of {factor} (the NuwaImageProcessor's crop_size does this)."
            )
        return height // factor, width // factor

    # ----------------------------------------------------------------------------------------------------------------
    # Network steps, without input checks (the public methods check first).

    def quantize_latents(self, latents: torch.Tensor) -> QuantizerOutput:
        """
        Quantise pre-quantisation latents `(N, D, h, w)` against the codebook; see [`quantize`] for the outputs.
        """
        return quantize(latents, self.quantize.embedding.weight)

    def encode_latents(self, inputs: torch.Tensor) -> torch.Tensor:
        """Encoder + `quant_conv`: `(N, C_in, H, W)` float -> pre-quantisation latents `(N, D, H/f, W/f)`."""
        return self.quant_conv(self.encoder(inputs))

    def decode_quantized(self, quantized: torch.Tensor) -> torch.Tensor:
        """`post_quant_conv` + decoder: codes `(N, D, h, w)` -> raw decoder output `(N, C_out, h*f, w*f)`."""
        hidden = self.post_quant_conv(quantized)
        # The "spatial" norm variant of VQModel conditions every decoder norm on the codes themselves.
        return self.decoder(hidden, quantized if self.config.norm_type == "spatial" else None)

    def _inputs_to_indices(self, inputs: torch.Tensor) -> torch.Tensor:
        latents = self.encode_latents(inputs.to(device=self.device, dtype=self.dtype))
        return nearest_code_indices(latents, self.quantize.embedding.weight)

    def _indices_to_outputs(self, indices: torch.Tensor) -> torch.Tensor:
        codes = self.quantize.embedding(indices.to(self.device)).permute(0, 3, 1, 2)
        return self.decode_quantized(codes)

    def _check_token_grid(self, indices, name: str, expected_ndim: int, layout: str) -> None:
        _check_int_tensor(name, indices, expected_ndim, layout)
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(
                f"`{name}` holds ids in [{int(indices.min())}, {int(indices.max())}] but this VQ-GAN's codebook has "
                f"{self.codebook_size} codes: ids must lie in [0, {self.codebook_size})."
            )

    @staticmethod
    def _check_chunk_size(chunk_size: int) -> int:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"`chunk_size` must be a positive int (frames coded at once), got {chunk_size!r}.")
        return chunk_size

    @staticmethod
    def _map_in_chunks(
        fn: Callable[[torch.Tensor], torch.Tensor], frames: torch.Tensor, chunk_size: int
    ) -> torch.Tensor:
        """Apply `fn` to `frames` (N, ...) `chunk_size` items at a time, so memory grows with the chunk, not N."""
        return torch.cat([fn(frames[start : start + chunk_size]) for start in range(0, frames.shape[0], chunk_size)])

    @staticmethod
    def _check_video_length(name: str, videos: torch.Tensor) -> None:
        if videos.shape[1] == 0:
            raise ValueError(f"`{name}` has no frames (T = 0): a video needs at least one frame.")


class NuwaVQGAN(VisualTokenizerMixin, VQModel):
    r"""
    VQ-GAN that turns RGB images and video frames into grids of codebook indices and back (NUWA section 3.1).

    The network and its config are diffusers' [`VQModel`] (all its constructor arguments apply); see
    [`NuwaVQGAN.tiny`] and [`NuwaVQGAN.paper`] for ready-made sizes. Pixels are floats in `[-1, 1]`, channels first;
    [`~nuwa_hf.processing.NuwaImageProcessor`] produces them from PIL images, arrays or video frames.

    Example:

    ```python
    >>> vqgan = NuwaVQGAN.tiny()                     # 32x32 RGB -> 8x8 tokens, 256 codes
    >>> tokens = vqgan.encode_to_indices(pixels)      # (B, 3, 32, 32) -> (B, 8, 8)
    >>> pixels = vqgan.decode_from_indices(tokens)    # (B, 8, 8) -> (B, 3, 32, 32)
    ```
    """

    @classmethod
    def tiny(
        cls,
        image_size: int = 32,
        grid_size: int = 8,
        codebook_size: int = 256,
        codebook_dim: int = 16,
        base_channels: int = 32,
        max_channels: int = 64,
        **kwargs,
    ) -> "NuwaVQGAN":
        """
        A VQ-GAN small enough to train on two CPU cores in minutes (about 1M parameters, 4 MB at the defaults).

        Args:
            image_size (`int`, defaults to 32): side of the square frames it is meant for (stored as `sample_size`).
            grid_size (`int`, defaults to 8): side of the token grid; `image_size / grid_size` must be a power of two.
            codebook_size (`int`, defaults to 256): number of codes K.
            codebook_dim (`int`, defaults to 16): dimension of a code; small codes are used more evenly.
            base_channels, max_channels (`int`): width of the first block; widths double per block up to the max.
            kwargs: any other [`VQModel`] argument, overriding the preset.
        """
        return cls(
            **_preset_kwargs(
                3, image_size, grid_size, codebook_size, codebook_dim, base_channels, max_channels, kwargs
            )
        )

    @classmethod
    def paper(cls, codebook_size: int = 12288, **kwargs) -> "NuwaVQGAN":
        """
        The paper's shape: 336x336 frames -> 21x21 tokens (16x down-sampling), 12,288 codes of dimension 256, the
        taming f16 widths (128, 128, 256, 256, 512) with two residual layers per block. Randomly initialised.
        """
        preset = dict(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 5,
            up_block_types=("UpDecoderBlock2D",) * 5,
            block_out_channels=(128, 128, 256, 256, 512),
            layers_per_block=2,
            latent_channels=256,
            vq_embed_dim=256,
            num_vq_embeddings=codebook_size,
            norm_num_groups=32,
            sample_size=336,
            mid_block_add_attention=True,
        )
        preset.update(kwargs)
        return cls(**preset)

    def _check_pixels(self, pixels, name: str, layout: str, channel_dim: int) -> None:
        if not isinstance(pixels, torch.Tensor):
            raise TypeError(
                f"`{name}` must be a torch.Tensor of shape {layout} in [-1, 1], got {type(pixels).__name__}; "
                "NuwaImageProcessor turns PIL images and arrays into such tensors."
            )
        if not pixels.is_floating_point():
            raise TypeError(
                f"`{name}` must be a float tensor in [-1, 1], got dtype {pixels.dtype}; convert uint8 pixels with "
                "NuwaImageProcessor (or `x / 127.5 - 1`)."
            )
        expected_ndim = len(layout.split(","))
        if pixels.ndim != expected_ndim:
            raise ValueError(f"`{name}` must have shape {layout}, got shape {tuple(pixels.shape)}.")
        channels = pixels.shape[channel_dim]
        if channels != self.config.in_channels:
            raise ValueError(
                f"`{name}` has {channels} channels at dim {channel_dim} (layout {layout}) but this VQ-GAN codes "
                f"{self.config.in_channels}-channel images: convert to RGB (drop alpha, repeat grey) and put channels first."
            )
        self.token_grid_size(pixels.shape[-2], pixels.shape[-1])
        if pixels.numel():
            low, high = float(pixels.min()), float(pixels.max())
            if low < -1 - _PIXEL_RANGE_TOLERANCE or high > 1 + _PIXEL_RANGE_TOLERANCE:
                raise ValueError(
                    f"`{name}` values span [{low:.3g}, {high:.3g}] but must lie in [-1, 1]; map [0, 255] pixels with "
                    "`x / 127.5 - 1` or use NuwaImageProcessor."
                )

    @torch.no_grad()
    def encode_to_indices(self, pixels: torch.Tensor) -> torch.Tensor:
        """
        Code images as token grids.

        Args:
            pixels (`torch.FloatTensor` of shape `(B, 3, H, W)`): images in `[-1, 1]`; `H` and `W` multiples of
                [`downsample_factor`].

        Returns:
            `torch.LongTensor` of shape `(B, H/f, W/f)`: codebook indices, on the model's device.
        """
        self._check_pixels(pixels, "pixels", "(B, 3, H, W)", channel_dim=1)
        return self._inputs_to_indices(pixels)

    def decode_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """
        Reconstruct images from token grids (differentiable w.r.t. the weights; wrap in `torch.no_grad()` to save memory).

        Args:
            indices (`torch.LongTensor` of shape `(B, h, w)`): ids in `[0, codebook_size)`.

        Returns:
            `torch.FloatTensor` of shape `(B, 3, h*f, w*f)`, clamped to `[-1, 1]`.
        """
        self._check_token_grid(indices, "indices", 3, "(B, h, w)")
        return self._indices_to_outputs(indices).clamp(-1.0, 1.0)

    @torch.no_grad()
    def encode_video(self, pixels: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """
        Code videos frame by frame with the image codebook (as the paper does).

        Args:
            pixels (`torch.FloatTensor` of shape `(B, T, 3, H, W)`): frames in `[-1, 1]`.
            chunk_size (`int`, *optional*, defaults to 16): frames pushed through the encoder at once; lower it for long
                or large videos, the result does not depend on it.

        Returns:
            `torch.LongTensor` of shape `(B, T, H/f, W/f)`.
        """
        chunk_size = self._check_chunk_size(chunk_size or self.default_chunk_size)
        self._check_pixels(pixels, "pixels", "(B, T, 3, H, W)", channel_dim=2)
        self._check_video_length("pixels", pixels)
        batch, frames = pixels.shape[:2]
        indices = self._map_in_chunks(self._inputs_to_indices, pixels.flatten(0, 1), chunk_size)
        return indices.view(batch, frames, *indices.shape[1:])

    def decode_video(self, indices: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """
        Reconstruct videos frame by frame.

        Args:
            indices (`torch.LongTensor` of shape `(B, T, h, w)`): ids in `[0, codebook_size)`.
            chunk_size (`int`, *optional*, defaults to 16): frames decoded at once.

        Returns:
            `torch.FloatTensor` of shape `(B, T, 3, h*f, w*f)` in `[-1, 1]`.
        """
        chunk_size = self._check_chunk_size(chunk_size or self.default_chunk_size)
        self._check_token_grid(indices, "indices", 4, "(B, T, h, w)")
        self._check_video_length("indices", indices)
        batch, frames = indices.shape[:2]
        pixels = self._map_in_chunks(self._indices_to_outputs, indices.flatten(0, 1), chunk_size).clamp(-1.0, 1.0)
        return pixels.view(batch, frames, *pixels.shape[1:])


def _preset_kwargs(
    channels: int,
    image_size: int,
    grid_size: int,
    codebook_size: int,
    codebook_dim: int,
    base_channels: int,
    max_channels: int,
    overrides: dict,
) -> dict:
    """VQModel arguments of the tiny presets (shared by the RGB and the segmentation VQ-GAN)."""
    if image_size <= 0 or grid_size <= 0 or image_size % grid_size:
        raise ValueError(f"`image_size` ({image_size}) must be a positive multiple of `grid_size` ({grid_size}).")
    factor = image_size // grid_size
    if factor & (factor - 1):
        raise ValueError(
            f"`image_size / grid_size` must be a power of two (each encoder block halves the size), got {factor}."
        )
    num_blocks = int(math.log2(factor)) + 1
    widths = tuple(min(base_channels * 2**i, max_channels) for i in range(num_blocks))
    groups = math.gcd(*widths, 16) if num_blocks > 1 else math.gcd(widths[0], 16)
    preset = dict(
        in_channels=channels,
        out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * num_blocks,
        up_block_types=("UpDecoderBlock2D",) * num_blocks,
        block_out_channels=widths,
        layers_per_block=1,
        latent_channels=max_channels // 2,
        vq_embed_dim=codebook_dim,
        num_vq_embeddings=codebook_size,
        norm_num_groups=groups,
        sample_size=image_size,
        # Self-attention at an 8x8 grid buys little at this size and costs a fair share of CPU time.
        mid_block_add_attention=False,
    )
    preset.update(overrides)
    return preset
