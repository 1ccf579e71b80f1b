"""Where nuwa-hf keeps fetched and generated data, and how files get there safely.

The cache root is ``$NUWA_HF_CACHE`` when set, else ``~/.cache/nuwa_hf``. Everything written there goes through a
temporary file in the same folder followed by ``os.replace``, so a crash never leaves a half-written file under the
final name, and a file lock serialises fetches so that several processes (DDP ranks, pytest workers) starting at once
download each file only once.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from filelock import FileLock

CACHE_ENV_VAR = "NUWA_HF_CACHE"


def cache_root() -> Path:
    """The folder that holds every fetched file and generated world (created on first use)."""
    configured = os.environ.get(CACHE_ENV_VAR)
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "nuwa_hf"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_subdir(name: str) -> Path:
    """``cache_root() / name``, created on first use."""
    folder = cache_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cache_lock(name: str, timeout: float = 1800.0) -> FileLock:
    """An inter-process lock named ``name`` under the cache root.

    The timeout is long because the holder may be downloading a 20 MB wheel on a slow link; a waiter that times out
    raises ``filelock.Timeout`` rather than waiting forever behind a dead process.
    """
    return FileLock(str(cache_subdir("locks") / f"{name}.lock"), timeout=timeout)


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary sibling, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file as 0600; cached data is meant to be readable like any other downloaded file.
        os.chmod(temporary_name, 0o644)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary_name, path)
    except BaseException:
        # Leave nothing behind on failure (including KeyboardInterrupt): a stale temp file is only clutter,
        # but removing it keeps the cache folder readable.
        try:
            os.unlink(temporary_name)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Atomically write raw bytes to ``path``."""
    return atomic_write(path, lambda file: file.write(data))


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> Path:
    """Atomically save arrays as an uncompressed ``.npz`` (read back with ``np.load(path, allow_pickle=False)``)."""

    def write(file: BinaryIO) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        file.write(buffer.getvalue())

    return atomic_write(path, write)
