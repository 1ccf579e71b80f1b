"""NUWA: a 3D transformer encoder-decoder over token grids (Wu et al., 2021).

Data flow (B = batch, d = hidden size, N = visual codebook size):

    condition                         encoder (3DNA self-attention)           decoder (causal 3DNA + 3DNA cross)
    text ids      (B, L)         ->   (B, L, d)      grid (L, 1, 1)    \
    sketch tokens (B, Ts, Hs, Ws) ->  (B, Ts*Hs*Ws, d) grid (Ts,Hs,Ws)  >->  visual ids (B, T*H*W) -> logits (B, T*H*W, N)
    "None"                       ->   (B, 1, d)      grid (1, 1, 1)    /

The model owns its visual tokenizers as frozen sub-models (the Chameleon / Emu3 / Janus layout): ``model.vqgan``
(images and video frames <-> visual tokens) and ``model.sketch_vqgan`` (sketch class maps <-> sketch tokens), built
from ``config.vqgan_config`` / ``config.sketch_vqgan_config`` and saved with the rest in model.safetensors.
``encode_images`` / ``encode_videos`` / ``encode_sketches`` and ``decode_visual_tokens`` go between pixels and grids.

Every token gets three learned position embeddings (one per axis t, h, w) of its own grid. The decoder input at
position p is the token of position p-1; position 0 gets <bos> (id N). Attention goes through transformers'
``AttentionInterface``: the default ``"nuwa_3dna"`` calls :func:`nuwa_hf.nearby_attention`; ``"sdpa"`` and ``"eager"``
compute the same thing with a dense mask (slow, for checking).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput, ModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from ...ops import nearby_attention, nearby_attention_mask
from ..vqgan.modeling_seg_vqgan import NuwaSegVQGAN
from ..vqgan.modeling_vqgan import NuwaVQGAN
from .configuration_nuwa import CONDITION_TYPES, Extent, Grid, NuwaConfig, visual_tokenizer_config
from .generation_nuwa import NuwaGenerationControls, NuwaGenerationMixin


logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------------
# Attention implementations. Each receives q/k/v (B, heads, L, head_dim) plus the grid description as kwargs and
# returns (B, Lq, heads, head_dim) as transformers' attention functions do.
# --------------------------------------------------------------------------------------------------------------------


def nuwa_3dna_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Optional[torch.Tensor],
    scaling: Optional[float] = None,
    dropout: float = 0.0,
    *,
    query_grid: Grid,
    key_grid: Grid,
    extent: Extent,
    causal: bool,
    query_offset: Optional[int] = None,
    **kwargs,
):
    """The ``"nuwa_3dna"`` attention implementation: 3D Nearby Attention, never a dense mask."""
    out = nearby_attention(
        query, key, value, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, scale=scaling,
        query_offset=query_offset,
    )
    if dropout > 0.0:
        out = nn.functional.dropout(out, p=dropout, training=True)
    return out.transpose(1, 2).contiguous(), None


def _dense_mask(query, key, query_grid, key_grid, extent, causal, query_offset):
    return nearby_attention_mask(
        query_grid, key_grid, extent, causal, query_offset=query_offset or 0, num_queries=query.shape[2],
        num_keys=key.shape[2], device=query.device,
    )


def eager_attention_forward(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, *, query_grid, key_grid, extent, causal,
    query_offset=None, **kwargs,
):
    """``"eager"``: explicit softmax(QK^T) with the dense 3DNA mask; also returns the attention weights."""
    mask = _dense_mask(query, key, query_grid, key_grid, extent, causal, query_offset)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    weights = weights.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    weights = nn.functional.dropout(weights, p=dropout, training=dropout > 0)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def sdpa_attention_forward(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, *, query_grid, key_grid, extent, causal,
    query_offset=None, **kwargs,
):
    """``"sdpa"``: torch's scaled_dot_product_attention with the dense 3DNA mask."""
    mask = _dense_mask(query, key, query_grid, key_grid, extent, causal, query_offset)
    out = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


# Implementations that build the dense mask themselves; others (e.g. "nuwa_3dna") receive the grids.
_DENSE_IMPLEMENTATIONS: dict = {"eager": eager_attention_forward, "sdpa": sdpa_attention_forward}

# Registered here (not only in nuwa_hf/__init__) so that the self-contained copy of this file that save_pretrained
# writes for trust_remote_code users registers it too.
AttentionInterface.register("nuwa_3dna", nuwa_3dna_attention_forward)


# --------------------------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------------------------


