"""Property-based bad input for ``nuwa-hf generate`` (issue 20): random flags and values; every run exits 0 with the
files it printed, or 2 / 3 with a one-line ``nuwa-hf: error`` / argparse message, never 1 (a bug) or a traceback, within
a time limit. Derandomized, 25 examples."""

import collections
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nuwa_hf.cli import main

OUTCOMES = collections.Counter()
VALUES = ["1", "1", "2", "2", "1", "0", "-1", "0.5", "1e9", "100000", "nan", "inf", "abc", ""]
NUMERIC_FLAGS = ["--num-samples", "--num-frames", "--num-condition-frames", "--num-frames-to-predict", "--temperature",
                 "--guidance-scale", "--top-k", "--top-p", "--seed", "--batch-size", "--fps", "--upscale",
                 "--num-candidates"]
TASKS = ["T2I", "T2I", "T2I", "T2V", "T2V", "V2V", "S2I", "I2I", "TI2I", "S2V", "TV2V", "text-to-sound"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("random-cli-inputs")
    PIL.Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(folder / "image.png")
    PIL.Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(folder / "sketch.png")
    np.save(folder / "sketch_video.npy", np.zeros((2, 16, 16), dtype=np.int64))
    return folder


@st.composite
def command_lines(draw, files):
    argv = ["generate", "--task", draw(st.sampled_from(TASKS))]
    for flag, name in (("--prompt", None), ("--image", "image.png"), ("--video", "image.png"),
                       ("--sketch", draw(st.sampled_from(["sketch.png", "sketch_video.npy", "missing.png"])))):
        for _ in range(draw(st.sampled_from([1, 1, 1, 0, 2] if name is None else [0, 0, 0, 1, 2]))):
            argv += [flag, draw(st.sampled_from(["a red 3", "", "the digit 3"])) if name is None else str(files / name)]
    if draw(st.sampled_from([False, False, True])):
        argv += ["--mask", draw(st.sampled_from(["bottom half", "0,0,8,8", "nowhere", "1,2"]))]
    for flag in draw(st.lists(st.sampled_from(NUMERIC_FLAGS), max_size=2, unique=True)):
        argv += [flag, draw(st.sampled_from(VALUES))]
    return argv


def test_random_command_lines_exit_cleanly(cli_model_folder, files, capsys):
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(argv=command_lines(files))
    def property_(argv):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            code = main([*argv, "--model", cli_model_folder, "--out", out, "--quiet", "--no-mp4"])
            seconds = time.perf_counter() - started
            captured = capsys.readouterr()
            assert seconds < 30, f"{argv} took {seconds:.1f} s"
            assert code in (0, 2, 3), (argv, code, captured.err)
            assert "Traceback" not in captured.err
            if code == 0:
                printed = [Path(line) for line in captured.out.splitlines()]
                assert printed and all(p.is_file() for p in printed)
            else:
                assert "error:" in captured.err and not captured.out
            OUTCOMES[f"exit {code}"] += 1

    property_()
    print(f"\nrandom command lines: {sum(OUTCOMES.values())} tried; {dict(sorted(OUTCOMES.items()))}")
    assert OUTCOMES["exit 0"] and OUTCOMES["exit 2"]
