"""Where tests marked ``cuda`` (tests/gpu/) run, decided once per process.

- ``"interpreter"``: ``TRITON_INTERPRET=1`` was set before the process started: CPU tensors, Triton's interpreter runs
  the very kernel code a GPU would run, on tiny grids and in float32 only (its numpy has no bfloat16). It must be set
  before anything imports triton (transformers does when it is installed), hence before pytest starts.
- ``"cuda"``: a CUDA device and no interpreter: the paper's grids, float32 and bfloat16 (``GPU_CHECK_TINY=1``: the
  tiny grids, for a quick look).
- ``None``: neither; the tests are skipped with :data:`SKIP_REASON`.
"""

import os

import torch

SKIP_REASON = ("needs a CUDA device, or TRITON_INTERPRET=1 set before pytest starts (Triton's interpreter on the CPU, "
               "tiny grids): TRITON_INTERPRET=1 pytest -m cuda tests/gpu")


def cuda_mode():
    if os.environ.get("TRITON_INTERPRET") == "1":
        return "interpreter"
    if torch.cuda.is_available():
        return "cuda"
    return None


MODE = cuda_mode()
DEVICE = "cuda" if MODE == "cuda" else "cpu"
TINY = MODE != "cuda" or os.environ.get("GPU_CHECK_TINY") == "1"
# The kernel's dtypes here: the interpreter runs float32 only.
KERNEL_DTYPES = ("fp32", "bf16") if MODE == "cuda" else ("fp32",)
