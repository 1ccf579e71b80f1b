"""The nuwa-hf command line as a user runs it: main(argv) in-process, and the installed console script."""

import html.parser
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from nuwa_hf import media
from nuwa_hf.cli import main

SIZE = 16


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fill(argv, folder):
    """Replace "{name}" in arguments with the path of ``folder / name``."""
    return [str(folder / a[1:-1]) if a.startswith("{") and a.endswith("}") else a for a in argv]


GENERATE_CASES = {
    "T2I": (["--prompt", "a red 3", "--prompt", "a blue 8", "--num-samples", "2"], 4, False),
    "text-to-video": (["--prompt", "the digit 3 is moving up then down", "--num-frames", "4"], 1, True),
    "V2V": (["--video", "{clip.gif}", "--num-condition-frames", "1"], 1, True),
    "S2I": (["--sketch", "{sketch.png}"], 1, False),
    "I2I": (["--image", "{image.png}", "--mask", "0,8,16,16"], 1, False),
    "TI2I": (["--image", "{image.png}", "--prompt", "a red circle", "--mask", "top half"], 1, False),
    "S2V": (["--sketch", "{sketch_video.npy}"], 1, True),
    "TV2V": (["--image", "{image.png}", "--prompt", "the digit 3 is moving left then right"], 1, True),
}


@pytest.mark.parametrize("task", list(GENERATE_CASES))
def test_generate_writes_media_and_prints_the_paths(task, cli_model_folder, inputs, tmp_path, capsys):
    options, outputs, is_video = GENERATE_CASES[task]
    options = fill(options, inputs)
    out = tmp_path / "out"
    code, stdout, stderr = run(["generate", "--task", task, "--model", cli_model_folder, "--out", out, "--quiet",
                                "--seed", "1", *options], capsys)
    assert code == 0, stderr
    printed = [Path(line) for line in stdout.splitlines()]
    assert printed and all(path.is_file() for path in printed)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == outputs
    if is_video:
        gifs = sorted(out.glob("*.gif"))
        assert len(gifs) == outputs
        with PIL.Image.open(gifs[0]) as gif:
            assert gif.n_frames >= 2
        if media.mp4_available():
            assert len(list(out.glob("*.mp4"))) == outputs
            assert len(media.load_video(next(out.glob("*.mp4")))) >= 2
    else:
        with PIL.Image.open(pngs[0]) as image:
            assert image.size == (SIZE, SIZE)
    assert not list(out.glob(".*")), "no temporary files are left behind"


def test_generate_is_reproducible_and_upscales(cli_model_folder, tmp_path, capsys):
    for name in ("a", "b"):
        assert run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a red 3", "--seed", "4",
                    "--out", tmp_path / name, "--quiet", "--upscale", "3"], capsys)[0] == 0
    first, second = (np.asarray(PIL.Image.open(tmp_path / n / "t2i_00_00.png")) for n in ("a", "b"))
    assert first.shape == (3 * SIZE, 3 * SIZE, 3) and np.array_equal(first, second)


@pytest.mark.parametrize("argv, code, message", [
    (["generate", "--task", "text-to-sound", "--prompt", "x"], 2, "Unknown task"),
    (["generate", "--task", "T2I"], 2, "needs --prompt"),
    (["generate", "--task", "T2I", "--prompt", "a red 3", "--image", "{image.png}"], 2, "does not take --image"),
    (["generate", "--task", "TI2I", "--image", "{image.png}", "--prompt", "a red 3"], 2, "needs --mask"),
    (["generate", "--task", "I2I", "--image", "{image.png}", "--mask", "{small_mask.png}"], 2, "resize the mask"),
    (["generate", "--task", "V2V", "--video", "{empty}"], 2, "no frames"),
    (["generate", "--task", "V2V", "--video", "{missing.gif}"], 2, "does not exist"),
    (["generate", "--task", "T2I", "--prompt", "a red 3", "--num-samples", "-2"], 2, "positive integer"),
    (["generate", "--task", "T2I", "--prompt", "a red 3", "--num-candidates", "3"], 2, "no scorer"),
    (["generate", "--task", "I2I", "--image", "{image.png}", "--mask", "bottom half", "--scorer", "condition_gain",
      "--num-candidates", "2"], 2, "nothing to gain from: use scorer='likelihood'"),
    (["generate", "--task", "T2I", "--prompt", "the digit", "--scorer", "attribute_posterior", "--num-candidates",
      "2"], 2, "names none of them the model knows"),
    (["generate", "--task", "S2I", "--sketch", "{image.png}"], 2, "class"),
])
def test_generate_bad_input_exits_2_and_says_why(argv, code, message, cli_model_folder, inputs, tmp_path, capsys):
    argv = fill(argv, inputs)
    got, _, stderr = run([*argv, "--model", cli_model_folder, "--out", tmp_path, "--quiet"], capsys)
    assert got == code
    assert message in stderr


