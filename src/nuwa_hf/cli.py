"""The ``nuwa-hf`` command: generate with any of NUWA's eight tasks, run them all (demo), evaluate, train, push.

    nuwa-hf generate --task text-to-video --model checkpoints/nuwa-tiny --prompt "the digit 3 is moving up then down" --out out/
    nuwa-hf demo --model checkpoints/nuwa-tiny --out outputs/demo
    nuwa-hf evaluate --task T2I --model checkpoints/nuwa-tiny --num-samples 64 --out outputs/eval
    nuwa-hf train ...                      (the options of nuwa_hf.training; see nuwa-hf train --help)
    nuwa-hf push checkpoints/nuwa-tiny my-org/nuwa-tiny [--remote-code my-org/nuwa-hf-code]
    nuwa-hf push-code my-org/nuwa-hf-code  (the remote code of this version, for users without nuwa-hf)

Set NUWA_HF_DEBUG=1 to see the traceback behind an input error. Exit codes: 0 success; 1 unexpected error (a bug: the traceback is printed); 2 bad command line or bad input; 3 the
model folder is incomplete or unreadable; 4 an optional part is not installed; 5 the Hub refused or could not be
reached; 6 some demo tasks failed (the others were written); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Optional, Sequence

from .file_io import WriteSpaceError

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_MISSING_DEPENDENCY = 4
EXIT_HUB = 5
EXIT_PARTIAL = 6
EXIT_NO_SPACE = 7
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """exit codes:
  0    success
  1    unexpected error (a bug; the traceback is printed)
  2    bad command line or bad input (the message says what to change)
  3    the model folder is incomplete or unreadable (e.g. no processor files, a model without its VQ-GAN)
  4    an optional part is not installed (e.g. the training code, PyAV for MP4)
  5    the Hub refused the request or could not be reached
  6    demo: some tasks failed (the others were written)
  7    the disk is full (or the file-size limit): the message names the folder and the space needed; nothing
       half-written is left
  130  interrupted"""

TASK_HELP = """tasks (name or paper code):
  text-to-image        T2I   --prompt
  text-to-video        T2V   --prompt [--num-frames]
  video-prediction     V2V   --video (or --image: one first frame) [--num-condition-frames] [--num-frames-to-predict]
  sketch-to-image      S2I   --sketch (PNG in mode L/P with class ids, or .npy)
  image-completion     I2I   --image [--mask "bottom half"] [--prompt]
  image-manipulation   TI2I  --image --prompt --mask
  sketch-to-video      S2V   --sketch (.npy (T, H, W), GIF in mode P, or a folder of maps)
  video-manipulation   TV2V  --video (or --image) --prompt [--num-condition-frames] [--num-frames]"""


def _input_help() -> str:
    """The inputs' paragraphs of ``generate --help``, from the code that reads them: the sketch class ids
    (nuwa_hf.data.SCENE_CLASSES) and the regions --mask takes (nuwa_hf.pipelines.regions, the parser the Python API
    uses too)."""
    import textwrap

    from .data.scene_rendering import SCENE_CLASSES, sketch_class_legend
    from .pipelines.regions import BOX_RULE, REGION_SHORTCUTS

    def fill(text: str) -> str:
        return textwrap.fill(text, width=110, break_on_hyphens=False).replace("\0", " ")

    def unbroken(text: str) -> str:  # kept on one line by fill
        return text.replace(" ", "\0")

    shortcuts = ", ".join(unbroken(f'"{name}"') for name in REGION_SHORTCUTS)
    classes = ", ".join(unbroken(item) for item in sketch_class_legend().split(", "))
    sketch = fill(f"--sketch maps hold one class id per pixel (the scene world's classes): {classes}. A PNG stores the "
                  f"ids as gray levels 0-{len(SCENE_CLASSES) - 1} (mode L) or palette indices (mode P); a .npy holds "
                  "them as integers.")
    mask = fill(f"--mask takes a shortcut ({shortcuts}); {BOX_RULE}; or a mask image (white = regenerate). "
                "Python's mask= takes the same text.")
    return sketch + "\n\n" + mask + _shipped_vocabulary_help(fill)


def _shipped_vocabulary_help(fill) -> str:
    """The prompt words the shipped checkpoint knows, read from its tokenizer (when this is a checkout that has it)."""
    folder = Path(__file__).resolve().parents[2] / "checkpoints" / "nuwa-tiny"
    if not (folder / "tokenizer.json").is_file():
        return ""
    try:
        from tokenizers import Tokenizer

        from .processing.vocabulary import vocabulary_by_kind

        kinds = vocabulary_by_kind(Tokenizer.from_file(str(folder / "tokenizer.json")))
    except Exception:  # a damaged folder must not break --help; loading it names the problem
        return ""
    lines = "; ".join(f"{kind}: {', '.join(items)}" for kind, items in kinds.items() if items)
    return "\n\n" + fill(f"Prompts: the shipped checkpoint ({folder.parent.name}/{folder.name}) knows these words ({lines}); "
                        "others do not steer it and are named in a warning. Another model's words: "
                        "nuwa_hf.processing.vocabulary.vocabulary_text(processor.tokenizer).")


class CommandError(Exception):
    """A failure with its exit code and a message for the user."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and shows a default only where there is one worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _number_type(convert, accepts, wanted: str):
    """An argparse ``type``: ``convert(text)`` that ``accepts``, else an error that says what was ``wanted``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


_positive_int = _number_type(int, lambda value: value >= 1, "a positive integer")
_non_negative_int = _number_type(int, lambda value: value >= 0, "an integer >= 0")
_positive_float = _number_type(float, lambda value: value > 0, "a positive number")  # NaN is refused too


def _checked_type(convert, check, wanted: str):
    """An argparse ``type`` that converts the text and applies ``check`` (the library's own rule and message)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        try:
            return check(value)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error).rstrip(".")) from None

    return parse


