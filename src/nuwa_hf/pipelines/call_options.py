"""The options of a pipeline call: their names, the old names they replace, ``generate_kwargs`` merging, and the
options part of every task's docstring. (The rules of the sampling options are the model's,
:mod:`nuwa_hf.models.nuwa.visual_generation_nuwa`; the pipeline-only counts and seeds: :mod:`.sampling_options`.)"""

from __future__ import annotations

import warnings

# ``logits_processor``: transformers' per-step hook into sampling (a list of LogitsProcessor), passed on to generate();
# ``generation_config``: a transformers GenerationConfig carrying the sampling options (the named options go over it).
GENERATION_OPTIONS = ("do_sample", "temperature", "top_k", "top_p", "guidance_scale", "logits_processor",
                      "generation_config")
# The one name for "how many outputs per input", in every task. The names of earlier releases (diffusers' style, one
# per task) still work, with a FutureWarning.
NUM_OUTPUTS = "num_outputs_per_input"
OLD_NUM_OUTPUTS_NAMES = ("num_images_per_prompt", "num_videos_per_prompt", "num_videos_per_input",
                         "num_images_per_sketch", "num_images_per_image", "num_videos_per_sketch")
CALL_OPTIONS = GENERATION_OPTIONS + (NUM_OUTPUTS, "seed", "generator", "num_candidates", "scorer", "output_type",
                                     "generate_kwargs", "allow_large", "keep_original_pixels", "seam", "strict",
                                     "drop_unknown_words", "rephrase_prompt", "negative_prompt",
                                     "complete_instruction")
OUTPUT_TYPES = ("pil", "np", "pt", "tokens")


def merge_generate_kwargs(options: dict) -> dict:
    """transformers' pipelines take sampling settings as ``generate_kwargs={...}``: merge them into the call's options
    (the same names as the direct arguments; giving one both ways with different values is an error)."""
    extra = options.pop("generate_kwargs", None)
    if extra is None:
        return options
    if not isinstance(extra, dict):
        raise TypeError(f"generate_kwargs must be a dict of sampling settings, got {type(extra).__name__}.")
    unsupported = sorted(set(extra) - set(GENERATION_OPTIONS))
    if unsupported:
        raise TypeError(f"generate_kwargs {unsupported} are not supported by NUWA's pipelines; they take "
                        f"{list(GENERATION_OPTIONS)} (the grid and its length follow from the task and num_frames).")
    clashes = sorted(k for k in extra if k in options and options[k] != extra[k])
    if clashes:
        raise TypeError(f"{clashes} given both directly and in generate_kwargs with different values; give each once.")
    return {**options, **extra}


def rename_old_count_names(options: dict) -> dict:
    """``num_images_per_prompt=2`` and the other per-task names of earlier releases -> ``num_outputs_per_input``."""
    old = [name for name in OLD_NUM_OUTPUTS_NAMES if name in options]
    if not old:
        return options
    options = dict(options)
    values = {options.pop(name) for name in old}
    if NUM_OUTPUTS in options:
        values.add(options[NUM_OUTPUTS])
    if len(values) > 1:
        raise TypeError(f"{sorted(old + ([NUM_OUTPUTS] if NUM_OUTPUTS in options else []))} say different numbers of "
                        f"outputs per input; give only {NUM_OUTPUTS}.")
    warnings.warn(f"{old[0]} is now called {NUM_OUTPUTS} (one name in every NUWA pipeline); the old name will be "
                  "removed in a future release.", FutureWarning, stacklevel=4)
    options[NUM_OUTPUTS] = values.pop()
    return options