def test_generate_reranks_by_the_condition_gain(cli_model_folder, tmp_path, capsys):
    """--scorer condition_gain --num-candidates 3 writes the same picture as the pipeline's call with those options."""
    from transformers import pipeline

    assert run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a red 3", "--seed", "4",
                "--scorer", "condition_gain", "--num-candidates", "3", "--out", tmp_path, "--quiet"], capsys)[0] == 0
    written = np.asarray(PIL.Image.open(tmp_path / "t2i_00_00.png"))
    pipe = pipeline("nuwa-text-to-image", model=cli_model_folder)
    pipe.set_progress_bar_config(disable=True)
    expected = np.asarray(pipe("a red 3", seed=4, scorer="condition_gain", num_candidates=3))
    assert np.array_equal(written, expected)


def test_generate_reranks_by_the_attribute_posterior(cli_model_folder, tmp_path, capsys):
    """--scorer attribute_posterior --num-candidates 3 writes the same picture as the pipeline's call with those
    options."""
    from transformers import pipeline

    assert run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a red 3", "--seed", "4",
                "--scorer", "attribute_posterior", "--num-candidates", "3", "--out", tmp_path, "--quiet"],
               capsys)[0] == 0
    written = np.asarray(PIL.Image.open(tmp_path / "t2i_00_00.png"))
    pipe = pipeline("nuwa-text-to-image", model=cli_model_folder)
    pipe.set_progress_bar_config(disable=True)
    assert np.array_equal(written, np.asarray(pipe("a red 3", seed=4, scorer="attribute_posterior", num_candidates=3)))


def test_generate_without_vqgan_exits_3(cli_folder_without_vqgan, tmp_path, capsys):
    code, _, stderr = run(["generate", "--task", "T2I", "--model", cli_folder_without_vqgan, "--prompt", "a red 3",
                           "--out", tmp_path, "--quiet"], capsys)
    assert code == 3 and "no VQ-GAN" in stderr and "set_visual_tokenizers" in stderr


def test_every_command_module_holds_one_registered_command():
    """Issue 29 item 3: one file per subcommand on the shared base; the entry point registers each."""
    import importlib
    import pkgutil

    import nuwa_hf.commands
    from nuwa_hf.cli import build_parser, command_classes
    from nuwa_hf.commands.base import NuwaCommand

    found = []
    for module in pkgutil.iter_modules(nuwa_hf.commands.__path__):
        loaded = importlib.import_module(f"nuwa_hf.commands.{module.name}")
        found += [value for value in vars(loaded).values() if isinstance(value, type) and issubclass(value, NuwaCommand)
                  and value.__module__ == loaded.__name__ and value is not NuwaCommand]
    assert sorted(found, key=lambda c: c.name) == sorted(command_classes(), key=lambda c: c.name)
    assert [command.name for command in command_classes()] == ["generate", "demo", "evaluate", "train", "push",
                                                                "push-code"]
    listed = build_parser().format_help()
    assert all(command.name in listed for command in command_classes())


def test_help_shows_examples_and_exit_codes(capsys):
    code, stdout, _ = run(["--help"], capsys)
    assert code == 0 and "nuwa-hf demo --model" in stdout and "exit codes" in stdout
    code, stdout, _ = run(["generate", "--help"], capsys)
    assert code == 0 and "--mask" in stdout and "nuwa-hf generate --task" in stdout


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        self.targets += [value for key, value in attrs if key in ("href", "src")]


