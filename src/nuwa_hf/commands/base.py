"""What every ``nuwa-hf`` subcommand shares: the base class, the exit codes, the error type, the help layout, the
argument types and the model-folder checks.

A subcommand is a :class:`NuwaCommand` subclass in its own module of this package (as transformers' and diffusers'
CLIs do it): ``name`` and ``help`` for the command list, :meth:`~NuwaCommand.add_arguments` for its options and
:meth:`~NuwaCommand.run` for the work, returning an exit code. :func:`nuwa_hf.cli.main` builds the parser from the
command classes, dispatches, and maps exceptions to the exit codes below.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

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
  130  interrupted (train: Ctrl-C ends the step in progress and saves it as a checkpoint first; the same command
       resumes from it)
  143  train: stopped by SIGTERM, after saving the step in progress as a checkpoint"""


class CommandError(Exception):
    """A failure with its exit code and a message for the user."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and shows a default only where there is one worth showing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class NuwaCommand:
    """One ``nuwa-hf`` subcommand.

    Subclasses set ``name``, ``help`` (the line in ``nuwa-hf --help``), ``description`` and ``examples`` (the
    subcommand's own ``--help``; the exit codes are appended), implement :meth:`add_arguments` and :meth:`run`.
    A command with ``forwards_argv`` parses nothing itself: it gets the raw arguments after its name (``nuwa-hf
    train`` hands them to ``nuwa_hf.training``).
    """

    name: str = ""
    help: str = ""
    description: Optional[str] = None
    examples: str = ""
    forwards_argv: bool = False

    def __init__(self, args):
        self.args = args

    @classmethod
    def register_subcommand(cls, commands) -> argparse.ArgumentParser:
        """Add this command's parser to the ``add_subparsers()`` object ``commands``."""
        if cls.forwards_argv:
            parser = commands.add_parser(cls.name, help=cls.help, add_help=False)
        else:
            epilog = (cls.examples + "\n\n" if cls.examples else "") + EXIT_CODES_HELP
            parser = commands.add_parser(cls.name, help=cls.help, description=cls.describe(),
                                         epilog=epilog, formatter_class=HelpFormatter)
            cls.add_arguments(parser)
        parser.set_defaults(command_class=cls)
        return parser

    @classmethod
    def describe(cls) -> Optional[str]:
        """The text at the top of the command's ``--help`` (a class method, for texts built from the code)."""
        return cls.description

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the command's options to its parser."""

    def run(self) -> int:
        """Do the work; return an exit code. Raise :class:`CommandError` for failures the user can fix."""
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------------------------------
# Argument types


def number_type(convert, accepts, wanted: str):
    """An argparse ``type``: ``convert(text)`` that ``accepts``, else an error that says what was ``wanted``."""

    def check(value):
        if not accepts(value):
            raise ValueError(f"expected {wanted}, got {value}")
        return value

    return checked_type(convert, check, wanted)


def checked_type(convert, check, wanted: str, name: Optional[str] = None):
    """An argparse ``type`` that converts the text and applies ``check`` (the library's own rule and message). Text
    that does not convert: "expected <wanted>, got '<text>'", or with ``name`` the library's wording, "<name> must be
    <wanted>, got '<text>'"."""
    unconverted = f"{name} must be {wanted}" if name else f"expected {wanted}"

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{unconverted}, got {text!r}") from None
        try:
            return check(value)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error).rstrip(".")) from None

    return parse


positive_int = number_type(int, lambda value: value >= 1, "a positive integer")
non_negative_int = number_type(int, lambda value: value >= 0, "an integer >= 0")


def fps(text: str) -> float:
    """--fps: the rule of nuwa_hf.media (0.01 to 240)."""
    from ..media import check_fps

    return checked_type(float, check_fps, "a number of frames per second")(text)


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


# ----------------------------------------------------------------------------------------------------------------------
# What the commands that load a model share


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --threads and --quiet."""
    parser.add_argument("--model", required=True, help="a NUWA model folder (config, weights with the VQ-GANs, processor files) or Hub repo id")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="CPU threads for torch. Tiny models run fastest on one: on a busy 2-core machine two "
                             "OpenMP threads made the demo 20x slower. Raise it for large models on idle cores")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def apply_model_options(args) -> None:
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


def resolve_task(task: str) -> str:
    """--task (a name or paper code) -> the pipeline task name; an unknown one is a usage error listing the known."""
    from ..tasks import get_task_info

    try:
        return get_task_info(task).name
    except ValueError as error:
        raise CommandError(str(error)) from None


def check_model_folder(model: str) -> None:
    """Clear errors (exit 3) for a local folder that is not a complete NUWA model; a Hub id passes (it is checked when
    loaded)."""
    if not os.path.isdir(model):
        return
    from ..hub.model_folder import IncompleteModelFolderError, check_model_folder as check_complete

    if not os.path.isfile(os.path.join(model, "config.json")):
        raise CommandError(f"--model {model!r} has no config.json: it is not a NUWA model folder.", EXIT_MODEL)
    try:
        check_complete(model)
    except IncompleteModelFolderError as error:
        raise CommandError(str(error), EXIT_MODEL) from None


def warn_of_foreign_code(model: str) -> None:
    """One 'nuwa-hf: warning:' line when the folder's config.json names code that is not nuwa-hf's (never run)."""
    from ..models.nuwa.loading_nuwa import foreign_code_note, other_auto_maps, read_nuwa_config

    if os.path.isdir(model):
        config, problem = read_nuwa_config(model)
        note = foreign_code_note(config, other_auto_maps(model)) if config and not problem else None
        if note:
            print(f"nuwa-hf: warning: {model}: {note}", file=sys.stderr, flush=True)


def load_processor(model: str):
    """The model's processor after :func:`check_model_folder`; an unreadable folder is exit 3."""
    from ..pipelines import NuwaModelFolderError, load_nuwa_processor

    check_model_folder(model)
    try:
        return load_nuwa_processor(model)
    except NuwaModelFolderError as error:
        raise CommandError(str(error), EXIT_MODEL) from None


def load_task_pipeline(task: str, model: str):
    """The task's pipeline on ``model`` after :func:`check_model_folder` (and :func:`warn_of_foreign_code`, once); a
    model that cannot be loaded is exit 3."""
    import warnings

    from ..pipelines import NuwaModelFolderError, load_pipeline

    check_model_folder(model)
    warn_of_foreign_code(model)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*names code that is not nuwa-hf's")  # printed by the check
            return load_pipeline(task, model)
    except NuwaModelFolderError as error:
        raise CommandError(str(error), EXIT_MODEL) from None
    except (OSError, ValueError) as error:
        where = "" if os.path.isdir(model) else " (no such folder, and no Hub repository that could be loaded)"
        raise CommandError(f"Could not load the model {model!r}{where}: {error}", EXIT_MODEL) from None


def output_size(image_processor) -> tuple[int, int]:
    """(height, width) of the pictures a model makes: its image processor's crop size."""
    crop = image_processor.crop_size
    height = getattr(crop, "height", None) or crop["height"]
    width = getattr(crop, "width", None) or crop["width"]
    return int(height), int(width)