def _file_name_prefix(text: str) -> str:
    """--name: a plain file name prefix (no folders, no control characters), since it names files in --out."""
    bad = [c for c in text if c in "/\\" or ord(c) < 32 or ord(c) == 127]
    if not text.strip() or bad or text in (".", "..") or text.startswith("-"):
        shown = ", ".join(sorted({repr(c) for c in bad})) or repr(text)
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a file name prefix ({shown} not allowed): give letters, digits, '-', '_' or '.', with "
            "no folder separators or control characters (the folder is --out)."
        )
    return text


def _fps(text: str) -> float:
    from .media import check_fps

    return _checked_type(float, check_fps, "a number of frames per second")(text)


def _batch_size(text: str) -> int:
    from .pipelines.sampling_options import check_batch_size

    return _checked_type(int, check_batch_size, "an integer >= 1")(text)


# ----------------------------------------------------------------------------------------------------------------------
# The parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nuwa-hf",
        description="NUWA (Microsoft, 2021) on the Hugging Face stack: generate images and videos from text, sketches "
                    "or partial images/videos with a NUWA model folder.",
        epilog="examples:\n"
               "  nuwa-hf generate --task T2V --model checkpoints/nuwa-tiny --prompt \"the digit 3 is moving up then down\" --out out/\n"
               "  nuwa-hf demo --model checkpoints/nuwa-tiny --out outputs/demo\n"
               "  nuwa-hf evaluate --task T2I --model checkpoints/nuwa-tiny --num-samples 64 --out outputs/eval\n"
               "  nuwa-hf push checkpoints/nuwa-tiny my-org/nuwa-tiny\n\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"nuwa-hf {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_generate(commands)
    _add_demo(commands)
    _add_evaluate(commands)
    commands.add_parser("train", help="train NUWA (forwards every option to nuwa_hf.training; see nuwa-hf train --help)",
                        add_help=False)
    _add_push(commands)
    _add_push_code(commands)
    return parser


def _add_common_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a NUWA model folder (config, weights with the VQ-GANs, processor files) or Hub repo id")
    parser.add_argument("--threads", type=_positive_int, default=1,
                        help="CPU threads for torch. Tiny models run fastest on one: on a busy 2-core machine two "
                             "OpenMP threads made the demo 20x slower. Raise it for large models on idle cores")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


# The library's messages name Python arguments; on the command line each fix is a flag. (python text, shell text)
PYTHON_TO_FLAGS = (
    ("use do_sample=False for greedy decoding", "use --greedy for greedy decoding"),
    ("do_sample=False", "--greedy"),
)


def in_flag_terms(message: str) -> str:
    """A library message as a shell user needs it: the Python arguments it names as the command's flags."""
    for python, shell in PYTHON_TO_FLAGS:
        message = message.replace(python, shell)
    return message


def _argparse_type(name: str, convert=float):
    """``sampling_options.argparse_type`` (the API's rule and message) with the fix given as a flag (--greedy)."""
    from .pipelines.sampling_options import argparse_type

    parse = argparse_type(name, convert)

    def parse_for_the_shell(text: str):
        try:
            return parse(text)
        except argparse.ArgumentTypeError as error:
            raise argparse.ArgumentTypeError(in_flag_terms(str(error))) from None

    parse_for_the_shell.__name__ = name
    return parse_for_the_shell


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    # The same checks (and messages) as the pipelines' API: nuwa_hf.pipelines.sampling_options, with the fixes given as
    # flags (--greedy, not do_sample=False).
    argparse_type = _argparse_type

    group = parser.add_argument_group("sampling")
    group.add_argument("--seed", type=argparse_type("seed", int), default=0,
                       help="random seed (same seed, same output): input i of a batch (in the order given) is "
                            "sampled with seed + i, so a batch gives what separate commands with those seeds give")
    group.add_argument("--temperature", type=argparse_type("temperature"), default=None,
                       help="sampling temperature, a finite number > 0")
    group.add_argument("--top-k", type=argparse_type("top_k", int), default=None,
                       help="sample among the k likeliest codes (0 = no top-k filtering)")
    group.add_argument("--top-p", type=argparse_type("top_p"), default=None, help="nucleus sampling mass, in (0, 1]")
    group.add_argument("--guidance-scale", type=argparse_type("guidance_scale"), default=None,
                       help="classifier-free guidance scale, >= 1 (1 = off; > 1 follows the condition more closely)")
    group.add_argument("--greedy", action="store_true", help="decode greedily instead of sampling")


def _add_generate(commands) -> None:
    parser = commands.add_parser(
        "generate", help="generate with one task and write PNG / GIF (/ MP4)", formatter_class=_Formatter,
        description="Generate with one NUWA task and write the results: PNG for images; GIF, a PNG strip of the frames "
                    "and MP4 (when PyAV is installed) for videos. Prints the files written.\n\n" + TASK_HELP
                    + "\n\n" + _input_help(),
        epilog="examples:\n"
               "  nuwa-hf generate --task text-to-image --model M --prompt \"a red 7\" --num-samples 4 --out out/\n"
               "  nuwa-hf generate --task T2V --model M --prompt \"the digit 3 is moving up then down\" --num-frames 12 --out out/\n"
               "  nuwa-hf generate --task video-prediction --model M --video clip.gif --num-frames-to-predict 6 --out out/\n"
               "  nuwa-hf generate --task sketch-to-image --model M --sketch sketch.png --out out/\n"
               "  nuwa-hf generate --task image-completion --model M --image digit.png --mask \"bottom half\" --out out/\n"
               "  nuwa-hf generate --task TI2I --model M --image scene.png --prompt \"a red circle\" --mask 0,0,16,16 --out out/\n\n"
               + EXIT_CODES_HELP,
    )
    parser.add_argument("--task", required=True, help="task name (e.g. text-to-video) or paper code (e.g. T2V)")
    _add_common_model_options(parser)
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--prompt", action="append", default=None,
                        help="text condition; repeat for a batch (one output set per prompt)")
    inputs.add_argument("--image", action="append", default=None, help="image file; repeat for a batch")
    inputs.add_argument("--video", action="append", default=None,
                        help="video: GIF, MP4/AVI/WebM (PyAV), a folder of frames or a .npy (T, H, W, 3); repeat for a batch")
    inputs.add_argument("--sketch", action="append", default=None,
                        help="sketch: class-id PNG (mode L/P) or .npy; for sketch-to-video a .npy (T, H, W), a GIF in "
                             "mode P or a folder of maps; repeat for a batch")
    inputs.add_argument("--mask", default=None,
                        help="region to regenerate: shortcut, box l,t,r,b (fractions when all four are in [0, 1], else "
                             "pixels), or mask image")
    options = parser.add_argument_group("generation")
    options.add_argument("--num-samples", type=_positive_int, default=1, help="outputs per input")
    options.add_argument("--num-frames", type=_positive_int, default=None,
                         help="video frames (T2V, TV2V); more than the model's trained length slides a window")
    options.add_argument("--num-condition-frames", type=_positive_int, default=None,
                         help="V2V / TV2V: leading frames of --video kept as the condition")
    options.add_argument("--num-frames-to-predict", type=_positive_int, default=None, help="V2V: frames to predict")
    options.add_argument("--num-candidates", type=_positive_int, default=None,
                         help="rerank: generate this many candidates per output and keep the best by --scorer")
    options.add_argument("--scorer", default=None,
                         help="folder of a saved scorer with similarity(samples, texts) (e.g. a TextVisualDualEncoder)")
    options.add_argument("--batch-size", type=_batch_size, default=8, help="rows generated together")
    options.add_argument("--strict", action="store_true",
                         help="refuse prompts with words the model never saw in training and inputs resized by more "
                              "than 2x (without it they are named in a warning on stderr)")
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
    outputs.add_argument("--name", type=_file_name_prefix, default=None, help="file name prefix (default: the task code, e.g. t2v)")
    outputs.add_argument("--overwrite", action="store_true",
                         help="replace files of an earlier run with the same names (never an input file)")
    outputs.add_argument("--fps", type=_fps, default=4.0, help="frames per second of GIF / MP4 (0.01 to 240)")
    outputs.add_argument("--upscale", type=_positive_int, default=1,
                         help="enlarge pictures by this factor (nearest; at most 4096 pixels a side)")
    outputs.add_argument("--no-mp4", action="store_true", help="do not write MP4 even when PyAV is installed")