def test_demo_runs_all_eight_tasks_and_links_every_file(cli_model_folder, tmp_path, capsys):
    out = tmp_path / "demo"
    reader = Path(__file__).resolve().parents[2] / "checkpoints" / "mnist-digit-reader"
    code, stdout, stderr = run(["demo", "--model", cli_model_folder, "--out", out, "--quiet", "--num-examples", "1",
                                "--digit-reader", reader], capsys)
    assert code == 0, stderr
    index = out / "index.html"
    assert stdout.strip().endswith(str(index))
    parser = _Links()
    parser.feed(index.read_text())
    assert parser.targets and all((out / target).is_file() for target in parser.targets)
    for code_name in ("t2i", "t2v", "v2v", "s2i", "i2i", "ti2i", "s2v", "tv2v"):
        assert list((out / code_name).glob("*_output.*")), code_name
    assert list((out / "t2v").glob("*.gif")) and list((out / "t2i").glob("*.png"))
    # every digit task says what the readers see in its output (digit, colour, motion)
    assert index.read_text().count("reads: ") >= 6


def test_demo_reports_a_task_that_cannot_run(cli_folder_without_vqgan, tmp_path, capsys):
    code, _, stderr = run(["demo", "--model", cli_folder_without_vqgan, "--out", tmp_path, "--quiet"], capsys)
    assert code == 3 and "no vqgan_config" in stderr


def test_evaluate_writes_the_metric_table(cli_model_folder, tmp_path, capsys):
    out = tmp_path / "eval"
    code, stdout, stderr = run(["evaluate", "--task", "I2I", "--model", cli_model_folder, "--num-samples", "4",
                                "--scorers", "none", "--image-features", "pixels", "--out", out, "--quiet"], capsys)
    assert code == 0, stderr
    table = json.loads((out / "i2i_metrics.json").read_text())
    metrics = {row["metric"] for row in table["rows"]}
    assert {"SSIM", "PSNR (dB)"} <= metrics and any(m.startswith("FID") for m in metrics)
    assert table["num_samples"] == 4 and table["split"] == "test"
    assert (out / "i2i_metrics.md").read_text() and "SSIM" in stdout


def test_train_forwards_to_the_training_code(monkeypatch, capsys):
    received = []
    fake = types.ModuleType("nuwa_hf.training")
    fake.main = lambda argv: received.append(argv) or 0
    monkeypatch.setitem(sys.modules, "nuwa_hf.training", fake)
    assert main(["train", "--max-steps", "3", "--output-dir", "x"]) == 0
    assert received == [["--max-steps", "3", "--output-dir", "x"]]