OPTIONS_DOC = """
        Options (keyword arguments; defaults for every call can also be given to ``pipeline(...)``):
            num_outputs_per_input (`int`, defaults to 1): outputs per input (the per-task names of earlier releases,
                e.g. ``num_images_per_prompt``, still work with a FutureWarning).
            seed (`int`): makes the call reproducible: input ``i`` of the call (0 for a single input, counted in order
                over a list, dataset or generator) is sampled from its own generator seeded with ``seed + i``, so a
                list gives what separate calls with seeds ``seed, seed + 1, ...`` give, at any ``batch_size``
                (torch's global generator is left as it was).
            generator (`torch.Generator` or a list of them): alternatively, one seed is drawn from it per call, then
                as ``seed=`` (successive calls differ). A list (diffusers' convention) gives each input, or each
                output row, its own generator.
            keep_original_pixels (`bool`, defaults to True): editing tasks (image completion and manipulation, video
                prediction and manipulation) return the input's own pixels outside the region and in the given
                frames, with a seam of ``seam`` pixels on each side of the region's edge blended (an image editor's
                paste-back, as diffusers' inpainting overlay; ``seam`` defaults to 2, 0 for a hard edge). False
                returns the VQ-GAN's reconstruction there.
            drop_unknown_words (`bool`, defaults to True): leave the prompt's words that the model never saw in
                training out of what it reads ("generate an image of a red 7" is read as "a red 7"), with a warning
                naming them: their sub-word pieces would steer the output at random (``nuwa_hf.processing.vocabulary.
                without_unknown_words``). A prompt with no known word, or one left with only filler words of the
                training captions ("a purple cat" -> "a"), is refused with the words the model knows. False gives
                the model the whole prompt.
            rephrase_prompt (`bool`, defaults to True): read common phrasings of a motion in the words the training
                captions say it with, before unknown words are left out: "up and down" as "up then down", "left to
                right" as "left then right", "side to side" / "back and forth" / "horizontally" as "left then right",
                "vertically" as "up then down", "bouncing" / "jumping" (no direction named) as "moving up then down"
                (the table: ``nuwa_hf.processing.phrasings``), with a warning saying how the prompt was read. Only
                rewrites whose words the model knows are made. Image manipulation also reads an edit as the picture
                it asks for: what it replaces is left out when it names what replaces it ("turn the 6 into an 8" as
                "an 8", "change the colour from red to magenta" as "magenta": ``phrasings.rephrase_edit``); its
                prompt is the caption of the whole edited picture (see ``complete_instruction``). False reads the
                prompt as typed.
            complete_instruction (`bool`, defaults to True): image manipulation only. An instruction that names no
                digit and / or no colour ("make it blue", read as "blue") would be read as the caption of a picture
                with any digit there; instead the model reads the input picture with its own likelihood (the caption
                "a {colour} {digit}" under which the picture's tokens are most likely) and edits with the caption
                completed from that reading ("a blue 6" for a picture it reads as "a yellow 6"), with a notice saying
                so (``nuwa_hf.pipelines.instruction_completion``). On the shipped model this raised "both digit and
                colour as asked" 0.291 -> 0.584 (``benchmarks/bench_user_edit_prompts.py``). False reads the
                instruction as given, with the advice that the model may draw any digit / colour there. Neither is
                refused by ``strict`` (a prompt may leave them open on purpose: pass False then).
            strict (`bool`, defaults to False): turn the warnings about prompt words the model never saw, prompts
                rephrased (``rephrase_prompt``), inputs resized by more than 2x or cropped to the model's frame
                shape, video frames left unread, edits of the whole image and pictures on a light background (dark
                ink on white paper: invert them first, e.g. ``PIL.ImageOps.invert(image.convert("RGB"))``) into errors (not the advice that an
                edit names no digit or colour: that can be meant).
            do_sample (`bool`, defaults to True): sample (NUWA's way); False decodes greedily.
            temperature (`float`), top_k (`int`), top_p (`float`): sampling controls; unset ones come from the model
                folder's generation_config.json (its ``task_sampling`` entry for this task first, e.g.
                ``{"nuwa-text-to-image": {"guidance_scale": 3.0, "top_k": 8}}``, then its defaults).
                ``generate_kwargs={...}`` takes the same, as transformers' pipelines.
            guidance_scale (`float`): classifier-free guidance, a finite number >= 1 (1 = off; > 1 follows the text or
                sketch more closely); needs a condition. The rules of every option:
                ``nuwa_hf.models.nuwa.visual_generation_nuwa``.
            negative_prompt (`str`): text tasks, with guidance on: what guidance steers away from instead of the
                empty prompt (``logits = neg + s * (cond - neg)``, diffusers' option), read by the prompt's rules
                (unknown words left out, with a warning). On the shipped model it removes what it names ("a red
                digit" with "a red 8": 8s 0.45 -> 0.10, red kept) but can take away what it shares with the prompt
                too ("a 3" with "a blue 3": blue 0.45 -> 0, and 3s 0.93 -> 0.03):
                ``benchmarks/bench_negative_prompt.py``.
            generation_config (`transformers.GenerationConfig`): the sampling options as one object (the options
                above, given by name, go over its fields); merged with the task's defaults by
                ``model.visual_generation_config``.
            logits_processor (list of transformers ``LogitsProcessor``): run at every decoding step, after NUWA's
                guidance and forcing and before the top-k / top-p warpers (e.g. to ban codes, or to stop a running
                call by raising).
            scorer: reranks candidates, keeping the best (the paper keeps the best of 60 by CLIP): ``"likelihood"``
                (the model's own log-likelihood of each candidate given the condition; every task, no second model;
                best of 4 raised the shipped model's I2I digit kept 0.55 -> 0.69 and T2V digit 0.84 -> 0.90 on the
                validation split, I2I with the whole picture given; with the region blanked and its ring regenerated,
                best of 4 against one sample 0.518 / 0.520 on validation, 0.520 / 0.452 on test),
                ``"condition_gain"`` (that log-likelihood minus the one given the null condition
                of classifier-free guidance: favours candidates the prompt or sketch makes likelier; only for requests
                with a condition), ``"attribute_posterior"`` (the model's posterior of the motion, digit and colour
                the prompt asks for, each against the prompt with that word swapped for its other values; only for
                prompts naming one), an object with ``similarity(samples, texts)`` (e.g.
                ``nuwa_hf.evaluation.TextVisualDualEncoder``), the path of a saved scorer, or a callable
                ``scorer(candidates, prompt) -> scores``.
            num_candidates (`int`): candidates per output when a scorer is set (default 8).
            output_type (`str`, defaults to "pil"): "pil" (PIL images / lists of PIL frames), "np" (float32 in [0, 1],
                (H, W, 3) or (T, H, W, 3)), "pt" (float in [0, 1], (3, H, W) or (T, 3, H, W)), or "tokens" (the VQ-GAN
                token grid, (h, w) or (T, h, w)).
            batch_size (`int`, defaults to 8): inputs generated together (rows = inputs x outputs x candidates).
            num_workers (`int`): DataLoader workers that prepare inputs (transformers' option).
            allow_large (`bool`, defaults to False): go past the work limits (frames, candidates, outputs per input,
                memory estimate; see ``nuwa_hf.pipelines.work_limits``) deliberately.

        Inputs may also be request dicts (keys as the arguments above, e.g. ``{"prompt": ..., "image": ...}``), a
        list of them, a generator, a torch dataset or a 🤗 ``datasets.Dataset`` of such rows: then the pipeline
        returns an iterator, as transformers' pipelines do.

        Errors: ``ValueError`` (a value out of range; ``WorkLimitError`` past a work limit) or ``TypeError`` (a value of
        the wrong type, or an argument the task does not take), with a message that names the fix; ``FileNotFoundError``
        for a missing input file.
"""


def with_options_doc(function):
    """Append :data:`OPTIONS_DOC` to a task pipeline's ``__call__`` docstring."""
    function.__doc__ = (function.__doc__ or "").rstrip() + "\n" + OPTIONS_DOC
    return function
