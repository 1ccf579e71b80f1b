"""Real photographic textures (brick, grass, gravel) read out of the scikit-image wheel, never installed.

scikit-image ships these three 512x512 grayscale photographs as ``skimage/data/{brick,grass,gravel}.png``. Installing
scikit-image would add scipy, networkx, tifffile and more for three small files, so the wheel of one exact build is
downloaded with pip (platform pinned so every machine gets the same file and hash), checked, and the PNGs are decoded
into ``<cache>/textures/textures.npz``.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image

from ..file_io import cache_lock, cache_subdir
from .registry_wheels import WheelSpec, load_checked_npz, read_wheel_members, save_checked_npz

SCIKIT_IMAGE_WHEEL = WheelSpec(
    name="scikit-image",
    version="0.26.0",
    filename="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    # Only data files are read, so the build does not have to match this machine: always take the same one.
    pip_target_args=(
        "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
        "--implementation", "cp", "--abi", "cp311",
    ),
)
TEXTURE_NAMES = ("brick", "grass", "gravel")
TEXTURE_SIZE = 512


def _npz_path():
    return cache_subdir("textures") / "textures.npz"


def fetch_textures(force: bool = False) -> str:
    """Make sure ``<cache>/textures/textures.npz`` exists (downloads the 13.7 MB wheel once); return its path."""
    path = _npz_path()
    with cache_lock("textures"):
        if force or not path.exists():
            members = {name: f"skimage/data/{name}.png" for name in TEXTURE_NAMES}
            files = read_wheel_members(SCIKIT_IMAGE_WHEEL, tuple(members.values()))
            arrays = {}
            for name, member in members.items():
                with Image.open(io.BytesIO(files[member])) as image:
                    arrays[name] = np.asarray(image.convert("L"), dtype=np.uint8)
                if arrays[name].shape != (TEXTURE_SIZE, TEXTURE_SIZE):
                    raise ValueError(f"texture {name} is {arrays[name].shape}, expected 512x512.")
            save_checked_npz(path, **arrays)
            _load_cached.cache_clear()
    return str(path)


@functools.lru_cache(maxsize=1)
def _load_cached() -> dict[str, np.ndarray]:
    textures = load_checked_npz(_npz_path(), TEXTURE_NAMES, fetch_textures)  # damaged on disk: fetched again
    for texture in textures.values():
        texture.setflags(write=False)
    return textures


def load_textures() -> dict[str, np.ndarray]:
    """The three textures by name: uint8 ``(512, 512)`` grayscale arrays, read-only and shared within the process."""
    return dict(_load_cached())


def crop_texture(
    texture: np.ndarray,
    height: int,
    width: int,
    rng: np.random.Generator,
    region: tuple[slice, slice] | None = None,
) -> np.ndarray:
    """A random crop of ``texture`` resampled to ``(height, width)``, as float32 in [0, 1].

    The crop side is drawn between 0.5x and 1x of ``min(2 * max(height, width), region side)``, so small outputs see
    the texture at several scales and the result is usually a downsampling (sharp), and the crop stays inside
    ``region`` (rows, cols of the 512x512 texture) so that splits can use disjoint parts of each photograph.
    """
    rows, cols = region if region is not None else (slice(0, TEXTURE_SIZE), slice(0, TEXTURE_SIZE))
    area = texture[rows, cols]
    largest = min(2 * max(height, width), area.shape[0], area.shape[1])
    side = max(8, int(rng.uniform(0.5, 1.0) * largest))
    top = int(rng.integers(0, area.shape[0] - side + 1))
    left = int(rng.integers(0, area.shape[1] - side + 1))
    patch = Image.fromarray(np.ascontiguousarray(area[top : top + side, left : left + side]))
    resized = patch.resize((width, height), Image.Resampling.BILINEAR if side < max(height, width) else Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.float32) / 255.0
