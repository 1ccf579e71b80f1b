"""Generation for NUWA: KV-cached decoding over a token grid, constrained decoding, guidance and long videos.

``NuwaForConditionalGeneration.generate`` wraps transformers' ``GenerationMixin.generate``:

* the condition is encoded once; the decoding state that is fixed for the call (3DNA window tables, fused q/k/v,
  the condition's projected cross keys/values, preallocated key/value buffers, position and RoPE tables) is a
  :class:`~.decoding_nuwa.NuwaDecodingCache` handed to transformers as the cache. The loop over it is NUWA's own
  (:func:`~.sampling_nuwa.nuwa_sample`, handed to transformers as ``custom_generate``; on a CUDA device each step is
  replayed from a CUDA graph, ``cuda_graph=False`` to turn it off): each step runs the decoder's modules over the
  cache (cost independent of how many tokens came before). ``decoding_loop="transformers"`` runs transformers' own
  sampling loop over the same cache instead (``prepare_inputs_for_generation`` feeds each step's new ids to the
  model's forward), same tokens. ``fast_decoding=False`` (and attentions / hidden states, training mode, other
  attention implementations, a decoder split over devices, hooked models) steps through the full forward with a
  preallocated transformers KV cache in transformers' loop: the reference, same tokens;
* **constrained decoding** (``known_tokens`` + ``generate_mask``): positions whose mask is False are teacher-forced
  to the known token and only masked positions are sampled, in raster order. Known tokens before the first masked
  position are fed in one pre-fill pass. This is video prediction, image completion and both manipulation tasks;
* **classifier-free guidance** (``guidance_scale``): decoder rows under the null condition, and
  ``logits = null + s * (cond - null)`` (:class:`NuwaGuidanceLogitsProcessor`; transformers' built-in guidance
  assumes a decoder-only model). On the fast path the null rows run in the conditional rows' decoding cache, in the
  same step, when the null condition has the same kind and grid; otherwise a second pass with its own cache;
* guidance and forcing (:class:`NuwaKnownTokensLogitsProcessor`) are logits processors: transformers applies them
  before the temperature / top-k / top-p warpers, and they run without a device-to-host sync per token;
* ``generate_long_video`` slides over time past the trained number of frames: each new frame is generated with the
  previous ``T - 1`` frames as known tokens.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
from typing import Optional, Tuple

import torch
from transformers import (EpsilonLogitsWarper, EtaLogitsWarper, GenerationMixin, LogitsProcessor,
                          LogitsProcessorList, MinPLogitsWarper, TemperatureLogitsWarper, TopKLogitsWarper,
                          TopPLogitsWarper, TypicalLogitsWarper)
from transformers.cache_utils import Cache, DynamicCache, EncoderDecoderCache, StaticLayer

from .decoding_nuwa import NuwaDecodingCache, NuwaDecodingStep, reusable_decoding_cache
from .sampling_nuwa import DECODING_LOOPS, nuwa_sample

Grid = Tuple[int, int, int]


def make_generation_cache(num_layers: int, visual_grid: Grid) -> EncoderDecoderCache:
    """A KV cache for generating one grid: a preallocated self-attention cache (each step writes in place, so a step
    does not copy the whole cache as concatenation would) and a cross-attention cache filled once."""
    length = visual_grid[0] * visual_grid[1] * visual_grid[2]
    self_cache = Cache(layers=[StaticLayer(max_cache_len=length) for _ in range(num_layers)])
    return EncoderDecoderCache(self_cache, DynamicCache())


def _signature_computed_once(cls):
    """transformers' ``LogitsProcessorList`` reads each processor's call signature at every step
    (``inspect.signature``, ~20 us on a CPU core, as much as a decoder op); computed once here (PEP 362's
    ``__signature__``)."""
    cls.__call__.__signature__ = inspect.signature(cls.__call__)
    return cls


@_signature_computed_once
class NuwaGuidanceLogitsProcessor(LogitsProcessor):
    """Classifier-free guidance for NUWA's encoder-decoder: ``scores = null + s * (cond - null)``.

    The null logits come from a second decoder pass under the null condition (an all-padding prompt, or the "None"
    condition), with its own KV cache fed the same decoder ids. transformers' ``ClassifierFreeGuidanceLogitsProcessor``
    assumes a decoder-only model whose unconditional rows share the batch, so NUWA has its own. It runs before the
    temperature / top-k / top-p warpers (transformers applies custom processors first).

    Args:
        model: the NUWA model generating. null_encoder_outputs: the encoded null condition, one row per sampled row.
        guidance_scale: s (> 1 follows the condition more closely). visual_grid: the grid being generated.
        use_cache: keep a KV cache for the null pass (as the conditional pass does); False recomputes the prefix.
    """

    def __init__(self, model, null_encoder_outputs, guidance_scale: float, visual_grid: Grid, use_cache: bool = True,
                 fast_decoding: bool = False, shared_cache: Optional[NuwaDecodingCache] = None):
        self.model = model
        self.null_encoder_outputs = null_encoder_outputs
        self.guidance_scale = float(guidance_scale)
        self.visual_grid = visual_grid
        # The null pass decodes the way the conditional one does: a decoding cache of its own (NuwaDecodingStep,
        # built on first use), the module path with a KV cache, or (use_cache=False) the whole prefix every step.
        # ``shared_cache``: the null rows run in the conditional rows' decoding cache (its ``guidance_rows``), which
        # leaves their logits in ``null_logits`` at each step.
        self.shared_cache = shared_cache
        self.fast_decoding = bool(use_cache and fast_decoding)
        self.step = None
        self.cache = make_generation_cache(model.config.decoder_layers, visual_grid) if use_cache and not fast_decoding \
            else None
        self.seen = 0  # decoder ids already in the null cache (a Python int: no device-to-host sync per step)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """input_ids (B, L): <bos> and the tokens so far; scores (B, N): the conditional logits of position L-1."""
        if self.shared_cache is not None:
            null, self.shared_cache.null_logits = self.shared_cache.null_logits.to(scores.dtype), None
            return null + self.guidance_scale * (scores - null)
        cached = self.cache is not None or self.fast_decoding
        new = input_ids[:, self.seen:] if cached else input_ids
        self.seen = input_ids.shape[1]
        if self.fast_decoding:
            if self.step is None:
                self.step = NuwaDecodingStep(self.model, self.null_encoder_outputs, self.visual_grid)
            null = self.step(new)[:, -1].to(scores.dtype)
        else:
            null = self.model(
                decoder_input_ids=new, encoder_outputs=self.null_encoder_outputs, visual_grid=self.visual_grid,
                cache=self.cache, output_attentions=False, output_hidden_states=False, return_dict=True,
            ).logits[:, -1].to(scores.dtype)
        return null + self.guidance_scale * (scores - null)


@_signature_computed_once
class NuwaKnownTokensLogitsProcessor(LogitsProcessor):
    """Constrained decoding: where ``generate_mask`` is False the next token is forced to the known token (its logit
    stays, every other becomes -inf), so only masked positions are sampled. Image completion, both manipulation tasks
    and video prediction use it; it runs after guidance and before the warpers.

    Args:
        known_tokens: (B, T*H*W) long, the token to force where ``generate_mask`` is False.
        generate_mask: (B, T*H*W) bool, True where the model samples.
    """

    def __init__(self, known_tokens: torch.LongTensor, generate_mask: torch.BoolTensor):
        self.known_tokens = known_tokens
        self.generate_mask = generate_mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        position = input_ids.shape[1] - 1  # input_ids start with <bos>: the next token fills grid position L-1
        forced = ~self.generate_mask[:, position]  # (B,)
        known = self.known_tokens[:, position].clamp(min=0)
        one_hot = torch.full_like(scores, float("-inf")).scatter_(-1, known[:, None], 0.0)
        return torch.where(forced[:, None], one_hot, scores)  # no host-side branch: the same ops every step


def _default_visual_grid(visual_grid, known_tokens, max_new_tokens, max_grid):
    """The grid ``generate()`` fills when ``visual_grid`` is not given: the grid of ``known_tokens``, else whole frames
    of the model's largest grid holding ``max_new_tokens`` tokens (transformers' length argument), else the model's
    largest grid (``config.max_visual_grid``). ``max_new_tokens`` next to a grid must equal its token count."""
    frames, height, width = (int(v) for v in max_grid)
    if visual_grid is None and known_tokens is not None and getattr(known_tokens, "dim", lambda: 0)() == 4:
        visual_grid = tuple(known_tokens.shape[1:])
    if max_new_tokens is None:
        return visual_grid if visual_grid is not None else (frames, height, width)
    max_new_tokens = int(max_new_tokens)
    if visual_grid is None:
        if max_new_tokens < 1 or max_new_tokens % (height * width):
            raise ValueError(
                f"max_new_tokens={max_new_tokens} is not a whole number of {height}x{width}-token frames; pass "
                f"visual_grid=(frames, height, width) instead (an image is (1, {height}, {width}))."
            )
        return (max_new_tokens // (height * width), height, width)
    try:
        total = math.prod(int(v) for v in visual_grid)
    except (TypeError, ValueError):
        return visual_grid  # _check_visual_grid names the problem
    if total != max_new_tokens:
        raise ValueError(f"max_new_tokens={max_new_tokens} does not match visual_grid {tuple(visual_grid)} "
                         f"({total} tokens); pass only one of them.")
    return visual_grid


def _check_visual_grid(visual_grid, max_grid) -> Grid:
    if visual_grid is None:
        raise ValueError("generate() needs visual_grid=(frames, height, width) of the tokens to generate.")
    try:
        grid = tuple(int(v) for v in visual_grid)
    except (TypeError, ValueError):
        raise ValueError(f"visual_grid must be a (frames, height, width) triple of ints, got {visual_grid!r}.") from None
    if len(grid) != 3 or min(grid) < 1:
        raise ValueError(f"visual_grid must be a (frames, height, width) triple of positive ints, got {visual_grid!r}.")
    if any(g > m for g, m in zip(grid, max_grid)):
        raise ValueError(
            f"visual_grid {grid} is larger than the model allows {tuple(max_grid)}; generate fewer frames or use "
            f"generate_long_video(..., num_frames=...) to slide past the trained length."
        )
    return grid


@_signature_computed_once
class NuwaRowGeneratorSampler(LogitsProcessor):
    """Samples each row from its own ``torch.Generator`` (diffusers' ``generator=[...]`` convention), so a row's tokens
    do not depend on which other rows share its batch. It runs after every other processor and warper and returns
    scores that are 0 at the chosen token and -inf elsewhere, so the loop's own softmax + multinomial (or argmax)
    then takes that token whatever the global random state. Rows ``i * per_generator .. (i + 1) * per_generator - 1``
    (an input and its ``num_return_sequences`` copies, as transformers lays them out) draw from generator ``i`` in
    order. Each draw is one uniform number per row on the generator's device, turned into a token by the inverse of
    the row's cumulative distribution.

    ``generate_mask`` ``(rows, T*H*W)`` (constrained decoding): a row draws only where it samples, never at a position
    whose token is known (forced), so a row's draws, and with them its tokens, are those of the same row generated
    alone, whose known prefix is fed at once, whatever the known positions of the rows beside it (an image completed
    at its bottom half next to one completed at its right half, whose common known prefix is shorter). The mask is
    read from a host copy made once: no device-to-host sync per step.
    """

    def __init__(self, generators, per_generator: int, generate_mask: Optional[torch.Tensor] = None):
        self.generators = list(generators)
        self.per_generator = int(per_generator)
        self.sampled = None if generate_mask is None else generate_mask.detach().to("cpu", torch.bool)

    def _draws(self, position: int) -> torch.Tensor:
        """One uniform number per row: drawn from the row's generator where the row samples at ``position``, 0 (never
        drawn) where its token is known."""
        if self.sampled is None or position >= self.sampled.shape[1]:
            return torch.cat([torch.rand(self.per_generator, generator=g, device=g.device) for g in self.generators])
        parts = []
        for index, g in enumerate(self.generators):
            rows = self.sampled[index * self.per_generator:(index + 1) * self.per_generator, position]
            draws = torch.zeros(self.per_generator, device=g.device)
            count = int(rows.sum())
            if count:
                draws[rows.to(g.device)] = torch.rand(count, generator=g, device=g.device)
            parts.append(draws)
        return torch.cat(parts)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probabilities = torch.softmax(scores.float(), dim=-1)
        # a forced row's distribution is one token: any draw (0 here) picks it
        draws = self._draws(input_ids.shape[1] - 1)  # input_ids start with <bos>: grid position L-1 comes next
        cumulative = probabilities.cumsum(dim=-1)
        # u * total, not u: the cumulative sum may end a rounding error below 1
        targets = draws.to(scores.device)[:, None] * cumulative[:, -1:]
        chosen = torch.searchsorted(cumulative, targets, right=True).clamp_(max=scores.shape[-1] - 1)
        # never a token of probability 0 (a searchsorted edge case on flat stretches of the cumulative sum)
        zero = probabilities.gather(1, chosen) <= 0
        if bool(zero.any()):
            chosen = torch.where(zero, probabilities.argmax(dim=-1, keepdim=True), chosen)
        out = torch.full_like(scores, float("-inf")).scatter_(1, chosen, 0.0)
        # a row whose scores hold NaN or infinity has no distribution to draw from: it stays NaN, so the loop's
        # multinomial refuses it (and says why) instead of a token picked from a meaningless cumulative sum
        return out.masked_fill_(~torch.isfinite(cumulative[:, -1:]), float("nan"))


class NuwaGenerationMixin(GenerationMixin):
    """``generate`` for token grids. Mixed into :class:`NuwaForConditionalGeneration`."""

    @torch.no_grad()
    def encode_condition(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        sketch_tokens: Optional[torch.LongTensor] = None,
        condition_type: Optional[str] = None,
        batch_size: Optional[int] = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ):
        """Run the encoder once: text (B, L), sketch tokens (B, Ts, Hs, Ws), or the "None" condition."""
        return self.get_encoder()(
            input_ids=input_ids, attention_mask=attention_mask, sketch_tokens=sketch_tokens,
            condition_type=condition_type, batch_size=batch_size, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=True,
        )

    def null_condition_inputs(self, condition_type: str, batch_size: int, device=None) -> dict:
        """The unconditional input of classifier-free guidance as keywords of ``forward`` (and so of
        ``token_grid_losses``): an all-padding prompt ``input_ids`` ``(batch_size, max_text_length)`` for a text
        condition, the "None" condition (``condition_type="none"``) else. What guidance samples against and what
        condition-gain reranking (``scorer="condition_gain"``) scores against: one definition for both."""
        if condition_type == "text":
            ids = torch.full((batch_size, self.config.max_text_length), self.config.text_pad_token_id, device=device)
            return {"input_ids": ids}
        return {"condition_type": "none"}

    def null_condition_like(self, condition_type: str, batch_size: int, device):
        """The unconditional input for guidance, encoded: an all-padding prompt for text models, the "None" condition
        else (:meth:`null_condition_inputs`)."""
        inputs = self.null_condition_inputs(condition_type, batch_size, device)
        if "input_ids" not in inputs:
            inputs["batch_size"] = batch_size  # the encoder has nothing else to tell the None condition's batch
        return self.encode_condition(**inputs)

    @torch.no_grad()
    def generate(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        sketch_tokens: Optional[torch.LongTensor] = None,
        condition_type: Optional[str] = None,
        *,
        visual_grid=None,
        known_tokens: Optional[torch.LongTensor] = None,
        generate_mask: Optional[torch.Tensor] = None,
        guidance_scale: Optional[float] = None,
        negative_prompt_ids: Optional[torch.LongTensor] = None,
        negative_prompt_attention_mask: Optional[torch.Tensor] = None,
        batch_size: Optional[int] = None,
        use_cache: bool = True,
        fast_decoding: bool = True,
        decoding_loop: str = "nuwa",
        cuda_graph: Optional[bool] = None,
        generator=None,
        **kwargs,
    ):
        """Generate visual tokens for a grid, in raster order.

        Args:
            input_ids: text condition (B, L). Or ``sketch_tokens`` (B, Ts, Hs, Ws). Or neither: the "None" condition
                (then ``batch_size`` or ``known_tokens`` gives the batch size).
            visual_grid: (T, H, W) to generate; an image is T = 1. Default: the grid of ``known_tokens``, else
                ``max_new_tokens`` (whole frames of the model's grid), else ``config.max_visual_grid``.
            known_tokens: (B, T, H, W) tokens to keep where ``generate_mask`` is False (constrained decoding).
            generate_mask: (B, T, H, W) or (T, H, W) bool, True where tokens are generated. Default: everywhere.
            guidance_scale: classifier-free guidance scale (> 1 sharpens toward the condition; 1: off). None takes
                ``generation_config.guidance_scale`` (for text and sketch conditions) when the model folder sets one.
            negative_prompt_ids: ``(B, L)`` text ids (the processor's, like ``input_ids``) that guidance samples
                against instead of the empty prompt: ``logits = neg + s * (cond - neg)`` steers away from what they
                say (diffusers' ``negative_prompt``; transformers' own guidance takes the same name). Text condition
                and guidance only. ``negative_prompt_attention_mask`` is accepted like ``attention_mask`` (padding
                tokens are ordinary tokens of a fixed-length prompt).
            use_cache: KV-cached decoding (default). False recomputes the whole prefix per token (slow; for checks).
            fast_decoding: decode over a :class:`~nuwa_hf.models.nuwa.decoding_nuwa.NuwaDecodingCache` (default):
                the decoder's modules over state held for the whole call, several times faster per token than the
                full forward with a transformers cache.
                False runs every step through ``forward`` (the reference; same logits up to float rounding). The
                module path is used anyway when attentions or hidden states are requested, in training mode, with
                an attention implementation other than ``"nuwa_3dna"``, when the decoder is split over devices, or
                when the model has forward hooks (they then see every step, as in transformers). A per-step hook
                that keeps the fast path: a ``logits_processor``.
            decoding_loop: on the fast path, which loop drives the steps: ``"nuwa"`` (default) NUWA's own loop
                (:func:`~nuwa_hf.models.nuwa.sampling_nuwa.nuwa_sample`, handed to transformers as
                ``custom_generate``: the same processors, warpers, streamer and outputs, less per-token bookkeeping),
                or ``"transformers"``, transformers' stock sampling loop over the same cache. Same tokens for a seed.
                The module path (``fast_decoding=False``) always runs transformers' loop.
            cuda_graph: with NUWA's loop, replay each decoding step from one CUDA graph
                (:class:`~nuwa_hf.models.nuwa.decoding_nuwa.NuwaCudaGraphStep`: the decoder's modules over the
                cache's fixed buffers). The model keeps the cache of its last such call and a later call with the
                same grid, batch, condition shape, dtype and parameter tensors refills it in place and replays its
                graph without capturing again (:func:`~nuwa_hf.models.nuwa.decoding_nuwa.reusable_decoding_cache`).
                None (default): ``generation_config.cuda_graph`` when set, else on for a model on a CUDA device.
                False: eager steps, nothing kept. Where capture fails, a warning gives the reason (once per kept
                cache) and the steps run eagerly; the tokens are the eager steps'.
            generator: a ``torch.Generator``, or a list of them with one per batch row (before
                ``num_return_sequences``): sampling then draws from these instead of torch's global generator, and
                with a list each row's tokens depend only on its own generator, not on the rest of the batch
                (diffusers' convention; the pipelines' ``seed=`` uses it). Ignored for greedy decoding.
            **kwargs: anything ``GenerationMixin.generate`` takes: ``do_sample``, ``temperature``, ``top_k``,
                ``top_p``, ``num_return_sequences``, ``return_dict_in_generate``, ``output_scores``,
                ``output_logits``, ``output_attentions``, ``output_hidden_states``, ... Seed with ``torch.manual_seed``
                before the call.

        Returns:
            ``(B * num_return_sequences, 1 + T*H*W)`` ids, <bos> first; :meth:`sequences_to_grid` reshapes them to
            (B, T, H, W). With ``return_dict_in_generate=True``, transformers' ``GenerateEncoderDecoderOutput``:
            ``sequences``, and per generated token ``scores`` / ``logits`` (B, N), ``decoder_attentions`` /
            ``cross_attentions`` (one tensor per layer) and ``decoder_hidden_states`` (1 + layers) when asked for,
            plus the condition's ``encoder_attentions`` / ``encoder_hidden_states`` (batch B, before the
            ``num_return_sequences`` repeat, as transformers gives them).

        Example:
            >>> seq = model.generate(input_ids=text_ids, visual_grid=(1, 8, 8), do_sample=True, top_k=32)
            >>> image_tokens = model.sequences_to_grid(seq, (1, 8, 8))   # (B, 1, 8, 8)
        """
        for reserved in ("max_length", "min_new_tokens", "min_length", "decoder_input_ids"):
            if reserved in kwargs:
                raise ValueError(f"{reserved} is set by visual_grid/known_tokens; do not pass it to NUWA's generate().")
        if "past_key_values" in kwargs or "cache" in kwargs:
            raise ValueError("generate() builds its own KV cache; do not pass one.")
        if decoding_loop not in DECODING_LOOPS:
            raise ValueError(f"decoding_loop must be one of {DECODING_LOOPS}, got {decoding_loop!r}.")
        beams = kwargs.get("num_beams")
        if beams is None and kwargs.get("generation_config") is not None:
            beams = getattr(kwargs["generation_config"], "num_beams", None)
        if beams is not None and int(beams) > 1:
            raise ValueError(
                f"num_beams={beams}: beam search is not supported by NUWA's generate() (the paper samples with top-k). "
                "Sample several candidates instead: num_return_sequences=N with do_sample=True, or the pipelines' "
                "num_candidates=N with a scorer to keep the best."
            )
        visual_grid = _default_visual_grid(visual_grid, known_tokens, kwargs.pop("max_new_tokens", None),
                                           self.config.max_visual_grid)
        grid = _check_visual_grid(visual_grid, self.config.max_visual_grid)
        total = grid[0] * grid[1] * grid[2]
        device = self.device

        # A guidance_scale saved in generation_config.json is NUWA's default guidance for conditioned generation. It is
        # taken out of the config handed to transformers, whose own guidance assumes a decoder-only model.
        # transformers fills unset fields of a passed config from the model's, so the model's own is masked too.
        if kwargs.get("generation_config") is not None:
            kwargs["generation_config"] = copy.deepcopy(kwargs["generation_config"])
            default_guidance = getattr(kwargs["generation_config"], "guidance_scale", None)
            kwargs["generation_config"].guidance_scale = None
        else:
            default_guidance = getattr(self.generation_config, "guidance_scale", None)

        # Batch size: from whatever condition or known tokens were given.
        sizes = {
            name: t.shape[0] for name, t in (("input_ids", input_ids), ("sketch_tokens", sketch_tokens),
                                             ("known_tokens", known_tokens)) if t is not None
        }
        if batch_size is not None:
            sizes["batch_size"] = int(batch_size)
        if len(set(sizes.values())) > 1:
            raise ValueError(f"inconsistent batch sizes: {sizes}.")
        batch = next(iter(sizes.values()), 1)

        # The encoder's attentions / hidden states go into generate's output when asked for (transformers reads them
        # from encoder_outputs), as a config's or as direct arguments.
        flags = kwargs.get("generation_config") or self.generation_config
        encoder_outputs = self.encode_condition(
            input_ids=input_ids, attention_mask=attention_mask, sketch_tokens=sketch_tokens,
            condition_type=condition_type, batch_size=batch,
            output_attentions=bool(kwargs.get("output_attentions", getattr(flags, "output_attentions", False))),
            output_hidden_states=bool(kwargs.get("output_hidden_states", getattr(flags, "output_hidden_states", False))),
        )

        # Constrained decoding: flatten, validate, and pre-fill the known prefix.
        known_flat = mask_flat = None
        prefix = 0
        if known_tokens is not None or generate_mask is not None:
            if known_tokens is None or generate_mask is None:
                raise ValueError("constrained decoding needs both known_tokens and generate_mask.")
            if tuple(known_tokens.shape[-3:]) != grid or known_tokens.dim() != 4:
                raise ValueError(
                    f"known_tokens must be (batch, {grid[0]}, {grid[1]}, {grid[2]}) to match visual_grid, got "
                    f"{tuple(known_tokens.shape)}."
                )
            generate_mask = torch.as_tensor(generate_mask, device=device)
            if generate_mask.dtype != torch.bool:
                raise ValueError(f"generate_mask must be boolean (True = generate), got {generate_mask.dtype}.")
            if generate_mask.dim() == 3:
                generate_mask = generate_mask.expand(batch, *grid)
            if tuple(generate_mask.shape) != (batch, *grid):
                raise ValueError(
                    f"generate_mask must be ({grid[0]}, {grid[1]}, {grid[2]}) or (batch, ...), got "
                    f"{tuple(generate_mask.shape)}."
                )
            known_flat = known_tokens.reshape(batch, total).to(device)
            mask_flat = generate_mask.reshape(batch, total)
            kept = known_flat[~mask_flat]
            if kept.numel() and (int(kept.min()) < 0 or int(kept.max()) >= self.config.visual_vocab_size):
                raise ValueError(f"known tokens must be visual codes in [0, {self.config.visual_vocab_size}).")
            if not bool(mask_flat.any()):
                raise ValueError("generate_mask selects no position: there is nothing to generate.")
            # Longest prefix that is known in every row: fed in one pass instead of token by token.
            prefix = int(mask_flat.any(dim=0).float().argmax())
        bos = torch.full((batch, 1), self.config.visual_bos_token_id, dtype=torch.long, device=device)
        decoder_input_ids = torch.cat([bos, known_flat[:, :prefix]], dim=1) if prefix else bos

        num_return_sequences = int(kwargs.get("num_return_sequences") or 1)
        expand = (lambda t: t.repeat_interleave(num_return_sequences, dim=0)) if num_return_sequences > 1 else (lambda t: t)

        if guidance_scale is None and encoder_outputs.condition_type != "none":
            guidance_scale = default_guidance
        use_guidance = guidance_scale is not None and float(guidance_scale) != 1.0
        if use_guidance and encoder_outputs.condition_type == "none":
            raise ValueError("guidance_scale needs a condition (text or sketch); the 'None' condition has no opposite.")
        if negative_prompt_ids is not None:
            if encoder_outputs.condition_type != "text":
                raise ValueError("negative_prompt_ids are a text to steer away from: they need a text condition "
                                 f"(input_ids), and this call's condition is {encoder_outputs.condition_type!r}.")
            if not use_guidance:
                raise ValueError("negative_prompt_ids act through classifier-free guidance, which is off here "
                                 f"(guidance_scale={guidance_scale}): pass guidance_scale > 1, e.g. 3.")
            if negative_prompt_ids.dim() != 2 or negative_prompt_ids.shape[0] not in (1, batch):
                raise ValueError(f"negative_prompt_ids must be (batch, length) with batch 1 or {batch} (the prompts'), "
                                 f"got {tuple(negative_prompt_ids.shape)}.")
        # NUWA's processors first (guidance, then forcing), then any the caller gave; transformers runs custom
        # processors before its temperature / top-k / top-p warpers.
        processors = LogitsProcessorList()
        wants_internals = any(
            bool(kwargs.get(name, getattr(flags, name, False))) for name in ("output_attentions", "output_hidden_states")
        )
        fast = bool(fast_decoding and use_cache and not self.training and not wants_internals
                    and self.config._attn_implementation == "nuwa_3dna"
                    and len({p.device for p in self.get_decoder().parameters()}) == 1  # not split by device_map
                    # forward hooks on the model see every decoding step only on the module path
                    and not (self._forward_hooks or self._forward_pre_hooks))
        with contextlib.ExitStack() as held_caches:  # a reused decoding cache stays this call's until it returns
            # The fast path: a NuwaDecodingCache handed to transformers as the cache; prepare_inputs_for_generation
            # and the model's forward run the decoder over it. Its rows are the expanded condition (transformers
            # repeats the encoder outputs for num_return_sequences the same way), and with guidance, where the null
            # condition has the same kind and grid, the null rows too: one pass of 2B rows costs little more than B
            # at decoding sizes.
            decoding_cache = null_outputs = None
            if negative_prompt_ids is not None:  # guidance against the caller's text instead of the empty prompt
                negative = negative_prompt_ids.to(device).expand(batch, -1)
                null_outputs = self.encode_condition(input_ids=expand(negative))
            elif use_guidance:
                null_outputs = self.null_condition_like(encoder_outputs.condition_type, batch * num_return_sequences,
                                                        device)
            if fast:
                rows = type(encoder_outputs)(last_hidden_state=expand(encoder_outputs.last_hidden_state),
                                             condition_grid=encoder_outputs.condition_grid,
                                             condition_type=encoder_outputs.condition_type)
                shared = (null_outputs is not None and null_outputs.condition_type == rows.condition_type
                          and tuple(null_outputs.condition_grid) == tuple(rows.condition_grid))
                if shared:
                    rows.last_hidden_state = torch.cat([rows.last_hidden_state, null_outputs.last_hidden_state])
                guidance_rows = batch * num_return_sequences if shared else 0
                nuwa_loop = decoding_loop == "nuwa" and kwargs.get("custom_generate") is None
                if nuwa_loop and cuda_graph is None:
                    cuda_graph = getattr(kwargs.get("generation_config") or self.generation_config, "cuda_graph", None)
                if nuwa_loop and cuda_graph is None:
                    cuda_graph = device.type == "cuda"
                if nuwa_loop and cuda_graph:
                    # a graph replays fixed addresses: the model's cache of its last graph call, refilled in place
                    # (its graph replays at once), held until this call returns
                    decoding_cache = held_caches.enter_context(
                        reusable_decoding_cache(self, rows, grid, guidance_rows))
                else:
                    decoding_cache = NuwaDecodingCache(self, rows, grid, guidance_rows=guidance_rows)
            if use_guidance:
                shared_cache = decoding_cache if decoding_cache is not None and decoding_cache.guidance_rows else None
                processors.append(NuwaGuidanceLogitsProcessor(self, null_outputs, float(guidance_scale), grid,
                                                              use_cache, fast_decoding=fast,
                                                              shared_cache=shared_cache))
            if known_flat is not None:
                processors.append(NuwaKnownTokensLogitsProcessor(expand(known_flat), expand(mask_flat)))
            processors.extend(kwargs.pop("logits_processor", None) or [])
            row_sampler = None
            if generator is not None:
                generators = list(generator) if isinstance(generator, (list, tuple)) else None
                if generators is None:
                    if not isinstance(generator, torch.Generator):
                        raise TypeError("generator must be a torch.Generator or a list of them, got "
                                        f"{type(generator).__name__}.")
                    # one generator for the whole batch: its rows draw from it in turn
                    row_sampler = NuwaRowGeneratorSampler([generator], batch * num_return_sequences,
                                                          expand(mask_flat) if mask_flat is not None else None)
                else:
                    if len(generators) != batch or not all(isinstance(g, torch.Generator) for g in generators):
                        raise ValueError(f"generator as a list needs one torch.Generator per batch row ({batch}), got "
                                         f"{len(generators)} item(s).")
                    row_sampler = NuwaRowGeneratorSampler(generators, num_return_sequences,
                                                          expand(mask_flat) if mask_flat is not None else None)
            if row_sampler is not None:
                kwargs = self._route_row_sampler(row_sampler, processors, kwargs)

            model_kwargs = dict(encoder_outputs=encoder_outputs, visual_grid=grid)
            if decoding_cache is not None:
                model_kwargs["cache"] = decoding_cache
                if nuwa_loop:
                    # NUWA's loop through transformers' public hook; the streamer is bound (transformers hands a
                    # custom loop none, after giving it the prompt itself)
                    model_kwargs["custom_generate"] = functools.partial(nuwa_sample, streamer=kwargs.get("streamer"),
                                                                        cuda_graph=bool(cuda_graph))
            elif use_cache:  # the module path: a preallocated KV cache
                model_kwargs["cache"] = make_generation_cache(self.config.decoder_layers, grid)
            if processors:
                model_kwargs["logits_processor"] = processors
            length = dict(max_new_tokens=total - prefix, min_new_tokens=total - prefix, use_cache=use_cache)
            if kwargs.get("generation_config") is not None:
                # our own copy: the lengths go into it (transformers warns about a config passed beside such arguments)
                kwargs["generation_config"].update(**length)
                length = {}
            saved_guidance = getattr(self.generation_config, "guidance_scale", None)
            self.generation_config.guidance_scale = None
            try:
                return super().generate(decoder_input_ids=decoder_input_ids, **length, **model_kwargs, **kwargs)
            finally:
                self.generation_config.guidance_scale = saved_guidance

    # transformers' defaults for the sampling warpers (GenerationConfig's documented defaults)
    _WARPER_DEFAULTS = dict(do_sample=False, temperature=1.0, top_k=50, top_p=1.0, min_p=None, typical_p=1.0,
                            epsilon_cutoff=0.0, eta_cutoff=0.0)

    def _route_row_sampler(self, row_sampler, processors: LogitsProcessorList, kwargs: dict) -> dict:
        """Per-row generators draw after the temperature / top-k / top-p warpers, which transformers places after
        every custom processor. So, when sampling, NUWA lists the warpers itself (transformers' public warper
        classes, in transformers' order, from the same settings), then the row sampler, and hands transformers a
        generation config whose warpers are neutral. Returns the kwargs for ``GenerationMixin.generate``."""
        config = copy.deepcopy(kwargs.pop("generation_config", None) or self.generation_config)
        config.guidance_scale = None  # NUWA's guidance is its own processor (see generate)
        kwargs = config.update(**kwargs)  # the generation settings into the config; the rest stays model kwargs

        def setting(name):  # the value transformers would use: given, else the model's, else the default
            value = getattr(config, name, None)
            if value is None:
                value = getattr(self.generation_config, name, None)
            return self._WARPER_DEFAULTS[name] if value is None else value

        if not setting("do_sample"):
            return dict(kwargs, generation_config=config)  # greedy: nothing to draw
        temperature, top_k, top_p, min_p = setting("temperature"), setting("top_k"), setting("top_p"), setting("min_p")
        typical_p, epsilon, eta = setting("typical_p"), setting("epsilon_cutoff"), setting("eta_cutoff")
        if temperature != 1.0:
            processors.append(TemperatureLogitsWarper(temperature))
        if top_k != 0:
            processors.append(TopKLogitsWarper(top_k=top_k, min_tokens_to_keep=1))
        if top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
        if min_p is not None:
            processors.append(MinPLogitsWarper(min_p=min_p, min_tokens_to_keep=1))
        if typical_p < 1.0:
            processors.append(TypicalLogitsWarper(mass=typical_p, min_tokens_to_keep=1))
        if 0.0 < epsilon < 1.0:
            processors.append(EpsilonLogitsWarper(epsilon=epsilon, min_tokens_to_keep=1))
        if 0.0 < eta < 1.0:
            processors.append(EtaLogitsWarper(epsilon=eta, min_tokens_to_keep=1, device=self.device))
        processors.append(row_sampler)
        config.do_sample, config.temperature, config.top_k, config.top_p = True, 1.0, 0, 1.0
        config.min_p, config.typical_p, config.epsilon_cutoff, config.eta_cutoff = None, 1.0, 0.0, 0.0
        return dict(kwargs, generation_config=config)

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, cache=None, **kwargs):
        """transformers' hook for each step's model inputs. With a :class:`NuwaDecodingCache` (the fast path): the
        ids the cache has not seen yet (the prefill: <bos> and any known prefix; then one token) and the cache, which
        holds everything else (the encoded condition, the grid); the model's forward then runs the decoder over it.
        Otherwise transformers' own preparation (the module path)."""
        if isinstance(cache, NuwaDecodingCache):
            return {"decoder_input_ids": input_ids[:, cache.position:], "cache": cache}
        return super().prepare_inputs_for_generation(input_ids, next_sequence_length=next_sequence_length,
                                                     cache=cache, **kwargs)

    @torch.no_grad()
    def generate_long_video(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        sketch_tokens: Optional[torch.LongTensor] = None,
        condition_type: Optional[str] = None,
        *,
        visual_grid,
        num_frames: int,
        first_frames: Optional[torch.LongTensor] = None,
        **kwargs,
    ) -> torch.LongTensor:
        """Generate ``num_frames`` frames, more than the model's trained T, by sliding a T-frame window over time.

        The first window is generated as usual (or continues ``first_frames`` (B, F, H, W) when given); every further
        frame is generated with the previous T - 1 frames as known tokens. Sketch conditions are not slid (they would
        need a sketch per frame window): text or the "None" condition only.

        Returns:
            visual tokens (B, num_frames, H, W).
        """
        T, H, W = _check_visual_grid(visual_grid, self.config.max_visual_grid)
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f"num_frames must be a positive int, got {num_frames!r}.")
        if sketch_tokens is not None:
            raise ValueError("generate_long_video slides text- or None-conditioned videos; sketch videos are fixed-length.")
        if int(kwargs.get("num_return_sequences") or 1) != 1:
            raise ValueError("generate_long_video makes one video per condition; repeat the condition for more.")
        if T < 2:
            raise ValueError("sliding over time needs a video grid with at least 2 frames.")
        batch = input_ids.shape[0] if input_ids is not None else (first_frames.shape[0] if first_frames is not None else 1)
        condition = dict(input_ids=input_ids, condition_type=condition_type, batch_size=batch)
        if first_frames is not None:
            if first_frames.dim() != 4 or tuple(first_frames.shape[2:]) != (H, W):
                raise ValueError(f"first_frames must be (batch, frames, {H}, {W}), got {tuple(first_frames.shape)}.")
            frames = first_frames[:, -T:].to(self.device)
        else:
            frames = torch.empty(batch, 0, H, W, dtype=torch.long, device=self.device)
        if frames.shape[1] < T:
            # Fill the first window: known frames first, the rest generated.
            have = frames.shape[1]
            known = torch.zeros(batch, T, H, W, dtype=torch.long, device=self.device)
            known[:, :have] = frames
            mask = torch.zeros(T, H, W, dtype=torch.bool, device=self.device)
            mask[have:] = True
            seq = self.generate(**condition, visual_grid=(T, H, W), known_tokens=known, generate_mask=mask, **kwargs)
            frames = self.sequences_to_grid(seq, (T, H, W))
        out = [frames]
        produced = frames.shape[1]
        window = frames
        mask = torch.zeros(T, H, W, dtype=torch.bool, device=self.device)
        mask[-1] = True
        while produced < num_frames:
            known = torch.cat([window[:, 1:], torch.zeros_like(window[:, :1])], dim=1)
            seq = self.generate(**condition, visual_grid=(T, H, W), known_tokens=known, generate_mask=mask, **kwargs)
            window = self.sequences_to_grid(seq, (T, H, W))
            out.append(window[:, -1:])
            produced += 1
        return torch.cat(out, dim=1)[:, :num_frames]
