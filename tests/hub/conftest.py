"""Fixtures for the Hub tests: a small model-folder stand-in, and the local Hub-compatible server.

The in-process tests talk to the server through ``endpoint=`` arguments; the test session runs with HF_HUB_OFFLINE=1
(tests/conftest.py), which huggingface_hub read at import, so tests that must reach the local server switch its
offline flag off with ``online`` (monkeypatch, restored afterwards). The end-to-end test runs the client in
subprocesses with HF_ENDPOINT set before import.
"""

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOKEN = "hf_local_test_token"


def _safetensors_bytes(rng, size: int) -> bytes:
    """A real safetensors file of about ``size`` bytes of random weights (the folder checks read its header)."""
    from safetensors.numpy import save

    return save({"weight": rng.standard_normal(size // 4).astype(np.float32)})


def write_layout(folder, *, seed: int = 0, legacy: bool = False) -> str:
    """The files of a NUWA model folder with stand-in contents (names and JSON are real, weights are random bytes).
    ``legacy``: the old layout, with the VQ-GANs in vqgan/ and vqgan_seg/ instead of inside the model."""

    rng = np.random.default_rng(seed)
    config = {
        "model_type": "nuwa", "architectures": ["NuwaForConditionalGeneration"],
    }
    if not legacy:
        config.update(vqgan_config={"num_vq_embeddings": 64}, sketch_vqgan_config={"num_vq_embeddings": 32})
    files = {
        "config.json": json.dumps(config),
        "generation_config.json": json.dumps({"do_sample": True}),
        "model.safetensors": _safetensors_bytes(rng, 300_000),
        "processor_config.json": json.dumps({"processor_class": "NuwaProcessor"}),
        "tokenizer_config.json": json.dumps({"tokenizer_class": "CLIPTokenizer"}),
        "tokenizer.json": json.dumps({"model": {}}),
        "samples/prompts.json": json.dumps({"t2v_0.gif": "a red 7 moving up"}),
        "README.md": "---\nlicense: mit\n---\n# stand-in\n",
    }
    if legacy:
        files.update({
            "vqgan/config.json": json.dumps({"_class_name": "NuwaVQGAN"}),
            "vqgan/diffusion_pytorch_model.safetensors": _safetensors_bytes(rng, 200_000),
            "vqgan_seg/config.json": json.dumps({"_class_name": "NuwaSegVQGAN"}),
            "vqgan_seg/diffusion_pytorch_model.safetensors": _safetensors_bytes(rng, 100_000),
        })
    for name, content in files.items():
        path = os.path.join(folder, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content if isinstance(content, bytes) else content.encode())
    return str(folder)


@pytest.fixture
def layout(tmp_path):
    return write_layout(tmp_path / "model")


@pytest.fixture
def local_hub():
    from support.local_hub_server import LocalHubServer

    with LocalHubServer(max_seconds=120) as hub:
        yield hub


@pytest.fixture
def online(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def make_layout():
    return write_layout