def _add_demo(commands) -> None:
    parser = commands.add_parser(
        "demo", help="run all eight tasks on built-in inputs; write PNG / GIF and index.html", formatter_class=_Formatter,
        description="Run the eight tasks with a model folder on held-out inputs of the built-in worlds (captions, first "
                    "frames, sketches, images) and write inputs, outputs and an index.html page that links them.",
        epilog="example:\n  nuwa-hf demo --model checkpoints/nuwa-tiny --out outputs/demo\n\n" + EXIT_CODES_HELP,
    )
    _add_common_model_options(parser)
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--tasks", nargs="+", default=None, help="a subset of tasks (names or codes); default all eight")
    parser.add_argument("--num-examples", type=_positive_int, default=2, help="examples per task")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed")
    parser.add_argument("--split", default="test", help="world split the inputs come from")
    parser.add_argument("--fps", type=_fps, default=4.0, help="frames per second of the GIFs (0.01 to 240)")
    parser.add_argument("--upscale", type=_positive_int, default=4, help="enlarge pictures by this factor (nearest)")
    parser.add_argument("--mp4", action="store_true", help="also write MP4 (needs PyAV)")
    parser.add_argument("--digit-reader", default=None, metavar="FOLDER",
                        help="MNIST digit classifier the page reads outputs with (e.g. checkpoints/mnist-digit-reader; "
                             "default: the one in the cache, if any; train one with python "
                             "examples/train_scorers.py digit-reader)")


