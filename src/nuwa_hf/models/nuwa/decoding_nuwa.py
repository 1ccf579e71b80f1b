"""NUWA's decoding step as one flat function over preallocated buffers: the fast path of ``generate()``.

Why: at the sizes NUWA decodes on a CPU (or at batch 1 on a GPU), a step's arithmetic is microseconds and its cost
is dispatch: the module path (``model(decoder_input_ids=..., cache=...)``) makes ~180 module calls per token, checks
its inputs, rebuilds the 3DNA window, and goes through transformers' cache objects. :class:`NuwaDecodingStep` computes
the same decoder (same weights, same 3DNA windows, same order of operations up to float rounding) with what is fixed
for a whole ``generate()`` call done once:

* the self-attention keys/values live in one preallocated tensor per layer, written in place at each position;
* the cross-attention keys/values of the condition are projected once;
* each position's 3DNA window is a row of a precomputed index table plus an additive mask (0 or -inf), so a step is
  an ``index_select``; a window that is the whole causal prefix (the shipped model's videos) is a slice, no gather;
* q, k and v come from one fused matmul; position embeddings are one precomputed (T*H*W, d) table;
* where every query sees the whole condition (text, "None") and the batch is small, the cross-attention's
  projections are folded into the condition once, so its step is two batched matmuls (the same function, the
  products associated differently).

``static_step`` is the same step with fixed shapes and the position a device tensor (for CUDA graphs and
``torch.compile(fullgraph=True)``); both share the layer loop ``_decode``.

The module path stays the reference: ``generate(..., fast_decoding=False)`` runs every step through ``forward``, and
tests/models/nuwa/test_fast_decoding.py checks that both give the same logits and the same sampled tokens.
Not used (``generate`` falls back to the module path) when attentions or hidden states are requested, in training
mode, with an attention implementation other than ``"nuwa_3dna"``, for a decoder split over devices, or for a model
with forward hooks.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from ...ops import apply_rotary, rotary_3d_tables, window_table

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


class NuwaDecodingStep:
    """Incremental decoding of one grid for one batch of encoded conditions.

    Args:
        model: a :class:`NuwaForConditionalGeneration` (eval mode).
        encoder_outputs: the encoded condition, ``last_hidden_state`` (B, Lc, d) with ``condition_grid`` and
            ``condition_type`` (what ``model.get_encoder()`` returns).
        visual_grid: (T, H, W) of the tokens being generated.

    Call it with the next decoder ids (B, L) (first call: <bos> and any known prefix; then one token at a time); it
    returns the logits (B, L, N) of those positions and advances. ``position`` is how many ids it has consumed.

    Example:
        >>> step = NuwaDecodingStep(model, model.get_encoder()(input_ids=text), visual_grid=(1, 8, 8))
        >>> logits = step(torch.full((B, 1), model.config.visual_bos_token_id))     # (B, 1, N)
    """

    @torch.no_grad()
    def __init__(self, model, encoder_outputs, visual_grid: Grid):
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
        self.position = 0

        # Embeddings: token table and one (T*H*W, d) position table (time + height + width, as NuwaGridEmbedding adds).
        embedding = decoder.embedding
        index = torch.arange(self.total, device=device)
        _, height, width = self.grid
        t, h, w = index // (height * width), (index // width) % height, index % width
        self.token_table = embedding.tokens.weight
        self.position_table = embedding.time.weight[t] + embedding.height.weight[h] + embedding.width.weight[w]
        # 3D RoPE (config.rope_3d): the (T*H*W, head_dim) rotation of each position's self-attention queries and keys
        self.rotary = rotary_3d_tables(self.grid, self.head_dim, config.rope_theta, device=device, dtype=dtype) \
            if config.rope_3d else None

        # 3DNA windows of this grid: self-attention (causal) over the visual grid, cross-attention over the condition.
        self.self_index, self.self_bias, self.self_whole = _window(
            self.grid, self.grid, config.visual_extent(self.grid), True, device, dtype)
        condition_grid = tuple(encoder_outputs.condition_grid)
        self.cross_index, self.cross_bias, self.cross_whole = _window(
            self.grid, condition_grid, config.condition_extent(encoder_outputs.condition_type, condition_grid), False,
            device, dtype)

        # Per layer: fused q/k/v weights, the cross keys/values of the condition, and the self KV buffers.
        B, NH, D = self.batch, self.heads, self.head_dim
        Lc = condition.shape[1]
        self.layers = []
        for layer in decoder.layers:
            attn, cross = layer.self_attn, layer.cross_attn
            cross_k = self._heads(F.linear(condition, cross.k_proj.weight, cross.k_proj.bias))  # (B, NH, Lc, D)
            cross_v = self._heads(F.linear(condition, cross.v_proj.weight, cross.v_proj.bias))
            weights = {
                "norm1": (layer.self_attn_norm.weight, layer.self_attn_norm.bias, layer.self_attn_norm.eps),
                "qkv": (torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]),
                        torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])),
                "out": (attn.out_proj.weight, attn.out_proj.bias),
                "norm2": (layer.cross_attn_norm.weight, layer.cross_attn_norm.bias, layer.cross_attn_norm.eps),
                "cross_q": (cross.q_proj.weight, cross.q_proj.bias),
                "cross_out": (cross.out_proj.weight, cross.out_proj.bias),
                # (B, heads, Lc, head_dim), projected once for the whole call
                "cross_kv": torch.stack([cross_k, cross_v]),  # (2, B, NH, Lc, D)
                "norm3": (layer.ffn_norm.weight, layer.ffn_norm.bias, layer.ffn_norm.eps),
                "fc1": (layer.ffn.fc1.weight, layer.ffn.fc1.bias),
                # transformers' activation modules keep their function in .act (F.gelu for "gelu"): called directly,
                # without a module call per step
                "act": getattr(layer.ffn.act, "act", None) if callable(getattr(layer.ffn.act, "act", None))
                else layer.ffn.act,
                "fc2": (layer.ffn.fc2.weight, layer.ffn.fc2.bias),
                # Keys and values of every position, (2, B, NH, T*H*W, D): one write and one gather per step. Zeros:
                # static_step's whole-grid windows read positions not yet written (masked; a zero times a zero
                # weight stays zero, where uninitialised memory could hold NaN).
                "kv": torch.zeros(2, B, NH, self.total, D, device=device, dtype=dtype),
            }
            if self.cross_whole and self._folding_pays(Lc):
                # Every query sees the whole condition (text, "None"): fold the projections into the condition once.
                #   scores_h = (LN(x) Wq_h^T + bq_h) K_h^T * scale = LN(x) @ A_h + c_h
                #   out      = sum_h softmax(scores_h) V_h Wo_h^T + bo = probs @ M + bo
                # A (B, d, NH*Lc), c (B, 1, NH*Lc), M (B, NH*Lc, d): a cross-attention step is two batched matmuls.
                # (matmuls rather than einsum: einsum's planning alone costs ~0.1 ms a call, once per layer per call)
                wq = cross.q_proj.weight.view(NH, D, self.hidden)  # rows of head h
                bq = cross.q_proj.bias.view(NH, D, 1)
                A = torch.matmul(wq.transpose(1, 2), cross_k.transpose(2, 3)) * self.scale  # (B, NH, d, Lc)
                c = torch.matmul(cross_k, bq) * self.scale  # (B, NH, Lc, 1)
                wo = cross.out_proj.weight.view(self.hidden, NH, D).permute(1, 2, 0)  # (NH, D, d): head h's columns
                M = torch.matmul(cross_v, wo)  # (B, NH, Lc, d)
                weights["cross_folded"] = (c.reshape(B, 1, NH * Lc), A.permute(0, 2, 1, 3).reshape(B, self.hidden, NH * Lc),
                                           M.reshape(B, NH * Lc, self.hidden), Lc)
            self.layers.append(weights)
        self.final_norm = (decoder.norm.weight, decoder.norm.bias, decoder.norm.eps)
        self.lm_head = (model.lm_head.weight, model.lm_head.bias)

    def _folding_pays(self, condition_length: int) -> bool:
        """Whether folding the cross-attention projections into the condition is cheaper per step. Folded, a step
        reads 2 * d * heads * Lc floats per row; unfolded, the q / out weights (2 * d * d) plus 2 * Lc * d per row,
        and runs ~8 more small ops (~80,000 floats' worth of time at decoding sizes, measured on a CPU core). So it
        pays for small batches (batch 1-2 at the shipped and paper-like widths), not for large ones."""
        d, rows = self.hidden, self.batch
        folded = rows * 2 * d * self.heads * condition_length
        unfolded = 2 * d * d + rows * 2 * condition_length * d + 80_000
        return folded <= unfolded

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, heads, L, head_dim)."""
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def _attend(self, q, kv, index, bias, start: int, length: int, whole: bool, causal: bool):
        """q (B, heads, L, hd) against the 3DNA windows of positions start..start+L-1 -> (B, heads, L, hd).
        kv: (2, B, heads, Lk, hd), the keys and values."""
        if whole and (length == 1 or not causal):
            # The window is every key (before the query): no gather, no mask.
            stop = start + length if causal else kv.shape[3]
            return F.scaled_dot_product_attention(q, kv[0, :, :, :stop], kv[1, :, :, :stop], scale=self.scale)
        if length == 1:
            # One query: its window's keys and values by index, the window's border as an additive mask.
            window = kv.index_select(3, index[start])
            return F.scaled_dot_product_attention(q, window[0], window[1], attn_mask=bias[start:start + 1],
                                                  scale=self.scale)
        keys, values = kv[0], kv[1]
        rows = index[start:start + length]  # (L, win)
        B, NH, L, D = q.shape
        win = rows.shape[1]
        k = keys.index_select(2, rows.reshape(-1)).view(B, NH, L, win, D)
        v = values.index_select(2, rows.reshape(-1)).view(B, NH, L, win, D)
        scores = torch.matmul(q.unsqueeze(-2), k.transpose(-1, -2)).squeeze(-2) * self.scale  # (B, NH, L, win)
        probs = torch.softmax(scores + bias[start:start + length], dim=-1)
        return torch.matmul(probs.unsqueeze(-2), v).squeeze(-2)

    @torch.no_grad()
    def __call__(self, ids: torch.LongTensor) -> torch.Tensor:
        """ids (B, L) at positions ``position .. position+L-1`` -> logits (B, L, N)."""
        L = ids.shape[1]
        start = self.position
        if start + L > self.total:
            raise ValueError(f"{start + L} decoder positions do not fit the visual grid {self.grid} ({self.total}).")

        def write(kv, new):
            kv[:, :, :, start:start + L] = new

        rotary = None if self.rotary is None else (self.rotary[0][start:start + L], self.rotary[1][start:start + L])
        logits = self._decode(
            F.embedding(ids, self.token_table) + self.position_table[start:start + L], write, rotary,
            lambda q, kv: self._attend(q, kv, self.self_index, self.self_bias, start, L, self.self_whole, True),
            lambda q, kv: self._attend(q, kv, self.cross_index, self.cross_bias, start, L, self.cross_whole, False),
        )
        self.position = start + L
        return logits

    @torch.no_grad()
    def static_step(self, ids: torch.LongTensor, position: torch.LongTensor) -> torch.Tensor:
        """One token per row at ``position`` (a (1,) long tensor on the model's device) -> logits (B, 1, N).

        The same step with every shape fixed and no Python value depending on the position: the keys/values are
        written with ``index_copy_``, and each attention gathers its whole window row (for whole-grid windows: every
        key, the causal mask hiding the rest). This is what CUDA-graph capture and ``torch.compile(fullgraph=True)``
        need: one captured step replays for every position by updating ``ids`` and ``position`` in place. It does not
        advance :attr:`position`; the caller drives it.
        """
        self_rows, self_mask = self.self_index.index_select(0, position)[0], self.self_bias.index_select(0, position)
        cross_rows, cross_mask = self.cross_index.index_select(0, position)[0], self.cross_bias.index_select(0, position)

        def attend(q, kv, rows, mask):
            if rows is None:  # a whole, non-causal window: every key, no gather, no mask
                return F.scaled_dot_product_attention(q, kv[0], kv[1], scale=self.scale)
            window = kv.index_select(3, rows)
            return F.scaled_dot_product_attention(q, window[0], window[1], attn_mask=mask, scale=self.scale)

        rotary = None if self.rotary is None else (self.rotary[0].index_select(0, position),
                                                   self.rotary[1].index_select(0, position))
        return self._decode(
            F.embedding(ids, self.token_table) + self.position_table.index_select(0, position),
            lambda kv, new: kv.index_copy_(3, position, new), rotary,
            lambda q, kv: attend(q, kv, self_rows, self_mask),
            lambda q, kv: attend(q, kv, None if self.cross_whole else cross_rows, cross_mask),
        )

    def _decode(self, x: torch.Tensor, write, rotary, attend_self, attend_cross) -> torch.Tensor:
        """The decoder layers on embedded inputs x (B, L, d) -> logits (B, L, N). ``write(kv, new)`` stores this
        step's keys/values (2, B, heads, L, hd); ``rotary``: None or the (cos, sin) (L, hd) of these positions (3D
        RoPE); ``attend_self`` / ``attend_cross`` ``(q, kv)`` attend over a layer's buffers."""
        B, L = x.shape[0], x.shape[1]
        for layer in self.layers:
            # causal 3DNA self-attention; this step's keys/values are written into the buffers first
            h = torch.layer_norm(x, (self.hidden,), *layer["norm1"])
            qkv = F.linear(h, *layer["qkv"]).view(B, L, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            if rotary is None:
                query = qkv[0]
                write(layer["kv"], qkv[1:])
            else:
                query = apply_rotary(qkv[0], *rotary)
                write(layer["kv"], torch.stack([apply_rotary(qkv[1], *rotary), qkv[2]]))
            out = attend_self(query, layer["kv"])
            x = x + F.linear(out.transpose(1, 2).reshape(B, L, self.hidden), *layer["out"])
            # 3DNA cross-attention to the condition
            h = torch.layer_norm(x, (self.hidden,), *layer["norm2"])
            if "cross_folded" in layer:
                c, A, M, Lc = layer["cross_folded"]
                probs = torch.softmax(torch.baddbmm(c, h, A).view(B, L, self.heads, Lc), dim=-1)
                x = x + torch.baddbmm(layer["cross_out"][1], probs.view(B, L, self.heads * Lc), M)
            else:
                q = self._heads(F.linear(h, *layer["cross_q"]))
                out = attend_cross(q, layer["cross_kv"])
                x = x + F.linear(out.transpose(1, 2).reshape(B, L, self.hidden), *layer["cross_out"])
            # feed-forward
            h = torch.layer_norm(x, (self.hidden,), *layer["norm3"])
            x = x + F.linear(layer["act"](F.linear(h, *layer["fc1"])), *layer["fc2"])
        return F.linear(torch.layer_norm(x, (self.hidden,), *self.final_norm), *self.lm_head)