def grid_positions(grid: Grid, offset: int, length: int, device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(t, h, w) coordinates of raster positions ``offset .. offset+length-1`` of ``grid``, each ``(length,)``."""
    index = torch.arange(offset, offset + length, device=device)
    _, height, width = grid
    return index // (height * width), (index // width) % height, index % width


class NuwaGridEmbedding(nn.Module):
    """Token embedding plus one learned position table per axis (paper eq. 12): ``E[x] + P^t_t + P^h_h + P^w_w``."""

    def __init__(self, vocab_size: int, hidden_size: int, max_grid: Grid):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, hidden_size)
        self.time = nn.Embedding(max_grid[0], hidden_size)
        self.height = nn.Embedding(max_grid[1], hidden_size)
        self.width = nn.Embedding(max_grid[2], hidden_size)

    def forward(self, ids: torch.Tensor, grid: Grid, offset: int = 0) -> torch.Tensor:
        """ids (B, L) -> (B, L, d) for raster positions ``offset .. offset+L-1`` of ``grid``."""
        t, h, w = grid_positions(grid, offset, ids.shape[1], ids.device)
        return self.tokens(ids) + (self.time(t) + self.height(h) + self.width(w))[None]


class NuwaAttention(nn.Module):
    """Multi-head 3DNA attention (self or cross), dispatched through transformers' attention interface."""

    def __init__(self, config: NuwaConfig, layer_idx: Optional[int] = None, is_cross_attention: bool = False):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.is_cross_attention = is_cross_attention
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scaling = self.head_dim ** -0.5
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        *,
        query_grid: Grid,
        key_grid: Grid,
        extent: Extent,
        causal: bool,
        key_value_states: Optional[torch.Tensor] = None,
        cache: Optional[Cache] = None,
        query_offset: Optional[int] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """hidden_states (B, Lq, d) -> (B, Lq, d). ``key_value_states`` (B, Lk, d) for cross-attention."""
        query = self._heads(self.q_proj(hidden_states))
        source = key_value_states if self.is_cross_attention else hidden_states
        if self.is_cross_attention and cache is not None and cache.is_updated.get(self.layer_idx):
            # Encoder keys/values never change during generation: computed once, then reused.
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            key, value = layer.keys, layer.values
        else:
            key, value = self._heads(self.k_proj(source)), self._heads(self.v_proj(source))
            if cache is not None:
                if self.is_cross_attention:
                    key, value = cache.cross_attention_cache.update(key, value, self.layer_idx)
                    cache.is_updated[self.layer_idx] = True
                else:
                    key, value = cache.self_attention_cache.update(key, value, self.layer_idx)
                    # A static cache returns its whole buffer: keep the filled prefix (a view, no copy).
                    filled = (query_offset or 0) + hidden_states.shape[1]
                    key, value = key[:, :, :filled], value[:, :, :filled]
        implementation = self.config._attn_implementation
        if implementation in _DENSE_IMPLEMENTATIONS:
            attention_fn = _DENSE_IMPLEMENTATIONS[implementation]
        else:
            attention_fn: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, nuwa_3dna_attention_forward)
        out, weights = attention_fn(
            self, query, key, value, None, scaling=self.scaling,
            dropout=self.config.attention_dropout if self.training else 0.0,
            query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, query_offset=query_offset,
        )
        out = out.reshape(hidden_states.shape[0], hidden_states.shape[1], -1)
        return self.out_proj(out), weights


class NuwaFeedForward(nn.Module):
    def __init__(self, config: NuwaConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.act(self.fc1(x))))


class NuwaEncoderLayer(nn.Module):
    """Pre-norm block: ``x + 3DNA(LN(x), LN(x))`` then ``x + FFN(LN(x))``."""

    def __init__(self, config: NuwaConfig):
        super().__init__()
        self.self_attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = NuwaAttention(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = NuwaFeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, grid: Grid, extent: Extent) -> torch.Tensor:
        attn, _ = self.self_attn(self.self_attn_norm(x), query_grid=grid, key_grid=grid, extent=extent, causal=False)
        x = x + self.dropout(attn)
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class NuwaDecoderLayer(nn.Module):
    """Pre-norm block (paper eq. 15): causal 3DNA self-attention, 3DNA cross-attention to the condition, FFN."""

    def __init__(self, config: NuwaConfig, layer_idx: int):
        super().__init__()
        self.self_attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = NuwaAttention(config, layer_idx)
        self.cross_attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.cross_attn = NuwaAttention(config, layer_idx, is_cross_attention=True)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = NuwaFeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        condition: torch.Tensor,
        *,
        grid: Grid,
        condition_grid: Grid,
        self_extent: Extent,
        cross_extent: Extent,
        cache: Optional[EncoderDecoderCache],
        query_offset: Optional[int],
    ) -> torch.Tensor:
        attn, _ = self.self_attn(
            self.self_attn_norm(x), query_grid=grid, key_grid=grid, extent=self_extent, causal=True, cache=cache,
            query_offset=query_offset,
        )
        x = x + self.dropout(attn)
        attn, _ = self.cross_attn(
            self.cross_attn_norm(x), query_grid=grid, key_grid=condition_grid, extent=cross_extent, causal=False,
            key_value_states=condition, cache=cache, query_offset=query_offset,
        )
        x = x + self.dropout(attn)
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


