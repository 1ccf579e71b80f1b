"""``nuwa-hf train``: every argument goes to ``nuwa_hf.training.main`` (see ``nuwa-hf train --help``)."""

from __future__ import annotations

import importlib

from .base import EXIT_MISSING_DEPENDENCY, EXIT_OK, CommandError, NuwaCommand


class TrainCommand(NuwaCommand):
    name = "train"
    help = "train NUWA (forwards every option to nuwa_hf.training; see nuwa-hf train --help)"
    forwards_argv = True  # self.args is the list of arguments after "train", --help included

    def run(self) -> int:
        try:
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
        result = main_function(list(self.args))
        return int(result) if isinstance(result, int) else EXIT_OK
