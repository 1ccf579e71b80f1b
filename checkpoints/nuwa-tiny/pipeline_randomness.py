"""Random streams of a pipeline call: ``seed=`` / ``generator=`` for the whole call, or one generator per input or
per output row (diffusers' convention), never touching torch's global generators for good."""

from __future__ import annotations

import contextlib
from typing import Any, Optional

import torch


class CallRandomness:
    """The random stream of one call: ``seed=`` (or a seed drawn once from ``generator=``) seeds it at the first batch,
    and every later batch of the same call continues it, so a seeded call is reproducible whether its inputs come as
    a list, a generator or a dataset. Torch's global generators are left as they were."""

    def __init__(self):
        self.started, self.seed, self.states = False, None, None

    @contextlib.contextmanager
    def active(self, device: torch.device, seed: Optional[int], generator: Optional[torch.Generator]):
        if not self.started:  # the call's first batch fixes the seed (one draw from a generator per call)
            self.started = True
            self.seed = seed if generator is None else int(torch.randint(0, 2**62, (1,), generator=generator))
        if self.seed is None:
            yield
            return
        cuda = device.type == "cuda"
        with torch.random.fork_rng(devices=[device] if cuda else []):
            if self.states is None:
                torch.manual_seed(self.seed)
            else:
                torch.set_rng_state(self.states[0])
                if cuda:
                    torch.cuda.set_rng_state(self.states[1], device)
            yield
            self.states = (torch.get_rng_state(), torch.cuda.get_rng_state(device) if cuda else None)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Seed torch's generators for one group of rows; their previous states come back afterwards."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def seed_from(generator: Any, what: str) -> int:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{what} must be a torch.Generator, got {type(generator).__name__}.")
    return int(torch.randint(0, 2**62, (1,), generator=generator))
