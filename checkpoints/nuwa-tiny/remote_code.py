"""Self-contained model code written next to saved weights, so a folder loads where nuwa_hf is not installed.

``save_pretrained`` copies the NUWA configuration, modeling and generation files and the 3DNA operation files
flat into the folder and records ``auto_map`` in config.json; then
``AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True)`` works without this package. Users who have
nuwa_hf installed never need ``trust_remote_code``: importing nuwa_hf registers the classes.

The copied files are this package's own sources, including the VQ-GAN files (the model owns its VQ-GANs), with two
imports rewritten (``from ...ops`` -> ``from .nuwa_ops``, ``from ..vqgan.x`` -> ``from .x``), so the remote code is
always exactly the installed code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Installed package: src/nuwa_hf/models/nuwa/ and src/nuwa_hf/ops/. Flat copy (trust_remote_code): all in one folder.
_FLAT = (_HERE / "nuwa_ops.py").exists()
_MODEL_DIR = _HERE
_OPS_DIR = _HERE if _FLAT else _HERE.parents[1] / "ops"
_VQGAN_DIR = _HERE if _FLAT else _HERE.parent / "vqgan"
_MODEL_FILES = ["configuration_nuwa.py", "generation_nuwa.py", "modeling_nuwa.py", "convert_nuwa_legacy_folder.py",
                "loading_nuwa.py"]
_VQGAN_FILES = ["quantization.py", "modeling_vqgan.py", "modeling_seg_vqgan.py"]
_OPS_FILES = ["geometry.py", "reference.py", "block_sparse.py", "cpu_inference.py", "window_gather.py",
              "nearby_attention.py", "gpu_kernel.py"]

AUTO_MAP = {
    "AutoConfig": "configuration_nuwa.NuwaConfig",
    "AutoModel": "modeling_nuwa.NuwaModel",
    "AutoModelForSeq2SeqLM": "modeling_nuwa.NuwaForConditionalGeneration",
}


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; model folders are shared, like the weights next to them
    os.replace(tmp, path)


def write_remote_code(folder: str | os.PathLike) -> list[str]:
    """Write the self-contained model code into ``folder``; returns the file names written."""
    folder = Path(folder)
    written = []
    for name in _MODEL_FILES:
        text = (_MODEL_DIR / name).read_text()
        text = text.replace("from ...ops import", "from .nuwa_ops import").replace("from ..vqgan.", "from .")
        _write_atomic(folder / name, text)
        written.append(name)
    for name in _VQGAN_FILES:
        _write_atomic(folder / name, (_VQGAN_DIR / name).read_text())
        written.append(name)
    for name in _OPS_FILES:
        _write_atomic(folder / name, (_OPS_DIR / name).read_text())
        written.append(name)
    _write_atomic(folder / "nuwa_ops.py", (_OPS_DIR / ("nuwa_ops.py" if _FLAT else "__init__.py")).read_text())
    _write_atomic(folder / "remote_code.py", (_HERE / "remote_code.py").read_text())
    written += ["nuwa_ops.py", "remote_code.py"]
    return written
