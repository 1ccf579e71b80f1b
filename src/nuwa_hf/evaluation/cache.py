"""Where nuwa-hf keeps files it fetches or builds for evaluation (helper weights, trained scorers).

The folder is ``$NUWA_HF_CACHE`` when set, else ``~/.cache/nuwa_hf``. Nothing in it is committed to the repository.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, os.PathLike]


def cache_dir(override: Optional[PathLike] = None) -> Path:
    """The cache folder (created if missing): ``override``, else ``$NUWA_HF_CACHE``, else ``~/.cache/nuwa_hf``."""
    if override is not None:
        folder = Path(override)
    elif os.environ.get("NUWA_HF_CACHE"):
        folder = Path(os.environ["NUWA_HF_CACHE"])
    else:
        folder = Path.home() / ".cache" / "nuwa_hf"
    folder = folder.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
