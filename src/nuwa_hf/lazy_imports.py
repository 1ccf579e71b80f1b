"""The light core: what ``import nuwa_hf`` leaves out until first use, and what to install when it is missing.

``import nuwa_hf`` imports torch, transformers, safetensors and huggingface_hub (and what transformers itself pulls
in). Everything else loads the first time it is used:

- diffusers, when a model is built or loaded (NUWA's VQ-GANs are diffusers ``VQModel``s, so diffusers stays a
  dependency of the package) or ``nuwa_hf.NuwaDiffusionPipeline`` is touched;
- datasets (extra ``data``), by the built-in worlds and folder loaders of ``nuwa_hf.data``;
- accelerate (extra ``train``), by ``nuwa_hf.training`` (transformers' ``Trainer`` needs it);
- evaluate (extra ``evaluate``), only by the ``evaluate`` metric scripts in the repository's ``metrics/`` folder;
- gradio (extra ``web``), only by the web demo (``spaces/nuwa/app.py``);
- the metric functions and the scorers of ``nuwa_hf.evaluation``, when first named.

Packages use :func:`lazy_exports` for a module-level ``__getattr__`` (PEP 562): each public name maps to the submodule
that defines it, imported on first access; a missing optional package becomes an ``ImportError`` that names the pip
extra (``pip install "nuwa-hf[data]"``).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Callable, Dict, Iterable, Optional, Tuple

# import name -> pip extra of nuwa-hf that installs it (None: a dependency of nuwa-hf itself)
OPTIONAL_PACKAGES: Dict[str, Optional[str]] = {
    "datasets": "data",
    "accelerate": "train",
    "evaluate": "evaluate",
    "gradio": "web",
    "diffusers": None,
}


def install_hint(package: str) -> str:
    """How to install ``package``: the nuwa-hf extra that brings it, or the package itself."""
    extra = OPTIONAL_PACKAGES.get(package)
    if extra is None:
        return f'`pip install {package}` (a dependency of nuwa-hf: `pip install nuwa-hf` installs it)'
    return f'`pip install "nuwa-hf[{extra}]"` (or `pip install {package}`)'


def missing_dependency(package: str, needed_for: str) -> ImportError:
    """The error for an optional package that is not installed."""
    error = ImportError(f"{needed_for} needs {package}, which is not installed: {install_hint(package)}.")
    error.name = package
    return error


def require(package: str, needed_for: str) -> None:
    """Raise :func:`missing_dependency` when ``package`` cannot be imported (checked without importing it)."""
    if importlib.util.find_spec(package) is None:
        raise missing_dependency(package, needed_for)


def _missing_optional(error: ImportError) -> Optional[str]:
    """The optional package whose absence caused ``error``, if any."""
    name = getattr(error, "name", None) or ""
    top = name.split(".")[0]
    return top if top in OPTIONAL_PACKAGES and isinstance(error, ModuleNotFoundError) else None


def import_optional(module: str, package: Optional[str], needed_for: str):
    """``importlib.import_module(module, package)``; a missing optional dependency gets the install hint."""
    try:
        return importlib.import_module(module, package)
    except ModuleNotFoundError as error:
        missing = _missing_optional(error)
        if missing is None:
            raise
        raise missing_dependency(missing, needed_for) from error


def lazy_exports(module_name: str, module_globals: dict,
                 exports: Dict[str, Iterable[str]]) -> Tuple[Callable[[str], object], Callable[[], list]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names load on first access.

    ``exports`` maps a submodule (relative, ``".frechet"``) to the names it defines. A name, once loaded, is stored in
    the package's globals, so later lookups are plain attribute reads.
    """
    where = {name: submodule for submodule, names in exports.items() for name in names}

    def __getattr__(name: str):
        submodule = where.get(name)
        if submodule is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        module = import_optional(submodule, module_name, f"{module_name}.{name}")
        value = getattr(module, name)
        module_globals[name] = value
        return value

    def __dir__() -> list:
        return sorted(set(module_globals) | set(where))

    return __getattr__, __dir__
