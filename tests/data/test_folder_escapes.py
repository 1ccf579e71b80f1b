"""Training folders from strangers (issue 30, item 4): a metadata.jsonl naming '../../' paths, absolute paths or
symlinks that leave the folder is refused with its line number before anything is read, by all three loaders."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from nuwa_hf.data import load_image_folder, load_sketch_pairs, load_video_folder


@pytest.fixture
def stranger(tmp_path):
    """A folder with two good images and, outside it, a secret file and a secret folder."""
    folder = tmp_path / "folder"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / name)
    (tmp_path / "secret").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "secret" / "key.png")
    return folder


def write(folder, names, key="file_name"):
    rows = [{key: name, "text": "x", **({"sketch_file_name": "a.png"} if key == "file_name" else {})}
            for name in names]
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


CASES = {
    "dot-dot": (lambda f: "../secret/key.png", "climbs out of the folder with '..'"),
    "deep dot-dot": (lambda f: "../../../../../../etc/passwd", "climbs out of the folder with '..'"),
    "absolute": (lambda f: str(f.parent / "secret" / "key.png"), "is an absolute path"),
    "symlinked file": (lambda f: os.symlink(f.parent / "secret" / "key.png", f / "link.png") or "link.png",
                       "symlink that leads outside"),
    "symlinked folder": (lambda f: os.symlink(f.parent / "secret", f / "linked") or "linked/key.png",
                         "symlink that leads outside"),
    "control characters": (lambda f: "a.png\n", "control characters"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("loader", ["images", "videos", "sketch pairs"])
def test_paths_leaving_the_folder_are_refused_with_the_line_number(case, loader, stranger):
    make, expected = CASES[case]
    write(stranger, ["a.png", make(stranger), "b.png"])  # the bad path is on line 2
    load = {"images": load_image_folder, "videos": load_video_folder, "sketch pairs": load_sketch_pairs}[loader]
    with pytest.raises(ValueError) as caught:
        load(stranger)
    message = str(caught.value)
    assert "metadata.jsonl:2" in message and expected in message
    assert "copy the file into the folder" in message


def test_a_sketch_path_leaving_the_folder_is_refused_too(stranger):
    rows = [{"file_name": "a.png", "sketch_file_name": "a.png"},
            {"file_name": "b.png", "sketch_file_name": "../secret/key.png"}]
    (stranger / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError, match="metadata.jsonl:2: sketch_file_name='../secret/key.png' climbs out"):
        load_sketch_pairs(stranger)


def test_a_link_out_that_metadata_does_not_name_is_refused(stranger):
    os.symlink(stranger.parent / "secret" / "key.png", stranger / "c.png")  # imagefolder would scan it
    write(stranger, ["a.png", "b.png"])
    with pytest.raises(ValueError, match="c.png is a symlink that leads outside"):
        load_image_folder(stranger)


def test_links_and_dot_dots_that_stay_inside_are_fine(stranger):
    (stranger / "sub").mkdir()
    os.symlink(stranger / "a.png", stranger / "sub" / "alias.png")
    write(stranger, ["a.png", "sub/../b.png"])
    assert len(load_image_folder(stranger)) == 2
