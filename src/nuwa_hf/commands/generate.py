"""``nuwa-hf generate``: one task on the inputs given on the command line, written as PNG / GIF (/ MP4).

Which inputs and frame options a task takes comes from the task table (:mod:`nuwa_hf.tasks`): its inputs are the
pipeline's positional arguments, its optional inputs keywords, its frame options the --num-* flags it accepts; a
flag the task does not take is an error.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Optional

from ..tasks import TASKS, front_end_name, get_task_info
from .base import (EXIT_INTERRUPTED, EXIT_OK, CommandError, NuwaCommand, add_model_options, apply_model_options,
                   checked_type, fps, in_flag_terms, load_task_pipeline, non_negative_int, output_size, positive_int,
                   resolve_task)

# The input flags, in the order a batch lists them; all but --prompt name files.
INPUT_FLAGS = ("prompt", "image", "video", "sketch")
# What each pipeline input of the task table asks for (in "needs" messages) and notes for the task list of --help.
_INPUT_HELP = {"prompt": "the caption", "image": "the image", "video": "the given frame(s)", "sketch": "a class-id map",
               "sketch_video": "class-id maps per frame", "mask": "the region to change, e.g. \"bottom half\""}
_INPUT_NOTES = {"sketch": "(PNG in mode L/P with class ids, .npy, or painted in the class colours)",
                "sketch_video": "(.npy (T, H, W), GIF, or a folder of maps; ids or class colours)"}
# The frame options of the task table that have a flag here (--num-frames, ...).
FRAME_OPTIONS = ("num_frames", "num_condition_frames", "num_frames_to_predict")
# Flags only one task takes: flag's argparse name -> (the task, why only it).
TASK_ONLY_FLAGS = {
    "no_complete_instruction": ("nuwa-image-manipulation", "only TI2I completes an edit instruction from the picture "
                                                           "it edits"),
    "no_blank_region": ("nuwa-image-completion", "only I2I blanks the region before encoding the picture"),
    "regenerate_border": ("nuwa-image-completion", "only I2I regenerates a ring of tokens around its region"),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _task_line(info) -> str:
    """One task of --help's list: its names and the flags it takes, read off the task table (and, for an optional
    input's default, the pipeline's signature)."""
    from ..pipelines import PIPELINE_CLASSES

    parameters = inspect.signature(PIPELINE_CLASSES[info.name].__call__).parameters
    words = []
    for name in info.inputs:
        flag = _flag(front_end_name(name))
        note = "(or --image: one first frame)" if name == "video" and info.takes_image_as_video else _INPUT_NOTES.get(name)
        words.append(f"{flag} {note}" if note else flag)
    for name in info.optional_inputs:
        default = parameters[name].default if name in parameters else None
        shown = f' "{default}"' if isinstance(default, str) else ""
        words.append(f"[{_flag(front_end_name(name))}{shown}]")
    words += [f"[{_flag(name)}]" for name in info.frame_options]
    return f"  {info.name[len('nuwa-'):]:<20} {info.code:<5} {' '.join(words)}"


def task_help() -> str:
    """The task list of ``generate --help``."""
    return "tasks (name or paper code):\n" + "\n".join(_task_line(info) for info in TASKS)


def _input_help() -> str:
    """The inputs' paragraphs of ``generate --help``, from the code that reads them: the sketch class ids
    (nuwa_hf.data.SCENE_CLASSES) and the regions --mask takes (nuwa_hf.pipelines.regions, the parser the Python API
    uses too)."""
    from ..data.scene_rendering import SCENE_CLASSES, sketch_class_legend
    from ..media import class_palette
    from ..pipelines.regions import BOX_RULE, REGION_SHORTCUTS

    def fill(text: str) -> str:
        return textwrap.fill(text, width=110, break_on_hyphens=False).replace("\0", " ")

    def unbroken(text: str) -> str:  # kept on one line by fill
        return text.replace(" ", "\0")

    shortcuts = ", ".join(unbroken(f'"{name}"') for name in REGION_SHORTCUTS)
    classes = ", ".join(unbroken(item) for item in sketch_class_legend().split(", "))
    colours = ", ".join(unbroken(f"{index} ({rgb})") for index, rgb in enumerate(
        ", ".join(str(v) for v in colour) for colour in class_palette(len(SCENE_CLASSES)).tolist()))
    sketch = fill(f"--sketch maps hold one class id per pixel (the scene world's classes): {classes}. A PNG stores the "
                  f"ids as gray levels 0-{len(SCENE_CLASSES) - 1} (mode L) or palette indices (mode P); a .npy holds "
                  "them as integers. Or paint the sketch in the class colours (RGB; PNG, JPEG or GIF of any size): "
                  f"{colours}; each pixel takes the nearest class colour (anti-aliased edges and near shades are "
                  "read), and areas in other colours or left white are refused.")
    mask = fill(f"--mask takes a shortcut ({shortcuts}); {BOX_RULE}; or a mask image (white = regenerate; "
                "the image's size, or its shape at another size: scaled). "
                "Python's mask= takes the same text.")
    return sketch + "\n\n" + mask + _shipped_vocabulary_help(fill)


def _shipped_vocabulary_help(fill) -> str:
    """The prompt words the shipped checkpoint knows, read from its tokenizer (when this is a checkout that has it)."""
    folder = Path(__file__).resolve().parents[3] / "checkpoints" / "nuwa-tiny"
    if not (folder / "tokenizer.json").is_file():
        return ""
    try:
        from ..processing.vocabulary import read_folder_tokenizer, vocabulary_by_kind

        kinds = vocabulary_by_kind(read_folder_tokenizer(folder))
    except Exception:  # a damaged folder must not break --help; loading it names the problem
        return ""
    lines = "; ".join(f"{kind}: {', '.join(items)}" for kind, items in kinds.items() if items)
    return "\n\n" + fill(f"Prompts: the shipped checkpoint ({folder.parent.name}/{folder.name}) knows these words ({lines}); "
                        "common phrasings of a motion are read in these words (\"up and down\" as \"up then down\"; "
                        "--no-rephrase reads the prompt as typed); "
                        "others are left out of what it reads and named in a warning "
                        "(--keep-unknown-words gives them to it), and a prompt left with only filler words (\"a\" of "
                        "\"a purple cat\") is refused. Another model's words: "
                        "nuwa_hf.processing.vocabulary.vocabulary_text(processor.tokenizer).")


def _cli_wording():
    """How the pipelines' unknown-word notices and errors name their remedies on this command line."""
    from ..pipelines.notices import NoticeWording

    return NoticeWording(
        keep="--keep-unknown-words keeps them",
        drop="leave out --keep-unknown-words to leave them out",
        keep_instead="pass --keep-unknown-words",
        known="The words it knows are in the model card (and, for the shipped checkpoint, nuwa-hf generate --help).",
        as_typed="--no-rephrase reads it as typed",
        as_given="--no-complete-instruction reads the instruction as given",
        invert="invert the file first (an image editor's Invert / Negative, or ImageMagick's convert in.png -negate "
               "out.png)",
    )