# --------------------------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class NuwaEncoderOutput(BaseModelOutput):
    """Encoder output. ``last_hidden_state``: (B, Lc, d) over ``condition_grid`` (T, H, W) of ``condition_type``."""

    condition_grid: Optional[Tuple[int, int, int]] = None
    condition_type: Optional[str] = None


@dataclass
class NuwaSeq2SeqLMOutput(ModelOutput):
    """Output of :class:`NuwaForConditionalGeneration`.

    loss: mean (or ``num_items_in_batch``-normalised sum) cross-entropy over the predicted visual tokens.
    logits: (B, Lq, N) over the visual codebook for the decoder positions given.
    cache: the EncoderDecoderCache to pass back when generating.
    encoder_last_hidden_state: (B, Lc, d).
    """

    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    cache: Optional[Cache] = None
    decoder_hidden_states: Optional[torch.Tensor] = None
    encoder_last_hidden_state: Optional[torch.Tensor] = None


# --------------------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------------------


class NuwaPreTrainedModel(PreTrainedModel):
    config_class = NuwaConfig
    config: NuwaConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    _supports_sdpa = True
    _no_split_modules = ["NuwaEncoderLayer", "NuwaDecoderLayer"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``; an old-layout folder (VQ-GANs in ``vqgan/`` and ``vqgan_seg/``) is
        converted on the fly, with a warning, so users' checkpoints keep working."""
        from .convert_nuwa_legacy_folder import convert_legacy_folder, is_legacy_folder

        path = pretrained_model_name_or_path
        if isinstance(path, (str, os.PathLike)) and os.path.isdir(path) and is_legacy_folder(path):
            logger.warning(
                "%s keeps its VQ-GANs in vqgan/ and vqgan_seg/ (the old layout); converting it while loading. Convert it "
                "once with `python -m nuwa_hf.models.nuwa.convert_nuwa_legacy_folder --input %s --output NEW_FOLDER`.",
                path, path,
            )
            with tempfile.TemporaryDirectory(prefix="nuwa-converted-") as scratch:
                converted = convert_legacy_folder(path, os.path.join(scratch, "model"))
                given = kwargs.get("config")
                if isinstance(given, NuwaConfig) and given.vqgan_config is None:
                    # A config read from the old folder (transformers' pipeline() does that) lacks the VQ-GANs: give
                    # it the converted folder's sub-configs.
                    converted_config = NuwaConfig.from_pretrained(converted)
                    given.vqgan_config = converted_config.vqgan_config
                    given.sketch_vqgan_config = converted_config.sketch_vqgan_config
                model = super().from_pretrained(converted, *args, **kwargs)
            # Pipelines read the processor files from the real folder, not the scratch copy.
            model.config._name_or_path = model.name_or_path = os.fspath(path)
        else:
            model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        # Loading replaces the parameters (requires_grad back on): freeze the VQ-GANs again.
        for name in ("vqgan", "sketch_vqgan"):
            tokenizer = getattr(model, name, None)
            if isinstance(tokenizer, nn.Module):
                tokenizer.requires_grad_(False)
        return model

    def save_pretrained(self, save_directory, *args, write_remote_code: bool = True, **kwargs):
        """``PreTrainedModel.save_pretrained``, plus (by default) the self-contained model code and ``auto_map`` so
        the folder also loads with ``trust_remote_code=True`` where nuwa_hf is not installed."""
        if write_remote_code:
            from .remote_code import AUTO_MAP

            self.config.auto_map = dict(AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)
        if write_remote_code and (kwargs.get("is_main_process", True)):
            from .remote_code import write_remote_code as write_code

            write_code(save_directory)

    def get_correct_attn_implementation(self, requested_attention: Optional[str], is_init_check: bool = False) -> str:
        # 3D Nearby Attention is the model's own attention; "sdpa"/"eager" remain available by name.
        if requested_attention is None:
            requested_attention = "nuwa_3dna"
        return super().get_correct_attn_implementation(requested_attention, is_init_check)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, NuwaEncoder):
            module.null_condition.normal_(0.0, std)


