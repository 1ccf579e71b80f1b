"""The ``"triton"`` backend of ``nearby_attention``: loads the fused 3DNA GPU kernel and runs it.

The kernel itself is not part of this Python package: it is a Hugging Face kernel source, ``kernels/nuwa_3dna`` at
the root of the repository (kernel-builder layout, see ``kernels/README.md``). It is found, in this order:

1. ``NUWA_3DNA_KERNEL_PATH``: a kernel source folder (holding ``torch-ext/nuwa_3dna``), a build variant folder
   (``build/torch-cuda``) or the Python package folder itself;
2. ``kernels/nuwa_3dna`` of the repository checkout this module lives in (an editable install);
3. the Hugging Face ``kernels`` package, when it is installed: ``get_kernel(NUWA_3DNA_KERNEL_REPO, version=1)``,
   by default :data:`DEFAULT_KERNEL_REPO`.

Where it runs: on CUDA tensors; or on CPU tensors when ``TRITON_INTERPRET=1`` is set, which runs the very same kernel
code in Triton's interpreter (slowly: this is how the kernel is tested on machines without a GPU).

When the variable must be set: before the process first imports ``triton``. Triton reads it at every ``@triton.jit``
decoration, and it decorates its own library (``tl.zeros``, the combine functions of ``tl.max``/``tl.sum``) when
``triton.language`` is imported; a kernel decorated for the interpreter after that calls compiled library functions
and fails. The loader checks that the variable and the imported triton agree and says so when they do not.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Dict, Optional, Tuple

import torch

from .geometry import Extent, Grid

KERNEL_PATH_ENV = "NUWA_3DNA_KERNEL_PATH"
KERNEL_REPO_ENV = "NUWA_3DNA_KERNEL_REPO"
# The Hub repository kernels/README.md publishes to; override with NUWA_3DNA_KERNEL_REPO.
DEFAULT_KERNEL_REPO = "nuwa-hf/nuwa-3dna"
KERNEL_VERSION = 1
PACKAGE_NAME = "nuwa_3dna"

# kernels/nuwa_3dna of the repository, reached through the package's kernel_source symlink (a wheel holds a copy).
_REPO_KERNEL_SOURCE = (Path(__file__).resolve().parent / "kernel_source").resolve()
_loaded: Dict[Tuple[str, bool], ModuleType] = {}
_lock = threading.Lock()


def interpreter_requested() -> bool:
    """True when ``TRITON_INTERPRET=1``: kernels imported from now on run on CPU tensors in Triton's interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def _triton_interprets() -> bool:
    """Whether this process's triton runs kernels in its interpreter (fixed when triton.language is first imported)."""
    import triton.language as tl

    try:
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:  # a triton without the interpreter: nothing to disagree with
        return interpreter_requested()
    probe = getattr(tl, "zeros", None)  # a @triton.jit function of triton's own library
    if probe is None or not hasattr(probe, "fn"):
        return interpreter_requested()
    return isinstance(probe, InterpretedFunction)


def _package_dir(root: Path) -> Optional[Path]:
    """The ``nuwa_3dna`` Python package inside ``root``, which may be a kernel source, a build or the package."""
    for sub in ("", f"torch-ext/{PACKAGE_NAME}", PACKAGE_NAME, "build/torch-cuda", f"build/torch-cuda/{PACKAGE_NAME}"):
        candidate = root / sub if sub else root
        if (candidate / "__init__.py").is_file() and (candidate / "_kernels.py").is_file():
            return candidate
    return None


def find_kernel_package() -> Optional[Path]:
    """The local kernel package folder: from ``NUWA_3DNA_KERNEL_PATH``, else from this repository checkout.

    Raises ``ValueError`` when ``NUWA_3DNA_KERNEL_PATH`` is set but holds no kernel package; returns ``None`` when
    there is no local copy at all (a wheel install).
    """
    configured = os.environ.get(KERNEL_PATH_ENV)
    if configured:
        package = _package_dir(Path(configured).expanduser())
        if package is None:
            raise ValueError(
                f"{KERNEL_PATH_ENV}={configured!r} holds no {PACKAGE_NAME} kernel package; point it at the kernel "
                f"source folder (the one with build.toml and torch-ext/{PACKAGE_NAME}), at a build/torch-cuda folder, "
                "or unset it to use the repository's kernels/nuwa_3dna."
            )
        return package
    return _package_dir(_REPO_KERNEL_SOURCE)


