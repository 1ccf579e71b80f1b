"""Fixtures shared by the NUWA model tests."""

import pytest
import torch

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration


@pytest.fixture(scope="module")
def model():
    """A randomly initialised ``NuwaConfig.tiny()`` NUWA (seed 0) in eval mode, one per test module."""
    torch.manual_seed(0)
    return NuwaForConditionalGeneration(NuwaConfig.tiny()).eval()
