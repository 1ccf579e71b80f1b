"""Ctrl-C (SIGINT) or SIGTERM during ``nuwa-hf train``: finish the optimiser step, save a checkpoint, stop.

Without this, an interrupted run lost every step since its last ``--save-steps`` checkpoint (up to 199 with the
defaults). With it, the first signal lets the current step end, then ``Trainer`` writes ``checkpoint-<step>`` the
usual crash-safe way (staged, completion marker, renamed into place: :mod:`nuwa_hf.training.checkpointing`) and
leaves its loop; rerunning the same command resumes from that step. A second signal stops at once (as before: the
run resumes from the newest complete checkpoint).

DataLoader workers (``--num-workers``), which Ctrl-C reaches too, ignore the signal and are shut down by the training
process as usual.

Several processes (DDP / FSDP under torchrun): each process notes a signal it receives, and at the end of every
optimiser step the processes agree on it with one all-reduce of one number (MAX of the signal numbers, 0 for none), so
that all of them stop at the same step, write that one checkpoint together, and exit with 128 + the signal's number,
also when only one of them was signalled (``kill`` of one worker). Without the agreement each process would see the
signal at a different step and wait for the others in different collectives. The all-reduce is one small collective
per step: 1.1 ms per step end measured for 2 gloo CPU processes on a shared 2-core machine. torchrun passes the signal
it receives (Ctrl-C: SIGINT; a scheduler: SIGTERM) on to its workers, then waits ``--shutdown_timeout`` seconds
(default 30) before it kills them: raise it when finishing a step and saving a checkpoint takes longer.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Callable, Dict, Optional

from transformers import TrainerCallback

logger = logging.getLogger("nuwa_hf.training")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal(TrainerCallback):
    """A ``TrainerCallback`` that turns SIGINT / SIGTERM into "save a checkpoint at the end of this step and stop".

    Use :meth:`install` before ``trainer.train()`` and :meth:`uninstall` after (a ``with`` block does both); the
    handlers are only installed from the main thread. ``signal_number`` is the signal that stops the run (None if
    none): the one this process received, or, in a run of several processes, the one any of them received.

    Args:
        reduce_max: ``int -> int``, the largest of every process's value (an all-reduce with MAX), called by every
            process at every step end; default: ``torch.distributed`` when a process group of more than one process
            is initialised, else none (one process).
    """

    def __init__(self, reduce_max: Optional[Callable[[int], int]] = None):
        self.signal_number: Optional[int] = None
        self._received: Optional[int] = None  # what this process itself received
        self._previous: Dict[int, object] = {}
        self._pid = os.getpid()
        self._reduce_max = reduce_max

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
        if self._received is not None:  # the second signal: stop now, as without this callback
            raise KeyboardInterrupt
        self._received = number
        logger.warning("%s received: finishing this step, then saving a checkpoint and stopping (send it again to "
                       "stop at once, losing the steps since the last checkpoint).", signal.Signals(number).name)

    def agreed_signal(self) -> Optional[int]:
        """The signal that stops the run at this step end: this process's, or in a run of several processes the
        largest number any of them received (every process must call this at the same step, as ``on_step_end``
        does: it is a collective there). None when no process was signalled."""
        reduce_max = self._reduce_max or _distributed_reduce_max()
        received = self._received or 0
        agreed = reduce_max(received) if reduce_max is not None else received
        return int(agreed) or None

    def on_step_end(self, args, state, control, **kwargs):
        if self.signal_number is None:
            self.signal_number = self.agreed_signal()
            if self.signal_number is not None and self._received is None:
                logger.warning("%s received by another process: finishing this step with it, then saving a "
                               "checkpoint and stopping.", self.signal_name)
        if self.signal_number is not None:
            control.should_save = True
            control.should_training_stop = True
        return control


def _distributed_reduce_max() -> Optional[Callable[[int], int]]:
    """All-reduce (MAX) of one integer over ``torch.distributed``'s default group, or None outside a group of two or
    more processes. The tensor lives where the backend reduces (CUDA for NCCL, the CPU for gloo)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    backend = str(dist.get_backend())
    on_gpu = "gloo" not in backend and torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")

    def reduce_max(value: int) -> int:
        flag = torch.tensor([value], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    return reduce_max
