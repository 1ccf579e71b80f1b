"""Ctrl-C / SIGTERM in a run of several processes (:mod:`nuwa_hf.training.interruption`): the processes agree at
each step end whether any of them was signalled, so that all stop at the same step and save one checkpoint.

The agreement is checked here with a process group faked by threads (any step, any rank) and with a real gloo group
of two processes; tests/training/test_user_folder_finetuning.py signals real torchrun runs."""

import logging
import signal
import threading

import pytest
from transformers import TrainerControl

from nuwa_hf.training.interruption import StopOnSignal


class ThreadGroup:
    """A process group of ``size`` threads: ``reduce_max(rank)`` is an all-reduce with MAX, blocking until every
    rank has given its value, as ``torch.distributed.all_reduce`` does."""

    def __init__(self, size: int):
        self.values = [0] * size
        self.barrier = threading.Barrier(size, timeout=10)

    def reduce_max(self, rank: int):
        def reduce(value: int) -> int:
            self.values[rank] = value
            self.barrier.wait()
            agreed = max(self.values)
            self.barrier.wait()  # nobody writes the next step's value before all have read this one
            return agreed
        return reduce


def run_ranks(size: int, signals: dict, steps: int = 20):
    """Step ``size`` ranks (threads) as Trainer calls on_step_end; ``signals`` = {rank: (step, signal)}: that rank
    receives the signal during that step. Returns {rank: (stopped at step, signal_number, should_save)}."""
    group, results = ThreadGroup(size), {}

    def rank_loop(rank):
        callback = StopOnSignal(reduce_max=group.reduce_max(rank))
        for step in range(1, steps + 1):
            if rank in signals and signals[rank][0] == step:
                callback._handle(signals[rank][1], None)
            control = callback.on_step_end(None, None, TrainerControl())
            if control.should_training_stop:
                results[rank] = (step, callback.signal_number, control.should_save)
                return
        results[rank] = (None, callback.signal_number, False)

    threads = [threading.Thread(target=rank_loop, args=(rank,)) for rank in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.parametrize("signalled", [0, 2])
def test_one_signalled_process_stops_every_process_at_the_same_step_with_a_checkpoint(signalled, caplog):
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.training"):
        results = run_ranks(3, {signalled: (4, signal.SIGTERM)})
    assert results == {rank: (4, signal.SIGTERM, True) for rank in range(3)}
    messages = [record.getMessage() for record in caplog.records]
    assert sum("SIGTERM received:" in m for m in messages) == 1  # the signalled process
    assert sum("SIGTERM received by another process" in m for m in messages) == 2  # the two others


def test_processes_signalled_at_different_steps_stop_at_the_first_of_them():
    """torchrun passes a signal on to its workers one after the other: the first step end after any of them has it
    stops all; with two signals the larger number is the one every process reports (and exits with)."""
    results = run_ranks(2, {0: (3, signal.SIGINT), 1: (5, signal.SIGTERM)})
    assert results == {0: (3, signal.SIGINT, True), 1: (3, signal.SIGINT, True)}
    results = run_ranks(2, {0: (6, signal.SIGINT), 1: (6, signal.SIGTERM)})
    assert results == {rank: (6, max(signal.SIGINT, signal.SIGTERM), True) for rank in range(2)}


def test_without_a_signal_no_process_stops():
    assert run_ranks(2, {}, steps=5) == {0: (None, None, False), 1: (None, None, False)}


def test_one_process_needs_no_group_and_a_second_signal_stops_at_once():
    callback = StopOnSignal()  # no process group initialised: this process's signal alone
    assert not callback.on_step_end(None, None, TrainerControl()).should_training_stop
    callback._handle(signal.SIGINT, None)
    control = callback.on_step_end(None, None, TrainerControl())
    assert control.should_training_stop and control.should_save and callback.signal_name == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
        callback._handle(signal.SIGINT, None)


def test_two_gloo_processes_agree_through_torch_distributed():
    """The default reduction: a real all-reduce over a gloo group (the CPU DDP of torchrun --nproc_per_node 2)."""
    import socket

    import torch.multiprocessing as mp

    from nuwa_training_support import signal_agreement_worker

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.start_processes(signal_agreement_worker, args=(2, port, 1, 7, results), nprocs=2, join=True,
                       start_method="spawn")
    stopped = sorted(results.get()[:4] for _ in range(2))
    assert stopped == [(0, 7, signal.SIGTERM, True), (1, 7, signal.SIGTERM, True)]
