"""The one I/O module: atomic files and folders (nothing half-written, nothing left behind) and the cache folder."""

import json
import math
import os

import pytest

from nuwa_hf import file_io


def test_atomic_output_replaces_only_on_success(tmp_path):
    target = tmp_path / "out" / "a.txt"
    file_io.atomic_write_text(target, "first")
    with pytest.raises(RuntimeError):
        with file_io.atomic_output(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed midway")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"], "no temporary file is left"
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask(), "the usual permissions, not mkstemp's 0600"


def test_json_npz_and_bytes(tmp_path):
    file_io.atomic_write_json(tmp_path / "a.json", {"b": 1, "a": [1.5]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": [1.5], "b": 1}
    with pytest.raises(ValueError):
        file_io.atomic_write_json(tmp_path / "nan.json", {"x": math.nan}, allow_nan=False)
    assert not (tmp_path / "nan.json").exists()
    np = pytest.importorskip("numpy")
    file_io.atomic_save_npz(tmp_path / "a.npz", x=np.arange(3))
    assert np.load(tmp_path / "a.npz", allow_pickle=False)["x"].tolist() == [0, 1, 2]
    file_io.write_json_durably(tmp_path / "marker.json", {"step": 3})
    assert json.loads((tmp_path / "marker.json").read_text()) == {"step": 3}


def test_atomic_directory_swaps_whole_folders(tmp_path):
    folder = tmp_path / "checkpoint"
    with file_io.atomic_directory(folder) as staging:
        (open(os.path.join(staging, "w.bin"), "wb")).close()
    with pytest.raises(KeyError):
        with file_io.atomic_directory(folder) as staging:
            (open(os.path.join(staging, "half.bin"), "wb")).close()
            raise KeyError("crash")
    assert sorted(os.listdir(folder)) == ["w.bin"], "a failed save leaves the old folder as it was"
    with file_io.atomic_directory(folder) as staging:
        (open(os.path.join(staging, "new.bin"), "wb")).close()
    assert sorted(os.listdir(folder)) == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_cache_root_override_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NUWA_HF_CACHE", str(tmp_path / "env"))
    assert file_io.cache_root() == tmp_path / "env" and (tmp_path / "env").is_dir()
    assert file_io.cache_root(tmp_path / "given") == tmp_path / "given"
    assert file_io.cache_subdir("worlds") == tmp_path / "env" / "worlds"
    with file_io.cache_lock("x"):
        assert (tmp_path / "env" / "locks" / "x.lock").exists()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