def test_train_without_the_training_code_exits_4(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nuwa_hf.training", None)
    code, _, stderr = run(["train", "--help"], capsys)
    assert code == 4 and "nuwa_hf.training" in stderr


def test_push_checks_the_folder(tmp_path, capsys):
    code, _, stderr = run(["push", tmp_path, "me/model"], capsys)
    assert code == 3 and "config.json" in stderr


@pytest.mark.slow
def test_console_script_pushes_a_model_folder_to_a_hub(cli_model_folder):
    """The installed `nuwa-hf` script, against the project's Hub-compatible server on 127.0.0.1 (which commits every
    file inline: the real Hub's LFS / Xet upload path is not exercised)."""
    from support.local_hub_server import LocalHubServer

    script = Path(sys.executable).with_name("nuwa-hf")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "nuwa_hf.cli"]
    with LocalHubServer(token="hf_test") as hub:
        env = dict(os.environ, HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.url, HF_TOKEN="hf_test", HF_HUB_DISABLE_XET="1",
                   OMP_NUM_THREADS="1")
        result = subprocess.run([*command, "push", cli_model_folder, "tester/nuwa-tiny"], env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "tester/nuwa-tiny" in result.stdout
        uploaded = hub.files("tester/nuwa-tiny")
        local = {p.relative_to(cli_model_folder).as_posix(): p.read_bytes()
                 for p in Path(cli_model_folder).rglob("*") if p.is_file()}
        assert {path: uploaded[path] for path in local} == local
        refused = subprocess.run([*command, "push", cli_model_folder, "tester/other"], capture_output=True, text=True,
                                 env={**env, "HF_TOKEN": "wrong"}, timeout=300)
        assert refused.returncode == 5, refused.stderr


def test_image_completion_keeps_the_input_pixels_outside_the_region(cli_model_folder, inputs, tmp_path, capsys):
    """Issue 28: the part an edit keeps is the input's own pixels (2-pixel blended seam around the region)."""
    source = np.asarray(PIL.Image.open(inputs / "image.png").convert("RGB"), dtype=np.int16)
    out = tmp_path / "kept"
    assert run(["generate", "--task", "I2I", "--model", cli_model_folder, "--image", inputs / "image.png",
                "--mask", "bottom half", "--out", out, "--quiet"], capsys)[0] == 0
    edited = np.asarray(PIL.Image.open(out / "i2i_00_00.png").convert("RGB"), dtype=np.int16)
    assert np.abs(edited[:6] - source[:6]).mean() == 0
    raw = tmp_path / "raw"
    assert run(["generate", "--task", "I2I", "--model", cli_model_folder, "--image", inputs / "image.png",
                "--mask", "bottom half", "--out", raw, "--quiet", "--no-keep-original-pixels"], capsys)[0] == 0
    reconstructed = np.asarray(PIL.Image.open(raw / "i2i_00_00.png").convert("RGB"), dtype=np.int16)
    assert np.abs(reconstructed[:6] - source[:6]).mean() > 0


def test_a_batch_on_the_command_line_equals_separate_commands_with_seed_plus_index(cli_model_folder, tmp_path, capsys):
    assert run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a red 3", "--prompt", "a blue 8",
                "--seed", "5", "--out", tmp_path / "batch", "--quiet"], capsys)[0] == 0
    assert run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a blue 8", "--seed", "6",
                "--out", tmp_path / "alone", "--quiet"], capsys)[0] == 0
    assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / "batch" / "t2i_01_00.png")),
                          np.asarray(PIL.Image.open(tmp_path / "alone" / "t2i_00_00.png")))


@pytest.mark.parametrize("mask", ["0,0.5,1,1", "0,0,1,1"])
def test_mask_text_means_the_same_in_the_cli_and_in_python(mask, cli_model_folder, inputs, tmp_path, capsys):
    """Issue 28 item 4b: --mask 0,0.5,1,1 and Python's mask="0,0.5,1,1" are one region (one parser), and "0,0,1,1" is
    the whole image in both (all four in [0, 1] -> fractions), so both give the same picture for the same seed."""
    from transformers import pipeline

    code, _, stderr = run(["generate", "--task", "I2I", "--model", cli_model_folder, "--image", inputs / "image.png",
                           "--mask", mask, "--seed", "2", "--out", tmp_path, "--quiet"], capsys)
    assert code == 0, stderr
    completion = pipeline("nuwa-image-completion", model=cli_model_folder)
    ours = completion(PIL.Image.open(inputs / "image.png").convert("RGB"), mask=mask, seed=2)
    (written,) = sorted(tmp_path.glob("*.png"))
    assert np.array_equal(np.asarray(PIL.Image.open(written)), np.asarray(ours))
    if mask == "0,0,1,1":  # the whole image is regenerated: nothing of the input is kept
        assert np.array_equal(np.asarray(ours), np.asarray(completion(inputs / "image.png", mask="all", seed=2)))


DIGIT_READER = Path(__file__).resolve().parents[2] / "checkpoints" / "mnist-digit-reader"


