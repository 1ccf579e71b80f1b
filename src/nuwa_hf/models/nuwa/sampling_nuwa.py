"""NUWA's decoding loop: the sampling / greedy loop that ``generate()`` hands to transformers through its public
``custom_generate`` hook.

transformers' ``GenerationMixin.generate(..., custom_generate=<callable>)`` "performs the usual input preparation
steps, then calls the provided callable to run the decoding loop": the generation config, the logits processors and
warpers (NUWA's guidance, known tokens and row generators included), the stopping criteria, the encoded condition and
the :class:`~.decoding_nuwa.NuwaDecodingCache` are all prepared by transformers as for its own loop. What this loop
leaves out is only per-token bookkeeping that a fixed-length grid over a decoding cache does not need, and which costs
as much as a small decoder step on a CPU:

* no ``prepare_inputs_for_generation`` / ``forward`` / ``ModelOutput`` per token: the cache's
  :meth:`~.decoding_nuwa.NuwaDecodingCache.decode_next` runs the decoder's own modules (the same call the model's
  forward makes when handed the cache) on the chosen tokens;
* the logits processors are called directly, their call signatures read once per call (``LogitsProcessorList``
  inspects every processor's signature at every step);
* the ids are written into one preallocated (B, max_length) tensor instead of concatenated at every step;
* no per-step stop test (a device-to-host sync on a GPU) when the only stopping criterion is the length, which is
  known: a grid has ``T*H*W`` positions.

The arithmetic of a step is the decoder's (the cache runs its modules); the choice of a token is transformers' in the
same order (processors, then softmax + ``torch.multinomial`` or argmax), so a seed gives the same tokens as
transformers' loop (``generate(..., decoding_loop="transformers")``; tests/models/nuwa/test_decoding_loop.py).
"""

from __future__ import annotations

import inspect
import logging

import torch
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList
from transformers.generation import GenerateEncoderDecoderOutput
from transformers.generation.configuration_utils import GenerationMode
from transformers.generation.stopping_criteria import MaxLengthCriteria

from .decoding_nuwa import NuwaCudaGraphStep, NuwaDecodingCache

logger = logging.getLogger(__name__)

DECODING_LOOPS = ("nuwa", "transformers")


def _processors_called_directly(logits_processor: LogitsProcessorList) -> list:
    """The processors, each checked once as ``LogitsProcessorList.__call__`` checks it at every step: the loop passes
    ``(input_ids, scores)`` only, so a processor that needs more arguments is an error."""
    processors = list(logits_processor or [])
    for processor in processors:
        parameters = list(inspect.signature(processor.__call__).parameters)
        if len(parameters) > 2:
            raise ValueError(f"{type(processor).__name__} needs the arguments {parameters}; NUWA's decoding loop (as "
                             "transformers' sampling loop) gives a logits processor (input_ids, scores) only.")
    return processors


def _captured_or_eager(cache: NuwaDecodingCache, tokens: torch.LongTensor, eager):
    """The cache's graph step, its graph captured now (first use) or already (a cache reused from an earlier call),
    else ``eager``: where capture fails a warning names the reason, once per cache (its later calls decode eagerly
    without trying again)."""
    graph_step = cache.cuda_graph_step
    if graph_step is None:
        graph_step = cache.cuda_graph_step = NuwaCudaGraphStep(cache)
    if graph_step.failure is not None:
        return eager
    if graph_step.graph is None:
        try:
            graph_step.capture(tokens)
        except Exception as error:  # noqa: BLE001 (any capture failure falls back; the reason is logged)
            graph_step.failure = f"{type(error).__name__}: {error}"
            logger.warning("NUWA decoding: CUDA graph capture failed, decoding eagerly (%s). Pass cuda_graph=False "
                           "to generate() to skip the attempt.", graph_step.failure)
            return eager
    return graph_step


