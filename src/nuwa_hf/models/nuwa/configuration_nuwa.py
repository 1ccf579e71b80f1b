"""NUWA model configuration."""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Optional, Sequence, Tuple

from transformers import PretrainedConfig

Grid = Tuple[int, int, int]
Extent = Tuple[Optional[int], Optional[int], Optional[int]]

CONDITION_TYPES = ("text", "sketch", "none")

# Keys diffusers adds to a saved VQ-GAN config.json that are bookkeeping, not architecture.
_DIFFUSERS_BOOKKEEPING = ("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values")


def visual_tokenizer_config(config: Optional[Mapping[str, Any]]) -> Optional[dict]:
    """A VQ-GAN's diffusers config (``vqgan.config`` or its config.json) as the plain dict a NuwaConfig stores."""
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise TypeError(
            f"a VQ-GAN sub-config must be a dict (e.g. `dict(vqgan.config)`), got {type(config).__name__}."
        )
    return {key: (list(value) if isinstance(value, tuple) else value)
            for key, value in dict(config).items() if key not in _DIFFUSERS_BOOKKEEPING}


def _is_whole(value: Any) -> bool:
    """An int, or a float holding a whole number (JSON writes 128.0 for some editors' 128); never a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Integral) or (isinstance(value, float) and math.isfinite(value)
                                                   and value == int(value))


def _grid(value: Sequence[int], name: str) -> Grid:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(_is_whole(v) for v in value):
        raise ValueError(f"{name} must be a (frames, height, width) triple of positive ints, got {value!r}.")
    value = tuple(int(v) for v in value)
    if len(value) != 3 or min(value) < 1:
        raise ValueError(f"{name} must be a (frames, height, width) triple of positive ints, got {value!r}.")
    return value


def _extent(value: Sequence[Optional[int]], name: str) -> Extent:
    rule = f"{name} must be a (e_t, e_h, e_w) triple of odd sizes or None (whole axis), got {value!r}."
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(
            v is None or _is_whole(v) for v in value):
        raise ValueError(rule)
    value = tuple(None if v is None else int(v) for v in value)
    if len(value) != 3 or any(v is not None and (v < 1 or v % 2 == 0) for v in value):
        raise ValueError(rule)
    return value


# Sizes a NUWA config holds: each a whole number >= the minimum. The upper bounds refuse a config.json that would make
# the model (or its position tables) absurdly large before any module is built: 10x the paper's model on every axis
# is still far below them.
_SIZE_FIELDS = {
    "text_vocab_size": (1, 10_000_000), "visual_vocab_size": (1, 10_000_000), "sketch_vocab_size": (1, 10_000_000),
    "hidden_size": (1, 131_072), "num_attention_heads": (1, 4096), "encoder_layers": (1, 1024),
    "decoder_layers": (1, 1024), "intermediate_size": (1, 1_048_576), "max_text_length": (1, 1_000_000),
}
# Largest position table per axis of max_visual_grid / max_sketch_grid (frames, height, width).
_MAX_GRID_SIDE = 65_536
# Parameters of the transformer the sizes describe (VQ-GANs aside): past this, refused (the paper's model has 0.87B).
MAX_CONFIG_PARAMETERS = 100_000_000_000


def _estimated_parameters(values: Mapping[str, Any]) -> int:
    """Rough parameter count of the transformer (embeddings, attention, feed-forward, head) the sizes describe."""
    d, ffn = values["hidden_size"], values["intermediate_size"]
    layer = 4 * d * d + 2 * d * ffn
    grids = sum(values[name][0] + values[name][1] + values[name][2] for name in ("max_visual_grid", "max_sketch_grid"))
    tables = d * (values["text_vocab_size"] + 2 * values["visual_vocab_size"] + values["sketch_vocab_size"]
                  + values["max_text_length"] + grids)
    return values["encoder_layers"] * layer + values["decoder_layers"] * (layer + 4 * d * d) + tables


def check_config_values(values: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the field, the value and the rule when a NUWA config's sizes or settings are not
    usable: sizes that are not whole positive numbers (strings such as ``"128"``, ``True``, 0, negatives), a model
    past :data:`MAX_CONFIG_PARAMETERS`, dropout outside [0, 1), a non-positive ``layer_norm_eps``, an unknown
    ``hidden_act``, a ``text_pad_token_id`` outside the text vocabulary. Shared by :class:`NuwaConfig` and the
    folder check that runs before ``from_pretrained`` builds anything (``loading_nuwa.check_model_files``)."""
    for name, (low, high) in _SIZE_FIELDS.items():
        if name not in values:
            continue
        value = values[name]
        if not _is_whole(value) or not low <= int(value) <= high:
            raise ValueError(f"{name} must be a whole number in [{low}, {high:,}], got {value!r}"
                             + (f" (a {type(value).__name__})" if not _is_whole(value) else "") + ".")
    for name in ("max_visual_grid", "max_sketch_grid"):
        if name in values:
            grid = _grid(values[name], name)
            if max(grid) > _MAX_GRID_SIDE:
                raise ValueError(f"{name} must have sides of at most {_MAX_GRID_SIDE:,}, got {list(grid)}.")
    for name in ("dropout", "attention_dropout"):
        value = values.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}.")
    for name in ("layer_norm_eps", "initializer_range"):
        value = values.get(name, 1e-5)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) or (
                float(value) <= 0 if name == "layer_norm_eps" else float(value) < 0):
            raise ValueError(f"{name} must be a finite number {'> 0' if name == 'layer_norm_eps' else '>= 0'}, "
                             f"got {value!r}.")
    rope_theta = values.get("rope_theta", 100.0)
    if isinstance(rope_theta, bool) or not isinstance(rope_theta, numbers.Real) or not math.isfinite(rope_theta):
        raise ValueError(f"rope_theta must be a finite number > 1, got {rope_theta!r}.")
    hidden_act = values.get("hidden_act", "gelu")
    from transformers.activations import ACT2FN

    if not isinstance(hidden_act, str) or hidden_act not in ACT2FN:
        raise ValueError(f"hidden_act must name one of transformers' activations (e.g. 'gelu', 'silu', 'relu'), got "
                         f"{hidden_act!r}.")
    pad = values.get("text_pad_token_id", 0)
    vocab = values.get("text_vocab_size")
    if not _is_whole(pad) or int(pad) < 0 or (vocab is not None and int(pad) >= int(vocab)):
        raise ValueError(f"text_pad_token_id must be a text id in [0, text_vocab_size={vocab}), got {pad!r}.")
    if all(name in values for name in (*_SIZE_FIELDS, "max_visual_grid", "max_sketch_grid")):
        sizes = {name: int(values[name]) for name in _SIZE_FIELDS}
        sizes.update({name: _grid(values[name], name) for name in ("max_visual_grid", "max_sketch_grid")})
        count = _estimated_parameters(sizes)
        if count > MAX_CONFIG_PARAMETERS:
            raise ValueError(
                f"the sizes describe a model of about {count:.3g} parameters, past the limit of "
                f"{MAX_CONFIG_PARAMETERS:.0e} (NUWA's paper model has 8.7e+08): a size was mistyped or the config is "
                "damaged."
            )