# ----------------------------------------------------------------------------------------------------------------------
# Argument types


def _file_name_prefix(text: str) -> str:
    """--name: a plain file name prefix (no folders, no control characters), since it names files in --out."""
    bad = [c for c in text if c in "/\\" or ord(c) < 32 or ord(c) == 127]
    if not text.strip() or bad or text in (".", "..") or text.startswith("-"):
        shown = ", ".join(sorted({repr(c) for c in bad})) or repr(text)
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a file name prefix ({shown} not allowed): give letters, digits, '-', '_' or '.', with "
            "no folder separators or control characters (the folder is --out)."
        )
    if len(text.encode("utf-8")) > 200:  # file systems allow 255 bytes per name; the suffixes and temporaries need some
        raise argparse.ArgumentTypeError(
            f"is {len(text.encode('utf-8'))} bytes long; file names are limited to 255 bytes and the outputs add "
            "'_00_00.png': give a prefix of at most 200 bytes."
        )
    return text


def _batch_size(text: str) -> int:
    from ..pipelines.sampling_options import check_batch_size

    return checked_type(int, check_batch_size, "an integer >= 1")(text)


def _sampling_type(name: str, convert=float):
    """An argparse ``type`` with the API's rule and message for option ``name`` (``pipelines.sampling_options``),
    the fix given as a flag (--greedy)."""
    from ..pipelines.sampling_options import CHECKS, RULES

    parse = checked_type(convert, CHECKS[name], RULES[name], name=name)

    def parse_for_the_shell(text: str):
        try:
            return parse(text)
        except argparse.ArgumentTypeError as error:
            raise argparse.ArgumentTypeError(in_flag_terms(str(error))) from None

    parse_for_the_shell.__name__ = name
    return parse_for_the_shell


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    # The same checks (and messages) as the API: the model's rules (nuwa_hf.models.nuwa.visual_generation_nuwa) and the
    # pipelines' seed rule (nuwa_hf.pipelines.sampling_options), with the fixes given as flags (--greedy).
    group = parser.add_argument_group("sampling")
    group.add_argument("--seed", type=_sampling_type("seed", int), default=0,
                       help="random seed (same seed, same output): input i of a batch (in the order given) is "
                            "sampled with seed + i, so a batch gives what separate commands with those seeds give")
    group.add_argument("--temperature", type=_sampling_type("temperature"), default=None,
                       help="sampling temperature, a finite number > 0")
    group.add_argument("--top-k", type=_sampling_type("top_k", int), default=None,
                       help="sample among the k likeliest codes (0 = no top-k filtering)")
    group.add_argument("--top-p", type=_sampling_type("top_p"), default=None, help="nucleus sampling mass, in (0, 1]")
    group.add_argument("--guidance-scale", type=_sampling_type("guidance_scale"), default=None,
                       help="classifier-free guidance scale, >= 1 (1 = off; > 1 follows the condition more closely)")
    group.add_argument("--negative-prompt", default=None, metavar="TEXT",
                       help="text tasks: what guidance steers away from instead of the empty prompt, e.g. 'a blue 3' "
                            "(needs guidance > 1; it can also take away what it shares with the prompt)")
    group.add_argument("--greedy", action="store_true", help="decode greedily instead of sampling")


