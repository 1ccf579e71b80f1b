"""Files nuwa-hf writes, written safely, and the one cache folder it keeps them in.

Atomic writes: the data goes to a temporary file (or folder) beside the destination (same file system, so the rename
is atomic), is flushed to disk, and then replaces the destination with ``os.replace``. A reader never sees half a file,
even when the writer is killed midway (Ctrl-C included), and nothing temporary is left behind on failure.

A full disk (or a process file-size limit) while writing raises :class:`WriteSpaceError`, an ``OSError`` that names
the folder, the space the write needed and the space free; the temporary file or folder is removed, so nothing
half-written is left where a later load would take it.

Whole folders (``save_pretrained``) are written with :func:`staged_folder`: into a hidden folder beside the
destination, then published with one rename (a new folder) or, when the destination already holds files, entry by
entry under a journal that :func:`finish_folder_publish` completes after a crash (loading calls it), so a folder is
always entirely the old save or entirely the new one.

The cache folder is ``$NUWA_HF_CACHE`` when set, else ``~/.cache/nuwa_hf``: fetched data and helper weights, generated
worlds, trained scorers. Nothing in it is committed to the repository.
"""

from __future__ import annotations

import contextlib
import errno
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
# A full disk, named

_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
# How libraries that do not raise OSError report the same (safetensors' Rust io errors, torch.save's stream writer).
_SPACE_WORDS = ("no space left", "file too large", "disk quota", "os error 28", "os error 27", "os error 122",
                "file write failed", "unexpected pos")  # the last two: torch.save when a write fails


class WriteSpaceError(OSError):
    """A write ran out of space (``ENOSPC``, a quota, or the process's file-size limit, ``EFBIG``).

    The message names the folder, the space the write needed and what is free; ``errno`` is the original one, so
    ``except OSError`` still catches it. Whatever was half-written has been removed."""


def is_out_of_space(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) says the disk or a size limit is full."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, OSError) and error.errno in _SPACE_ERRNOS:
            return True
        if not isinstance(error, WriteSpaceError) and any(word in str(error).lower() for word in _SPACE_WORDS):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def format_size(size: Optional[float]) -> str:
    """Bytes in words: ``"512 bytes"``, ``"3.2 MB"``, ``"1.4 GB"`` (decimal units)."""
    if size is None:
        return "an unknown amount"
    size = float(size)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} bytes"


def _written_size(path: Optional[PathLike]) -> int:
    if path is None or not os.path.lexists(path):
        return 0
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _file_size_limit() -> Optional[int]:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def space_error(error: BaseException, folder: PathLike, what: str, needed: Optional[int] = None,
                written: Optional[PathLike] = None) -> WriteSpaceError:
    """The :class:`WriteSpaceError` for ``error``: ``what`` could not be written into ``folder``.

    ``needed`` is the size the write needed when known; else what had been written when it failed (measured on
    ``written``, the temporary file or folder) is given as a lower bound."""
    folder = os.path.abspath(os.fspath(folder))
    so_far = _written_size(written)
    if needed is not None:
        need = f"it needs about {format_size(max(needed, so_far))}"
    elif so_far:
        need = f"it needs more than the {format_size(so_far)} written when the space ran out"
    else:
        need = "it needs more space than is left"
    probe = folder
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        free = f"{format_size(shutil.disk_usage(probe).free)} free there"
    except OSError:
        free = "free space unknown"
    code = getattr(error, "errno", None) if isinstance(error, OSError) else None
    text = str(error).lower()
    limit = _file_size_limit()
    if code == errno.EFBIG or "too large" in text or "os error 27" in text:
        cause = f"the file-size limit of this process ({format_size(limit)}, `ulimit -f`) was reached ({free})"
        code = errno.EFBIG
    elif code is None and "no space" not in text and "os error 28" not in text and limit is not None:
        # torch.save says only that a write failed: with a file-size limit set, name both causes
        cause = (f"the disk is full or the file-size limit of this process ({format_size(limit)}, `ulimit -f`) was "
                 f"reached ({free})")
    else:
        cause = "the disk is full (" + free + ")"
        code = code if code in _SPACE_ERRNOS else errno.ENOSPC
    return WriteSpaceError(
        code or errno.ENOSPC,
        f"Could not write {what} into {folder}: {cause}; {need}. Free some space (or raise the limit) or write "
        "somewhere else, then run again. Nothing half-written was left there.",
    )