def _check_grid_fits(grid: Grid, max_grid, what: str, fix: str) -> None:
    if any(g > m for g, m in zip(grid, max_grid)):
        raise ValueError(f"{what} grid {tuple(grid)} is larger than the model allows {tuple(max_grid)}; {fix}")


class NuwaEncoder(NuwaPreTrainedModel):
    """The adaptive condition encoder: text, sketch tokens or the constant "None" condition -> (B, Lc, d)."""

    def __init__(self, config: NuwaConfig):
        super().__init__(config)
        d = config.hidden_size
        self.text_embedding = NuwaGridEmbedding(config.text_vocab_size, d, (config.max_text_length, 1, 1))
        self.sketch_embedding = NuwaGridEmbedding(config.sketch_vocab_size, d, tuple(config.max_sketch_grid))
        self.null_condition = nn.Parameter(torch.zeros(1, 1, d))
        self.layers = nn.ModuleList([NuwaEncoderLayer(config) for _ in range(config.encoder_layers)])
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.post_init()

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        sketch_tokens: Optional[torch.LongTensor] = None,
        condition_type: Optional[str] = None,
        batch_size: Optional[int] = None,
        **kwargs,
    ) -> NuwaEncoderOutput:
        """Encode one kind of condition.

        Args:
            input_ids: text ids (B, L) with L <= ``max_text_length``; padded to ``max_text_length`` here.
            attention_mask: accepted for API compatibility; padding tokens are ordinary tokens of a fixed-length prompt.
            sketch_tokens: VQ-GAN-Seg codes (B, Ts, Hs, Ws) (an image sketch has Ts = 1) or (B, Hs, Ws).
            condition_type: "text", "sketch" or "none"; inferred from what is given when omitted.
            batch_size: batch size of the "None" condition (nothing else tells it).
        """
        condition_type = resolve_condition_type(condition_type, input_ids, sketch_tokens)
        config = self.config
        if condition_type == "text":
            if input_ids is None:
                raise ValueError("condition_type='text' needs input_ids (B, L) of text token ids.")
            if input_ids.dim() != 2:
                raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}.")
            if input_ids.shape[1] > config.max_text_length:
                raise ValueError(
                    f"text of {input_ids.shape[1]} tokens is longer than max_text_length={config.max_text_length}; "
                    f"truncate it with the processor (truncation=True, max_length={config.max_text_length})."
                )
            if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= config.text_vocab_size):
                raise ValueError(f"text ids must lie in [0, {config.text_vocab_size}); check the tokenizer.")
            pad = config.max_text_length - input_ids.shape[1]
            if pad:
                input_ids = nn.functional.pad(input_ids, (0, pad), value=config.text_pad_token_id)
            grid = (config.max_text_length, 1, 1)
            x = self.text_embedding(input_ids, grid)
        elif condition_type == "sketch":
            if sketch_tokens is None:
                raise ValueError("condition_type='sketch' needs sketch_tokens (B, Ts, Hs, Ws) from VQ-GAN-Seg.")
            if sketch_tokens.dim() == 3:
                sketch_tokens = sketch_tokens[:, None]
            if sketch_tokens.dim() != 4:
                raise ValueError(
                    f"sketch_tokens must be (batch, frames, height, width), got shape {tuple(sketch_tokens.shape)}."
                )
            grid = tuple(sketch_tokens.shape[1:])
            _check_grid_fits(grid, config.max_sketch_grid, "sketch", "use a smaller sketch or a larger max_sketch_grid.")
            if int(sketch_tokens.min()) < 0 or int(sketch_tokens.max()) >= config.sketch_vocab_size:
                raise ValueError(f"sketch tokens must lie in [0, {config.sketch_vocab_size}); check the VQ-GAN-Seg.")
            x = self.sketch_embedding(sketch_tokens.flatten(1), grid)
        else:
            if batch_size is None:
                raise ValueError("the 'none' condition needs batch_size.")
            grid = (1, 1, 1)
            x = self.null_condition.expand(batch_size, 1, -1)
        extent = config.condition_extent(condition_type, grid)
        for layer in self.layers:
            x = layer(x, grid, extent)
        return NuwaEncoderOutput(last_hidden_state=self.norm(x), condition_grid=grid, condition_type=condition_type)


