"""The CLIP BPE vocabulary (the paper's lower-cased 49,408-token BPE), fetched from a registry package on first use.

No model hub is reachable on this project's machines, but the vocabulary file `bpe_simple_vocab_16e6.txt.gz` (MIT)
ships inside the `open-clip-torch` wheel on PyPI. On first use the wheel is downloaded with `pip download --no-deps`
(nothing is installed), the file is read out of the zip, checked against a pinned SHA-256 and cached; the wheel is
thrown away. The cache folder is `$NUWA_HF_CACHE` or `~/.cache/nuwa_hf`.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..file_io import atomic_write_bytes, cache_root


CLIP_VOCAB_PACKAGE = "open-clip-torch"
CLIP_VOCAB_PACKAGE_VERSION = "3.3.0"
CLIP_VOCAB_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
CLIP_VOCAB_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
# SHA-256 of the DECOMPRESSED text: the gzip wrapper differs between packages that ship the same vocabulary.
CLIP_VOCAB_TEXT_SHA256 = "67603cfda2e032ad77b5f8808af37789d590db664b26df8705d2bf8b3c553fc8"
# CLIP keeps the first 49152 - 256 - 2 merges of the file (after its version header line).
CLIP_NUM_MERGES = 49152 - 256 - 2


def _verified_text(gz_bytes: bytes, origin: str) -> str:
    try:
        text = gzip.decompress(gz_bytes)
    except (OSError, EOFError) as error:
        raise ValueError(f"{origin} is not a valid gzip file ({error}); delete it and retry.") from None
    digest = hashlib.sha256(text).hexdigest()
    if digest != CLIP_VOCAB_TEXT_SHA256:
        raise ValueError(
            f"{origin} has SHA-256 {digest} (decompressed) but the CLIP BPE vocabulary has {CLIP_VOCAB_TEXT_SHA256}; "
            "the file is corrupt or a different vocabulary. Delete it and retry."
        )
    return text.decode("utf-8")


def _download_vocabulary(target: Path, timeout: float) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".wheel-") as download_dir:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            download_dir,
            f"{CLIP_VOCAB_PACKAGE}=={CLIP_VOCAB_PACKAGE_VERSION}",
        ]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise OSError(f"`pip download {CLIP_VOCAB_PACKAGE}` took longer than {timeout:.0f} s.") from None
        wheels = glob.glob(os.path.join(download_dir, "*.whl"))
        if completed.returncode != 0 or not wheels:
            raise OSError(
                f"Could not download the {CLIP_VOCAB_PACKAGE}=={CLIP_VOCAB_PACKAGE_VERSION} wheel that carries the "
                f"CLIP vocabulary (pip exit code {completed.returncode}): {completed.stderr.strip()[-500:]}\n"
                f"Fetch it elsewhere (`pip download --no-deps {CLIP_VOCAB_PACKAGE}=={CLIP_VOCAB_PACKAGE_VERSION}`), "
                f"take {CLIP_VOCAB_MEMBER} out of it and pass `vocab_path=` or copy it to {target}."
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            try:
                payload = wheel.read(CLIP_VOCAB_MEMBER)
            except KeyError:
                raise OSError(f"{os.path.basename(wheels[0])} does not contain {CLIP_VOCAB_MEMBER}.") from None
        _verified_text(payload, f"{CLIP_VOCAB_MEMBER} of {os.path.basename(wheels[0])}")
        atomic_write_bytes(target, payload)


def clip_vocabulary_path(
    cache_dir: str | os.PathLike | None = None, download: bool = True, timeout: float = 300.0
) -> Path:
    """
    Path of the cached CLIP BPE vocabulary, downloading it on first use.

    Args:
        cache_dir (`str`, *optional*): cache folder (default: `nuwa_hf.file_io.cache_root()`).
        download (`bool`, defaults to `True`): fetch the wheel when the file is not cached yet.
        timeout (`float`): seconds allowed for `pip download`.

    Raises:
        FileNotFoundError: not cached and `download=False`.
        OSError: the download failed (the message says how to supply the file by hand).
    """
    target = Path(cache_dir or cache_root()) / "clip" / CLIP_VOCAB_FILENAME
    if not target.is_file():
        if not download:
            raise FileNotFoundError(
                f"The CLIP vocabulary is not cached at {target}; call with download=True or pass `vocab_path=`."
            )
        _download_vocabulary(target, timeout)
    return target


def read_clip_merges(vocab_path: str | os.PathLike) -> list[tuple[str, str]]:
    """
    The BPE merges CLIP uses, read from `bpe_simple_vocab_16e6.txt.gz` (checked against the pinned SHA-256).

    Returns:
        `list[tuple[str, str]]` of length 48,894, in merge-priority order.
    """
    vocab_path = Path(vocab_path)
    if not vocab_path.is_file():
        raise FileNotFoundError(f"CLIP vocabulary file {vocab_path} does not exist.")
    text = _verified_text(vocab_path.read_bytes(), str(vocab_path))
    lines = text.split("\n")[1 : CLIP_NUM_MERGES + 1]
    return [tuple(line.split()) for line in lines]
