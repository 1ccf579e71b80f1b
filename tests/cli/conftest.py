"""The command-line tests run on the session's tiny untrained model folder (16x16 pixels, 4x4 tokens, 3 frames)."""

import os

import numpy as np
import PIL.Image
import pytest

from nuwa_hf import media

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def cli_model_folder(tiny_model_folder):
    return tiny_model_folder  # the same folder the pipeline tests use (tests/conftest.py), built once


@pytest.fixture(scope="session")
def cli_folder_without_vqgan(folder_without_vqgan):
    return folder_without_vqgan


@pytest.fixture(autouse=True)
def one_thread(single_threaded_torch):
    yield


INPUT_SIZE = 16  # pixels of the input files, the tiny folder's frame size


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder of input files for the command lines: image.png, clip.gif (2 frames), frames/ (the same frames as
    PNGs), sketch.png, sketch_video.npy (3 frames), small_mask.png (the wrong size), an empty folder and a_file."""
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    size = INPUT_SIZE
    frames = [PIL.Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(2)]
    frames[0].save(folder / "image.png")
    media.save_gif(frames, folder / "clip.gif")
    (folder / "frames").mkdir()
    for index, frame in enumerate(frames):
        frame.save(folder / "frames" / f"{index:03d}.png")
    sketch = np.zeros((size, size), dtype=np.uint8)
    sketch[8:] = 2
    PIL.Image.fromarray(sketch).save(folder / "sketch.png")
    np.save(folder / "sketch_video.npy", rng.integers(0, 6, (3, size, size)))
    (folder / "empty").mkdir()
    PIL.Image.new("L", (5, 7), 255).save(folder / "small_mask.png")
    (folder / "a_file").write_text("not a folder")
    return folder