def resolve_condition_type(condition_type, input_ids, sketch_tokens) -> str:
    if condition_type is None:
        if input_ids is not None and sketch_tokens is not None:
            raise ValueError("give either text (input_ids) or sketch_tokens as the condition, not both.")
        condition_type = "text" if input_ids is not None else "sketch" if sketch_tokens is not None else "none"
    if condition_type not in CONDITION_TYPES:
        raise ValueError(f"unknown condition_type {condition_type!r}; expected one of {CONDITION_TYPES}.")
    if condition_type != "text" and input_ids is not None:
        raise ValueError(f"condition_type={condition_type!r} does not take text input_ids.")
    if condition_type != "sketch" and sketch_tokens is not None:
        raise ValueError(f"condition_type={condition_type!r} does not take sketch_tokens.")
    return condition_type


class NuwaDecoder(NuwaPreTrainedModel):
    """Causal 3DNA decoder over visual tokens of a grid (T, H, W), cross-attending to the encoded condition."""

    def __init__(self, config: NuwaConfig):
        super().__init__(config)
        # N codebook ids + <bos> (id N) as inputs.
        self.embedding = NuwaGridEmbedding(config.visual_vocab_size + 1, config.hidden_size, tuple(config.max_visual_grid))
        self.layers = nn.ModuleList([NuwaDecoderLayer(config, i) for i in range(config.decoder_layers)])
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.post_init()

    def forward(
        self,
        decoder_input_ids: torch.LongTensor,
        encoder_hidden_states: torch.Tensor,
        *,
        visual_grid: Grid,
        condition_grid: Grid,
        condition_type: str,
        cache: Optional[EncoderDecoderCache] = None,
    ) -> torch.Tensor:
        """decoder_input_ids (B, L) at positions ``past .. past+L-1`` -> hidden states (B, L, d)."""
        past = cache.self_attention_cache.get_seq_length() if cache is not None else 0
        past = int(past)
        length = decoder_input_ids.shape[1]
        total = visual_grid[0] * visual_grid[1] * visual_grid[2]
        if past + length > total:
            raise ValueError(
                f"{past + length} decoder positions do not fit the visual grid {tuple(visual_grid)} ({total} tokens)."
            )
        # The whole grid at once (training, scoring) needs no offset; anything else is a slice of it.
        query_offset = None if (past == 0 and length == total) else past
        x = self.dropout(self.embedding(decoder_input_ids, visual_grid, offset=past))
        self_extent = self.config.visual_extent(visual_grid)
        cross_extent = self.config.condition_extent(condition_type, condition_grid)
        for layer in self.layers:
            x = layer(
                x, encoder_hidden_states, grid=visual_grid, condition_grid=condition_grid, self_extent=self_extent,
                cross_extent=cross_extent, cache=cache, query_offset=query_offset,
            )
        return self.norm(x)


def _build_visual_tokenizer(model_class, sub_config: Optional[dict]):
    """A frozen VQ-GAN from its config dict, or None. NUWA trains on token grids: the VQ-GANs are trained before it
    (stage 1) and never receive gradients here, so they are frozen (which also keeps them out of DDP's and the
    optimizer's way)."""
    if sub_config is None:
        return None
    tokenizer = model_class.from_config(dict(sub_config))
    tokenizer.requires_grad_(False)
    return tokenizer


def _with_frame_axis(tensor, image_ndim: int):
    """An image-shaped input (``image_ndim`` dims, no T axis) gets T = 1 at dim 1; anything else passes unchanged
    (the VQ-GAN checks it)."""
    if isinstance(tensor, torch.Tensor) and tensor.ndim == image_ndim:
        return tensor.unsqueeze(1)
    return tensor