def _import_package(package: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        module_name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: the package's relative imports look their parent up in sys.modules.
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def load_kernel() -> ModuleType:
    """Import the kernel package (see the module docstring for where it comes from) and return it.

    Raises ``ValueError`` when triton is not installed or no copy of the kernel can be found.
    """
    if not triton_installed():
        raise ValueError(
            "the fused 3DNA kernel needs triton, which is not installed: `pip install 'nuwa-hf[kernels]'` "
            "(or `pip install triton`), or use backend='auto' for the CPU paths."
        )
    interpret = interpreter_requested()
    if _triton_interprets() != interpret:
        raise ValueError(
            f"TRITON_INTERPRET is {'set' if interpret else 'unset'} now, but triton was imported "
            f"{'without' if interpret else 'with'} it: set TRITON_INTERPRET=1 (or leave it unset) in the environment "
            "before the process first imports triton (triton decorates its own library at import); for tests, run "
            "the interpreter in a subprocess."
        )
    with _lock:
        package = find_kernel_package()
        if package is not None:
            cache_key = (str(Path(package).resolve()), interpret)  # one module per kernel copy, however reached
            if cache_key not in _loaded:
                mode = "interpreted" if interpret else "compiled"
                _loaded[cache_key] = _import_package(package, f"_nuwa_hf_{PACKAGE_NAME}_{mode}_{len(_loaded)}")
            return _loaded[cache_key]
        repo = os.environ.get(KERNEL_REPO_ENV, DEFAULT_KERNEL_REPO)
        cache_key = (f"hub:{repo}", interpret)
        if cache_key not in _loaded:
            try:
                from kernels import get_kernel
            except ImportError:
                raise ValueError(
                    f"no local copy of the 3DNA kernel (kernels/{PACKAGE_NAME} of a repository checkout, or "
                    f"{KERNEL_PATH_ENV}) and the Hugging Face `kernels` package is not installed to fetch {repo!r} "
                    f"from the Hub: `pip install kernels`, or set {KERNEL_PATH_ENV}."
                ) from None
            # The project names this one repository as its kernel, so it trusts exactly that repository.
            _loaded[cache_key] = get_kernel(repo, version=KERNEL_VERSION, trust_remote_code=[repo])
        return _loaded[cache_key]


_availability: Dict[Tuple[Optional[str], Optional[str], bool], bool] = {}


def kernel_available() -> bool:
    """Whether ``backend="auto"`` may use the fused kernel: a CUDA device, triton, and a loadable kernel.

    Asked on every ``nearby_attention`` call with CUDA tensors, so the answer is remembered per setting of the
    environment variables that decide it.
    """
    if not torch.cuda.is_available() or not triton_installed():
        return False
    setting = (os.environ.get(KERNEL_PATH_ENV), os.environ.get(KERNEL_REPO_ENV), interpreter_requested())
    if setting not in _availability:
        try:
            load_kernel()
            _availability[setting] = True
        except Exception:  # any failure to load means "use another backend", never an error for "auto"
            _availability[setting] = False
    return _availability[setting]


def nearby_attention_triton(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    query_grid: Grid,
    key_grid: Grid,
    extent: Extent,
    causal: bool = False,
    scale: Optional[float] = None,
    query_offset: Optional[int] = None,
) -> torch.Tensor:
    """3DNA with the fused Triton kernel (forward and backward). Shapes and arguments as in ``nearby_attention``.

    Supports float16, bfloat16 and float32 on CUDA, cross-grid attention, ``None`` extents, causal attention and
    ``query_offset`` (a slice of queries against a causal key prefix, for KV-cached decoding). On CPU tensors it runs
    only with ``TRITON_INTERPRET=1`` (Triton's interpreter; float16/float32, for tests), else raises ``ValueError``.
    """
    if query.device.type != "cuda" and not interpreter_requested():
        raise ValueError(
            f"backend='triton' runs the fused 3DNA GPU kernel on CUDA tensors, got {query.device.type} tensors; use "
            "backend='auto' (the best CPU path), or set TRITON_INTERPRET=1 to run the kernel in Triton's "
            "interpreter on the CPU (slow, for tests)."
        )
    kernel = load_kernel()
    return kernel.nearby_attention(
        query, key, value, query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal, scale=scale,
        query_offset=query_offset,
    )