# ----------------------------------------------------------------------------------------------------------------------
# The command


class GenerateCommand(NuwaCommand):
    name = "generate"
    help = "generate with one task and write PNG / GIF (/ MP4)"
    examples = (
        "examples:\n"
        "  nuwa-hf generate --task text-to-image --model M --prompt \"a red 7\" --num-samples 4 --out out/\n"
        "  nuwa-hf generate --task T2V --model M --prompt \"the digit 3 is moving up then down\" --num-frames 12 --out out/\n"
        "  nuwa-hf generate --task video-prediction --model M --video clip.gif --num-frames-to-predict 6 --out out/\n"
        "  nuwa-hf generate --task sketch-to-image --model M --sketch sketch.png --out out/\n"
        "  nuwa-hf generate --task image-completion --model M --image digit.png --mask \"bottom half\" --out out/\n"
        "  nuwa-hf generate --task TI2I --model M --image digit.png --prompt \"a blue 7\" --mask 0,0,16,16 --out out/"
    )

    @classmethod
    def describe(cls) -> str:
        return ("Generate with one NUWA task and write the results: PNG for images; GIF, a PNG strip of the frames "
                "and MP4 (when PyAV is installed) for videos. Prints the files written.\n\n" + task_help()
                + "\n\n" + _input_help())

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--task", required=True, help="task name (e.g. text-to-video) or paper code (e.g. T2V)")
        add_model_options(parser)
        inputs = parser.add_argument_group("inputs")
        inputs.add_argument("--prompt", action="append", default=None,
                            help="text condition; repeat for a batch (one output set per prompt)")
        inputs.add_argument("--image", action="append", default=None, help="image file; repeat for a batch")
        inputs.add_argument("--video", action="append", default=None,
                            help="video: GIF, MP4/AVI/WebM (PyAV), a folder of frames or a .npy (T, H, W, 3); repeat for a batch")
        inputs.add_argument("--sketch", action="append", default=None,
                            help="sketch: class-id PNG (mode L/P), .npy, or a picture painted in the class "
                                 "colours (PNG, JPEG); for sketch-to-video a .npy (T, H, W), a grey GIF (ids as grey "
                                 "levels; a palette GIF works when saved with optimize=False), a GIF painted in the "
                                 "class colours or a folder of maps; repeat for a batch")
        inputs.add_argument("--mask", default=None,
                            help="region to regenerate: shortcut, box l,t,r,b (fractions when all four are in [0, 1], else "
                                 "pixels), or mask image")
        options = parser.add_argument_group("generation")
        options.add_argument("--num-samples", type=positive_int, default=1, help="outputs per input")
        options.add_argument("--num-frames", type=positive_int, default=None,
                             help="video frames (T2V, TV2V); more than the model's trained length slides a window")
        options.add_argument("--num-condition-frames", type=positive_int, default=None,
                             help="V2V / TV2V: leading frames of --video kept as the condition")
        options.add_argument("--num-frames-to-predict", type=positive_int, default=None, help="V2V: frames to predict")
        options.add_argument("--num-candidates", type=positive_int, default=None,
                             help="rerank: generate this many candidates per output and keep the best by --scorer")
        options.add_argument("--scorer", default=None,
                             help="'likelihood' (the model's own log-likelihood of each candidate), "
                                  "'condition_gain' (that log-likelihood minus the one without the prompt or sketch; "
                                  "tasks with a condition only), 'attribute_posterior' (the model's posterior of "
                                  "the motion / digit / colour the prompt asks for against their other values; "
                                  "prompts naming one only) or the folder of a saved scorer with "
                                  "similarity(samples, texts) (e.g. a TextVisualDualEncoder)")
        options.add_argument("--batch-size", type=_batch_size, default=8, help="rows generated together")
        options.add_argument("--strict", action="store_true",
                             help="refuse prompts with words the model never saw in training or phrasings read in "
                                  "the captions' words (see --no-rephrase), inputs resized by more than 2x or cropped to the model's frame shape, video frames left unread and edits "
                                  "of the whole image "
                                  "(without it they are named in a warning on stderr)")
        options.add_argument("--keep-unknown-words", action="store_true",
                             help="give the model the prompt's words it never saw in training too (by default "
                                  "they are left out of what it reads, and named in a warning: their sub-word "
                                  "pieces would steer the output at random)")
        options.add_argument("--no-rephrase", action="store_true",
                             help="read the prompt as typed: by default common phrasings of a motion are read in "
                                  "the words of the training captions ('up and down' as 'up then down', 'side to "
                                  "side' as 'left then right', 'bouncing' as 'moving up then down'), and for TI2I an "
                                  "edit as the picture it asks for ('turn the 6 into an 8' as 'an 8'), and a warning "
                                  "says how the prompt was read")
        options.add_argument("--no-complete-instruction", action="store_true",
                             help="TI2I: read an instruction that names no digit or no colour as given: by default "
                                  "the model reads the picture ('a yellow 6') and edits with the instruction "
                                  "completed from it ('make it blue' as 'a blue 6'), and a warning says so; as given, "
                                  "the model may draw any digit / colour in the region")
        options.add_argument("--no-blank-region", action="store_true",
                             help="I2I: encode the picture as given, what lies under the region included (by default "
                                  "the region is blacked out first, so the completion depends on the known part "
                                  "alone)")
        options.add_argument("--regenerate-border", type=non_negative_int, default=None, metavar="N",
                             help="I2I: also regenerate N token rows / columns around the region (default 0: the "
                                  "region alone; 1 keeps the digit a little better but the known part's colour less); "
                                  "the input's pixels outside the region are pasted back all the same")
        options.add_argument("--no-keep-original-pixels", action="store_true",
                             help="editing tasks (I2I, TI2I, V2V, TV2V): return the VQ-GAN's reconstruction outside the "
                                  "region and in the given frames instead of the input's own pixels (pasted back with a "
                                  "2-pixel blended seam by default)")
        options.add_argument("--allow-large", action="store_true",
                             help="go past the work limits (frames: 4x the trained length; 64 candidates; 256 rows per "
                                  "input; the memory estimate; pictures of 4096 pixels a side) deliberately")
        _add_sampling_options(parser)
        outputs = parser.add_argument_group("outputs")
        outputs.add_argument("--out", required=True,
                             help="output folder (created; checked to be writable before anything is generated)")
        outputs.add_argument("--name", type=_file_name_prefix, default=None,
                             help="file name prefix (default: the task code, e.g. t2v)")
        outputs.add_argument("--overwrite", action="store_true",
                             help="replace files of an earlier run with the same names (never an input file)")
        outputs.add_argument("--fps", type=fps, default=4.0, help="frames per second of GIF / MP4 (0.01 to 240)")
        outputs.add_argument("--upscale", type=positive_int, default=1,
                             help="enlarge pictures by this factor (nearest; at most 4096 pixels a side)")
        outputs.add_argument("--no-mp4", action="store_true", help="do not write MP4 even when PyAV is installed")

    def run(self) -> int:
        """Generate input by input, writing each input's files as soon as they are made: Ctrl-C keeps what was written.

        Every check that can fail (inputs, options, output folder, work limits) runs before the first token is
        generated.
        """
        from ..media import mp4_available, save_result
        from ..pipelines.notices import worded_for
        from ..pipelines.randomness import input_seed
        from ..pipelines.work_limits import check_saved_size, max_frames_for

        args = self.args
        info = get_task_info(resolve_task(args.task))
        for flag, (task, why) in TASK_ONLY_FLAGS.items():
            given = getattr(args, flag, None)
            if given is not None and given is not False and info.name != task:  # (--regenerate-border 0 is given)
                raise CommandError(f"--task {info.name} does not take {_flag(flag)}: {why}.")
        apply_model_options(args)
        calls = [task_call(info, part) for part in split_inputs(info.name, args)]
        write_mp4 = info.makes_video and not args.no_mp4 and mp4_available()
        out = Path(args.out)
        prefix = args.name or info.code.lower()
        planned = planned_outputs(out, prefix, len(calls), args.num_samples, info.makes_video, write_mp4)
        prepare_output_folder(out, [path for files in planned for path in files], input_paths(args), args.overwrite)
        pipe = load_task_pipeline(info.name, args.model)
        pipe.set_progress_bar_config(disable=args.quiet)
        height, width = output_size(pipe.image_processor)
        try:
            # Frames past the work limit are the pipeline's to refuse (with its message); the strip is sized within it.
            frames = info.output_frames(pipe.max_frames, args.num_frames, args.num_condition_frames,
                                        args.num_frames_to_predict)
            check_saved_size(width, height, args.upscale, min(frames, max_frames_for(pipe.max_frames)), args.allow_large)
        except ValueError as error:
            raise CommandError(str(error).replace("upscale=", "--upscale ").replace(
                "allow_large=True (command line: --allow-large)", "--allow-large"))
        options = generation_options(args)
        started = time.perf_counter()
        written: list[Path] = []
        try:
            with worded_for(_cli_wording()):  # unknown-word messages name this command's flag
                for index, (positional, kwargs) in enumerate(calls):
                    # input `index` of the command's batch gets seed + index, as pipe([...], seed=seed) gives it
                    seeded = ({**options, "seed": input_seed(options["seed"], index)}
                              if options.get("seed") is not None else options)
                    result = pipe(*positional, **kwargs, **seeded)
                    samples = result if args.num_samples > 1 else [result]
                    for sample_index, sample in enumerate(samples):
                        stem = out / f"{prefix}_{index:02d}_{sample_index:02d}"
                        files = save_result(sample, stem, info.makes_video, fps=args.fps, upscale=args.upscale,
                                            write_mp4=write_mp4)
                        written += files
                        for path in files:
                            print(path, flush=True)
        except KeyboardInterrupt:
            print(f"nuwa-hf: interrupted: {len(written)} complete file(s) of {sum(len(f) for f in planned)} were "
                  f"written to {out} (listed above); nothing half-written is left.", file=sys.stderr)
            return EXIT_INTERRUPTED
        note = "" if not info.makes_video or args.no_mp4 or write_mp4 else " (no MP4: install PyAV with pip install av)"
        print(f"wrote {len(written)} file(s) for {len(calls) * args.num_samples} output(s) of {info.name} to {out} in "
              f"{time.perf_counter() - started:.1f} s{note}", file=sys.stderr)
        return EXIT_OK