class NuwaVisualTokenizersMixin:
    """Pixels <-> token grids through the model's own VQ-GANs (``self.vqgan``, ``self.sketch_vqgan``)."""

    def _visual_tokenizer(self, name: str):
        tokenizer = getattr(self, name, None)
        if tokenizer is None:
            field = "vqgan_config" if name == "vqgan" else "sketch_vqgan_config"
            cls = "NuwaVQGAN" if name == "vqgan" else "NuwaSegVQGAN"
            raise ValueError(
                f"This NUWA model has no {'sketch ' if name == 'sketch_vqgan' else ''}VQ-GAN (config.{field} is None). "
                f"Attach one with `model.set_visual_tokenizers({name}={cls}.from_pretrained(...))`, or load a folder "
                "converted by `python -m nuwa_hf.models.nuwa.convert_nuwa_legacy_folder` (old folders keep the VQ-GANs "
                "in vqgan/ and vqgan_seg/)."
            )
        return tokenizer

    @torch.no_grad()
    def encode_images(self, pixel_values: torch.Tensor) -> torch.LongTensor:
        """Images `(B, 3, H, W)` (or `(B, 1, 3, H, W)`) in [-1, 1] -> visual tokens `(B, 1, H/f, W/f)`."""
        return self.encode_videos(_with_frame_axis(pixel_values, image_ndim=4))

    @torch.no_grad()
    def encode_videos(self, pixel_values: torch.Tensor, chunk_size: Optional[int] = None) -> torch.LongTensor:
        """Videos `(B, T, 3, H, W)` in [-1, 1] (what NuwaProcessor returns as `pixel_values`) -> visual tokens
        `(B, T, H/f, W/f)`, coded frame by frame, `chunk_size` frames at a time."""
        return self._visual_tokenizer("vqgan").encode_video(pixel_values, chunk_size=chunk_size)

    @torch.no_grad()
    def encode_sketches(self, sketch_maps: torch.Tensor, chunk_size: Optional[int] = None) -> torch.LongTensor:
        """Sketch class maps `(B, H, W)` or `(B, T, H, W)` (int ids) -> sketch tokens `(B, T, H/f, W/f)`."""
        return self._visual_tokenizer("sketch_vqgan").encode_video(_with_frame_axis(sketch_maps, 3), chunk_size=chunk_size)

    @torch.no_grad()
    def decode_visual_tokens(self, visual_tokens: torch.Tensor, chunk_size: Optional[int] = None) -> torch.Tensor:
        """Visual tokens `(B, T, h, w)` (or `(B, h, w)` for images) -> pixels `(B, T, 3, h*f, w*f)` in [-1, 1];
        `NuwaProcessor.postprocess` turns them into PIL images or frame lists."""
        return self._visual_tokenizer("vqgan").decode_video(_with_frame_axis(visual_tokens, 3), chunk_size=chunk_size)

    @torch.no_grad()
    def decode_sketch_tokens(self, sketch_tokens: torch.Tensor, chunk_size: Optional[int] = None) -> torch.LongTensor:
        """Sketch tokens `(B, T, h, w)` (or `(B, h, w)`) -> class maps `(B, T, h*f, w*f)`."""
        return self._visual_tokenizer("sketch_vqgan").decode_video_to_class_map(
            _with_frame_axis(sketch_tokens, 3), chunk_size=chunk_size
        )


class NuwaModel(NuwaVisualTokenizersMixin, NuwaPreTrainedModel):
    """Encoder + decoder, returning decoder hidden states (no head), and the VQ-GANs that code its token grids."""

    def __init__(self, config: NuwaConfig):
        super().__init__(config)
        self.encoder = NuwaEncoder(config)
        self.decoder = NuwaDecoder(config)
        self.vqgan = _build_visual_tokenizer(NuwaVQGAN, config.vqgan_config)
        self.sketch_vqgan = _build_visual_tokenizer(NuwaSegVQGAN, config.sketch_vqgan_config)
        self.post_init()

    def set_visual_tokenizers(self, vqgan: Optional[NuwaVQGAN] = None, sketch_vqgan: Optional[NuwaSegVQGAN] = None):
        """Make trained VQ-GANs part of this model (and of its config, so `save_pretrained` writes a complete folder).

        Raises:
            ValueError: a codebook size differs from the model's vocabulary (the model predicts the VQ-GAN's codes).
        """
        for name, tokenizer, cls, vocab in (("vqgan", vqgan, NuwaVQGAN, "visual_vocab_size"),
                                            ("sketch_vqgan", sketch_vqgan, NuwaSegVQGAN, "sketch_vocab_size")):
            if tokenizer is None:
                continue
            if not isinstance(tokenizer, cls):
                raise TypeError(f"`{name}` must be a {cls.__name__}, got {type(tokenizer).__name__}.")
            if tokenizer.codebook_size != getattr(self.config, vocab):
                raise ValueError(
                    f"The {name} has {tokenizer.codebook_size} codes but config.{vocab} is "
                    f"{getattr(self.config, vocab)}: use the VQ-GAN the model was (or will be) trained with."
                )
            tokenizer.requires_grad_(False)
            setattr(self, name, tokenizer.to(self.device))
            setattr(self.config, f"{name}_config", visual_tokenizer_config(tokenizer.config))

    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def get_input_embeddings(self):
        return self.decoder.embedding.tokens

    def set_input_embeddings(self, value):
        self.decoder.embedding.tokens = value

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        sketch_tokens: Optional[torch.LongTensor] = None,
        condition_type: Optional[str] = None,
        decoder_input_ids: Optional[torch.LongTensor] = None,
        visual_grid: Optional[Grid] = None,
        encoder_outputs: Optional[NuwaEncoderOutput] = None,
        cache: Optional[EncoderDecoderCache] = None,
        **kwargs,
    ):
        """Returns ``(decoder hidden states (B, L, d), encoder outputs)``."""
        if decoder_input_ids is None:
            raise ValueError("decoder_input_ids (B, L) are needed: <bos> followed by the visual tokens so far.")
        if visual_grid is None:
            raise ValueError("visual_grid=(T, H, W) is needed to place the visual tokens in 3D.")
        visual_grid = tuple(int(v) for v in visual_grid)
        if len(visual_grid) != 3 or min(visual_grid) < 1:
            raise ValueError(f"visual_grid must be a (frames, height, width) triple, got {visual_grid!r}.")
        _check_grid_fits(
            visual_grid, self.config.max_visual_grid, "visual",
            "generate fewer frames or a smaller image, or use generate(..., num_frames=...) to slide over time.",
        )
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, sketch_tokens=sketch_tokens,
                condition_type=condition_type, batch_size=decoder_input_ids.shape[0],
            )
        hidden = self.decoder(
            decoder_input_ids, encoder_outputs.last_hidden_state, visual_grid=visual_grid,
            condition_grid=encoder_outputs.condition_grid, condition_type=encoder_outputs.condition_type, cache=cache,
        )
        return hidden, encoder_outputs


