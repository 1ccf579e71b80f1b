"""Ctrl-C (SIGINT) or SIGTERM during ``nuwa-hf train``: finish the optimiser step, save a checkpoint, stop.

Without this, an interrupted run lost every step since its last ``--save-steps`` checkpoint (up to 199 with the
defaults). With it, the first signal lets the current step end, then ``Trainer`` writes ``checkpoint-<step>`` the
usual crash-safe way (staged, completion marker, renamed into place: :mod:`nuwa_hf.training.checkpointing`) and
leaves its loop; rerunning the same command resumes from that step. A second signal stops at once (as before: the
run resumes from the newest complete checkpoint).

DataLoader workers (``--num-workers``), which Ctrl-C reaches too, ignore the signal and are shut down by the training
process as usual. Only in a single process: the processes of a DDP / FSDP run would each see the signal at a different step and then
wait for each other in different collectives, so they keep the default behaviour (stop at once).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Dict, Optional

from transformers import TrainerCallback

logger = logging.getLogger("nuwa_hf.training")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal(TrainerCallback):
    """A ``TrainerCallback`` that turns SIGINT / SIGTERM into "save a checkpoint at the end of this step and stop".

    Use :meth:`install` before ``trainer.train()`` and :meth:`uninstall` after (a ``with`` block does both); the
    handlers are only installed from the main thread. ``signal_number`` is the signal received (None if none).
    """

    def __init__(self):
        self.signal_number: Optional[int] = None
        self._previous: Dict[int, object] = {}
        self._pid = os.getpid()

    @property
    def signal_name(self) -> Optional[str]:
        return signal.Signals(self.signal_number).name if self.signal_number is not None else None

    def install(self) -> bool:
        """Handle SIGINT and SIGTERM from now on; False (nothing installed) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._pid = os.getpid()
        for number in STOP_SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        return True

    def uninstall(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def __enter__(self) -> "StopOnSignal":
        self.install()
        return self

    def __exit__(self, *exc) -> None:
        self.uninstall()

    def _handle(self, number, frame) -> None:
        if os.getpid() != self._pid:
            # a DataLoader worker forked from the training process (Ctrl-C reaches the whole process group): it keeps
            # serving batches until the training process, which saves and stops, shuts it down
            return
        if self.signal_number is not None:  # the second signal: stop now, as without this callback
            raise KeyboardInterrupt
        self.signal_number = number
        logger.warning("%s received: finishing this step, then saving a checkpoint and stopping (send it again to "
                       "stop at once, losing the steps since the last checkpoint).", self.signal_name)

    def on_step_end(self, args, state, control, **kwargs):
        if self.signal_number is not None:
            control.should_save = True
            control.should_training_stop = True
        return control