def _add_evaluate(commands) -> None:
    parser = commands.add_parser(
        "evaluate", help="generate on a held-out split and write the task's metric table", formatter_class=_Formatter,
        description="Generate with one task on the held-out split of its built-in world, compute the task's metrics "
                    "(nuwa_hf.evaluation.task_evaluation), print the table and write it as JSON and Markdown.",
        epilog="examples:\n"
               "  nuwa-hf evaluate --task T2V --model checkpoints/nuwa-tiny --num-samples 64 --out outputs/eval\n"
               "  nuwa-hf evaluate --task I2I --model M --num-samples 16 --scorers none --image-features pixels --out e/\n\n"
               "scorers: cached (the project's trained scorers when cached, else none; train them with\n"
               "python examples/train_scorers.py default --visual video), none, a folder with digit_classifier/\n"
               "motion_classifier/ video_features/ text_visual/, or one saved scorer's folder, used for what it\n"
               "reads: --scorers checkpoints/mnist-digit-reader is the digit scorer (digit accuracy and the IS-style\n"
               "score for T2I).\n\n"
               + EXIT_CODES_HELP,
    )
    parser.add_argument("--task", required=True, help="task name or paper code")
    _add_common_model_options(parser)
    parser.add_argument("--out", required=True, help="folder for <task>_metrics.json and <task>_metrics.md")
    parser.add_argument("--num-samples", type=_positive_int, default=32, help="held-out examples to generate")
    parser.add_argument("--split", default="test", help="world split (test, test_held_out, validation)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (data and sampling)")
    parser.add_argument("--scorers", default="cached",
                        help="cached | none | a folder of saved scorers | one scorer's folder "
                             "(e.g. checkpoints/mnist-digit-reader)")
    parser.add_argument("--image-features", choices=("inception", "pixels"), default="inception",
                        help="FID/KID features: the real FID Inception, or cheap pixel features for smoke runs")
    parser.add_argument("--batch-size", type=_positive_int, default=8, help="examples generated together")


def _add_push(commands) -> None:
    parser = commands.add_parser(
        "push", help="upload a model folder to a Hub repository", formatter_class=_Formatter,
        description="Upload a NUWA model folder (config, safetensors weights with the VQ-GANs, processor, README.md) "
                    "to a Hugging Face Hub model repository in one commit, creating the repository if needed. The "
                    "folder is checked first and the upload verified afterwards (nuwa_hf.hub.push_model_folder).",
        epilog="examples:\n  nuwa-hf push checkpoints/nuwa-tiny my-org/nuwa-tiny\n"
               "  HF_ENDPOINT=http://127.0.0.1:8080 nuwa-hf push checkpoints/nuwa-tiny me/test --private\n\n"
               + EXIT_CODES_HELP,
    )
    parser.add_argument("folder", help="the model folder")
    parser.add_argument("repo_id", help="the Hub repository, e.g. my-org/nuwa-tiny")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", default=None, help="branch to push to (default: main)")
    parser.add_argument("--commit-message", default="Upload NUWA model folder with nuwa-hf push", help="commit message")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")
    parser.add_argument("--delete-stale", action="store_true",
                        help="also delete files of the repository that are not in the folder (same commit)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip checking, after the upload, that every file arrived with its size and hash")
    parser.add_argument("--remote-code", default=None, metavar="CODE_REPO",
                        help="a code repository published with `nuwa-hf push-code`: the uploaded config.json and "
                             "processor_config.json name its classes, so the model also loads with "
                             "trust_remote_code=True where nuwa-hf is not installed (the folder is not changed)")


