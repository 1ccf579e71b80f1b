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

Every token gets three learned position embeddings (one per axis t, h, w) of its own grid; with
``config.rope_3d`` every self-attention also rotates its queries and keys by their (t, h, w). The decoder input at
position p is the token of position p-1; position 0 gets <bos> (id N). Attention goes through transformers'
``AttentionInterface``: the default ``"nuwa_3dna"`` calls :func:`nuwa_hf.nearby_attention`; ``"sdpa"`` and ``"eager"``
compute the same thing with a dense mask (slow, for checking).

Outputs follow transformers' encoder-decoder conventions (Bart): ``output_hidden_states`` / ``output_attentions`` give
``encoder_hidden_states`` (embeddings + one per layer, the last after the final norm), ``decoder_hidden_states``,
``encoder_attentions``, ``decoder_attentions`` and ``cross_attentions`` (B, heads, Lq, Lk); ``return_dict=False``
gives tuples. Implementations that never form the attention matrix (``"nuwa_3dna"``, ``"sdpa"``) compute the weights
the eager way when they are asked for, so every implementation returns them.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutput,
    BaseModelOutputWithPastAndCrossAttentions,
    Seq2SeqLMOutput,
    Seq2SeqModelOutput,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, is_torchdynamo_compiling

from ...ops import (allowed, apply_rotary, nearby_attention, nearby_attention_mask, rotary_3d_angles,
                   rotary_3d_tables)
from .configuration_nuwa import CONDITION_TYPES, Extent, Grid, NuwaConfig, visual_tokenizer_config
from .decoding_nuwa import NuwaDecodingCache, compiled_module
from .generation_nuwa import NuwaGenerationMixin
from .visual_generation_nuwa import NuwaVisualGenerationMixin

if TYPE_CHECKING:  # annotations only: the VQ-GAN classes are imported when a model is built (_vqgan_classes)
    from ..vqgan.modeling_seg_vqgan import NuwaSegVQGAN
    from ..vqgan.modeling_vqgan import NuwaVQGAN


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
    """The ``"nuwa_3dna"`` attention implementation: 3D Nearby Attention, never a dense mask.

    Under ``torch.compile`` the same attention is traced as sdpa with the dense 3DNA mask: the sparse backends plan
    their tiles in Python on the host, which a compiled graph cannot contain. The values are the same.
    """
    if is_torchdynamo_compiling():
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling, dropout, query_grid=query_grid, key_grid=key_grid,
            extent=extent, causal=causal, query_offset=query_offset,
        )
    out = nearby_attention(
        query, key, value, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, scale=scaling,
        query_offset=query_offset,
    )
    if dropout > 0.0:
        out = nn.functional.dropout(out, p=dropout, training=True)
    return out.transpose(1, 2).contiguous(), None


def _dense_mask(query, key, query_grid, key_grid, extent, causal, query_offset):
    if is_torchdynamo_compiling():
        # Built in the graph: the cached full mask of nearby_attention_mask is a host-side lru_cache.
        offset = query_offset or 0
        q_index = torch.arange(offset, offset + query.shape[2], device=query.device)
        k_index = torch.arange(key.shape[2], device=query.device)
        return allowed(q_index[:, None], k_index[None, :], tuple(query_grid), tuple(key_grid), tuple(extent), causal)
    return nearby_attention_mask(
        query_grid, key_grid, extent, causal, query_offset=query_offset or 0, num_queries=query.shape[2],
        num_keys=key.shape[2], device=query.device,
    )


def eager_attention_weights(
    query, key, scaling=None, *, query_grid, key_grid, extent, causal, query_offset=None
) -> torch.Tensor:
    """softmax(QK^T * scaling) under the dense 3DNA mask: (B, heads, Lq, Lk), zero outside each query's window."""
    mask = _dense_mask(query, key, query_grid, key_grid, extent, causal, query_offset)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    return weights.masked_fill(~mask, float("-inf")).softmax(dim=-1)


def eager_attention_forward(
    module, query, key, value, attention_mask, scaling=None, dropout=0.0, *, query_grid, key_grid, extent, causal,
    query_offset=None, **kwargs,
):
    """``"eager"``: explicit softmax(QK^T) with the dense 3DNA mask; also returns the attention weights."""
    weights = eager_attention_weights(
        query, key, scaling, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal,
        query_offset=query_offset,
    )
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