def test_evaluate_takes_the_shipped_digit_reader_as_the_digit_scorer(cli_model_folder, tmp_path, capsys):
    """Issue 28 item 4c: --scorers checkpoints/mnist-digit-reader (one saved scorer's folder, a DigitClassifier) used
    to exit 2 ("holds none of the scorer sub-folders"); it is now the digit scorer, so T2I scores digit accuracy."""
    out = tmp_path / "eval"
    code, stdout, stderr = run(["evaluate", "--task", "T2I", "--model", cli_model_folder, "--num-samples", "4",
                                "--scorers", DIGIT_READER, "--image-features", "pixels", "--out", out, "--quiet"],
                               capsys)
    assert code == 0, stderr
    table = json.loads((out / "t2i_metrics.json").read_text())
    rows = {row["metric"]: row for row in table["rows"]}
    assert "digit_accuracy" not in table["skipped"], table["skipped"]
    digit = rows["digit accuracy"]
    assert 0.0 <= digit["value"] <= 1.0 and digit["scorer"].startswith("digit CNN")
    assert digit["scorer_held_out"]["accuracy"]["accuracy"] > 0.9  # the shipped reader's own held-out report
    assert any(metric.startswith("IS (digit CNN") for metric in rows)
    assert "DigitClassifier as digit_classifier" in stderr


def test_evaluate_scorer_folder_that_is_neither_form_names_both(cli_model_folder, tmp_path, capsys):
    (tmp_path / "not_scorers").mkdir()
    (tmp_path / "not_scorers" / "config.json").write_text('{"model_type": "nuwa"}')
    code, _, stderr = run(["evaluate", "--task", "T2I", "--model", cli_model_folder, "--num-samples", "2",
                           "--scorers", tmp_path / "not_scorers", "--image-features", "pixels", "--out",
                           tmp_path / "eval", "--quiet"], capsys)
    assert code == 2
    assert "neither a saved scorer" in stderr and "mnist-digit-reader" in stderr and "digit_classifier" in stderr


def test_unknown_prompt_words_are_named_on_stderr_and_strict_refuses_them(cli_model_folder, tmp_path, capsys):
    """Issue 28 item 3 on the command line: a warning naming the words; --strict makes it a usage error (exit 2)."""
    code, _, stderr = run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a purple 3",
                           "--out", tmp_path / "warned", "--quiet"], capsys)
    assert code == 0 and "never saw in training: 'purple'" in stderr and "the model reads 'a 3'" in stderr
    assert "(--keep-unknown-words keeps them)" in stderr and "drop_unknown_words" not in stderr  # the CLI's flag
    code, _, stderr = run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a purple cat",
                           "--out", tmp_path / "fillers", "--quiet"], capsys)
    assert code == 2 and "leaves only 'a'" in stderr and "or pass --keep-unknown-words." in stderr
    assert "drop_unknown_words" not in stderr
    code, _, stderr = run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a purple 3",
                           "--out", tmp_path / "kept", "--quiet", "--keep-unknown-words"], capsys)
    assert code == 0 and "'purple'" in stderr and "sub-word pieces" in stderr
    code, _, stderr = run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a purple 3",
                           "--out", tmp_path / "strict", "--quiet", "--strict"], capsys)
    assert code == 2 and "'purple'" in stderr and "strict" in stderr
    assert not list((tmp_path / "strict").glob("*.png"))


def test_a_rephrased_motion_is_said_on_stderr_and_no_rephrase_reads_the_prompt_as_typed(cli_model_folder, tmp_path,
                                                                                          capsys):
    """T2V from the command line with "up and down": stderr says how the prompt was read, naming the CLI's flag;
    --no-rephrase reads it as typed ("and" is then a word the model never saw, left out)."""
    argv = ["generate", "--task", "T2V", "--model", cli_model_folder, "--prompt", "the digit 3 moving up and down",
            "--num-frames", "4", "--quiet"]
    code, _, stderr = run(argv + ["--out", tmp_path / "read"], capsys)
    assert code == 0 and "was read as 'the digit 3 moving up then down'" in stderr
    assert "(--no-rephrase reads it as typed)" in stderr and "rephrase_prompt" not in stderr
    code, _, stderr = run(argv + ["--out", tmp_path / "typed", "--no-rephrase"], capsys)
    assert code == 0 and "was read as" not in stderr
    assert "never saw in training: 'and'" in stderr and "the model reads 'the digit 3 moving up down'" in stderr