def _add_push_code(commands) -> None:
    parser = commands.add_parser(
        "push-code", help="publish this version's remote code to a code repository", formatter_class=_Formatter,
        description="Build the remote code of the installed nuwa-hf (its model, processor and pipeline modules, "
                    "imports rewritten for transformers' remote-code loader) and upload it to a Hub code repository, "
                    "in a folder named after the version (nuwa_hf.hub.push_code). Model repositories point at it with "
                    "`nuwa-hf push FOLDER REPO --remote-code CODE_REPO`.",
        epilog="examples:\n  nuwa-hf push-code my-org/nuwa-hf-code\n\n" + EXIT_CODES_HELP,
    )
    parser.add_argument("repo_id", help="the code repository, e.g. my-org/nuwa-hf-code")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)")


# ----------------------------------------------------------------------------------------------------------------------
# Commands


def _set_threads(args) -> None:
    """--threads, and --quiet also silences transformers' and datasets' own progress bars."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    if getattr(args, "quiet", False):
        import transformers

        transformers.utils.logging.disable_progress_bar()
        # datasets reads this when it is imported (it is left out until a command needs it, and may not be installed)
        os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
        if sys.modules.get("datasets") is not None:
            sys.modules["datasets"].disable_progress_bars()


def _parse_mask(text: Optional[str]):
    """--mask: a mask file, a box "left,top,right,bottom" or a shortcut, read by the same parser as the Python API's
    mask= text (nuwa_hf.pipelines.regions.parse_region_text: all four in [0, 1] -> fractions, else pixels)."""
    from .pipelines.regions import parse_region_text

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


def _generation_options(args) -> dict:
    options = {"seed": args.seed, "batch_size": getattr(args, "batch_size", None)}
    for key in ("temperature", "top_k", "top_p", "guidance_scale", "num_candidates"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    if getattr(args, "greedy", False):
        options["do_sample"] = False
    if getattr(args, "scorer", None):
        options["scorer"] = args.scorer
    return {k: v for k, v in options.items() if v is not None}


# The command line's flag for each pipeline input of the task table (nuwa_hf.tasks), and what it asks for.
_INPUT_FLAG = {"prompt": "prompt", "image": "image", "video": "video", "sketch": "sketch", "sketch_video": "sketch",
               "mask": "mask"}
_INPUT_HELP = {"prompt": "the caption", "image": "the image", "video": "the given frame(s)", "sketch": "a class-id map",
               "sketch_video": "class-id maps per frame", "mask": "the region to change, e.g. \"bottom half\""}
# Frame options of the command line; a task takes those its pipeline lists in request_options.
_FRAME_OPTIONS = ("num_frames", "num_condition_frames", "num_frames_to_predict")


def _task_call(task: str, args) -> tuple[tuple, dict]:
    """Positional and keyword arguments of the task pipeline from the command line, read off the task table: the
    table's inputs are the pipeline's positional arguments (a video input also takes --image as its first frame),
    its optional inputs become keywords, and a flag the task does not take is an error."""
    from .pipelines import PIPELINE_CLASSES
    from .tasks import get_task_info

    info = get_task_info(task)
    taken = info.inputs + info.optional_inputs
    values = {"prompt": args.prompt, "image": args.image, "video": args.video, "sketch": args.sketch,
              "mask": _parse_mask(args.mask)}
    if "video" in taken and "image" not in taken and not values["video"]:
        values["video"], values["image"] = values["image"], None  # an image is a one-frame video
    wanted_flags = {_INPUT_FLAG[name] for name in taken}
    extra = [f"--{flag}" for flag, value in values.items() if value and flag not in wanted_flags]
    options = PIPELINE_CLASSES[task].request_options
    extra += [f"--{name.replace('_', '-')}" for name in _FRAME_OPTIONS
              if getattr(args, name, None) is not None and name not in options]
    if extra:
        raise CommandError(f"--task {task} does not take {', '.join(extra)}.")

    def value_of(name):
        given = values[_INPUT_FLAG[name]]
        if isinstance(given, list):
            return given[0] if len(given) == 1 else given
        return given

    positional = []
    for name in info.inputs:
        if not values[_INPUT_FLAG[name]]:
            flag = f"--{_INPUT_FLAG[name]}" + (" (or --image)" if name == "video" else "")
            raise CommandError(f"--task {task} needs {flag} ({_INPUT_HELP[name]}).")
        positional.append(value_of(name))
    kwargs = {name: value_of(name) for name in info.optional_inputs if values[_INPUT_FLAG[name]]}
    kwargs.update({name: getattr(args, name) for name in options if getattr(args, name, None) is not None})
    kwargs["num_outputs_per_input"] = args.num_samples
    return tuple(positional), kwargs


def _flatten_outputs(result, batched: bool, num_samples: int) -> list[tuple[int, int, object]]:
    """Pipeline output -> [(input index, sample index, image or frame list)]."""
    per_input = result if batched else [result]
    flat = []
    for input_index, item in enumerate(per_input):
        samples = item if num_samples > 1 else [item]
        for sample_index, sample in enumerate(samples):
            flat.append((input_index, sample_index, sample))
    return flat


INPUT_FLAGS = ("prompt", "image", "video", "sketch")


def _split_inputs(task: str, args) -> list[argparse.Namespace]:
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


def _input_paths(args) -> list[Path]:
    """Files and folders the command reads: inputs, mask, model folder, scorer."""
    paths = [value for flag in INPUT_FLAGS if flag != "prompt" for value in (getattr(args, flag) or [])]
    paths += [value for value in (args.mask, args.model, args.scorer) if value]
    return [Path(p) for p in paths if os.path.exists(p)]


def _planned_outputs(out: Path, prefix: str, inputs: int, samples: int, is_video: bool, mp4: bool) -> list[list[Path]]:
    """The files each input will get, by the names command_generate writes (``<prefix>_<input>_<sample>.<ext>``)."""
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


def _output_frames(task: str, args, trained_frames: int) -> int:
    """Frames of a video output (for the size of the strip picture), 1 for images."""
    if task in ("nuwa-text-to-video", "nuwa-video-manipulation"):
        return args.num_frames or trained_frames
    if task == "nuwa-video-prediction":
        return (args.num_condition_frames or trained_frames) + (args.num_frames_to_predict or trained_frames)
    if task == "nuwa-sketch-to-video":
        return trained_frames
    return 1


def _output_size(image_processor) -> tuple[int, int]:
    """(height, width) of the pictures a model makes: its image processor's crop size."""
    crop = image_processor.crop_size
    height = getattr(crop, "height", None) or crop["height"]
    width = getattr(crop, "width", None) or crop["width"]
    return int(height), int(width)