def nuwa_sample(
    model,
    input_ids: torch.LongTensor,
    logits_processor: LogitsProcessorList,
    stopping_criteria: StoppingCriteriaList,
    generation_config: GenerationConfig,
    streamer=None,
    cuda_graph: bool = False,
    **model_kwargs,
):
    """Sample (or, without ``do_sample``, pick greedily) the rest of a grid over a NuwaDecodingCache.

    transformers calls it from ``generate`` (``custom_generate=``) with the prepared inputs; ``generate`` binds
    ``streamer`` (transformers hands a callable no streamer, and has already given it the prompt).

    Args:
        model: the NuwaForConditionalGeneration generating.
        input_ids: (B, L) decoder ids so far: <bos> and any known prefix of the grid.
        logits_processor: transformers' prepared list (NUWA's processors, the caller's, then the warpers).
        stopping_criteria: transformers' prepared list; ``MaxLengthCriteria`` at ``1 + T*H*W``, plus any the caller
            gave (evaluated at every step as transformers does, a host sync each).
        generation_config: the call's config (``do_sample``, ``max_length``, ``return_dict_in_generate``,
            ``output_scores``, ``output_logits``).
        streamer: gets each step's tokens (B,) on the CPU, then ``end()``.
        cuda_graph: replay the steps from one captured CUDA graph of the static step
            (:class:`~.decoding_nuwa.NuwaCudaGraphStep`, kept by the cache: a cache ``generate()`` reuses replays the
            graph captured by an earlier call); where capture fails, a warning says why and the steps run eagerly. ``generate`` sets it (default: on for a model on a CUDA device).
        model_kwargs: what transformers prepared for the model; ``cache`` must be a NuwaDecodingCache.

    Returns:
        (B, max_length) ids, or with ``return_dict_in_generate`` transformers' ``GenerateEncoderDecoderOutput``
        (``sequences``; ``scores`` / ``logits``, one (B, N) float32 tensor per generated token, when asked for).
    """
    cache = model_kwargs.get("cache")
    if not isinstance(cache, NuwaDecodingCache):
        raise ValueError("NUWA's decoding loop runs over a NuwaDecodingCache, which generate() builds on its fast path; "
                         "use generate(..., decoding_loop='transformers') for the module path.")
    mode = generation_config.get_generation_mode()
    if mode not in (GenerationMode.SAMPLE, GenerationMode.GREEDY_SEARCH):
        raise ValueError(f"NUWA's decoding loop samples or picks greedily; this generation config asks for {mode.value}"
                         f". Pass decoding_loop='transformers' to hand it to transformers' loop.")
    if generation_config.output_attentions or generation_config.output_hidden_states:
        raise ValueError("attentions and hidden states come from the model's forward: generate() takes the module "
                         "path for them (fast_decoding=False).")
    processors = _processors_called_directly(logits_processor)
    # Stopping: the length is known (a grid has T*H*W positions); other criteria are tested at every step.
    others = [c for c in stopping_criteria if not isinstance(c, MaxLengthCriteria)]
    max_length = generation_config.max_length
    do_sample = generation_config.do_sample
    return_dict = generation_config.return_dict_in_generate
    scores = [] if return_dict and generation_config.output_scores else None
    raw_logits = [] if return_dict and generation_config.output_logits else None

    batch, start = input_ids.shape
    sequences = torch.empty(batch, max_length, dtype=input_ids.dtype, device=input_ids.device)
    sequences[:, :start] = input_ids
    unfinished = torch.ones(batch, dtype=torch.bool, device=input_ids.device) if others else None
    pad = generation_config._pad_token_tensor if any(hasattr(c, "eos_token_id") for c in others) else None

    with torch.inference_mode():  # the prefill: <bos> and the known prefix
        logits = cache.decode(input_ids[:, cache.position:])[:, -1]
    step, graph_pending = cache.decode_next, bool(cuda_graph)
    length = start
    while length < max_length:
        next_logits = logits.to(copy=True, dtype=torch.float32)
        next_scores = next_logits
        view = sequences[:, :length]  # what the processors see: the ids so far (never written again)
        for processor in processors:
            next_scores = processor(view, next_scores)
        if scores is not None:
            scores.append(next_scores)
        if raw_logits is not None:
            raw_logits.append(next_logits)
        if do_sample:
            try:
                next_tokens = torch.multinomial(torch.softmax(next_scores, dim=-1), num_samples=1).squeeze(1)
            except RuntimeError as error:
                if "probability tensor" not in str(error):
                    raise
                raise _non_finite_scores(next_logits, next_scores, length, generation_config) from None
        else:
            next_tokens = torch.argmax(next_scores, dim=-1)
        if pad is not None:  # rows already stopped by an end-of-sequence criterion get padding, as in transformers
            next_tokens = torch.where(unfinished, next_tokens, pad.to(next_tokens.device))
        sequences[:, length] = next_tokens
        length += 1
        if streamer is not None:
            streamer.put(next_tokens.cpu())
        if others:
            unfinished &= ~StoppingCriteriaList(others)(sequences[:, :length], tuple(scores) if scores else None)
            if not bool(unfinished.any()):
                break
        if length < max_length:
            if graph_pending:  # the first step after the prefill: the graph (captured once per cache) from here on
                step = _captured_or_eager(cache, next_tokens, step)
                graph_pending = False
            with torch.inference_mode():
                logits = step(next_tokens)
    if streamer is not None:
        streamer.end()
    sequences = sequences[:, :length]
    if not return_dict:
        return sequences
    return GenerateEncoderDecoderOutput(
        sequences=sequences,
        scores=tuple(scores) if scores is not None else None,
        logits=tuple(raw_logits) if raw_logits is not None else None,
        encoder_attentions=None, encoder_hidden_states=None, decoder_attentions=None, cross_attentions=None,
        decoder_hidden_states=None,
        cache=cache,
    )


def _non_finite_scores(logits: torch.Tensor, scores: torch.Tensor, position: int, generation_config) -> ValueError:
    """The error for a step whose scores cannot be sampled (NaN, infinity, or no finite score left), naming the likely
    cause: the model's own logits (weights or float16 overflow), or the sampling settings that changed them."""
    guidance = getattr(generation_config, "guidance_scale", None)
    temperature = getattr(generation_config, "temperature", None)
    if not bool(torch.isfinite(logits).all()):
        cause = ("the model's own scores (logits) hold NaN or infinity: its weights hold NaN/inf (a diverged run; "
                 "`[n for n, p in model.named_parameters() if not p.isfinite().all()]` names them), or it runs in "
                 "float16 and overflowed (load it in float32 or bfloat16)")
        if guidance is not None and guidance > 1:
            cause += f", or guidance_scale={guidance:g} pushed them past the float range (try 1 to 10)"
    else:
        settings = ", ".join(f"{name}={value:g}" for name, value in (("guidance_scale", guidance),
                                                                      ("temperature", temperature)) if value is not None)
        cause = (f"the sampling settings or logits processors ({settings or 'guidance_scale, temperature'}) turned "
                 "the model's finite scores into NaN or infinity (or filtered out every token): use a guidance_scale "
                 "of 1 to 10 and a temperature near 1, and check any logits_processor given")
    return ValueError(f"Cannot sample token {position}: {cause}.")
