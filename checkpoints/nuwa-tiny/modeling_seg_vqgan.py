"""NUWA's sketch tokenizer ("VQ-GAN-Seg"): segmentation maps with C classes, one-hot in, class logits out.

The paper codes a sketch H x W with C classes as a one-hot H x W x C tensor through a separate VQ-GAN (section 3.1);
this is diffusers' `VQModel` with C input and C output channels, plus the one-hot step and index-grid coding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import VQModel
from diffusers.configuration_utils import register_to_config

from .modeling_vqgan import VisualTokenizerMixin, _check_int_tensor, _preset_kwargs


class NuwaSegVQGAN(VisualTokenizerMixin, VQModel):
    r"""
    VQ-GAN for segmentation-map sketches (NUWA's VQ-GAN-Seg): class-index maps in, token grids, class logits out.

    Args:
        num_classes (`int`): number of sketch classes C; class ids lie in `[0, C)`.
        in_channels, out_channels (`int`, *optional*): must equal `num_classes` when given (they are stored in the
            config so that `diffusers.VQModel.from_pretrained` can also read the folder).
        All other arguments are [`VQModel`]'s.

    Example:

    ```python
    >>> seg = NuwaSegVQGAN.tiny(num_classes=8)
    >>> tokens = seg.encode_to_indices(class_map)    # (B, 32, 32) long -> (B, 8, 8)
    >>> class_map = seg.decode_to_class_map(tokens)  # (B, 8, 8) -> (B, 32, 32)
    ```
    """

    @register_to_config
    def __init__(
        self,
        num_classes: int = 8,
        in_channels: int | None = None,
        out_channels: int | None = None,
        down_block_types: tuple[str, ...] = ("DownEncoderBlock2D",),
        up_block_types: tuple[str, ...] = ("UpDecoderBlock2D",),
        block_out_channels: tuple[int, ...] = (64,),
        layers_per_block: int = 1,
        act_fn: str = "silu",
        latent_channels: int = 3,
        sample_size: int = 32,
        num_vq_embeddings: int = 256,
        norm_num_groups: int = 32,
        vq_embed_dim: int | None = None,
        scaling_factor: float = 0.18215,
        norm_type: str = "group",
        mid_block_add_attention: bool = True,
        lookup_from_codebook: bool = False,
        force_upcast: bool = False,
    ):
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an int >= 2 (background counts as a class), got {num_classes!r}.")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value is not None and value != num_classes:
                raise ValueError(
                    f"`{name}` ({value}) must equal `num_classes` ({num_classes}): the sketch VQ-GAN reads and writes "
                    "one channel per class. Leave it unset."
                )
        super().__init__(
            in_channels=num_classes,
            out_channels=num_classes,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            act_fn=act_fn,
            latent_channels=latent_channels,
            sample_size=sample_size,
            num_vq_embeddings=num_vq_embeddings,
            norm_num_groups=norm_num_groups,
            vq_embed_dim=vq_embed_dim,
            scaling_factor=scaling_factor,
            norm_type=norm_type,
            mid_block_add_attention=mid_block_add_attention,
            lookup_from_codebook=lookup_from_codebook,
            force_upcast=force_upcast,
        )

    @classmethod
    def tiny(
        cls,
        num_classes: int = 8,
        image_size: int = 32,
        grid_size: int = 8,
        codebook_size: int = 128,
        codebook_dim: int = 16,
        base_channels: int = 32,
        max_channels: int = 64,
        **kwargs,
    ) -> "NuwaSegVQGAN":
        """A sketch VQ-GAN that trains on two CPU cores in minutes; arguments as in [`NuwaVQGAN.tiny`]."""
        preset = _preset_kwargs(
            num_classes, image_size, grid_size, codebook_size, codebook_dim, base_channels, max_channels, kwargs
        )
        preset.pop("in_channels")
        preset.pop("out_channels")
        return cls(num_classes=num_classes, **preset)

    @property
    def num_classes(self) -> int:
        """`int`: number of sketch classes C."""
        return int(self.config.num_classes)

    def one_hot(self, class_map: torch.Tensor) -> torch.Tensor:
        """
        One-hot encode class-index maps: `(N, H, W)` long in `[0, C)` -> `(N, C, H, W)` float in {0, 1}.
        """
        return F.one_hot(class_map.long(), self.num_classes).permute(0, 3, 1, 2).to(self.dtype)

    def _check_class_map(self, class_map, name: str, layout: str) -> None:
        if (
            isinstance(class_map, torch.Tensor)
            and class_map.is_floating_point()
            and class_map.ndim == len(layout.split(",")) + 1
        ):
            raise TypeError(
                f"`{name}` looks like a one-hot or logit tensor of shape {tuple(class_map.shape)}; pass class-index maps "
                f"{layout} (e.g. `one_hot.argmax(dim=-3)`), the model one-hot encodes them itself."
            )
        _check_int_tensor(name, class_map, len(layout.split(",")), layout)
        self.token_grid_size(class_map.shape[-2], class_map.shape[-1])
        if class_map.numel():
            low, high = int(class_map.min()), int(class_map.max())
            if low < 0 or high >= self.num_classes:
                raise ValueError(
                    f"`{name}` holds class ids in [{low}, {high}] but this sketch VQ-GAN has num_classes="
                    f"{self.num_classes}: ids must lie in [0, {self.num_classes}). Map ignore labels (such as 255) to a "
                    "real class, or train a model with more classes."
                )

    def _class_maps_to_indices(self, class_map: torch.Tensor) -> torch.Tensor:
        return self._inputs_to_indices(self.one_hot(class_map.to(self.device)))

    @torch.no_grad()
    def encode_to_indices(self, class_map: torch.Tensor) -> torch.Tensor:
        """
        Code sketches as token grids.

        Args:
            class_map (`torch.LongTensor` of shape `(B, H, W)`): class ids in `[0, num_classes)`.

        Returns:
            `torch.LongTensor` of shape `(B, H/f, W/f)`.
        """
        self._check_class_map(class_map, "class_map", "(B, H, W)")
        return self._class_maps_to_indices(class_map)

    def decode_to_logits(self, indices: torch.Tensor) -> torch.Tensor:
        """
        Args:
            indices (`torch.LongTensor` of shape `(B, h, w)`): ids in `[0, codebook_size)`.

        Returns:
            `torch.FloatTensor` of shape `(B, C, h*f, w*f)`: unnormalised class scores.
        """
        self._check_token_grid(indices, "indices", 3, "(B, h, w)")
        return self._indices_to_outputs(indices)

    @torch.no_grad()
    def decode_to_class_map(self, indices: torch.Tensor) -> torch.Tensor:
        """`(B, h, w)` token grids -> `(B, h*f, w*f)` class-index maps (arg-max of the logits)."""
        return self.decode_to_logits(indices).argmax(dim=1)

    @torch.no_grad()
    def encode_video(self, class_maps: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """
        Code video sketches frame by frame.

        Args:
            class_maps (`torch.LongTensor` of shape `(B, T, H, W)`): per-frame class ids.
            chunk_size (`int`, *optional*, defaults to 16): frames coded at once.

        Returns:
            `torch.LongTensor` of shape `(B, T, H/f, W/f)`.
        """
        chunk_size = self._check_chunk_size(chunk_size or self.default_chunk_size)
        self._check_class_map(class_maps, "class_maps", "(B, T, H, W)")
        self._check_video_length("class_maps", class_maps)
        batch, frames = class_maps.shape[:2]
        indices = self._map_in_chunks(self._class_maps_to_indices, class_maps.flatten(0, 1), chunk_size)
        return indices.view(batch, frames, *indices.shape[1:])

    def decode_video_to_logits(self, indices: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """`(B, T, h, w)` token grids -> `(B, T, C, h*f, w*f)` class scores, decoded `chunk_size` frames at a time."""
        chunk_size = self._check_chunk_size(chunk_size or self.default_chunk_size)
        self._check_token_grid(indices, "indices", 4, "(B, T, h, w)")
        self._check_video_length("indices", indices)
        batch, frames = indices.shape[:2]
        logits = self._map_in_chunks(self._indices_to_outputs, indices.flatten(0, 1), chunk_size)
        return logits.view(batch, frames, *logits.shape[1:])

    @torch.no_grad()
    def decode_video_to_class_map(self, indices: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """`(B, T, h, w)` token grids -> `(B, T, h*f, w*f)` class-index maps."""
        chunk_size = self._check_chunk_size(chunk_size or self.default_chunk_size)
        self._check_token_grid(indices, "indices", 4, "(B, T, h, w)")
        self._check_video_length("indices", indices)
        batch, frames = indices.shape[:2]
        maps = self._map_in_chunks(
            lambda chunk: self._indices_to_outputs(chunk).argmax(dim=1), indices.flatten(0, 1), chunk_size
        )
        return maps.view(batch, frames, *maps.shape[1:])