def command_generate(args) -> int:
    """Generate input by input, writing each input's files as soon as they are made: Ctrl-C keeps what was written.

    Every check that can fail (inputs, options, output folder, work limits) runs before the first token is generated.
    """
    from .media import mp4_available
    from .pipelines import PIPELINE_CLASSES, resolve_task_name
    from .pipelines.pipeline_base import TASK_CODE_OF
    from .media import save_result
    from .pipelines.work_limits import check_saved_size, max_frames_for

    try:
        task = resolve_task_name(args.task)
    except ValueError as error:
        raise CommandError(str(error)) from None
    _set_threads(args)
    parts = _split_inputs(task, args)
    calls = [_task_call(task, part) for part in parts]
    is_video = PIPELINE_CLASSES[task].makes_video
    write_mp4 = is_video and not args.no_mp4 and mp4_available()
    out = Path(args.out)
    prefix = args.name or TASK_CODE_OF[task].lower()
    planned = _planned_outputs(out, prefix, len(calls), args.num_samples, is_video, write_mp4)
    prepare_output_folder(out, [path for files in planned for path in files], _input_paths(args), args.overwrite)
    pipe = _load(task, args.model)
    pipe.set_progress_bar_config(disable=args.quiet)
    height, width = _output_size(pipe.image_processor)
    try:
        # Frames past the work limit are the pipeline's to refuse (with its message); the strip is sized within it.
        frames = min(_output_frames(task, args, pipe.max_frames), max_frames_for(pipe.max_frames))
        check_saved_size(width, height, args.upscale, frames, args.allow_large)
    except ValueError as error:
        raise CommandError(str(error).replace("upscale=", "--upscale ").replace("allow_large=True (command line: "
                                                                                "--allow-large)", "--allow-large"))
    options = _generation_options(args)
    if args.allow_large:
        options["allow_large"] = True
    if args.no_keep_original_pixels:
        options["keep_original_pixels"] = False
    if args.strict:
        options["strict"] = True
    started = time.perf_counter()
    written: list[Path] = []
    try:
        for index, (positional, kwargs) in enumerate(calls):
            kwargs = {k: v for k, v in kwargs.items() if v is not None}
            # input `index` of the command's batch gets seed + index, as pipe([...], seed=seed) gives it in Python
            from .pipelines.randomness import input_seed

            seeded = {**options, "seed": input_seed(options["seed"], index)} if options.get("seed") is not None else options
            result = pipe(*positional, **kwargs, **seeded)
            for _, sample_index, sample in _flatten_outputs(result, False, args.num_samples):
                stem = out / f"{prefix}_{index:02d}_{sample_index:02d}"
                files = save_result(sample, stem, is_video, fps=args.fps, upscale=args.upscale, write_mp4=write_mp4)
                written += files
                for path in files:
                    print(path, flush=True)
    except KeyboardInterrupt:
        print(f"nuwa-hf: interrupted: {len(written)} complete file(s) of {sum(len(f) for f in planned)} were written "
              f"to {out} (listed above); nothing half-written is left.", file=sys.stderr)
        return EXIT_INTERRUPTED
    note = "" if not is_video or args.no_mp4 or write_mp4 else " (no MP4: install PyAV with pip install av)"
    print(f"wrote {len(written)} file(s) for {len(calls) * args.num_samples} output(s) of {task} to {out} in "
          f"{time.perf_counter() - started:.1f} s{note}", file=sys.stderr)
    return EXIT_OK


