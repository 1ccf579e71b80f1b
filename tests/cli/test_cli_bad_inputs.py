"""Bad input to ``nuwa-hf generate`` (issue 20): no data lost, checks before work, same rules as the API.

Each row of the table is a command line, the exit code it must get and a piece of its message; every one of them must
fail before anything is generated (the output folder gets no file), and inputs are never touched.
"""

import os
import time
from pathlib import Path

import PIL.Image
import pytest

from nuwa_hf import media
from nuwa_hf.cli import main
from nuwa_hf.pipelines import NuwaTextToImagePipeline

SIZE = 16


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


T2I = ["generate", "--task", "T2I", "--prompt", "a red 3"]
T2V = ["generate", "--task", "T2V", "--prompt", "the digit 3 is moving up then down"]

# (row id, arguments (after the model; "{x}" = the inputs folder's x, "<out>" = a fresh output folder), exit code,
# piece of the message)
CLI_ROWS = [
    ("--out is a file", [*T2I, "--out", "{a_file}"], 2, "is a file, not a folder"),
    ("--out under a file", [*T2I, "--out", "{a_file}/sub"], 2, "which is a file"),
    ("--out is the input frames folder", ["generate", "--task", "V2V", "--video", "{frames}", "--out", "{frames}"], 2,
     "is the input folder"),
    ("--fps 0.00001", [*T2V, "--fps", "0.00001", "--out", "<out>"], 2, "fps must be a number between 0.01 and 240"),
    ("--fps nan", [*T2V, "--fps", "nan", "--out", "<out>"], 2, "fps must be"),
    ("--fps 1000", [*T2V, "--fps", "1000", "--out", "<out>"], 2, "fps must be"),
    ("--upscale 2000", [*T2I, "--upscale", "2000", "--out", "<out>"], 2, "--upscale 2000 would write pictures"),
    ("T2V --num-frames 100000", [*T2V, "--num-frames", "100000", "--out", "<out>"], 2, "--allow-large"),
    ("V2V --num-frames-to-predict 100000", ["generate", "--task", "V2V", "--video", "{clip.gif}",
                                             "--num-frames-to-predict", "100000", "--out", "<out>"], 2, "limit of 12"),
    ("--num-samples 1000", [*T2I, "--num-samples", "1000", "--out", "<out>"], 2, "limit of 256 per input"),
    ("--guidance-scale 0", [*T2I, "--guidance-scale", "0", "--out", "<out>"], 2,
     "guidance_scale must be a finite number >= 1"),
    ("--guidance-scale -1", [*T2I, "--guidance-scale", "-1", "--out", "<out>"], 2, "guidance_scale must be"),
    ("--guidance-scale nan", [*T2I, "--guidance-scale", "nan", "--out", "<out>"], 2, "guidance_scale must be"),
    ("--guidance-scale high", [*T2I, "--guidance-scale", "high", "--out", "<out>"], 2,
     "guidance_scale must be a finite number >= 1 (1 = no guidance; > 1 follows the condition more closely), got 'high'"),
    ("--temperature inf", [*T2I, "--temperature", "inf", "--out", "<out>"], 2, "temperature must be a finite number > 0"),
    ("--temperature 0", [*T2I, "--temperature", "0", "--out", "<out>"], 2,
     "temperature must be a finite number > 0, got 0.0 (use --greedy for greedy decoding)"),
    ("--top-p 1.5", [*T2I, "--top-p", "1.5", "--out", "<out>"], 2, "top_p must be a number in (0, 1]"),
    ("--top-k -1", [*T2I, "--top-k", "-1", "--out", "<out>"], 2, "top_k must be an integer >= 0"),
    ("--seed -1", [*T2I, "--seed", "-1", "--out", "<out>"], 2, "seed must be an integer in [0, "),
    ("--batch-size 0", [*T2I, "--batch-size", "0", "--out", "<out>"], 2, "batch_size must be an integer >= 1"),
    ("2 prompts, 3 images", ["generate", "--task", "TI2I", "--image", "{image.png}", "--image", "{image.png}",
                             "--image", "{image.png}", "--prompt", "a", "--prompt", "b", "--mask", "top half",
                             "--out", "<out>"], 2, "repeat each input flag once per input"),
    ("missing second image", ["generate", "--task", "I2I", "--image", "{image.png}", "--image", "{nope.png}",
                              "--out", "<out>"], 2, "does not exist"),
]


def _fill(argv, inputs, out):
    filled = []
    for value in argv:
        if value == "<out>":
            value = str(out)
        elif value.startswith("{"):
            name, rest = value[1:].split("}", 1)
            value = str(inputs / name) + rest
        filled.append(value)
    return filled


@pytest.mark.parametrize("row", CLI_ROWS, ids=[row[0] for row in CLI_ROWS])
def test_cli_bad_input_fails_before_work(row, cli_model_folder, inputs, tmp_path, capsys, monkeypatch):
    _, argv, code, message = row
    calls = []
    monkeypatch.setattr(NuwaTextToImagePipeline, "_generate_group",
                        lambda *a, **k: calls.append(1) or pytest.fail("generated despite bad input"))
    before = {p: p.stat().st_mtime_ns for p in inputs.rglob("*")}
    out = tmp_path / "out"
    got, stdout, stderr = run([*_fill(argv, inputs, out), "--model", cli_model_folder, "--quiet"], capsys)
    assert got == code, stderr
    assert message in stderr
    assert "Traceback" not in stderr and not stdout
    assert not out.exists() or not list(out.iterdir()), "nothing is written"
    assert {p: p.stat().st_mtime_ns for p in inputs.rglob("*")} == before, "inputs are untouched"


