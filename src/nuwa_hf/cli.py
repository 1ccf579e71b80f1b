"""The ``nuwa-hf`` command: generate with any of NUWA's eight tasks, run them all (demo), evaluate, train, push.

    nuwa-hf generate --task text-to-video --model checkpoints/nuwa-tiny --prompt "the digit 3 is moving up then down" --out out/
    nuwa-hf demo --model checkpoints/nuwa-tiny --out outputs/demo
    nuwa-hf evaluate --task T2I --model checkpoints/nuwa-tiny --num-samples 64 --out outputs/eval
    nuwa-hf train ...                      (the options of nuwa_hf.training; see nuwa-hf train --help)
    nuwa-hf push checkpoints/nuwa-tiny my-org/nuwa-tiny [--remote-code my-org/nuwa-hf-code]
    nuwa-hf push-code my-org/nuwa-hf-code  (the remote code of this version, for users without nuwa-hf)

Each subcommand is a class in its own module of :mod:`nuwa_hf.commands` (on the shared base
:class:`~nuwa_hf.commands.base.NuwaCommand`); this module builds the parser from them, dispatches, and maps exceptions
to the exit codes (:data:`~nuwa_hf.commands.base.EXIT_CODES_HELP`). Set NUWA_HF_DEBUG=1 to see the traceback behind an
input error.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Optional, Sequence

from .commands.base import (EXIT_BUG, EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_MISSING_DEPENDENCY, EXIT_NO_SPACE,
                            EXIT_USAGE, CommandError, in_flag_terms)
from .file_io import WriteSpaceError


def command_classes() -> tuple:
    """The subcommands, in the order ``nuwa-hf --help`` lists them (imported here: importing this module stays cheap)."""
    from .commands.demo import DemoCommand
    from .commands.evaluate import EvaluateCommand
    from .commands.generate import GenerateCommand
    from .commands.push import PushCommand
    from .commands.push_code import PushCodeCommand
    from .commands.train import TrainCommand

    return GenerateCommand, DemoCommand, EvaluateCommand, TrainCommand, PushCommand, PushCodeCommand


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

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
    parser.add_argument("--version", action="version", version=f"nuwa-hf {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for command in command_classes():
        command.register_subcommand(commands)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from .pipelines.notices import routed_warnings

    # the pipelines' warnings (words the model never saw, big resizes) on the current stderr, whatever logging is set
    with routed_warnings(lambda message: print(f"nuwa-hf: warning: {message}", file=sys.stderr, flush=True)):
        return _main(argv)


def _main(argv: list) -> int:
    try:
        forwarding = {command.name: command for command in command_classes() if command.forwards_argv}
        if argv and argv[0] in forwarding:  # its arguments are its own (argparse would read --help)
            return forwarding[argv[0]](argv[1:]).run()
        args = build_parser().parse_args(argv)
        return args.command_class(args).run()
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