def _mp4_available() -> bool:
    from .media import mp4_available

    return mp4_available()


def _load(task: str, model: str):
    from .pipelines import NuwaModelFolderError, load_pipeline

    from .hub.model_folder import IncompleteModelFolderError, check_model_folder

    if os.path.isdir(model) and not os.path.isfile(os.path.join(model, "config.json")):
        raise CommandError(f"--model {model!r} has no config.json: it is not a NUWA model folder.", EXIT_MODEL)
    if os.path.isdir(model):
        try:
            check_model_folder(model)
        except IncompleteModelFolderError as error:
            raise CommandError(str(error), EXIT_MODEL) from None
    _warn_of_foreign_code(model)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*names code that is not nuwa-hf's")  # printed above
            return load_pipeline(task, model)
    except NuwaModelFolderError as error:
        raise CommandError(str(error), EXIT_MODEL) from None
    except (OSError, ValueError) as error:
        where = "" if os.path.isdir(model) else " (no such folder, and no Hub repository that could be loaded)"
        raise CommandError(f"Could not load the model {model!r}{where}: {error}", EXIT_MODEL) from None


def _warn_of_foreign_code(model: str) -> None:
    """One 'nuwa-hf: warning:' line when the folder's config.json names code that is not nuwa-hf's (never run)."""
    from .models.nuwa.loading_nuwa import foreign_code_note, other_auto_maps, read_nuwa_config

    if os.path.isdir(model):
        config, problem = read_nuwa_config(model)
        note = foreign_code_note(config, other_auto_maps(model)) if config and not problem else None
        if note:
            print(f"nuwa-hf: warning: {model}: {note}", file=sys.stderr, flush=True)


def _check_demo_picture_size(args, processor) -> None:
    """--upscale of the demo within the same saved-picture limit as generate's (video strips included), before work."""
    from .models.nuwa import NuwaConfig
    from .pipelines.work_limits import check_saved_size

    height, width = _output_size(processor.image_processor)
    frames = int(NuwaConfig.from_pretrained(args.model).max_visual_grid[0])
    try:
        check_saved_size(width, height, args.upscale, frames)
    except ValueError as error:
        message = str(error).replace("upscale=", "--upscale ")
        raise CommandError(message.split(", or ")[0] + ".") from None


def command_demo(args) -> int:
    from .commands.demo import run_showcase

    _set_threads(args)
    processor = _check_model_folder(args.model)
    _check_demo_picture_size(args, processor)
    started = time.perf_counter()
    report = run_showcase(args.model, args.out, tasks=args.tasks, num_examples=args.num_examples, seed=args.seed,
                          split=args.split, fps=args.fps, upscale=args.upscale, write_mp4=args.mp4,
                          progress=not args.quiet, log=lambda line: print(line, file=sys.stderr),
                          digit_reader=args.digit_reader)
    print(report.index_path)
    seconds = time.perf_counter() - started
    if report.failures:
        print(f"{len(report.failures)} task(s) failed: {', '.join(report.failures)}; see {report.index_path}",
              file=sys.stderr)
        return EXIT_PARTIAL
    print(f"all {len(report.entries)} task(s) written in {seconds:.1f} s: open {report.index_path}", file=sys.stderr)
    return EXIT_OK


def _check_model_folder(model: str):
    """Clear errors (exit 3) for a folder that is not a complete NUWA model; returns its processor."""
    from .pipelines import NuwaModelFolderError, load_nuwa_processor

    from .hub.model_folder import IncompleteModelFolderError, check_model_folder

    if os.path.isdir(model) and not os.path.isfile(os.path.join(model, "config.json")):
        raise CommandError(f"--model {model!r} has no config.json: it is not a NUWA model folder.", EXIT_MODEL)
    if os.path.isdir(model):
        try:
            check_model_folder(model)
        except IncompleteModelFolderError as error:
            raise CommandError(str(error), EXIT_MODEL) from None
    try:
        return load_nuwa_processor(model)
    except NuwaModelFolderError as error:
        raise CommandError(str(error), EXIT_MODEL) from None


def command_evaluate(args) -> int:
    from .evaluation import metrics_markdown, write_metrics_json, write_metrics_markdown
    from .pipelines import resolve_task_name
    from .commands.evaluate import evaluate_task
    from .pipelines.pipeline_base import TASK_CODE_OF

    try:
        task = resolve_task_name(args.task)
    except ValueError as error:
        raise CommandError(str(error)) from None
    _set_threads(args)
    _check_model_folder(args.model)
    table = evaluate_task(args.model, task, num_samples=args.num_samples, split=args.split, seed=args.seed,
                          scorers=args.scorers, image_features=args.image_features, batch_size=args.batch_size,
                          progress=not args.quiet, log=lambda line: print(line, file=sys.stderr))
    code = TASK_CODE_OF[task]
    out = Path(args.out)
    json_path = write_metrics_json(table, out / f"{code.lower()}_metrics.json")
    markdown_path = write_metrics_markdown(table, out / f"{code.lower()}_metrics.md")
    print(metrics_markdown(table))
    print(json_path)
    print(markdown_path)
    return EXIT_OK