# --------------------------------------------------------------------------------------------------------------------
# Atomic writes


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _remove_orphans(folder: PathLike, prefix: str, suffix: str = "") -> None:
    """Remove temporaries ``<prefix><pid>-...<suffix>`` in ``folder`` left by processes that are gone (killed
    mid-write: a SIGKILL runs no clean-up). Those of live processes (a concurrent writer) are left alone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix) or not name.endswith(suffix):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)


@contextlib.contextmanager
def atomic_output(path: PathLike, needed: Optional[int] = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``, else it is removed.

    A full disk raises :class:`WriteSpaceError` (``needed``: the expected size in bytes, for its message). Temporaries
    of earlier writers of the same name that were killed are removed first.

    Example:
        >>> with atomic_output("out/a.png") as temporary:
        ...     image.save(temporary, format="PNG")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.stem}.tmp-"
    _remove_orphans(path.parent, prefix, f"{path.suffix}.tmp")
    handle, temporary = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", suffix=f"{path.suffix}.tmp", dir=path.parent)
    os.close(handle)
    try:
        try:
            yield Path(temporary)
            with open(temporary, "rb+") as written:
                os.fsync(written.fileno())
        except Exception as error:
            if is_out_of_space(error) and not isinstance(error, WriteSpaceError):
                raise space_error(error, path.parent, path.name, needed, temporary) from error
            raise
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
    with atomic_output(path, needed=len(data)) as temporary:
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


# --------------------------------------------------------------------------------------------------------------------
# Whole folders that may already hold other files (save_pretrained)

PUBLISH_JOURNAL = ".nuwa-publish-journal.json"
# Weight files of an earlier save that a new one may not overwrite by name (other shard counts, another format):
# removed when a new save with weights is published, so that a folder never pairs new weights with an old index.
OLD_WEIGHT_PREFIXES = ("model.safetensors", "model-", "pytorch_model", "checksums.json")


def _staging_prefix(name: str) -> str:
    return f".{name}.saving-"


@contextlib.contextmanager
def staged_folder(path: PathLike, what: str = "the files", needed: Optional[int] = None) -> Iterator[str]:
    """Yield an empty hidden folder beside ``path`` to save into; when the block succeeds its entries are published
    into ``path`` (:func:`publish_folder`), else it is removed and ``path`` is left as it was.

    Other files already in ``path`` stay (a run folder's checkpoints, a README); files of the same names are replaced,
    and old weight files the new save does not have are removed. A full disk raises :class:`WriteSpaceError` naming
    ``path``, ``what`` and ``needed``. What killed writers left (staging folders, an unfinished publish) is cleared or
    finished first."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    finish_folder_publish(path)
    _remove_orphans(parent, _staging_prefix(name))
    staging = tempfile.mkdtemp(prefix=f"{_staging_prefix(name)}{os.getpid()}-", dir=parent)
    try:
        try:
            yield staging
            fsync_tree(staging)
        except Exception as error:
            if is_out_of_space(error):
                raise space_error(error, path, what, needed, staging) from error
            raise
        publish_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_folder(staged: PathLike, target: PathLike) -> None:
    """Move every entry of the complete folder ``staged`` into ``target`` so that ``target`` is never half old, half
    new. A missing or empty ``target`` is replaced with one rename; otherwise a journal
    (``<target>/.nuwa-publish-journal.json``, written before the first move) lets :func:`finish_folder_publish` finish
    the moves after a crash."""
    staged, target = os.path.abspath(os.fspath(staged)), os.path.abspath(os.fspath(target))
    parent = os.path.dirname(target)
    if os.path.isdir(target) and not os.path.islink(target) and not os.listdir(target):
        with contextlib.suppress(OSError):
            os.rmdir(target)
    if not os.path.lexists(target):
        os.rename(staged, target)
        fsync_path(parent)
        return
    entries = sorted(os.listdir(staged))
    saves_weights = any(name.startswith(OLD_WEIGHT_PREFIXES) for name in entries)  # a processor save keeps them
    stale = sorted(
        name for name in os.listdir(target)
        if saves_weights and name.startswith(OLD_WEIGHT_PREFIXES) and name not in entries
        and os.path.isfile(os.path.join(target, name))
    )
    journal = {"staged": os.path.relpath(staged, target), "entries": entries, "remove": stale}
    write_json_durably(os.path.join(target, PUBLISH_JOURNAL), journal)
    finish_folder_publish(target)


def finish_folder_publish(target: PathLike) -> bool:
    """Finish a :func:`publish_folder` into ``target`` that was interrupted (its journal is there); True if one was.

    Called by :func:`staged_folder` and when a model or processor folder is loaded, so a crash mid-publish never needs
    a hand step."""
    target = os.path.abspath(os.fspath(target))
    journal_path = os.path.join(target, PUBLISH_JOURNAL)
    try:
        with open(journal_path, encoding="utf-8") as handle:
            journal = json.load(handle)
        staged = os.path.normpath(os.path.join(target, journal["staged"]))
        entries, stale = [str(e) for e in journal["entries"]], [str(e) for e in journal.get("remove", [])]
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        os.remove(journal_path)  # never completely written (it is written atomically): no move had started
        return False
    if any(os.sep in name or name in ("", ".", "..") for name in entries + stale):
        os.remove(journal_path)  # not ours
        return False
    parent = os.path.dirname(target)
    for name in entries:
        source, destination = os.path.join(staged, name), os.path.join(target, name)
        if not os.path.lexists(source):
            continue  # moved before the interruption
        with contextlib.suppress(FileNotFoundError):  # another process finishing the same publish got there first
            if os.path.isdir(source) and not os.path.islink(source):
                if os.path.lexists(destination):
                    retired = tempfile.mkdtemp(
                        prefix=f"{_staging_prefix(os.path.basename(target))}{os.getpid()}-old-", dir=parent)
                    os.rename(destination, os.path.join(retired, name))
                os.rename(source, destination)
            else:
                os.replace(source, destination)
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(target, name))
    fsync_path(target)
    with contextlib.suppress(FileNotFoundError):
        os.remove(journal_path)
    fsync_path(target)
    if os.path.basename(staged).startswith(_staging_prefix(os.path.basename(target))):
        shutil.rmtree(staged, ignore_errors=True)
    _remove_orphans(parent, _staging_prefix(os.path.basename(target)))
    for name in os.listdir(parent):  # folders this process moved aside above
        if name.startswith(f"{_staging_prefix(os.path.basename(target))}{os.getpid()}-old-"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    return True


# --------------------------------------------------------------------------------------------------------------------
# Checksums of cached files: damage on disk is detected, and the file rebuilt


def checksum_path(path: PathLike) -> Path:
    """Where the sha256 of ``path`` is kept: ``<path>.sha256`` beside it."""
    return Path(os.fspath(path) + ".sha256")


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def record_checksum(path: PathLike) -> str:
    """Write the sha256 of the complete file ``path`` beside it (atomically); returns the digest."""
    digest = sha256_file(path)
    atomic_write_text(checksum_path(path), digest + "\n")
    return digest


def checksum_problem(path: PathLike) -> Optional[str]:
    """None when ``path`` matches its recorded sha256; else what is wrong (no checksum, unreadable, damaged)."""
    try:
        expected = checksum_path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "has no recorded checksum (the run that wrote it stopped before recording one)"
    except (OSError, UnicodeDecodeError) as error:
        return f"has an unreadable checksum file ({error})"
    actual = sha256_file(path)
    if actual != expected:
        return f"does not match its recorded sha256 (expected {expected[:12]}..., found {actual[:12]}...): it is damaged"
    return None


def remove_with_checksum(path: PathLike) -> None:
    """Delete ``path`` and its recorded checksum (either may be missing)."""
    for each in (checksum_path(path), Path(path)):
        with contextlib.suppress(FileNotFoundError):
            os.remove(each)


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