def _generate(folder, out, capsys, *extra):
    return run([*T2I, "--prompt", "a blue 8", "--model", folder, "--out", out, "--quiet", "--seed", "2", *extra], capsys)


def test_a_rerun_never_replaces_earlier_outputs_unless_asked(cli_model_folder, tmp_path, capsys):
    code, stdout, _ = _generate(cli_model_folder, tmp_path, capsys)
    assert code == 0
    written = [Path(line) for line in stdout.splitlines()]
    assert len(written) == 2
    stamps = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in written}
    time.sleep(0.01)
    code, stdout, stderr = _generate(cli_model_folder, tmp_path, capsys, "--seed", "3")
    assert code == 2 and "2 output file(s) exist already" in stderr and "--overwrite" in stderr and not stdout
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in written} == stamps
    code, stdout, _ = _generate(cli_model_folder, tmp_path, capsys, "--seed", "3", "--overwrite")
    assert code == 0 and [Path(line) for line in stdout.splitlines()] == written
    assert any(p.read_bytes() != stamps[p][0] for p in written), "--overwrite replaced them (another seed)"
    code, _, _ = _generate(cli_model_folder, tmp_path, capsys, "--name", "second")
    assert code == 0 and len(list(tmp_path.glob("second_*.png"))) == 2


def test_an_input_inside_the_output_folder_is_never_overwritten(cli_model_folder, inputs, tmp_path, capsys):
    target = tmp_path / "i2i_00_00.png"
    target.write_bytes((inputs / "image.png").read_bytes())
    original = target.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, stderr = run(["generate", "--task", "I2I", "--image", target, "--model", cli_model_folder,
                               "--out", tmp_path, "--quiet", *extra], capsys)
        assert code == 2 and "would be written over an input" in stderr
        assert target.read_bytes() == original


def test_ctrl_c_keeps_the_outputs_that_finished(cli_model_folder, tmp_path, capsys, monkeypatch):
    original = NuwaTextToImagePipeline.__call__
    calls = []

    def interrupted_on_the_second_input(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(NuwaTextToImagePipeline, "__call__", interrupted_on_the_second_input)
    code, stdout, stderr = run([*T2I, "--prompt", "a blue 8", "--prompt", "a green 1", "--model", cli_model_folder,
                                "--out", tmp_path, "--quiet"], capsys)
    assert code == 130
    assert "interrupted: 1 complete file(s) of 3" in stderr
    assert [Path(line).name for line in stdout.splitlines()] == ["t2i_00_00.png"]
    with PIL.Image.open(tmp_path / "t2i_00_00.png") as image:
        assert image.size == (SIZE, SIZE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t2i_00_00.png"], "nothing half-written is left"


def test_allow_large_lets_a_long_video_through(cli_model_folder, tmp_path, capsys):
    code, _, stderr = run([*T2V, "--num-frames", "13", "--model", cli_model_folder, "--out", tmp_path, "--quiet",
                           "--no-mp4"], capsys)
    assert code == 2 and "limit of 12" in stderr
    code, _, stderr = run([*T2V, "--num-frames", "13", "--model", cli_model_folder, "--out", tmp_path, "--quiet",
                           "--no-mp4", "--allow-large"], capsys)
    assert code == 0, stderr
    assert len(media.load_video(tmp_path / "t2v_00_00.gif")) == 13


def test_output_files_get_the_usual_permissions(cli_model_folder, tmp_path, capsys):
    assert run([*T2I, "--model", cli_model_folder, "--out", tmp_path, "--quiet"], capsys)[0] == 0
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "t2i_00_00.png").stat().st_mode & 0o777 == 0o666 & ~mask


def test_demo_upscale_is_bounded_before_any_work(tiny_model_folder, tmp_path, capsys):
    from nuwa_hf.cli import main

    code = main(["demo", "--model", tiny_model_folder, "--out", str(tmp_path / "demo"), "--quiet", "--upscale", "2000"])
    stderr = capsys.readouterr().err
    assert code == 2 and "--upscale 2000" in stderr and "at most" in stderr
    assert not (tmp_path / "demo").exists()


def test_temperature_zero_names_the_flag_on_the_shell_and_the_argument_in_python(cli_model_folder, tmp_path, capsys):
    """Issue 28 item 5: a shell user is told to use --greedy (a flag the command has), not do_sample=False; Python
    users keep the message in Python terms."""
    from transformers import pipeline

    code, _, stderr = run([*T2I, "--temperature", "0", "--model", cli_model_folder, "--out", tmp_path, "--quiet"],
                          capsys)
    assert code == 2 and "use --greedy" in stderr and "do_sample" not in stderr
    # --greedy is what the message says, and it works.
    code, stdout, stderr = run([*T2I, "--greedy", "--model", cli_model_folder, "--out", tmp_path, "--quiet"], capsys)
    assert code == 0, stderr
    with pytest.raises(ValueError, match=r"use do_sample=False for greedy decoding"):
        pipeline("nuwa-text-to-image", model=cli_model_folder)("a red 3", temperature=0)