# Registered where it is defined, so that the remote code (nuwa_hf.hub.push_code), which imports this module without
# the package's __init__, registers it too.
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

    def positions(self, grid: Grid, offset: int, length: int, device) -> torch.Tensor:
        """(length, d): the summed position embeddings of raster positions ``offset .. offset+length-1`` of ``grid``
        (a decoding cache keeps the whole grid's, ``positions(grid, 0, T*H*W)``)."""
        t, h, w = grid_positions(grid, offset, length, device)
        return self.time(t) + self.height(h) + self.width(w)

    def forward(self, ids: torch.Tensor, grid: Grid, offset: int = 0,
                positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """ids (B, L) -> (B, L, d) for raster positions ``offset .. offset+L-1`` of ``grid``; ``positions`` (L, d):
        those positions' rows of :meth:`positions`, when already at hand."""
        if positions is None:
            positions = self.positions(grid, offset, ids.shape[1], ids.device)
        return self.tokens(ids) + positions


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

    def project_keys_values(self, source: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """source (B, Lk, d) -> (key, value), each (B, heads, Lk, head_dim), before any rotation."""
        return self._heads(self.k_proj(source)), self._heads(self.v_proj(source))

    def fused_qkv(self) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """(weight (3d, d), bias (3d,)): q_proj, k_proj and v_proj stacked, for one matmul per decoding step. None
        when a projection is not a plain ``nn.Linear`` (an adapter wraps it): then each runs its own forward."""
        if not all(type(proj) is nn.Linear for proj in (self.q_proj, self.k_proj, self.v_proj)):
            return None
        return (torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight]),
                torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]))

    def can_fold(self) -> bool:
        """Whether :meth:`fold_condition` computes this attention: its q / out projections are plain ``nn.Linear``
        (an adapter's extra path cannot be folded into the condition)."""
        return type(self.q_proj) is nn.Linear and type(self.out_proj) is nn.Linear

    def fold_condition(self, key: torch.Tensor, value: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Cross-attention to a condition every query sees whole, with the projections folded into its keys/values:
        key / value (B, heads, Lc, head_dim) -> ``(c (B, 1, heads*Lc), A (B, d, heads*Lc), M (B, heads*Lc, d), Lc)``.

            scores_h = (h Wq_h^T + bq_h) K_h^T * scaling = h @ A_h + c_h
            out      = sum_h softmax(scores_h) V_h Wo_h^T + bo = probs @ M + bo

        so that a step's cross-attention is two batched matmuls (:meth:`forward` over a :class:`NuwaDecodingCache`
        that holds them). The same function as the unfolded attention, the products associated differently."""
        B, NH, Lc, D = key.shape
        d = NH * D
        wq = self.q_proj.weight.view(NH, D, d)  # rows of head h
        bq = self.q_proj.bias.view(NH, D, 1)
        A = torch.matmul(wq.transpose(1, 2), key.transpose(2, 3)) * self.scaling  # (B, NH, d, Lc)
        c = torch.matmul(key, bq) * self.scaling  # (B, NH, Lc, 1)
        wo = self.out_proj.weight.view(d, NH, D).permute(1, 2, 0)  # (NH, D, d): head h's columns
        M = torch.matmul(value, wo)  # (B, NH, Lc, d)
        return c.reshape(B, 1, NH * Lc), A.permute(0, 2, 1, 3).reshape(B, d, NH * Lc), M.reshape(B, NH * Lc, d), Lc

    def decode_plan(self, cache: NuwaDecodingCache) -> Callable:
        """This attention for the steps of a :class:`~.decoding_nuwa.NuwaDecodingCache`: a function hidden_states
        (B, L, d) at the cache's current positions -> (B, L, d). q, k and v come from one matmul
        (:meth:`fused_qkv`, kept by the cache), this step's (rotated) keys/values are written into the cache's
        buffers and each position's 3DNA window is a row of its index table; cross-attention reads the condition's
        keys/values (or :meth:`fold_condition`'s factors) that the cache computed once."""
        state = cache.layer_states[self.layer_idx]
        heads, head_dim = self.num_heads, self.head_dim
        out_proj = compiled_module(self.out_proj)

        if self.is_cross_attention:
            folded = state.get("cross_folded")
            if folded is not None:
                c, A, M, Lc = folded
                bias = self.out_proj.bias

                def cross_folded(h):
                    B, L = h.shape[0], h.shape[1]
                    probs = torch.softmax(torch.baddbmm(c, h, A).view(B, L, heads, Lc), dim=-1)
                    return torch.baddbmm(bias, probs.view(B, L, heads * Lc), M)
                return cross_folded
            q_proj, kv = compiled_module(self.q_proj), state["cross_kv"]

            def cross_attention(h):
                B, L = h.shape[0], h.shape[1]
                out = cache.attend_cross(self._heads(q_proj(h)), kv)
                return out_proj(out.transpose(1, 2).reshape(B, L, heads * head_dim))
            return cross_attention

        kv, fused = state["kv"], state["qkv"]
        if fused is not None:
            weight, bias = fused
        else:  # an adapter wraps a projection: each runs its own forward
            q_proj, k_proj, v_proj = (compiled_module(p) for p in (self.q_proj, self.k_proj, self.v_proj))

        def self_attention(h):
            B, L = h.shape[0], h.shape[1]
            if fused is not None:  # (3, B, heads, L, head_dim) from one matmul
                qkv = nn.functional.linear(h, weight, bias).view(B, L, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
            else:
                qkv = torch.stack([q_proj(h), k_proj(h), v_proj(h)]).view(3, B, L, heads, head_dim).permute(0, 1, 3, 2, 4)
            if cache.rotary is None:
                query = qkv[0]
                cache.store(kv, qkv[1:])
            else:  # the cache keeps rotated keys: each is rotated once, when written
                cos, sin = cache.rotary
                query = apply_rotary(qkv[0], cos, sin)
                cache.store(kv, torch.stack([apply_rotary(qkv[1], cos, sin), qkv[2]]))
            out = cache.attend_self(query, kv)
            return out_proj(out.transpose(1, 2).reshape(B, L, heads * head_dim))
        return self_attention

    def _rotary(self, grid: Grid, offset: int, length: int, like: torch.Tensor):
        """``(cos, sin)`` (length, head_dim) of raster positions ``offset .. offset+length-1`` of ``grid``."""
        if is_torchdynamo_compiling():
            # In the graph: the cached tables are a host-side lru_cache.
            angles = rotary_3d_angles(tuple(grid), self.head_dim, self.config.rope_theta, like.device)[offset:offset + length]
            angles = torch.cat([angles, angles], dim=1)
            return angles.cos().to(like.dtype), angles.sin().to(like.dtype)
        cos, sin = rotary_3d_tables(grid, self.head_dim, self.config.rope_theta, device=like.device, dtype=like.dtype)
        return cos[offset:offset + length], sin[offset:offset + length]

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
        output_attentions: bool = False,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """hidden_states (B, Lq, d) -> ``(out (B, Lq, d), weights (B, heads, Lq, Lk) or None)``.

        ``key_value_states`` (B, Lk, d) for cross-attention. The weights are returned only with
        ``output_attentions=True``; an implementation that does not form them (3DNA kernels, sdpa) has them computed
        separately the eager way (dense Lq x Lk, before dropout).

        With a :class:`~.decoding_nuwa.NuwaDecodingCache` (``generate()``'s decoding) the attention runs over the
        state it holds for the whole call (:meth:`_decode`); the grids and extents are the cache's.
        """
        if isinstance(cache, NuwaDecodingCache):
            return self.decode_plan(cache)(hidden_states), None
        query = self._heads(self.q_proj(hidden_states))
        source = key_value_states if self.is_cross_attention else hidden_states
        rotate = self.config.rope_3d and not self.is_cross_attention
        if rotate:
            # 3D RoPE: queries and this call's keys sit at raster positions offset .. offset+Lq-1 of the grid; the
            # cache stores rotated keys, so earlier positions are never rotated again.
            offset = query_offset or 0
            cos, sin = self._rotary(query_grid, offset, hidden_states.shape[1], query)
            query = apply_rotary(query, cos, sin)
        if self.is_cross_attention and cache is not None and cache.is_updated.get(self.layer_idx):
            # Encoder keys/values never change during generation: computed once, then reused.
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            key, value = layer.keys, layer.values
        else:
            key, value = self.project_keys_values(source)
            if rotate:
                key = apply_rotary(key, cos, sin)
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
        if not output_attentions:
            weights = None
        elif weights is None:
            weights = eager_attention_weights(
                query, key, self.scaling, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal,
                query_offset=query_offset,
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
        return self._run(self.fc1, self.act, self.fc2, x)

    def decode_plan(self) -> Callable:
        """This block for a decoding step: :meth:`forward`'s arithmetic over the compiled forms of its sub-modules
        (:func:`~.decoding_nuwa.compiled_module`)."""
        fc1, act, fc2 = compiled_module(self.fc1), compiled_module(self.act), compiled_module(self.fc2)
        return functools.partial(self._run, fc1, act, fc2)

    def _run(self, fc1: Callable, act: Callable, fc2: Callable, x: torch.Tensor) -> torch.Tensor:
        h = act(fc1(x))
        return fc2(self.dropout(h) if self.training else h)


class NuwaEncoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: ``x + 3DNA(LN(x), LN(x))`` then ``x + FFN(LN(x))``. Recomputed in the backward pass under
    ``model.gradient_checkpointing_enable()`` (transformers' ``GradientCheckpointingLayer``)."""

    def __init__(self, config: NuwaConfig):
        super().__init__()
        self.self_attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = NuwaAttention(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = NuwaFeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, grid: Grid, extent: Extent, output_attentions: bool = False
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x (B, L, d) -> ``(x (B, L, d), self-attention weights (B, heads, L, L) or None)``."""
        attn, weights = self.self_attn(
            self.self_attn_norm(x), query_grid=grid, key_grid=grid, extent=extent, causal=False,
            output_attentions=output_attentions,
        )
        x = x + self.dropout(attn)
        return x + self.dropout(self.ffn(self.ffn_norm(x))), weights


class NuwaDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block (paper eq. 15): causal 3DNA self-attention, 3DNA cross-attention to the condition, FFN.

    Under gradient checkpointing the two tensors that need gradients (``x`` and ``condition``) are positional, as
    transformers' reentrant checkpointing requires."""

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
        cache: Optional[EncoderDecoderCache] = None,
        query_offset: Optional[int] = None,
        output_attentions: bool = False,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """x (B, Lq, d), condition (B, Lc, d) -> ``(x, self-attention weights (B, heads, Lq, Lk) or None,
        cross-attention weights (B, heads, Lq, Lc) or None)``. With a :class:`~.decoding_nuwa.NuwaDecodingCache`:
        :meth:`decode` (the grids, extents and condition are the cache's)."""
        if isinstance(cache, NuwaDecodingCache):
            return self.decode_plan(cache)(x), None, None
        weights = [None, None]

        def attend_self(h):
            out, weights[0] = self.self_attn(
                h, query_grid=grid, key_grid=grid, extent=self_extent, causal=True, cache=cache,
                query_offset=query_offset, output_attentions=output_attentions,
            )
            return out

        def attend_cross(h):
            out, weights[1] = self.cross_attn(
                h, query_grid=grid, key_grid=condition_grid, extent=cross_extent, causal=False,
                key_value_states=condition, cache=cache, query_offset=query_offset,
                output_attentions=output_attentions,
            )
            return out

        return self._block(self.self_attn_norm, attend_self, self.cross_attn_norm, attend_cross, self.ffn_norm,
                           self.ffn, x), weights[0], weights[1]

    def decode_plan(self, cache: NuwaDecodingCache) -> Callable:
        """This layer for the steps of a :class:`~.decoding_nuwa.NuwaDecodingCache` (eval; what ``generate()``'s
        steps run): a function x (B, L, d) at the cache's current positions -> (B, L, d). The same :meth:`_block`
        as :meth:`forward`, over the attentions' decoding plans and the compiled forms of the norms and the
        feed-forward (:func:`~.decoding_nuwa.compiled_module`: at decoding sizes nn.Module's per-call dispatch
        would cost as much as the arithmetic)."""
        parts = (compiled_module(self.self_attn_norm), self.self_attn.decode_plan(cache),
                 compiled_module(self.cross_attn_norm), self.cross_attn.decode_plan(cache),
                 compiled_module(self.ffn_norm), self.ffn.decode_plan())
        return functools.partial(self._block, *parts)  # (a partial: no Python frame of its own per step)

    def _block(self, norm1: Callable, attend_self: Callable, norm2: Callable, attend_cross: Callable, norm3: Callable,
               ffn: Callable, x: torch.Tensor) -> torch.Tensor:
        """``x + SA(LN(x))``, ``x + CA(LN(x))``, ``x + FFN(LN(x))`` (paper eq. 15): the layer's arithmetic, for
        both paths."""
        h = attend_self(norm1(x))
        x = x + (self.dropout(h) if self.training else h)
        h = attend_cross(norm2(x))
        x = x + (self.dropout(h) if self.training else h)
        h = ffn(norm3(x))
        return x + (self.dropout(h) if self.training else h)


# --------------------------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class NuwaEncoderOutput(BaseModelOutput):
    """Encoder output. ``last_hidden_state``: (B, Lc, d) over ``condition_grid`` (T, H, W) of ``condition_type``."""

    condition_grid: Optional[Tuple[int, int, int]] = None
    condition_type: Optional[str] = None


@dataclass
class NuwaSeq2SeqLMOutput(Seq2SeqLMOutput):
    """Output of :class:`NuwaForConditionalGeneration`: transformers' ``Seq2SeqLMOutput``, with

    loss: mean (or ``num_items_in_batch``-normalised sum) cross-entropy over the predicted visual tokens.
    logits: (B, Lq, N) over the visual codebook for the decoder positions given.
    cache: the EncoderDecoderCache to pass back when generating.
    decoder_hidden_states / encoder_hidden_states: with ``output_hidden_states=True``, ``1 + layers`` tensors (B, L, d):
        the embeddings, then each layer's output (the last one after the final norm).
    decoder_attentions / cross_attentions / encoder_attentions: with ``output_attentions=True``, one (B, heads, Lq, Lk)
        tensor per layer.
    encoder_last_hidden_state: (B, Lc, d).
    """


@dataclass
class NuwaDecodingOutput(ModelOutput):
    """Output of :class:`NuwaForConditionalGeneration` over a :class:`~.decoding_nuwa.NuwaDecodingCache` (each
    ``generate()`` step): ``logits`` (B, L, N) of the decoder positions given and the ``cache``. Two fields: a
    ``ModelOutput`` costs per field to build, once per generated token."""

    logits: Optional[torch.FloatTensor] = None
    cache: Optional[Cache] = None


# --------------------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------------------


def _refuse_non_finite_weights(model: nn.Module, where: str) -> None:
    """Raise ``NuwaModelFolderError`` naming the tensors that hold NaN or infinity (a diverged training run saved, or
    a damaged file whose checksum was rewritten): such weights make every generation fail or decode to noise. One
    pass over the weights (tensors on the meta device, i.e. offloaded, are skipped)."""
    from .loading_nuwa import NuwaModelFolderError

    bad = []
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point() or tensor.device.type == "meta":
                continue
            # A NaN or infinity anywhere makes the sum NaN or infinite, so a finite sum (accumulated in float32,
            # which no real weights overflow) clears the tensor at one reduction's cost, ~15x cheaper than
            # isfinite over every value; only a non-finite sum is looked at value by value.
            if bool(torch.isfinite(tensor.sum(dtype=torch.float32))):
                continue
            non_finite = int((~torch.isfinite(tensor)).sum())
            if non_finite:
                bad.append(f"{name} ({non_finite} of {tensor.numel()} values)")
    if bad:
        raise NuwaModelFolderError(
            f"The weights in {where!r} hold NaN or infinite values in {len(bad)} tensor(s): {', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}. Generation would fail or decode to noise: the run that saved them "
            "diverged or the file is damaged; use an earlier checkpoint (or train again with a lower learning rate)."
        )


class NuwaPreTrainedModel(PreTrainedModel):
    config_class = NuwaConfig
    config: NuwaConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["NuwaEncoderLayer", "NuwaDecoderLayer"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``; an old-layout folder (VQ-GANs in ``vqgan/`` and ``vqgan_seg/``) is
        converted on the fly, with a warning, so users' checkpoints keep working."""
        from .convert_nuwa_legacy_folder import convert_legacy_folder, is_legacy_folder
        from .loading_nuwa import NuwaModelFolderError, check_model_files

        path = pretrained_model_name_or_path
        if isinstance(path, (str, os.PathLike)):
            check_model_files(path)  # clear errors for missing / damaged / foreign folders, checksum manifest
        wants_loading_info = kwargs.pop("output_loading_info", False)
        kwargs["output_loading_info"] = True
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
                model, loading_info = super().from_pretrained(converted, *args, **kwargs)
            # Pipelines read the processor files from the real folder, not the scratch copy.
            model.config._name_or_path = model.name_or_path = os.fspath(path)
        else:
            try:
                model, loading_info = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
            except RuntimeError as error:
                if not any(sign in str(error) for sign in ("size mismatch", "mismatched", "shape")):
                    raise
                raise NuwaModelFolderError(
                    f"The weights in {os.fspath(path)!r} do not fit its config.json (tensor shapes differ from the "
                    "config's sizes): the config was edited or belongs to other weights; use the config.json saved "
                    "with these weights."
                ) from None
        where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "the checkpoint"
        missing = sorted(loading_info.get("missing_keys") or [])
        # Allowed: a caller who asks for the loading info reads missing_keys itself, and a head model (lm_head) on a
        # base model's folder (transformers' base -> head loading, e.g. to fine-tune from a NuwaModel).
        from_base = set(missing) <= {"lm_head.weight"} and "NuwaModel" in (getattr(model.config, "architectures", None)
                                                                           or [])
        if missing and not wants_loading_info and not from_base:
            raise NuwaModelFolderError(
                f"The weights in {where!r} lack {len(missing)} of the model's tensors ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}), which would start from random values: the weight file belongs "
                "to another model or was saved incompletely; use the model.safetensors saved with this config.json. "
                "(To start parts from random on purpose, pass output_loading_info=True and read its missing_keys, or "
                "build `NuwaForConditionalGeneration(config)` and call `load_state_dict(weights, strict=False)`.)"
            )
        _refuse_non_finite_weights(model, where)
        # Loading replaces the parameters (requires_grad back on): freeze the VQ-GANs again.
        for name in ("vqgan", "sketch_vqgan"):
            tokenizer = getattr(model, name, None)
            if isinstance(tokenizer, nn.Module):
                tokenizer.requires_grad_(False)
        return (model, loading_info) if wants_loading_info else model

    @property
    def dummy_inputs(self) -> dict:
        """Small valid inputs: ``model(**model.dummy_inputs)`` runs. Two prompts of up to 5 text ids, and the decoder
        inputs (<bos> + 3 codes) of a (1, 2, 2) image grid (smaller where the model's grid is)."""
        config = self.config
        grid = (1, min(2, config.max_visual_grid[1]), min(2, config.max_visual_grid[2]))
        length = min(5, config.max_text_length)
        text = (torch.arange(2 * length, device=self.device).reshape(2, length) + 1) % config.text_vocab_size
        codes = torch.arange(grid[1] * grid[2] - 1, device=self.device) % config.visual_vocab_size
        bos = torch.tensor([config.visual_bos_token_id], device=self.device)
        decoder_input_ids = torch.cat([bos, codes]).expand(2, -1).contiguous()
        return {"input_ids": text, "decoder_input_ids": decoder_input_ids, "visual_grid": grid}

    def resize_token_embeddings(
        self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """Resize the TEXT token table (after ``tokenizer.add_tokens(...)``: ``resize_token_embeddings(len(tokenizer))``)
        and set ``config.text_vocab_size``; returns the new table.

        Unlike transformers' default, the output layer is not resized: NUWA's ``lm_head`` predicts the VQ-GAN's visual
        codes, a vocabulary fixed by the codebook (``config.visual_vocab_size``), so it and the decoder's visual input
        table are left as they are.
        """
        old = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return old
        new = self._get_resized_embeddings(old, new_num_tokens, pad_to_multiple_of, mean_resizing)
        if hasattr(old, "_hf_hook"):  # accelerate's device-placement hook (device_map)
            from accelerate.hooks import add_hook_to_module

            add_hook_to_module(new, old._hf_hook)
        new.requires_grad_(old.weight.requires_grad)
        size = new.weight.shape[0]
        if size <= self.config.text_pad_token_id:
            raise ValueError(
                f"a text vocabulary of {size} tokens would drop the pad token (text_pad_token_id="
                f"{self.config.text_pad_token_id}); resize to at least {self.config.text_pad_token_id + 1}."
            )
        self.set_input_embeddings(new)
        self.config.text_vocab_size = size
        return self.get_input_embeddings()

    @torch.no_grad()
    def resize_grid_embeddings(self, max_visual_grid: Optional[Sequence[int]] = None,
                               max_sketch_grid: Optional[Sequence[int]] = None) -> None:
        """Grow the decoder's (visual) or the sketch encoder's per-axis position tables to a larger ``(T, H, W)`` and
        set ``config.max_visual_grid`` / ``config.max_sketch_grid``, e.g. to fine-tune a 4-frame model on 6-frame
        clips: ``model.resize_grid_embeddings(max_visual_grid=(6, 8, 8), max_sketch_grid=(6, 8, 8))``.

        Learned rows are kept; each new row starts as a copy of the last learned row of its axis (the nearest
        position the model knows), so the grown model gives the same outputs on the grids it already had. Shrinking
        is refused: positions the weights were trained on would be lost.
        """
        owners = {"max_visual_grid": (getattr(self, "model", self).decoder, "embedding"),
                  "max_sketch_grid": (getattr(self, "model", self).encoder, "sketch_embedding")}
        for key, grid in (("max_visual_grid", max_visual_grid), ("max_sketch_grid", max_sketch_grid)):
            if grid is None:
                continue
            grid = [int(side) for side in grid]
            old = [int(side) for side in getattr(self.config, key)]
            if len(grid) != 3 or any(new < have for new, have in zip(grid, old)):
                raise ValueError(f"{key} can only grow: have {tuple(old)}, asked for {tuple(grid)} (give three sides, "
                                 "each at least the current one).")
            owner, name = owners[key]
            embedding = getattr(owner, name)
            for axis, side in zip(("time", "height", "width"), grid):
                table = getattr(embedding, axis)
                have = table.weight.shape[0]
                if side == have:
                    continue
                grown = nn.Embedding(side, table.weight.shape[1], device=table.weight.device, dtype=table.weight.dtype)
                grown.weight[:have] = table.weight
                grown.weight[have:] = table.weight[have - 1]
                grown.weight.requires_grad_(table.weight.requires_grad)
                setattr(embedding, axis, grown)
            setattr(self.config, key, grid)

    def save_pretrained(self, save_directory, *args, remote_code: Optional[str] = None, **kwargs):
        """``PreTrainedModel.save_pretrained`` (config, safetensors, generation config), plus the checksum manifest
        and, when the folder has none, a model card (``library_name: nuwa-hf``). No code is written: the installed
        package loads the folder.

        remote_code: a code repository published with ``nuwa_hf.hub.push_code`` (e.g. ``"my-org/nuwa-hf-code"``):
            config.json's ``auto_map`` and ``custom_pipelines`` then name its classes, so the folder also loads with
            ``trust_remote_code=True`` where nuwa-hf is not installed. Default: no references to code.

        The folder is written whole or not at all (:func:`nuwa_hf.file_io.staged_folder`): everything is saved into a
        hidden folder beside it and then moved in, so a save killed at any moment leaves the earlier model (or no
        model), never a mix; a full disk raises ``nuwa_hf.file_io.WriteSpaceError`` naming the folder and the space
        needed. (On processes other than the main one it writes in place, as transformers does.) With
        ``push_to_hub=True`` (and transformers' ``repo_id``, ``commit_message``, ``token``, ...) the files this save
        wrote are then uploaded as they are on disk (:func:`~.saving_nuwa.save_and_push`)."""
        main_process = kwargs.get("is_main_process", True)
        if not args and main_process and kwargs.pop("push_to_hub", False):
            from .saving_nuwa import save_and_push

            save_and_push(self, save_directory, remote_code=remote_code, **kwargs)
            return
        if not args and main_process:
            from ...file_io import staged_folder

            tensors = {t.data_ptr(): t.numel() * t.element_size() for t in self.state_dict().values()}
            with staged_folder(save_directory, "the model", needed=sum(tensors.values())) as staging:
                self._save_pretrained_in_place(staging, remote_code=remote_code, **kwargs)
        else:
            self._save_pretrained_in_place(save_directory, *args, remote_code=remote_code, **kwargs)
        if main_process:
            from .saving_nuwa import write_model_card

            write_model_card(save_directory, remote_code=remote_code)  # only when the folder has no card

    def _save_pretrained_in_place(self, save_directory, *args, remote_code: Optional[str] = None, **kwargs):
        saved_auto_map = getattr(self.config, "auto_map", None)
        self.config.__dict__.pop("auto_map", None)  # never a reference to code the folder does not hold
        if remote_code:
            from .saving_nuwa import code_references

            references = code_references(remote_code)
            self.config.auto_map = references["auto_map"]
            # Written to config.json only: a config loaded by the installed package leaves it out (see NuwaConfig),
            # so transformers.pipeline uses the registered pipelines without trust_remote_code.
            self.config.custom_pipelines = references["custom_pipelines"]
        try:
            super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.config.__dict__.pop("custom_pipelines", None)
            self.config.__dict__.pop("auto_map", None)
            if saved_auto_map is not None:
                self.config.auto_map = saved_auto_map
        if kwargs.get("is_main_process", True):
            from .loading_nuwa import write_checksum_manifest

            write_checksum_manifest(save_directory)  # checked on load: corrupted weights are refused

    def push_to_hub(self, repo_id: str, *, remote_code: Optional[str] = None, **kwargs):
        """transformers' ``push_to_hub``; ``remote_code`` as in :meth:`save_pretrained` (the folder it uploads)."""
        from .saving_nuwa import push_saved

        return push_saved(self, repo_id, remote_code=remote_code, **kwargs)

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


def _check_ids_in_range(ids: torch.Tensor, high: int, message: str, ignore_index: Optional[int] = None) -> None:
    """Raise ``ValueError(message)`` if an id lies outside ``[0, high)`` (``ignore_index`` allowed).

    The check reads tensor values on the host, so it is skipped while ``torch.compile`` traces the forward (a
    data-dependent branch would break the graph); eager calls keep the clear error.
    """
    if is_torchdynamo_compiling() or ids.numel() == 0:
        return
    bad = (ids < 0) | (ids >= high)
    if ignore_index is not None:
        bad &= ids != ignore_index
    if bool(bad.any()):
        raise ValueError(message)


def _reject_unexpected_kwargs(forward: Callable, kwargs: dict) -> None:
    """A misspelt argument (``lables=``) raises a ``TypeError`` naming the close matches and the valid arguments,
    instead of being swallowed by ``**kwargs`` (which ``forward`` keeps for transformers' Trainer)."""
    if not kwargs:
        return
    valid = [name for name, p in inspect.signature(forward).parameters.items()
             if p.kind != p.VAR_KEYWORD and name != "self"]
    hints = [f"{name!r} (did you mean {', '.join(map(repr, close))}?)" if close else repr(name)
             for name in kwargs for close in [difflib.get_close_matches(name, valid, n=2)]]
    raise TypeError(
        f"{forward.__qualname__.split('.')[0]}.forward() got unexpected keyword argument(s) {', '.join(hints)}. "
        f"Valid arguments: {', '.join(valid)}."
    )


def _output_flags(config, output_attentions, output_hidden_states, return_dict) -> Tuple[bool, bool, bool]:
    """The per-call flags, defaulting to the config's as in transformers."""
    return (
        bool(config.output_attentions if output_attentions is None else output_attentions),
        bool(config.output_hidden_states if output_hidden_states is None else output_hidden_states),
        bool(config.return_dict if return_dict is None else return_dict),
    )


def _pop_cache_alias(kwargs: dict, cache: Optional[Cache]) -> Optional[Cache]:
    """transformers' older name ``past_key_values`` for ``cache``."""
    if "past_key_values" in kwargs:
        legacy = kwargs.pop("past_key_values")
        if cache is not None and legacy is not None:
            raise ValueError("pass the KV cache once, as cache= (past_key_values= is its older name).")
        cache = legacy if cache is None else cache
    return cache


def _as_encoder_output(encoder_outputs) -> "NuwaEncoderOutput":
    """Accept the encoder's ``NuwaEncoderOutput`` or its ``return_dict=False`` tuple (which carries the condition
    grid and type after the tensors)."""
    if isinstance(encoder_outputs, NuwaEncoderOutput):
        return encoder_outputs
    if isinstance(encoder_outputs, (tuple, list)) and encoder_outputs and isinstance(encoder_outputs[-1], str):
        last_hidden_state, *per_layer, grid, condition_type = encoder_outputs
        # hidden states are (B, L, d) per entry, attentions (B, heads, L, L): told apart by rank.
        by_rank = {len(entry) and entry[0].dim(): entry for entry in per_layer}
        return NuwaEncoderOutput(
            last_hidden_state=last_hidden_state, hidden_states=by_rank.get(3), attentions=by_rank.get(4),
            condition_grid=tuple(grid), condition_type=condition_type,
        )
    raise TypeError(
        "encoder_outputs must be what model.get_encoder()(...) returns (a NuwaEncoderOutput, or its tuple form): it "
        f"carries the condition's grid and type, which a bare {type(encoder_outputs).__name__} does not."
    )


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

    def get_input_embeddings(self) -> nn.Embedding:
        return self.text_embedding.tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.text_embedding.tokens = value

    @property
    def dummy_inputs(self) -> dict:
        return {"input_ids": super().dummy_inputs["input_ids"]}

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        sketch_tokens: Optional[torch.LongTensor] = None,
        condition_type: Optional[str] = None,
        batch_size: Optional[int] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> Union[NuwaEncoderOutput, tuple]:
        """Encode one kind of condition.

        Args:
            input_ids: text ids (B, L) with L <= ``max_text_length``; padded to ``max_text_length`` here.
            attention_mask: accepted for API compatibility; padding tokens are ordinary tokens of a fixed-length prompt.
            sketch_tokens: VQ-GAN-Seg codes (B, Ts, Hs, Ws) (an image sketch has Ts = 1) or (B, Hs, Ws).
            condition_type: "text", "sketch" or "none"; inferred from what is given when omitted.
            batch_size: batch size of the "None" condition (nothing else tells it).
            output_attentions: also return each layer's self-attention weights (B, heads, Lc, Lc).
            output_hidden_states: also return the embeddings and each layer's output (B, Lc, d).
            return_dict: False returns ``to_tuple()`` of the output (default ``config.return_dict``).

        Returns:
            :class:`NuwaEncoderOutput` with ``last_hidden_state`` (B, Lc, d), the condition's grid and type.
        """
        _reject_unexpected_kwargs(type(self).forward, kwargs)
        output_attentions, output_hidden_states, return_dict = _output_flags(
            self.config, output_attentions, output_hidden_states, return_dict
        )
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
            _check_ids_in_range(
                input_ids, config.text_vocab_size,
                f"text ids must lie in [0, {config.text_vocab_size}); check the tokenizer (after tokenizer.add_tokens, "
                "call model.resize_token_embeddings(len(tokenizer))).",
            )
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
            _check_ids_in_range(
                sketch_tokens, config.sketch_vocab_size,
                f"sketch tokens must lie in [0, {config.sketch_vocab_size}); check the VQ-GAN-Seg.",
            )
            x = self.sketch_embedding(sketch_tokens.flatten(1), grid)
        else:
            if batch_size is None:
                raise ValueError("the 'none' condition needs batch_size.")
            grid = (1, 1, 1)
            x = self.null_condition.expand(batch_size, 1, -1)
        extent = config.condition_extent(condition_type, grid)
        hidden_states = [] if output_hidden_states else None
        attentions = [] if output_attentions else None
        for layer in self.layers:
            if hidden_states is not None:
                hidden_states.append(x)
            x, weights = layer(x, grid=grid, extent=extent, output_attentions=output_attentions)
            if attentions is not None:
                attentions.append(weights)
        x = self.norm(x)
        if hidden_states is not None:
            hidden_states.append(x)  # as transformers does: the last entry is last_hidden_state (after the norm)
        out = NuwaEncoderOutput(
            last_hidden_state=x, hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(attentions) if attentions is not None else None, condition_grid=grid,
            condition_type=condition_type,
        )
        return out if return_dict else out.to_tuple()


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

    def get_input_embeddings(self) -> nn.Embedding:
        """The visual input table: N codebook entries + <bos>."""
        return self.embedding.tokens

    def set_input_embeddings(self, value: nn.Embedding):
        self.embedding.tokens = value

    def resize_token_embeddings(self, *args, **kwargs):
        raise ValueError(
            "the decoder's vocabulary is the VQ-GAN's codebook (config.visual_vocab_size) plus <bos>; it is fixed by the "
            "VQ-GAN. To add text tokens, call resize_token_embeddings on the model (it resizes the text table)."
        )

    @property
    def dummy_inputs(self) -> dict:
        inputs = super().dummy_inputs
        batch = inputs["decoder_input_ids"].shape[0]
        condition = torch.zeros(batch, 1, self.config.hidden_size, device=self.device)
        return {"decoder_input_ids": inputs["decoder_input_ids"], "encoder_hidden_states": condition,
                "visual_grid": inputs["visual_grid"], "condition_grid": (1, 1, 1), "condition_type": "none"}

    def forward(
        self,
        decoder_input_ids: torch.LongTensor,
        encoder_hidden_states: torch.Tensor,
        *,
        visual_grid: Grid,
        condition_grid: Grid,
        condition_type: str,
        cache: Optional[EncoderDecoderCache] = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: Optional[bool] = None,
    ) -> Union[BaseModelOutputWithPastAndCrossAttentions, tuple]:
        """decoder_input_ids (B, L) at positions ``past .. past+L-1`` of ``visual_grid``, encoder_hidden_states
        (B, Lc, d) over ``condition_grid`` -> ``last_hidden_state`` (B, L, d), plus ``hidden_states`` (1 + layers),
        ``attentions`` and ``cross_attentions`` (one per layer) when asked for."""
        return_dict = self.config.return_dict if return_dict is None else return_dict
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
        hidden_states = [] if output_hidden_states else None
        self_attentions = [] if output_attentions else None
        cross_attentions = [] if output_attentions else None
        for layer in self.layers:
            if hidden_states is not None:
                hidden_states.append(x)
            x, self_weights, cross_weights = layer(
                x, encoder_hidden_states, grid=visual_grid, condition_grid=condition_grid, self_extent=self_extent,
                cross_extent=cross_extent, cache=cache, query_offset=query_offset, output_attentions=output_attentions,
            )
            if output_attentions:
                self_attentions.append(self_weights)
                cross_attentions.append(cross_weights)
        x = self.norm(x)
        if hidden_states is not None:
            hidden_states.append(x)
        out = BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=x, cache=cache,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            attentions=tuple(self_attentions) if self_attentions is not None else None,
            cross_attentions=tuple(cross_attentions) if cross_attentions is not None else None,
        )
        return out if return_dict else out.to_tuple()


def _vqgan_classes():
    """``(NuwaVQGAN, NuwaSegVQGAN)``, imported on first use: both are diffusers ``VQModel``s, and importing diffusers
    costs a few tenths of a second, so ``import nuwa_hf`` leaves it out until a model with VQ-GANs is built or loaded
    (a model without them, ``NuwaConfig.tiny()`` for instance, never imports diffusers)."""
    try:
        from ..vqgan.modeling_seg_vqgan import NuwaSegVQGAN
        from ..vqgan.modeling_vqgan import NuwaVQGAN
    except ImportError as error:
        if getattr(error, "name", None) != "diffusers" and "diffusers" not in str(error):
            raise
        raise ImportError(
            "NUWA's VQ-GANs are diffusers VQModels, and diffusers is not installed: `pip install diffusers` "
            "(a dependency of nuwa-hf: `pip install nuwa-hf` installs it)."
        ) from error
    return NuwaVQGAN, NuwaSegVQGAN


def _build_visual_tokenizer(sketch: bool, sub_config: Optional[dict]):
    """A frozen VQ-GAN (``NuwaSegVQGAN`` for ``sketch``, else ``NuwaVQGAN``) from its config dict, or None (then
    diffusers is not imported at all). NUWA trains on token grids: the VQ-GANs are trained before it (stage 1) and
    never receive gradients here, so they are frozen (which also keeps them out of DDP's and the optimizer's way)."""
    if sub_config is None:
        return None
    model_class = _vqgan_classes()[1 if sketch else 0]
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


_NO_HEAD_MESSAGE = (
    "NuwaModel.{method}() does not exist: NuwaModel (what AutoModel loads) is the bare encoder-decoder, without the "
    "head that predicts visual tokens. Load NuwaForConditionalGeneration instead: "
    "AutoModelForSeq2SeqLM.from_pretrained(path) or NuwaForConditionalGeneration.from_pretrained(path); or use a "
    "pipeline, e.g. pipeline(\"nuwa-text-to-image\", model=path)."
)


class NuwaModel(NuwaVisualTokenizersMixin, NuwaPreTrainedModel):
    """Encoder + decoder, returning the decoder's hidden states (no head) as a ``Seq2SeqModelOutput``, and the VQ-GANs
    that code its token grids."""

    def __init__(self, config: NuwaConfig):
        super().__init__(config)
        self.encoder = NuwaEncoder(config)
        self.decoder = NuwaDecoder(config)
        self.vqgan = _build_visual_tokenizer(False, config.vqgan_config)
        self.sketch_vqgan = _build_visual_tokenizer(True, config.sketch_vqgan_config)
        self.post_init()

    def set_visual_tokenizers(self, vqgan: Optional[NuwaVQGAN] = None, sketch_vqgan: Optional[NuwaSegVQGAN] = None):
        """Make trained VQ-GANs part of this model (and of its config, so `save_pretrained` writes a complete folder).

        Raises:
            ValueError: a codebook size differs from the model's vocabulary (the model predicts the VQ-GAN's codes).
        """
        NuwaVQGAN, NuwaSegVQGAN = _vqgan_classes()
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

    def generate(self, *args, **kwargs):
        """Not available on the bare model: ``AutoModel`` loads ``NuwaModel``, which has no head to predict tokens with
        (as ``BartModel``). Raises a ``TypeError`` that names the class to load instead."""
        raise TypeError(_NO_HEAD_MESSAGE.format(method="generate"))

    def generate_visual(self, *args, **kwargs):
        """Not available on the bare model (see :meth:`generate`)."""
        raise TypeError(_NO_HEAD_MESSAGE.format(method="generate_visual"))

    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def get_input_embeddings(self) -> nn.Embedding:
        """The TEXT token table (what ``tokenizer.add_tokens`` + ``resize_token_embeddings`` act on); the decoder's
        visual table is ``get_decoder().get_input_embeddings()``."""
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding):
        self.encoder.set_input_embeddings(value)

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
        use_cache: Optional[bool] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        decoder_attention_mask: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Union[Seq2SeqModelOutput, tuple]:
        """
        Args:
            input_ids / attention_mask / sketch_tokens / condition_type: the condition (see :class:`NuwaEncoder`).
            decoder_input_ids: (B, L) <bos> then the visual tokens so far.
            visual_grid: (T, H, W) the decoder positions belong to.
            encoder_outputs: a condition already encoded by ``get_encoder()`` (or its tuple form).
            cache: an ``EncoderDecoderCache`` for incremental decoding (transformers 5's name; ``past_key_values``
                is accepted as its older one). use_cache: True without a ``cache`` starts one (a dynamic
                ``EncoderDecoderCache``, as Bart does) and returns it in ``.cache``, to continue decoding from.
            output_attentions / output_hidden_states: also return per-layer attention weights / hidden states
                (defaults: the config's).
            return_dict: False returns a tuple, as transformers models do (default ``config.return_dict``).
            decoder_attention_mask: accepted for transformers' generate, which passes one; every decoder position is
                a real token of the grid, the causal 3DNA window is the mask.

        Returns:
            ``Seq2SeqModelOutput`` with ``last_hidden_state`` (B, L, d) and ``encoder_last_hidden_state`` (B, Lc, d).
        """
        cache = _pop_cache_alias(kwargs, cache)
        _reject_unexpected_kwargs(type(self).forward, kwargs)
        output_attentions, output_hidden_states, return_dict = _output_flags(
            self.config, output_attentions, output_hidden_states, return_dict
        )
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
        if use_cache and cache is None:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        if encoder_outputs is None:
            encoder_outputs = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, sketch_tokens=sketch_tokens,
                condition_type=condition_type, batch_size=decoder_input_ids.shape[0],
                output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
            )
        else:
            encoder_outputs = _as_encoder_output(encoder_outputs)
        decoder_outputs = self.decoder(
            decoder_input_ids, encoder_outputs.last_hidden_state, visual_grid=visual_grid,
            condition_grid=encoder_outputs.condition_grid, condition_type=encoder_outputs.condition_type, cache=cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
        )
        out = Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            cache=decoder_outputs.cache,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )
        return out if return_dict else out.to_tuple()


class NuwaForConditionalGeneration(NuwaVisualTokenizersMixin, NuwaVisualGenerationMixin, NuwaPreTrainedModel,
                                   NuwaGenerationMixin):
    """NUWA with a head over the visual codebook, a cross-entropy loss, ``generate()`` over token grids and
    ``generate_visual()`` from and to pixels (known pixels coded by its own VQ-GAN, sliding past the trained length,
    decoding; :mod:`.visual_generation_nuwa`).

    Example:
        >>> from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
        >>> model = NuwaForConditionalGeneration(NuwaConfig.tiny())
        >>> text = torch.randint(0, 512, (1, 16))
        >>> video = model.generate(input_ids=text, visual_grid=(2, 4, 4), do_sample=True, top_k=8)
        >>> model.sequences_to_grid(video, (2, 4, 4)).shape
        torch.Size([1, 2, 4, 4])
        >>> out = folder_model.generate_visual(input_ids=text, visual_grid=(2, 4, 4))  # a model with its VQ-GAN
        >>> out.tokens.shape, out.pixel_values.shape    # (1, 2, 4, 4), (1, 2, 3, 4f, 4f)
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

    def get_input_embeddings(self) -> nn.Embedding:
        """The TEXT token table (see :meth:`NuwaModel.get_input_embeddings`)."""
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        """The head over the visual codebook (N codes). It is tied to nothing: its vocabulary is neither the text
        table's nor the decoder input table's (N codes + <bos>)."""
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear):
        self.lm_head = value

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
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        decoder_attention_mask: Optional[torch.Tensor] = None,
        pixel_values: Optional[torch.FloatTensor] = None,
        sketch_maps: Optional[torch.LongTensor] = None,
        **kwargs,
    ) -> Union[NuwaSeq2SeqLMOutput, tuple]:
        """
        Args:
            input_ids: text condition (B, L). Or ``sketch_tokens`` (B, Ts, Hs, Ws); or neither for the "None" condition.
            labels: target visual tokens (B, T, H, W), or (B, T*H*W) with ``visual_grid``; -100 is ignored.
            decoder_input_ids: (B, L) decoder inputs; built from ``labels`` by :meth:`shift_right` when omitted.
            visual_grid: (T, H, W) of the target; inferred from 4-D labels.
            encoder_outputs: reuse an encoded condition (generation does).
            cache: an ``EncoderDecoderCache`` for incremental decoding (see :func:`make_generation_cache`), or a
                :class:`~.decoding_nuwa.NuwaDecodingCache` (``generate()``'s default): then only
                ``decoder_input_ids`` are read, the decoder runs over the cache's state, and the output is a
                :class:`NuwaDecodingOutput` (``logits``, ``cache``).
            use_cache: True without a ``cache`` starts a dynamic one and returns it in ``.cache`` (ignored with
                ``labels``, as in Bart).
            num_items_in_batch: set by ``Trainer``; the loss is then a sum divided by it (correct under gradient
                accumulation and several processes).
            output_attentions / output_hidden_states: also return the encoder's and decoder's per-layer attention
                weights (and cross-attention) / hidden states (defaults: the config's).
            return_dict: False returns a tuple (``to_tuple()`` of the output), as transformers models do.
            decoder_attention_mask: accepted for transformers' generate; the causal 3DNA window is the mask.
            **kwargs: ``past_key_values`` (the older name of ``cache``); any other name raises a TypeError listing the
                valid arguments.
            pixel_values: target images / videos (B, T, 3, H, W) (or (B, 3, H, W)) in [-1, 1], as NuwaProcessor
                returns them; coded by the model's VQ-GAN into ``labels`` (so ``model(**processor(text=...,
                images=...))`` gives the training loss).
            sketch_maps: sketch class maps (B, T, H, W) (or (B, H, W)); coded by the sketch VQ-GAN into
                ``sketch_tokens``.

        Returns:
            :class:`NuwaSeq2SeqLMOutput` with ``logits`` (B, L, N) and ``loss`` when labels are given.
        """
        if isinstance(cache, NuwaDecodingCache) and labels is None and pixel_values is None and not kwargs:
            # generate()'s decoding: the decoder's modules over the cache, which holds the encoded condition and grid
            out = NuwaDecodingOutput(logits=cache.decode(decoder_input_ids), cache=cache)
            return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()
        cache = _pop_cache_alias(kwargs, cache)
        _reject_unexpected_kwargs(type(self).forward, kwargs)
        return_dict = self.config.return_dict if return_dict is None else return_dict
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
            _check_ids_in_range(
                labels, self.config.visual_vocab_size,
                f"labels must be visual codes in [0, {self.config.visual_vocab_size}) or -100; check the VQ-GAN's "
                f"codebook size against config.visual_vocab_size.", ignore_index=-100,
            )
        if decoder_input_ids is not None and cache is None:
            # Not while decoding with a cache: generate() checked the prefix it feeds and samples only codes, and the
            # check would cost a device-to-host sync per token.
            _check_ids_in_range(
                decoder_input_ids, self.config.visual_bos_token_id + 1,
                f"decoder_input_ids must lie in [0, {self.config.visual_bos_token_id}] (codes or <bos>).",
            )
        outputs = self.model(
            input_ids=input_ids, attention_mask=attention_mask, sketch_tokens=sketch_tokens,
            condition_type=condition_type, decoder_input_ids=decoder_input_ids, visual_grid=visual_grid,
            encoder_outputs=encoder_outputs, cache=cache, use_cache=use_cache and labels is None,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states, return_dict=True,
        )
        logits = self.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            reduction = "sum" if num_items_in_batch is not None else "mean"
            loss = nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction=reduction
            )
            if num_items_in_batch is not None:
                loss = loss / num_items_in_batch
        out = NuwaSeq2SeqLMOutput(
            loss=loss, logits=logits, cache=outputs.cache, decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions, cross_attentions=outputs.cross_attentions,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            encoder_hidden_states=outputs.encoder_hidden_states, encoder_attentions=outputs.encoder_attentions,
        )
        return out if return_dict else out.to_tuple()