def test_an_instruction_naming_no_digit_is_completed_on_stderr_and_no_complete_instruction_reads_it_as_given(
        cli_model_folder, inputs, tmp_path, capsys):
    """TI2I "make it blue": stderr says what the model read in the picture and the caption it edits with, naming the
    CLI's flag; --no-complete-instruction reads it as given (the advice that any digit may come back instead) and gives
    another picture file; another task refuses the flag (exit 2)."""
    argv = ["generate", "--task", "TI2I", "--model", cli_model_folder, "--image", inputs / "image.png", "--prompt",
            "make it blue", "--mask", "top half", "--quiet"]
    code, _, stderr = run(argv + ["--out", tmp_path / "completed"], capsys)
    assert code == 0 and "The instruction 'make it blue' names no digit: the model reads the picture as 'a " in stderr
    assert "(--no-complete-instruction reads the instruction as given)." in stderr
    assert "complete_instruction" not in stderr and "the model reads a prompt as the caption" not in stderr
    code, _, stderr = run(argv + ["--out", tmp_path / "given", "--no-complete-instruction"], capsys)
    assert code == 0 and "reads the picture as" not in stderr and "names no digit: the model reads a prompt" in stderr
    code, _, stderr = run(["generate", "--task", "T2I", "--model", cli_model_folder, "--prompt", "a red 3",
                           "--out", tmp_path / "t2i", "--quiet", "--no-complete-instruction"], capsys)
    assert code == 2 and "does not take --no-complete-instruction" in stderr


def test_a_sketch_painted_in_the_class_colours_works_and_a_foreign_colour_names_the_palette(cli_model_folder, tmp_path,
                                                                                            capsys):
    """A user paints sketches in a paint program in the class colours: an anti-aliased 64x64 RGB PNG, a JPEG of it, a
    GIF of painted frames (Pillow's adaptive palette) for sketch-to-video. They generate; a sketch with an area in a
    colour far from every class colour exits 2 with the class colours listed."""
    import PIL.ImageDraw

    palette = [tuple(int(v) for v in rgb) for rgb in media.class_palette(8)]  # the tiny folder's 8 classes

    def painted(path, ground=2, shift=0):
        big = PIL.Image.new("RGB", (256, 256), palette[1])
        canvas = PIL.ImageDraw.Draw(big)
        canvas.rectangle([0, 128, 256, 256], fill=palette[ground])
        canvas.ellipse([40 + shift, 40, 120 + shift, 120], fill=palette[3])
        big.resize((64, 64), PIL.Image.LANCZOS).save(path)
        return PIL.Image.open(path).convert("RGB")

    painted(tmp_path / "sketch.png")
    painted(tmp_path / "sketch.jpg")
    frames = [painted(tmp_path / f"frame{i}.png", shift=40 * i) for i in range(3)]
    frames[0].save(tmp_path / "sketch.gif", save_all=True, append_images=frames[1:], duration=250, loop=0)
    for task, sketch, name in (("S2I", "sketch.png", "png"), ("S2I", "sketch.jpg", "jpg"), ("S2V", "sketch.gif", "gif")):
        code, stdout, stderr = run(["generate", "--task", task, "--model", cli_model_folder, "--sketch",
                                    tmp_path / sketch, "--out", tmp_path / name, "--quiet", "--seed", "0"], capsys)
        assert code == 0, stderr
        if task == "S2V":
            with PIL.Image.open(tmp_path / name / "s2v_00_00.gif") as gif:
                assert gif.n_frames == 3 and gif.size == (SIZE, SIZE)
        else:
            assert PIL.Image.open(tmp_path / name / "s2i_00_00.png").size == (SIZE, SIZE)
    big = PIL.Image.new("RGB", (256, 256), palette[1])
    PIL.ImageDraw.Draw(big).rectangle([0, 128, 256, 256], fill=(255, 255, 0))  # yellow: near no class colour
    big.resize((64, 64), PIL.Image.LANCZOS).save(tmp_path / "yellow.png")
    code, _, stderr = run(["generate", "--task", "S2I", "--model", cli_model_folder, "--sketch", tmp_path / "yellow.png",
                           "--out", tmp_path / "yellow", "--quiet"], capsys)
    assert code == 2
    assert "far from every class colour" in stderr and f"1 {palette[1]}" in stderr