class NuwaConfig(PretrainedConfig):
    r"""Configuration of a NUWA encoder-decoder (Wu et al., 2021, "NUWA: Visual Synthesis Pre-training for Neural
    visUal World creAtion").

    The encoder reads the condition: text tokens (a grid ``(length, 1, 1)``), sketch tokens from VQ-GAN-Seg (a grid
    ``(T, H, W)``), or the constant "None" condition (one learned token, grid ``(1, 1, 1)``). The decoder generates
    visual VQ-GAN tokens of a grid ``(T, H, W)`` (an image is ``T = 1``) in raster order. All attention is 3D Nearby
    Attention with the extents below, given in ``(t, h, w)`` order; ``None`` means the whole axis.

    Args:
        text_vocab_size: size of the text tokenizer's vocabulary (49,408 for CLIP's BPE).
        visual_vocab_size: VQ-GAN codebook size N. The decoder's <bos> is the extra input id N; the head predicts only
            the N codes, so generation can never emit a special id.
        sketch_vocab_size: VQ-GAN-Seg codebook size.
        hidden_size, num_attention_heads, encoder_layers, decoder_layers, intermediate_size: transformer sizes.
        hidden_act, dropout, attention_dropout, layer_norm_eps, initializer_range: the usual.
        max_text_length: text length s (77 in the paper); shorter prompts are padded to it with ``text_pad_token_id``
            so a prompt's result never depends on the other prompts of its batch.
        max_visual_grid: largest target grid ``(T, H, W)`` (position tables have these sizes).
        max_sketch_grid: largest sketch grid ``(T, H, W)``.
        text_extent: extent of cross- and self-attention keys over text (paper: all text).
        image_extent, video_extent: extents over visual keys for images (``T = 1``) and videos.
        sketch_image_extent, sketch_video_extent: extents over sketch keys.
        text_pad_token_id: the text tokenizer's pad id.
        vqgan_config: the architecture of the VQ-GAN that turns images and video frames into the visual tokens (the
            ``NuwaVQGAN`` config as a dict, e.g. ``dict(vqgan.config)``). With it the model owns the VQ-GAN as the
            frozen sub-model ``model.vqgan`` (the Chameleon / Emu3 / Janus layout), saved in model.safetensors.
            ``None``: a token-only model (tests, or a VQ-GAN attached later with ``set_visual_tokenizers``).
        sketch_vqgan_config: the same for the VQ-GAN-Seg of the sketch tasks (``NuwaSegVQGAN``), or ``None``.
        rope_3d: also rotate every self-attention's queries and keys by their (t, h, w) coordinates (3D rotary
            position embeddings, :mod:`nuwa_hf.ops.rotary`), so scores can depend on the offset between two tokens
            (e.g. "one frame back, one column left"); the learned absolute tables stay. Off in the paper's model.
        rope_theta: base of the rotary frequencies (positions are at most a few dozen per axis, hence 100).
    """

    model_type = "nuwa"
    keys_to_ignore_at_inference = ["cache"]

    def __init__(
        self,
        text_vocab_size: int = 49408,
        visual_vocab_size: int = 12288,
        sketch_vocab_size: int = 12288,
        hidden_size: int = 1280,
        num_attention_heads: int = 20,
        encoder_layers: int = 8,
        decoder_layers: int = 24,
        intermediate_size: int = 5120,
        hidden_act: str = "gelu",
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        max_text_length: int = 77,
        max_visual_grid: Sequence[int] = (10, 21, 21),
        max_sketch_grid: Sequence[int] = (10, 21, 21),
        text_extent: Sequence[Optional[int]] = (None, 1, 1),
        image_extent: Sequence[Optional[int]] = (1, 3, 3),
        video_extent: Sequence[Optional[int]] = (3, 3, 3),
        sketch_image_extent: Sequence[Optional[int]] = (1, 3, 3),
        sketch_video_extent: Sequence[Optional[int]] = (3, 3, 3),
        text_pad_token_id: int = 0,
        tie_word_embeddings: bool = False,
        vqgan_config: Optional[Mapping[str, Any]] = None,
        sketch_vqgan_config: Optional[Mapping[str, Any]] = None,
        rope_3d: bool = False,
        rope_theta: float = 100.0,
        **kwargs,
    ):
        check_config_values(dict(
            text_vocab_size=text_vocab_size, visual_vocab_size=visual_vocab_size, sketch_vocab_size=sketch_vocab_size,
            hidden_size=hidden_size, num_attention_heads=num_attention_heads, encoder_layers=encoder_layers,
            decoder_layers=decoder_layers, intermediate_size=intermediate_size, max_text_length=max_text_length,
            max_visual_grid=max_visual_grid, max_sketch_grid=max_sketch_grid, dropout=dropout,
            attention_dropout=attention_dropout, layer_norm_eps=layer_norm_eps, initializer_range=initializer_range,
            rope_theta=rope_theta, hidden_act=hidden_act, text_pad_token_id=text_pad_token_id,
        ))
        # Whole-number floats (128.0) are taken as ints, so every size below is a Python int.
        text_vocab_size, visual_vocab_size, sketch_vocab_size, hidden_size, num_attention_heads = (
            int(text_vocab_size), int(visual_vocab_size), int(sketch_vocab_size), int(hidden_size),
            int(num_attention_heads))
        encoder_layers, decoder_layers, intermediate_size, max_text_length, text_pad_token_id = (
            int(encoder_layers), int(decoder_layers), int(intermediate_size), int(max_text_length),
            int(text_pad_token_id))
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by num_attention_heads ({num_attention_heads})."
            )
        self.text_vocab_size = text_vocab_size
        self.visual_vocab_size = visual_vocab_size
        self.sketch_vocab_size = sketch_vocab_size
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.num_hidden_layers = decoder_layers  # what generic cache utilities read
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.max_text_length = max_text_length
        self.max_visual_grid = list(_grid(max_visual_grid, "max_visual_grid"))
        self.max_sketch_grid = list(_grid(max_sketch_grid, "max_sketch_grid"))
        self.text_extent = list(_extent(text_extent, "text_extent"))
        self.image_extent = list(_extent(image_extent, "image_extent"))
        self.video_extent = list(_extent(video_extent, "video_extent"))
        self.sketch_image_extent = list(_extent(sketch_image_extent, "sketch_image_extent"))
        self.sketch_video_extent = list(_extent(sketch_video_extent, "sketch_video_extent"))
        self.text_pad_token_id = text_pad_token_id
        self.tie_word_embeddings = tie_word_embeddings
        self.rope_3d = bool(rope_3d)
        self.rope_theta = float(rope_theta)
        head_dim = hidden_size // num_attention_heads
        if self.rope_3d and (head_dim % 2 or head_dim < 6):
            raise ValueError(
                f"rope_3d needs an even head size of at least 6 (one rotation pair per axis), got {head_dim} "
                f"(hidden_size {hidden_size} / {num_attention_heads} heads): change the sizes or set rope_3d=False."
            )
        if self.rope_theta <= 1.0:
            raise ValueError(f"rope_theta must be > 1, got {rope_theta}.")
        self.vqgan_config = visual_tokenizer_config(vqgan_config)
        self.sketch_vqgan_config = visual_tokenizer_config(sketch_vqgan_config)
        for sub_config, vocab_field, vocab_size in ((self.vqgan_config, "visual_vocab_size", visual_vocab_size),
                                                     (self.sketch_vqgan_config, "sketch_vocab_size", sketch_vocab_size)):
            codes = (sub_config or {}).get("num_vq_embeddings", vocab_size)
            if codes != vocab_size:
                raise ValueError(
                    f"{vocab_field}={vocab_size} but its VQ-GAN's codebook has {codes} codes: the model predicts "
                    "(or reads) that VQ-GAN's codes, so the two must be equal."
                )
        # The visual <bos> is the extra id N; generate() also needs a pad id and never sees an eos.
        kwargs.setdefault("decoder_start_token_id", visual_vocab_size)
        kwargs.setdefault("bos_token_id", visual_vocab_size)
        kwargs.setdefault("pad_token_id", visual_vocab_size)
        kwargs.setdefault("is_encoder_decoder", True)
        if __name__.startswith("nuwa_hf."):
            # config.json may name a code repository's pipelines for trust_remote_code (nuwa_hf.hub.code_repo): the
            # remote copy of this class keeps them; the installed one serves its registered pipelines, for which
            # transformers would otherwise insist on remote code.
            kwargs.pop("custom_pipelines", None)
        super().__init__(**kwargs)

    @property
    def visual_bos_token_id(self) -> int:
        return self.visual_vocab_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def visual_extent(self, grid: Grid) -> Extent:
        """Self-attention extent of the decoder for a target grid: the image extent when T == 1, else the video one."""
        return tuple(self.image_extent if grid[0] == 1 else self.video_extent)

    def condition_extent(self, condition_type: str, condition_grid: Grid) -> Extent:
        """Extent over condition keys (encoder self-attention and decoder cross-attention)."""
        if condition_type == "text":
            return tuple(self.text_extent)
        if condition_type == "sketch":
            return tuple(self.sketch_image_extent if condition_grid[0] == 1 else self.sketch_video_extent)
        if condition_type == "none":
            return (None, None, None)
        raise ValueError(f"unknown condition type {condition_type!r}; expected one of {CONDITION_TYPES}.")

    @classmethod
    def paper(cls, **kwargs) -> "NuwaConfig":
        """The paper's 870M-parameter model: width 1280, 20 heads of 64, 24 decoder layers, a 12,288-code VQ-GAN,
        a 21x21x10 video grid, 77 CLIP-BPE text tokens.

        The paper gives L = 24 and 870M parameters but not the encoder depth; with 24 decoder layers of width 1280 and
        a 4x feed-forward the decoder alone holds ~630M, so 8 encoder layers bring the total to ~0.87B (our assumption).
        """
        defaults = dict(
            text_vocab_size=49408, visual_vocab_size=12288, sketch_vocab_size=12288, hidden_size=1280,
            num_attention_heads=20, encoder_layers=8, decoder_layers=24, intermediate_size=5120, max_text_length=77,
            max_visual_grid=(10, 21, 21), max_sketch_grid=(10, 21, 21),
        )
        defaults.update(kwargs)
        return cls(**defaults)

    @classmethod
    def tiny(cls, **kwargs) -> "NuwaConfig":
        """A few-hundred-thousand-parameter model for tests and CPU demos."""
        defaults = dict(
            text_vocab_size=512, visual_vocab_size=64, sketch_vocab_size=32, hidden_size=64, num_attention_heads=4,
            encoder_layers=2, decoder_layers=2, intermediate_size=256, dropout=0.0, max_text_length=16,
            max_visual_grid=(4, 8, 8), max_sketch_grid=(4, 8, 8),
        )
        defaults.update(kwargs)
        return cls(**defaults)