def command_train(argv: Sequence[str]) -> int:
    try:
        import importlib

        training = importlib.import_module("nuwa_hf.training")
    except ModuleNotFoundError as error:
        if error.name and error.name.startswith("nuwa_hf.training"):
            raise CommandError(
                "The training code (nuwa_hf.training) is not part of this installation: update nuwa-hf, or train "
                "with examples/train_nuwa.py from the repository.", EXIT_MISSING_DEPENDENCY,
            ) from None
        raise
    except ImportError as error:  # accelerate or datasets missing: the message names the extra ("nuwa-hf[train]")
        raise CommandError(str(error), EXIT_MISSING_DEPENDENCY) from None
    main_function = getattr(training, "main", None)
    if main_function is None:
        raise CommandError("nuwa_hf.training has no main(argv): update nuwa-hf.", EXIT_MISSING_DEPENDENCY)
    result = main_function(list(argv))
    return int(result) if isinstance(result, int) else EXIT_OK


def command_push(args) -> int:
    """Upload the folder with :func:`nuwa_hf.hub.push_model_folder` (checks the folder first, verifies the upload)."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise CommandError(f"{str(folder)!r} is not a folder: give the model folder to upload.")
    import warnings

    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    from .hub import HubPushVerificationError, HubUnreachableError, IncompleteModelFolderError, push_model_folder

    try:
        with warnings.catch_warnings(record=True) as remarks:
            warnings.simplefilter("always")
            commit = push_model_folder(
                folder, args.repo_id, token=args.token, private=args.private, commit_message=args.commit_message,
                revision=args.revision, delete_stale=args.delete_stale, verify=not args.no_verify,
                endpoint=args.endpoint, remote_code=args.remote_code,
            )
        for remark in remarks:
            print(f"warning: {remark.message}", file=sys.stderr)
    except IncompleteModelFolderError as error:
        raise CommandError(str(error), EXIT_MODEL) from None
    except HFValidationError as error:
        raise CommandError(f"repo_id {args.repo_id!r}: {error}") from None
    except OfflineModeIsEnabled as error:
        raise CommandError(str(error), EXIT_HUB) from None
    except (HfHubHTTPError, HubUnreachableError, HubPushVerificationError) as error:
        raise CommandError(f"The push to {args.repo_id} failed: {error}", EXIT_HUB) from None
    print(str(commit))
    return EXIT_OK


def command_push_code(args) -> int:
    """Publish the installed package's remote code with :func:`nuwa_hf.hub.push_code`."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    from .hub import HubUnreachableError, push_code

    try:
        commit = push_code(args.repo_id, token=args.token, private=args.private, endpoint=args.endpoint)
    except HFValidationError as error:
        raise CommandError(f"repo_id {args.repo_id!r}: {error}") from None
    except OfflineModeIsEnabled as error:
        raise CommandError(str(error), EXIT_HUB) from None
    except (HfHubHTTPError, HubUnreachableError) as error:
        raise CommandError(f"The push to {args.repo_id} failed: {error}", EXIT_HUB) from None
    print(str(commit))
    return EXIT_OK


# ----------------------------------------------------------------------------------------------------------------------
# Entry point


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from .pipelines.notices import routed_warnings

    # the pipelines' warnings (words the model never saw, big resizes) on the current stderr, whatever logging is set
    with routed_warnings(lambda message: print(f"nuwa-hf: warning: {message}", file=sys.stderr, flush=True)):
        return _main(argv)


def _main(argv: list) -> int:
    try:
        if argv and argv[0] == "train":
            return command_train(argv[1:])
        args = build_parser().parse_args(argv)
        handlers = {"generate": command_generate, "demo": command_demo, "evaluate": command_evaluate,
                    "push": command_push, "push-code": command_push_code}
        return handlers[args.command](args)
    except SystemExit as exit_:  # argparse: --help (0) and usage errors (2)
        return int(exit_.code or 0) if isinstance(exit_.code, int) or exit_.code is None else EXIT_USAGE
    except CommandError as error:
        print(f"nuwa-hf: error: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print("nuwa-hf: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ImportError as error:
        print(f"nuwa-hf: error: a required package is missing: {error}", file=sys.stderr)
        return EXIT_MISSING_DEPENDENCY
    except WriteSpaceError as error:
        print(f"nuwa-hf: error: {error.strerror or error}", file=sys.stderr)
        return EXIT_NO_SPACE
    except (ValueError, TypeError, FileNotFoundError) as error:
        if os.environ.get("NUWA_HF_DEBUG"):
            traceback.print_exc()
        print(f"nuwa-hf: error: {in_flag_terms(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # a bug: show everything
        traceback.print_exc()
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