class NuwaForConditionalGeneration(NuwaVisualTokenizersMixin, NuwaPreTrainedModel, NuwaGenerationMixin):
    """NUWA with a head over the visual codebook, a cross-entropy loss and ``generate()``.

    Example:
        >>> from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
        >>> model = NuwaForConditionalGeneration(NuwaConfig.tiny())
        >>> text = torch.randint(0, 512, (1, 16))
        >>> video = model.generate(input_ids=text, visual_grid=(2, 4, 4), do_sample=True, top_k=8)
        >>> model.sequences_to_grid(video, (2, 4, 4)).shape
        torch.Size([1, 2, 4, 4])
    """

    def __init__(self, config: NuwaConfig):
        super().__init__(config)
        self.model = NuwaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.visual_vocab_size, bias=False)
        self.post_init()

    # The VQ-GANs live in the base model (``self.model``); these properties let the encode/decode methods of
    # NuwaVisualTokenizersMixin, and users, reach them from here.
    @property
    def vqgan(self) -> Optional[NuwaVQGAN]:
        return self.model.vqgan

    @property
    def sketch_vqgan(self) -> Optional[NuwaSegVQGAN]:
        return self.model.sketch_vqgan

    def set_visual_tokenizers(self, vqgan: Optional[NuwaVQGAN] = None, sketch_vqgan: Optional[NuwaSegVQGAN] = None):
        """See :meth:`NuwaModel.set_visual_tokenizers`."""
        self.model.set_visual_tokenizers(vqgan=vqgan, sketch_vqgan=sketch_vqgan)

    def get_encoder(self):
        return self.model.encoder

    def get_decoder(self):
        return self.model.decoder

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    def shift_right(self, labels: torch.LongTensor) -> torch.LongTensor:
        """labels (B, L) -> decoder inputs (B, L): <bos> then labels[:, :-1] (ignored labels become <bos>)."""
        bos = torch.full_like(labels[:, :1], self.config.visual_bos_token_id)
        shifted = torch.cat([bos, labels[:, :-1]], dim=1)
        return shifted.masked_fill(shifted < 0, self.config.visual_bos_token_id)

    @staticmethod
    def sequences_to_grid(sequences: torch.LongTensor, visual_grid: Grid) -> torch.LongTensor:
        """generate() output (B, 1 + T*H*W), with <bos> first -> visual tokens (B, T, H, W)."""
        T, H, W = visual_grid
        if sequences.shape[1] != 1 + T * H * W:
            raise ValueError(f"expected {1 + T * H * W} ids (<bos> + grid {tuple(visual_grid)}), got {sequences.shape[1]}.")
        return sequences[:, 1:].reshape(-1, T, H, W)

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        sketch_tokens: Optional[torch.LongTensor] = None,
        condition_type: Optional[str] = None,
        decoder_input_ids: Optional[torch.LongTensor] = None,
        labels: Optional[torch.LongTensor] = None,
        visual_grid: Optional[Grid] = None,
        encoder_outputs: Optional[NuwaEncoderOutput] = None,
        cache: Optional[EncoderDecoderCache] = None,
        use_cache: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        num_items_in_batch: Optional[torch.Tensor] = None,
        generation_controls: Optional[NuwaGenerationControls] = None,
        pixel_values: Optional[torch.FloatTensor] = None,
        sketch_maps: Optional[torch.LongTensor] = None,
        **kwargs,
    ) -> NuwaSeq2SeqLMOutput:
        """
        Args:
            input_ids: text condition (B, L). Or ``sketch_tokens`` (B, Ts, Hs, Ws); or neither for the "None" condition.
            labels: target visual tokens (B, T, H, W), or (B, T*H*W) with ``visual_grid``; -100 is ignored.
            decoder_input_ids: (B, L) decoder inputs; built from ``labels`` by :meth:`shift_right` when omitted.
            visual_grid: (T, H, W) of the target; inferred from 4-D labels.
            encoder_outputs: reuse an encoded condition (generation does).
            cache: an ``EncoderDecoderCache`` for incremental decoding (see :func:`make_generation_cache`).
            num_items_in_batch: set by ``Trainer``; the loss is then a sum divided by it (correct under gradient
                accumulation and several processes).
            generation_controls: set by :meth:`generate`: classifier-free guidance and known (teacher-forced) tokens,
                applied to the logits here so that they act before any sampling warper.

            pixel_values: target images / videos (B, T, 3, H, W) (or (B, 3, H, W)) in [-1, 1], as NuwaProcessor
                returns them; coded by the model's VQ-GAN into ``labels`` (so ``model(**processor(text=...,
                images=...))`` gives the training loss).
            sketch_maps: sketch class maps (B, T, H, W) (or (B, H, W)); coded by the sketch VQ-GAN into
                ``sketch_tokens``.

        Returns:
            :class:`NuwaSeq2SeqLMOutput` with ``logits`` (B, L, N) and ``loss`` when labels are given.
        """
        if pixel_values is not None:
            if labels is not None:
                raise ValueError("Give the target as `labels` (tokens) or as `pixel_values`, not both.")
            labels = (self.encode_images if pixel_values.ndim == 4 else self.encode_videos)(pixel_values)
        if sketch_maps is not None:
            if sketch_tokens is not None:
                raise ValueError("Give the sketch as `sketch_tokens` or as `sketch_maps`, not both.")
            sketch_tokens = self.encode_sketches(sketch_maps)
        if labels is not None:
            if labels.dim() == 4:
                grid_from_labels = tuple(labels.shape[1:])
                if visual_grid is not None and tuple(visual_grid) != grid_from_labels:
                    raise ValueError(f"labels have grid {grid_from_labels} but visual_grid={tuple(visual_grid)}.")
                visual_grid = grid_from_labels
                labels = labels.flatten(1)
            elif labels.dim() != 2:
                raise ValueError(f"labels must be (B, T, H, W) or (B, T*H*W), got shape {tuple(labels.shape)}.")
            if decoder_input_ids is None:
                decoder_input_ids = self.shift_right(labels)
            valid = labels[labels != -100]
            if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= self.config.visual_vocab_size):
                raise ValueError(
                    f"labels must be visual codes in [0, {self.config.visual_vocab_size}) or -100; check the VQ-GAN's "
                    f"codebook size against config.visual_vocab_size."
                )
        if decoder_input_ids is not None and (
            int(decoder_input_ids.min()) < 0 or int(decoder_input_ids.max()) > self.config.visual_bos_token_id
        ):
            raise ValueError(f"decoder_input_ids must lie in [0, {self.config.visual_bos_token_id}] (codes or <bos>).")
        past = int(cache.self_attention_cache.get_seq_length()) if cache is not None else 0
        hidden, encoder_outputs = self.model(
            input_ids=input_ids, attention_mask=attention_mask, sketch_tokens=sketch_tokens,
            condition_type=condition_type, decoder_input_ids=decoder_input_ids, visual_grid=visual_grid,
            encoder_outputs=encoder_outputs, cache=cache,
        )
        logits = self.lm_head(hidden)
        if generation_controls is not None:
            logits = generation_controls.apply(self, logits, decoder_input_ids, visual_grid, past)
        loss = None
        if labels is not None:
            reduction = "sum" if num_items_in_batch is not None else "mean"
            loss = nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction=reduction
            )
            if num_items_in_batch is not None:
                loss = loss / num_items_in_batch
        return NuwaSeq2SeqLMOutput(
            loss=loss, logits=logits, cache=cache, encoder_last_hidden_state=encoder_outputs.last_hidden_state
        )