def test_image_completion_takes_the_pipelines_region_options(cli_model_folder, inputs, tmp_path, capsys):
    """--no-blank-region and --regenerate-border N are the pipeline's blank_region=False / regenerate_border=N: each
    command writes the picture the pipeline call with those options gives for the seed (the defaults, blank_region=True
    and regenerate_border=0, when left out); a negative or too wide border and another task taking them exit 2."""
    from transformers import pipeline

    completion = pipeline("nuwa-image-completion", model=cli_model_folder)
    completion.set_progress_bar_config(disable=True)
    picture = PIL.Image.open(inputs / "image.png").convert("RGB")
    argv = ["generate", "--task", "I2I", "--model", cli_model_folder, "--image", inputs / "image.png", "--mask",
            "bottom half", "--seed", "3", "--quiet"]
    cases = {"default": ([], {}), "as_given": (["--no-blank-region"], {"blank_region": False}),
             "ring": (["--regenerate-border", "1"], {"regenerate_border": 1}),
             "wide": (["--regenerate-border", "2"], {"regenerate_border": 2})}
    written = {}
    for name, (flags, options) in cases.items():
        code, _, stderr = run(argv + flags + ["--out", tmp_path / name], capsys)
        assert code == 0, stderr
        written[name] = np.asarray(PIL.Image.open(tmp_path / name / "i2i_00_00.png"))
        assert np.array_equal(written[name], np.asarray(completion(picture, mask="bottom half", seed=3, **options)))
    assert np.array_equal(written["default"], np.asarray(
        completion(picture, mask="bottom half", seed=3, blank_region=True, regenerate_border=0)))
    assert not np.array_equal(written["default"], written["as_given"])  # the options reach the pipeline
    assert not np.array_equal(written["default"], written["ring"])
    code, _, stderr = run(argv + ["--regenerate-border", "-1", "--out", tmp_path / "negative"], capsys)
    assert code == 2 and "--regenerate-border" in stderr and "an integer >= 0" in stderr
    code, _, stderr = run(argv + ["--regenerate-border", "99", "--out", tmp_path / "wide99"], capsys)
    assert code == 2 and "regenerate_border" in stderr and "got 99" in stderr
    for flags in (["--no-blank-region"], ["--regenerate-border", "0"]):
        code, _, stderr = run(["generate", "--task", "TI2I", "--model", cli_model_folder, "--image",
                               inputs / "image.png", "--prompt", "a red 3", "--mask", "top half", "--quiet",
                               "--out", tmp_path / "ti2i", *flags], capsys)
        assert code == 2 and f"does not take {flags[0]}: only I2I" in stderr


def test_a_light_background_picture_is_said_on_stderr_with_the_cli_fix(cli_model_folder, tmp_path, capsys):
    """A scan of dark ink on white paper given to image completion: stderr says its background is light (the model
    was trained on light digits on black) and how to invert the file; the same picture inverted is not said."""
    import PIL.ImageOps

    grey = np.full((16, 16), 240, dtype=np.uint8)
    grey[4:6, 4:12] = 30  # a dark "7"
    grey[6:12, 8:10] = 30
    paper = PIL.Image.fromarray(np.repeat(grey[..., None], 3, axis=-1))
    paper.save(tmp_path / "scan.png")
    PIL.ImageOps.invert(paper).save(tmp_path / "inverted.png")
    argv = ["generate", "--task", "I2I", "--model", cli_model_folder, "--mask", "bottom half", "--quiet"]
    code, _, stderr = run(argv + ["--image", tmp_path / "scan.png", "--out", tmp_path / "scan"], capsys)
    assert code == 0 and "nuwa-hf: warning: The image has a light background" in stderr
    assert "-negate" in stderr and "PIL.ImageOps" not in stderr  # the CLI's wording of the fix
    code, _, stderr = run(argv + ["--image", tmp_path / "inverted.png", "--out", tmp_path / "inverted"], capsys)
    assert code == 0 and "light background" not in stderr
