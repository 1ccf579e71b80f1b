"""Files nuwa-hf writes, written safely, and the one cache folder it keeps them in.

Atomic writes: the data goes to a temporary file (or folder) beside the destination (same file system, so the rename
is atomic), is flushed to disk, and then replaces the destination with ``os.replace``. A reader never sees half a file,
even when the writer is killed midway (Ctrl-C included), and nothing temporary is left behind on failure.

The cache folder is ``$NUWA_HF_CACHE`` when set, else ``~/.cache/nuwa_hf``: fetched data and helper weights, generated
worlds, trained scorers. Nothing in it is committed to the repository.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional, Union

PathLike = Union[str, os.PathLike]
CACHE_ENV_VAR = "NUWA_HF_CACHE"


# --------------------------------------------------------------------------------------------------------------------
# The cache folder


def cache_root(override: Optional[PathLike] = None) -> Path:
    """The cache folder, created if missing: ``override``, else ``$NUWA_HF_CACHE``, else ``~/.cache/nuwa_hf``."""
    if override is not None:
        root = Path(override)
    elif os.environ.get(CACHE_ENV_VAR):
        root = Path(os.environ[CACHE_ENV_VAR])
    else:
        root = Path.home() / ".cache" / "nuwa_hf"
    root = root.expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_subdir(name: str, override: Optional[PathLike] = None) -> Path:
    """``cache_root(override) / name``, created on first use."""
    folder = cache_root(override) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cache_lock(name: str, timeout: float = 1800.0):
    """An inter-process ``filelock.FileLock`` named ``name`` under the cache root, so that several processes (DDP ranks,
    test workers) starting at once fetch or build each file only once. The timeout is long because the holder may be
    downloading a large wheel on a slow link; a waiter that times out raises ``filelock.Timeout``."""
    from filelock import FileLock

    return FileLock(str(cache_subdir("locks") / f"{name}.lock"), timeout=timeout)


# --------------------------------------------------------------------------------------------------------------------
# Atomic writes


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``, else it is removed.

    Example:
        >>> with atomic_output("out/a.png") as temporary:
        ...     image.save(temporary, format="PNG")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{path.suffix}.tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def atomic_write(path: PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(temporary_path)``, which must create that file (e.g. ``safetensors.torch.save_file(tensors, p)``),
    then move the result onto ``path``. Returns ``path`` as a ``Path``."""
    with atomic_output(path) as temporary:
        write(str(temporary))
    return Path(path)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_output(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, payload: Any, indent: int = 2, sort_keys: bool = True,
                      allow_nan: bool = True) -> Path:
    """Write ``payload`` as JSON to ``path`` atomically (``allow_nan=False`` refuses NaN and infinity)."""
    return atomic_write_text(path, json.dumps(payload, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan) + "\n")


def atomic_save_npz(path: PathLike, **arrays) -> Path:
    """Save arrays as an uncompressed ``.npz`` atomically (read back with ``np.load(path, allow_pickle=False)``)."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[str]:
    """Yield a temporary folder beside ``path`` that replaces ``path`` when the block exits without error; on error it
    is removed and ``path`` is left as it was."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
    try:
        yield staging
        if os.path.exists(path):
            # rename(2) cannot replace a non-empty folder: move the old one aside first, then drop it.
            retired = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
            os.replace(path, os.path.join(retired, name))
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def fsync_path(path: PathLike) -> None:
    """Flush a file, or a folder's entries, to disk (where the file system lets a folder be opened)."""
    path = os.fspath(path)
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else 0)
    try:
        handle = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def fsync_tree(directory: PathLike) -> None:
    """Flush every file and folder under ``directory`` (and the folder itself) to disk."""
    for root, _, files in os.walk(directory):
        for name in files:
            fsync_path(os.path.join(root, name))
        fsync_path(root)


def write_json_durably(path: PathLike, payload: Any, indent: int = 1, sort_keys: bool = True) -> None:
    """Atomically write JSON and flush the containing folder too (markers and journals that crash recovery reads)."""
    atomic_write_text(path, json.dumps(payload, indent=indent, sort_keys=sort_keys) + "\n")
    fsync_path(os.path.dirname(os.path.abspath(os.fspath(path))))
