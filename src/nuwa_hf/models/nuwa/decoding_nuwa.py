"""NUWA's decoding state: :class:`NuwaDecodingCache`, read by the decoder's own modules, and the step driving them.

Why: at the sizes NUWA decodes on a CPU (or at batch 1 on a GPU), a step's arithmetic is microseconds and its cost
is dispatch: a plain forward with a transformers cache rebuilds the 3DNA window, checks its inputs and goes through
the cache's bookkeeping at every layer. What is fixed for a whole ``generate()`` call is computed once and held in a
:class:`NuwaDecodingCache`:

* the self-attention keys/values live in one preallocated tensor per layer, written in place at each position;
* the cross-attention keys/values of the condition are projected once (``NuwaAttention.project_keys_values``);
* each position's 3DNA window is a row of a precomputed index table plus an additive mask (0 or -inf), so a step is
  an ``index_select``; a window that is the whole causal prefix (the shipped model's videos) is a slice, no gather;
* q, k and v come from one fused matmul (``NuwaAttention.fused_qkv``); position embeddings are one precomputed
  (T*H*W, d) table (``NuwaGridEmbedding.positions``); 3D RoPE's cos/sin are one (T*H*W, head_dim) table;
* where every query sees the whole condition (text, "None") and the batch is small, the cross-attention's
  projections are folded into the condition once (``NuwaAttention.fold_condition``), so its step is two batched
  matmuls (the same function, the products associated differently).

The arithmetic is the decoder's own: :class:`NuwaDecodingStep` runs the model's embedding, ``NuwaDecoderLayer``s,
final norm and LM head, and ``NuwaAttention.forward`` takes its decoding path when handed this cache. There is no
second copy of the layers here; this module holds the state and the window lookup (the 3DNA attention kernel of a
decoding step, as :func:`nuwa_hf.nearby_attention` is the kernel of a forward).

``static_step`` is the same step with fixed shapes and the position a device tensor (for CUDA graphs and
``torch.compile(fullgraph=True)``); :class:`NuwaCudaGraphStep` captures it on a CUDA device and replays it per token
(NUWA's decoding loop, ``sampling_nuwa.nuwa_sample``, drives either step). A captured graph reads fixed addresses, so
``generate()`` keeps the last such cache of a model (:func:`reusable_decoding_cache`) and refills it in place for the
next call of the same shapes: the graph is captured once per model and grid, not once per call.

``generate(..., fast_decoding=False)`` steps through ``forward`` with a transformers cache instead (the reference);
tests/models/nuwa/test_fast_decoding.py checks that both give the same logits and the same sampled tokens.
Not used (``generate`` falls back to the forward) when attentions or hidden states are requested, in training
mode, with an attention implementation other than ``"nuwa_3dna"``, for a decoder split over devices, or for a model
with forward hooks.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import weakref
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import GELUActivation
from transformers.cache_utils import Cache

from ...ops import rotary_3d_tables, window_table

Grid = Tuple[int, int, int]


def _window(query_grid: Grid, key_grid: Grid, extent, causal: bool, device, dtype) -> tuple:
    """``(index (Lq, win) long, bias (Lq, win) float 0/-inf, whole)`` of each query's 3DNA window. ``whole`` is True
    when every window is all keys (before the query, when causal): then attention needs no gather."""
    index, valid = window_table(tuple(query_grid), tuple(key_grid), tuple(extent), bool(causal), device)
    num_keys = key_grid[0] * key_grid[1] * key_grid[2]
    whole = False
    if index.shape[1] == num_keys:
        keys = torch.arange(num_keys, device=device)
        expected = keys[None, :] <= torch.arange(index.shape[0], device=device)[:, None] if causal else \
            torch.ones(index.shape[0], num_keys, dtype=torch.bool, device=device)
        whole = bool((index.eq(keys) | ~valid).all()) and bool(valid.eq(expected).all())
    bias = torch.zeros(valid.shape, device=device, dtype=dtype).masked_fill_(~valid, float("-inf"))
    return index, bias, whole


def compiled_module(module: nn.Module):
    """``module``'s ``forward`` as one plain function with its parameters bound: ``nn.Linear`` ->
    ``F.linear(x, weight, bias)``, ``nn.LayerNorm`` -> ``torch.layer_norm(x, shape, weight, bias, eps)``, a GELU ->
    its ``F.gelu``; any other module (an adapter-wrapped Linear, say) -> its own ``forward``. What those modules
    compute, without nn.Module's per-call dispatch and attribute lookups, which at decoding sizes cost about as much
    as the arithmetic. Built once per :class:`NuwaDecodingCache` (the decoding path runs only without hooks)."""
    kind = type(module)
    if kind is nn.Linear:
        weight, bias = module.weight, module.bias
        return lambda x: F.linear(x, weight, bias)
    if kind is nn.LayerNorm:
        shape, weight, bias, eps = tuple(module.normalized_shape), module.weight, module.bias, module.eps
        return lambda x: torch.layer_norm(x, shape, weight, bias, eps)
    if kind is GELUActivation and module.act is F.gelu:
        return F.gelu
    return module.forward


class NuwaDecodingCache(Cache):
    """What a ``generate()`` call's decoding of one grid, for one batch of encoded conditions, keeps fixed: read by
    the decoder's modules (``NuwaAttention.forward(..., cache=this)``) at each step.

    Args:
        model: a :class:`NuwaForConditionalGeneration` (eval mode).
        encoder_outputs: the encoded condition, ``last_hidden_state`` (B, Lc, d) with ``condition_grid`` and
            ``condition_type`` (what ``model.get_encoder()`` returns).
        visual_grid: (T, H, W) of the tokens being generated.
        guidance_rows: for classifier-free guidance in the same pass: the first ``guidance_rows`` rows of the
            condition are the conditional ones, the next ``guidance_rows`` their null conditions. :meth:`decode` then
            takes ``guidance_rows`` decoder rows, runs both halves, returns the conditional logits and keeps the null
            ones' last position in :attr:`null_logits` (for ``NuwaGuidanceLogitsProcessor``), as diffusers batches its
            guidance.

    Handed to the model as ``cache`` (``generate()`` does, through ``prepare_inputs_for_generation``), the forward
    runs :meth:`decode`. ``position`` is how many decoder positions hold keys/values. Per layer (``layer_states[i]``,
    a dict): ``"qkv"`` the fused q/k/v weight and bias, ``"kv"`` the (2, B, heads, T*H*W, head_dim) key/value
    buffer, ``"cross_kv"`` the condition's (2, B, heads, Lc, head_dim) projected keys/values, and ``"cross_folded"``
    where folding pays.
    """

    is_compileable = False  # Python-side positions and window choices: not for transformers' auto-compile
    is_croppable = False

    @torch.no_grad()
    def __init__(self, model, encoder_outputs, visual_grid: Grid, guidance_rows: int = 0):
        super().__init__(layers=[])
        config = model.config
        decoder = model.get_decoder()
        condition = encoder_outputs.last_hidden_state
        device, dtype = condition.device, condition.dtype
        self.grid = tuple(int(v) for v in visual_grid)
        self.total = self.grid[0] * self.grid[1] * self.grid[2]
        self.batch = condition.shape[0]
        self.heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.hidden = config.hidden_size
        self.scale = self.head_dim ** -0.5
        self.condition_grid = tuple(encoder_outputs.condition_grid)
        self.position = 0
        self.guidance_rows = int(guidance_rows)
        self.null_logits = None

        self.position_table = decoder.embedding.positions(self.grid, 0, self.total, device)  # (T*H*W, d)
        # 3D RoPE (config.rope_3d): the (T*H*W, head_dim) cos / sin of each position's self-attention queries and keys
        self.rotary_table = rotary_3d_tables(self.grid, self.head_dim, config.rope_theta, device=device, dtype=dtype) \
            if config.rope_3d else None

        # 3DNA windows of this grid: self-attention (causal) over the visual grid, cross-attention over the condition.
        self.self_index, self.self_bias, self.self_whole = _window(
            self.grid, self.grid, config.visual_extent(self.grid), True, device, dtype)
        self.cross_index, self.cross_bias, self.cross_whole = _window(
            self.grid, self.condition_grid,
            config.condition_extent(encoder_outputs.condition_type, self.condition_grid), False, device, dtype)

        B, NH, D = self.batch, self.heads, self.head_dim
        fold = self.cross_whole and self._folding_pays(condition.shape[1])
        self.layer_states = []
        for layer in decoder.layers:
            cross_k, cross_v = layer.cross_attn.project_keys_values(condition)  # (B, NH, Lc, D) each
            state = {
                "qkv": layer.self_attn.fused_qkv(),
                "cross_kv": torch.stack([cross_k, cross_v]),  # (2, B, NH, Lc, D), projected once for the whole call
                # Keys and values of every position, (2, B, NH, T*H*W, D): one write and one gather per step. Zeros:
                # static_step's whole-grid windows read positions not yet written (masked; a zero times a zero
                # weight stays zero, where uninitialised memory could hold NaN).
                "kv": torch.zeros(2, B, NH, self.total, D, device=device, dtype=dtype),
            }
            if fold and layer.cross_attn.can_fold():  # every query sees the whole condition: fold its projections once
                state["cross_folded"] = layer.cross_attn.fold_condition(cross_k, cross_v)
            self.layer_states.append(state)
        self._next_ids = torch.empty(B, 1, dtype=torch.long, device=device)  # decode_next's input, written in place
        self.cuda_graph_step = None  # NuwaCudaGraphStep over this cache, kept once its capture was tried
        self._begin(0, 1)
        # The decoder's modules for this cache's steps: each layer's decode plan (NuwaDecoderLayer.decode_plan, its
        # attentions reading this cache), the compiled token table, final norm and head.
        self._tokens = compiled_module(decoder.embedding.tokens)
        self._plans = [layer.decode_plan(self) for layer in decoder.layers]
        self._norm, self._lm_head = compiled_module(decoder.norm), compiled_module(model.lm_head)

    def _folding_pays(self, condition_length: int) -> bool:
        """Whether folding the cross-attention projections into the condition is cheaper per step. Folded, a step
        reads 2 * d * heads * Lc floats per row; unfolded, the q / out weights (2 * d * d) plus 2 * Lc * d per row,
        and runs ~8 more small ops (~80,000 floats' worth of time at decoding sizes, measured on a CPU core). So it
        pays for small batches (batch 1-2 at the shipped and paper-like widths), not for large ones."""
        d, rows = self.hidden, self.batch
        folded = rows * 2 * d * self.heads * condition_length
        unfolded = 2 * d * d + rows * 2 * condition_length * d + 80_000
        return folded <= unfolded

    @staticmethod
    def reuse_key(model, encoder_outputs, visual_grid: Grid, guidance_rows: int = 0) -> tuple:
        """What a cache built for these arguments fixes: shapes, dtype, device, windows, and the addresses of the
        decoder's and LM head's parameters (its steps read them in place). Two calls with equal keys can share one
        cache, refilled by :meth:`refill`; a parameter replaced (not updated in place), an adapter added, another
        dtype or device gives another key."""
        config, condition = model.config, encoder_outputs.last_hidden_state
        grid, condition_grid = tuple(int(v) for v in visual_grid), tuple(encoder_outputs.condition_grid)
        parameters = itertools.chain(model.get_decoder().parameters(), model.lm_head.parameters())
        return (grid, tuple(condition.shape), condition.dtype, condition.device, condition_grid,
                encoder_outputs.condition_type, int(guidance_rows), config.visual_extent(grid),
                config.condition_extent(encoder_outputs.condition_type, condition_grid), bool(config.rope_3d),
                float(config.rope_theta) if config.rope_3d else None,
                tuple((p.data_ptr(), tuple(p.shape)) for p in parameters))

    def refill(self, model, encoder_outputs) -> None:
        """Make this cache what ``NuwaDecodingCache(model, encoder_outputs, grid, guidance_rows)`` would build, for a
        call whose :meth:`reuse_key` equals this one's, writing every tensor in place (a captured CUDA graph keeps
        reading the same addresses): the condition's projected keys/values (and folded factors), what was computed
        from parameters (the position table, the fused q/k/v weights: training may have updated them in place since),
        the key/value buffers zeroed, the position back to 0."""
        condition = encoder_outputs.last_hidden_state
        decoder = model.get_decoder()
        with torch.inference_mode():  # in-place writes are allowed on inference and normal tensors alike
            self.position_table.copy_(decoder.embedding.positions(self.grid, 0, self.total, self.position_table.device))
            for layer, state in zip(decoder.layers, self.layer_states):
                cross_k, cross_v = layer.cross_attn.project_keys_values(condition)
                state["cross_kv"][0].copy_(cross_k)
                state["cross_kv"][1].copy_(cross_v)
                if "cross_folded" in state:
                    for old, new in zip(state["cross_folded"][:3], layer.cross_attn.fold_condition(cross_k, cross_v)):
                        old.copy_(new)
                if state["qkv"] is not None:
                    for old, new in zip(state["qkv"], layer.self_attn.fused_qkv()):
                        old.copy_(new)
                state["kv"].zero_()
        self.position = 0
        self.null_logits = None
        self._begin(0, 1)

    # transformers' Cache interface (what generation utilities may ask of a cache)
    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.position

    def get_max_cache_shape(self, layer_idx: int = 0) -> int:
        return self.total

    # -- decoding ------------------------------------------------------------------------------------------------

    def decode(self, ids: torch.LongTensor) -> torch.Tensor:
        """ids (B, L) at positions ``position .. position+L-1`` -> logits (B, L, N), and advance."""
        L = ids.shape[1]
        start = self.position
        self._check_room(L)
        if self.guidance_rows:
            ids = torch.cat([ids, ids])  # the null rows are fed the same tokens (cat: a fifth of repeat's cost)
        self._begin(start, L)
        logits = self._run(ids)
        self.position = start + L
        return self._split_guidance(logits, logits[:, -1])

    def _check_room(self, count: int) -> None:
        """Raise when ``count`` more decoder positions from :attr:`position` do not fit the grid."""
        if self.position + count > self.total:
            raise ValueError(f"{self.position + count} decoder positions do not fit the visual grid {self.grid} "
                             f"({self.total}).")

    def _split_guidance(self, logits: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """With ``guidance_rows``: keep the null rows' ``last`` logits (rows, N) in :attr:`null_logits`, return the
        conditional rows of ``logits``. Without: ``logits``."""
        if not self.guidance_rows:
            return logits
        self.null_logits = last[self.guidance_rows:]
        return logits[:self.guidance_rows]

    def decode_next(self, tokens: torch.LongTensor) -> torch.Tensor:
        """The decoding loop's step: ``tokens`` (B,), the tokens just chosen for position ``position - 1`` of the
        grid, fed at decoder position ``position`` -> that position's logits (B, N), and advance. The same arithmetic
        as :meth:`decode` on ``tokens[:, None]``; the ids go into one preallocated (rows, 1) buffer (the null rows of
        guidance get the same tokens in the same copy), and the logits come back without the length dimension."""
        start = self.position
        self._check_room(1)
        self._next_ids.view(-1, tokens.shape[0]).copy_(tokens)  # (rows, 1) seen as (1 or 2, B): one broadcast copy
        self._begin(start, 1)
        logits = self._run(self._next_ids)[:, 0]
        self.position = start + 1
        return self._split_guidance(logits, logits)

    def static_decode(self, ids: torch.LongTensor, position: torch.LongTensor) -> torch.Tensor:
        """:meth:`NuwaDecodingStep.static_step`: one token per row at ``position``, every shape fixed."""
        self._begin_static(position)
        return self._run(ids)

    def _run(self, ids: torch.Tensor) -> torch.Tensor:
        """The decoder's modules for the positions this cache was told (``_begin`` / ``_begin_static``): token
        embedding plus the position table (``NuwaGridEmbedding.forward(ids, grid, positions=...)``), each layer's
        decode plan, final norm, LM head. The modules run in their compiled form (:func:`compiled_module`), without
        nn.Module's per-call dispatch (``generate`` takes this path only for a model without hooks)."""
        x = self._tokens(ids) + self.positions
        for layer in self._plans:
            x = layer(x)
        return self._lm_head(self._norm(x))

    # -- one call's positions ------------------------------------------------------------------------------------

    def _begin(self, start: int, length: int) -> None:
        """The next decoder call covers positions ``start .. start+length-1`` (Python ints)."""
        self._start, self._length, self._static = start, length, None
        self.positions = self.position_table[start:start + length]
        self.rotary = None if self.rotary_table is None else \
            (self.rotary_table[0][start:start + length], self.rotary_table[1][start:start + length])

    def _begin_static(self, position: torch.Tensor) -> None:
        """The next decoder call is one position, ``position`` a (1,) long device tensor: every shape fixed, no
        Python value depending on it (CUDA graphs, ``torch.compile(fullgraph=True)``)."""
        self._static = (position, self.self_index.index_select(0, position)[0], self.self_bias.index_select(0, position),
                        self.cross_index.index_select(0, position)[0], self.cross_bias.index_select(0, position))
        self.positions = self.position_table.index_select(0, position)
        self.rotary = None if self.rotary_table is None else \
            (self.rotary_table[0].index_select(0, position), self.rotary_table[1].index_select(0, position))

    def store(self, kv: torch.Tensor, new: torch.Tensor) -> None:
        """Write this call's keys/values ``new`` (2, B, heads, L, head_dim) into a layer's buffer ``kv``."""
        if self._static is not None:
            kv.index_copy_(3, self._static[0], new)
        else:
            kv[:, :, :, self._start:self._start + self._length] = new

    def attend_self(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """q (B, heads, L, hd) over each position's causal 3DNA window of the buffer ``kv`` -> (B, heads, L, hd)."""
        if self._static is not None:
            return self._attend_row(q, kv, self._static[1], self._static[2])
        return self._attend(q, kv, self.self_index, self.self_bias, self.self_whole, True)

    def attend_cross(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """q (B, heads, L, hd) over each position's 3DNA window of the condition's keys/values -> (B, heads, L, hd)."""
        if self._static is not None:
            if self.cross_whole:  # every key, no gather, no mask
                return F.scaled_dot_product_attention(q, kv[0], kv[1], scale=self.scale)
            return self._attend_row(q, kv, self._static[3], self._static[4])
        return self._attend(q, kv, self.cross_index, self.cross_bias, self.cross_whole, False)

    def _attend_row(self, q, kv, rows, mask):
        window = kv.index_select(3, rows)
        return F.scaled_dot_product_attention(q, window[0], window[1], attn_mask=mask, scale=self.scale)

    def _attend(self, q, kv, index, bias, whole: bool, causal: bool):
        """q (B, heads, L, hd) against the 3DNA windows of positions start..start+L-1 -> (B, heads, L, hd).
        kv: (2, B, heads, Lk, hd), the keys and values."""
        start, length = self._start, self._length
        if whole and (length == 1 or not causal):
            # The window is every key (before the query): no gather, no mask.
            stop = start + length if causal else kv.shape[3]
            return F.scaled_dot_product_attention(q, kv[0, :, :, :stop], kv[1, :, :, :stop], scale=self.scale)
        if length == 1:
            # One query: its window's keys and values by index, the window's border as an additive mask.
            return self._attend_row(q, kv, index[start], bias[start:start + 1])
        keys, values = kv[0], kv[1]
        rows = index[start:start + length]  # (L, win)
        B, NH, L, D = q.shape
        win = rows.shape[1]
        k = keys.index_select(2, rows.reshape(-1)).view(B, NH, L, win, D)
        v = values.index_select(2, rows.reshape(-1)).view(B, NH, L, win, D)
        scores = torch.matmul(q.unsqueeze(-2), k.transpose(-1, -2)).squeeze(-2) * self.scale  # (B, NH, L, win)
        probs = torch.softmax(scores + bias[start:start + length], dim=-1)
        return torch.matmul(probs.unsqueeze(-2), v).squeeze(-2)


class NuwaDecodingStep:
    """Incremental decoding of one grid for one batch of encoded conditions: the decoder's modules over a
    :class:`NuwaDecodingCache`.

    Args:
        model: a :class:`NuwaForConditionalGeneration` (eval mode).
        encoder_outputs: the encoded condition (what ``model.get_encoder()`` returns).
        visual_grid: (T, H, W) of the tokens being generated.

    Call it with the next decoder ids (B, L) (first call: <bos> and any known prefix; then one token at a time); it
    returns the logits (B, L, N) of those positions and advances. ``position`` is how many ids it has consumed.

    Example:
        >>> step = NuwaDecodingStep(model, model.get_encoder()(input_ids=text), visual_grid=(1, 8, 8))
        >>> logits = step(torch.full((B, 1), model.config.visual_bos_token_id))     # (B, 1, N)
    """

    def __init__(self, model, encoder_outputs, visual_grid: Grid):
        self.cache = NuwaDecodingCache(model, encoder_outputs, visual_grid)
        self.grid, self.total = self.cache.grid, self.cache.total

    @property
    def position(self) -> int:
        return self.cache.position

    @property
    def layers(self) -> list:
        """The cache's per-layer state (see :class:`NuwaDecodingCache`)."""
        return self.cache.layer_states

    @torch.no_grad()
    def __call__(self, ids: torch.LongTensor) -> torch.Tensor:
        """ids (B, L) at positions ``position .. position+L-1`` -> logits (B, L, N)."""
        return self.cache.decode(ids)

    @torch.no_grad()
    def static_step(self, ids: torch.LongTensor, position: torch.LongTensor) -> torch.Tensor:
        """One token per row at ``position`` (a (1,) long tensor on the model's device) -> logits (B, 1, N).

        The same step with every shape fixed and no Python value depending on the position: the keys/values are
        written with ``index_copy_``, and each attention gathers its whole window row (for whole-grid windows: every
        key, the causal mask hiding the rest). This is what CUDA-graph capture and ``torch.compile(fullgraph=True)``
        need: one captured step replays for every position by updating ``ids`` and ``position`` in place. It does not
        advance :attr:`position`; the caller drives it.
        """
        return self.cache.static_decode(ids, position)


class NuwaCudaGraphStep:
    """:meth:`NuwaDecodingCache.decode_next` replayed from one captured CUDA graph of the static step.

    At batch 1 on a GPU a decoding step is a few dozen small kernels and its cost is their launches. The static step
    (:meth:`NuwaDecodingCache.static_decode`: the decoder's modules over the cache with every shape fixed and the
    position a device tensor) is captured once per cache in a ``torch.cuda.CUDAGraph`` (``generate()`` reuses a model's
    cache across calls of the same shapes, :func:`reusable_decoding_cache`); each token then
    writes the chosen tokens into the graph's id buffer (``ids``, (rows, 1) long) and the decoder position into its
    position buffer (``position``, (1,) long), both in place, and replays the graph, whose logits land in one fixed
    (rows, N) buffer. The arithmetic is the decoder's (the graph records the same modules); the tokens are the
    eager step's.

    Args:
        cache: the call's :class:`NuwaDecodingCache`, after its prefill (``cache.position`` >= 1).

    Call :meth:`capture` (raises, with the reason, where a graph cannot be captured: then decode eagerly); without a
    capture, calling the object runs the same static step eagerly over the same buffers (what the CPU tests check).
    """

    def __init__(self, cache: NuwaDecodingCache):
        self.cache = cache
        device = cache.position_table.device
        self.ids = torch.zeros(cache.batch, 1, dtype=torch.long, device=device)  # the graph's input: written per token
        self.position = torch.zeros(1, dtype=torch.long, device=device)  # the decoder position, on the device
        self.graph = None
        self.logits = None  # the captured graph's output, (rows, N): overwritten by every replay
        self.failure = None  # why capture failed ("TypeError: ..."), once it has: the cache's later calls run eagerly

    def _load(self, tokens: torch.LongTensor) -> None:
        """Write ``tokens`` (B,) into every row group of ``ids`` and the next position into ``position``, in place."""
        cache = self.cache
        cache._check_room(1)
        self.ids.view(-1, tokens.shape[0]).copy_(tokens)
        self.position.fill_(cache.position)  # a device-side fill: no host sync

    @torch.inference_mode()
    def capture(self, tokens: torch.LongTensor) -> None:
        """Capture the static step for the next position, fed ``tokens`` (B,). The warm-up runs on a side stream, as
        CUDA graphs require; warm-up and replay both compute this position's step (it writes this position's keys
        and values, which the real step then rewrites with the same values), so capturing changes no state.

        Raises:
            RuntimeError: the model is not on a CUDA device, or capture failed (the error says why).
        """
        device = self.ids.device
        if device.type != "cuda":
            raise RuntimeError(f"CUDA graphs need a CUDA device; the model is on {device}.")
        self._load(tokens)
        with torch.cuda.device(device):  # the model's device, whichever is current
            side = torch.cuda.Stream(device=device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self.cache.static_decode(self.ids, self.position)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                logits = self.cache.static_decode(self.ids, self.position)[:, 0]
        self.graph, self.logits = graph, logits

    @torch.inference_mode()
    def __call__(self, tokens: torch.LongTensor) -> torch.Tensor:
        """What :meth:`NuwaDecodingCache.decode_next` does: ``tokens`` (B,) in, the next position's logits (B, N)
        out (a view of the graph's output buffer, valid until the next call), the cache advanced."""
        cache = self.cache
        self._load(tokens)
        if self.graph is not None:
            self.graph.replay()
            logits = self.logits
        else:
            logits = cache.static_decode(self.ids, self.position)[:, 0]
        cache.position += 1
        return cache._split_guidance(logits, logits)


class _ReusedCache:
    """One model's last cache for CUDA-graph decoding (see :func:`reusable_decoding_cache`)."""

    def __init__(self):
        self.lock = threading.Lock()  # held by the generate() call decoding over ``cache``
        self.key = None
        self.cache = None


_REUSED = weakref.WeakKeyDictionary()  # model -> _ReusedCache: nothing is stored on the model (deepcopy, pickling)
_REUSED_LOCK = threading.Lock()


@contextlib.contextmanager
def reusable_decoding_cache(model, encoder_outputs, visual_grid: Grid, guidance_rows: int = 0):
    """A :class:`NuwaDecodingCache` for one ``generate()`` call that decodes through a CUDA graph: the model's cache
    of the last such call, refilled in place, when its :meth:`~NuwaDecodingCache.reuse_key` matches (its graph,
    captured then, replays at once), else a new one that replaces it.

    Why: a graph replays fixed addresses, so a new cache per call means a new capture per call (two warm-up steps and
    a recording: tens of milliseconds, as much as a whole 8x8 image's steps at batch 1). One cache per model is
    kept (the memory of one call's key/value buffers) and dropped with the model. A call made while another holds
    the model's cache (threads) gets a fresh cache of its own, never a shared one.
    """
    with _REUSED_LOCK:
        slot = _REUSED.get(model)
        if slot is None:
            slot = _REUSED[model] = _ReusedCache()
    if not slot.lock.acquire(blocking=False):
        yield NuwaDecodingCache(model, encoder_outputs, visual_grid, guidance_rows=guidance_rows)
        return
    try:
        key = NuwaDecodingCache.reuse_key(model, encoder_outputs, visual_grid, guidance_rows)
        if slot.cache is not None and slot.key == key:
            slot.cache.refill(model, encoder_outputs)
        else:
            slot.cache = slot.key = None  # free the old buffers (and graph) before building the new ones
            slot.cache = NuwaDecodingCache(model, encoder_outputs, visual_grid, guidance_rows=guidance_rows)
            slot.key = key
        yield slot.cache
    finally:
        slot.lock.release()