# ----------------------------------------------------------------------------------------------------------------------
# From the command line to pipeline calls


def parse_mask(text: Optional[str]):
    """--mask: a mask file, a box "left,top,right,bottom" or a shortcut, read by the same parser as the Python API's
    mask= text (nuwa_hf.pipelines.regions.parse_region_text: all four in [0, 1] -> fractions, else pixels)."""
    from ..pipelines.regions import parse_region_text

    if text is None:
        return None
    if os.path.exists(text):
        return text
    try:
        region = parse_region_text(text)
    except ValueError as error:
        raise CommandError(f"--mask {text!r}: {error}") from None
    image_suffixes = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".npy", ".webp")
    if isinstance(region, str) and Path(text).suffix.lower() in image_suffixes:
        raise CommandError(f"--mask {text!r}: the mask file does not exist.")
    return region


def generation_options(args) -> dict:
    """The pipeline call's options from the sampling and generation flags."""
    options = {"seed": args.seed, "batch_size": args.batch_size}
    for key in ("temperature", "top_k", "top_p", "guidance_scale", "num_candidates"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.scorer:
        options["scorer"] = args.scorer
    if getattr(args, "negative_prompt", None) is not None:
        options["negative_prompt"] = args.negative_prompt
    if getattr(args, "regenerate_border", None) is not None:
        options["regenerate_border"] = args.regenerate_border
    flags = {"greedy": ("do_sample", False), "allow_large": ("allow_large", True),
             "no_keep_original_pixels": ("keep_original_pixels", False), "strict": ("strict", True),
             "keep_unknown_words": ("drop_unknown_words", False), "no_rephrase": ("rephrase_prompt", False),
             "no_complete_instruction": ("complete_instruction", False), "no_blank_region": ("blank_region", False)}
    options.update(dict(option for flag, option in flags.items() if getattr(args, flag)))
    return {k: v for k, v in options.items() if v is not None}


def task_call(info, args) -> tuple[tuple, dict]:
    """Positional and keyword arguments of the task pipeline for one input of the batch, read off the task table
    (``info``): the table's inputs are the pipeline's positional arguments (a video input also takes --image as its
    first frame), its optional inputs become keywords, its frame options the --num-* keywords; a flag the task does
    not take is an error."""
    taken = info.inputs + info.optional_inputs
    values = {"prompt": args.prompt, "image": args.image, "video": args.video, "sketch": args.sketch,
              "mask": parse_mask(args.mask)}
    if info.takes_image_as_video and not values["video"]:
        values["video"], values["image"] = values["image"], None  # an image is a one-frame video
    wanted_flags = {front_end_name(name) for name in taken}
    extra = [f"--{flag}" for flag, value in values.items() if value and flag not in wanted_flags]
    extra += [_flag(name) for name in FRAME_OPTIONS if getattr(args, name) is not None and name not in info.frame_options]
    if extra:
        raise CommandError(f"--task {info.name} does not take {', '.join(extra)}.")

    def value_of(name):
        given = values[front_end_name(name)]
        if isinstance(given, list):
            return given[0] if len(given) == 1 else given
        return given

    positional = []
    for name in info.inputs:
        if not values[front_end_name(name)]:
            flag = _flag(front_end_name(name)) + (" (or --image)" if name == "video" and info.takes_image_as_video else "")
            raise CommandError(f"--task {info.name} needs {flag} ({_INPUT_HELP[name]}).")
        positional.append(value_of(name))
    kwargs = {name: value_of(name) for name in info.optional_inputs if values[front_end_name(name)]}
    kwargs.update({name: getattr(args, name) for name in info.frame_options if getattr(args, name) is not None})
    kwargs["num_outputs_per_input"] = args.num_samples
    return tuple(positional), kwargs


def split_inputs(task: str, args) -> list[argparse.Namespace]:
    """One copy of ``args`` per input of the batch, each with at most one --prompt / --image / --video / --sketch.

    A flag given once applies to every input (e.g. one --video with two --prompt for TV2V); flags given several times
    must be given the same number of times.
    """
    counts = {flag: len(getattr(args, flag)) for flag in INPUT_FLAGS if getattr(args, flag)}
    repeated = {flag: count for flag, count in counts.items() if count > 1}
    if len(set(repeated.values())) > 1:
        given = ", ".join(f"{count} --{flag}" for flag, count in repeated.items())
        raise CommandError(f"--task {task}: got {given}; repeat each input flag once per input, or give it once.")
    for flag in INPUT_FLAGS[1:]:
        for value in getattr(args, flag) or []:
            if not os.path.exists(value):
                raise CommandError(f"--{flag} {value!r}: the {flag} file {value!r} does not exist; check the path.")
    total = max(counts.values(), default=1)
    parts = []
    for index in range(total):
        part = argparse.Namespace(**vars(args))
        for flag in counts:
            values = getattr(args, flag)
            setattr(part, flag, [values[index if len(values) > 1 else 0]])
        parts.append(part)
    return parts


# ----------------------------------------------------------------------------------------------------------------------
# The output folder


def input_paths(args) -> list[Path]:
    """Files and folders the command reads: inputs, mask, model folder, scorer."""
    paths = [value for flag in INPUT_FLAGS[1:] for value in (getattr(args, flag) or [])]
    paths += [value for value in (args.mask, args.model, args.scorer) if value]
    return [Path(p) for p in paths if os.path.exists(p)]


def planned_outputs(out: Path, prefix: str, inputs: int, samples: int, is_video: bool, mp4: bool) -> list[list[Path]]:
    """The files each input will get, by the names the command writes (``<prefix>_<input>_<sample>.<ext>``)."""
    suffixes = (".gif", ".png") + ((".mp4",) if mp4 else ()) if is_video else (".png",)
    return [[out / f"{prefix}_{i:02d}_{j:02d}{suffix}" for j in range(samples) for suffix in suffixes]
            for i in range(inputs)]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def prepare_output_folder(out: Path, planned: list[Path], inputs: list[Path], overwrite: bool) -> None:
    """Check (and create) the output folder before anything is generated.

    Raises :class:`CommandError` when ``out`` is a file or lies under one, cannot be created or written, is one of the
    input folders, or when a file to be written exists (without ``--overwrite``) or is an input (always).
    """
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {str(out)!r} is a file, not a folder: give a folder for the outputs.")
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise CommandError(f"--out {str(out)!r} lies under {str(ancestor)!r}, which is a file: choose another folder.")
    for source in inputs:
        if source.is_dir() and _same_file(source, out):
            raise CommandError(
                f"--out {str(out)!r} is the input folder {str(source)!r}: the outputs would mix with what the command "
                "reads. Choose another --out."
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".nuwa-hf-write-check-"):
            pass
    except OSError as error:
        raise CommandError(f"--out {str(out)!r} cannot be created or written ({error.strerror or error}): choose "
                           "a writable folder.") from None
    for path in planned:
        if any(_same_file(path, source) for source in inputs):
            raise CommandError(
                f"{str(path)!r} would be written over an input of this command: choose another --out or --name "
                "(inputs are never overwritten, even with --overwrite)."
            )
    if any(path.is_dir() for path in planned):
        folder = next(path for path in planned if path.is_dir())
        raise CommandError(f"{str(folder)!r} is a folder where an output file would go: choose another --out or --name.")
    existing = [path for path in planned if path.exists()]
    if existing and not overwrite:
        shown = ", ".join(repr(str(p)) for p in existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise CommandError(
            f"{len(existing)} output file(s) exist already: {shown}. Pass --overwrite to replace them, or choose another "
            "--out or --name."
        )
