"""The Gradio web demo (spaces/nuwa/app.py): every task's endpoint through gradio_client, clear errors for bad input,
and a real browser (headless Chromium + selenium) generating an image.

The app is started in-process on a free 127.0.0.1 port with the session's untrained 16x16 model (tests/conftest.py:
``tiny_model_folder``): outputs are noise, but their types, sizes and frame counts are the app's.
"""

import importlib.util
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import PIL.Image
import pytest

from nuwa_hf import media

SPACE = Path(__file__).resolve().parents[2] / "spaces" / "nuwa"


def _load(name: str, filename: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SPACE / filename)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def app_module():
    return _load("nuwa_space_app", "app.py")


@pytest.fixture(scope="module")
def web_app(app_module, tiny_model_folder):
    """(blocks, url) of the app serving the tiny model on a free loopback port."""
    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    blocks = app_module.build_demo(tiny_model_folder)
    _, url, _ = app_module.launch(blocks, host="127.0.0.1", port=screenshot.free_port(), prevent_thread_lock=True,
                                  quiet=True)
    assert url.startswith("http://127.0.0.1:")
    yield blocks, url
    blocks.close()


@pytest.fixture(scope="module")
def client(web_app, tmp_path_factory):
    from gradio_client import Client

    return Client(web_app[1], verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def sizes(web_app):
    nuwa = web_app[0].nuwa
    return nuwa.image_size, nuwa.frames, nuwa.upscale


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, web_app):
    """Files to upload: a 3-frame GIF, a 1-frame GIF, an unreadable 'GIF', a 64x64 picture, a painted layer, a
    palette-coloured sketch."""
    folder = tmp_path_factory.mktemp("inputs")
    nuwa = web_app[0].nuwa
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    media.save_gif(list(frames), folder / "clip.gif")
    media.save_gif(list(frames[:1]), folder / "one_frame.gif")
    (folder / "broken.gif").write_text("not a video")
    PIL.Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "picture.png")
    layer = np.zeros((64, 64, 4), dtype=np.uint8)
    layer[32:] = (255, 0, 255, 150)
    PIL.Image.fromarray(layer, mode="RGBA").save(folder / "bottom_painted.png")
    PIL.Image.fromarray(np.zeros((64, 64, 4), dtype=np.uint8), mode="RGBA").save(folder / "nothing_painted.png")
    sketch = np.zeros((64, 64), dtype=np.int64)
    sketch[32:] = 1
    sketch[20:40, 24:40] = 4  # a square on the ground
    media.sketch_to_image(sketch, num_classes=len(nuwa.class_names)).save(folder / "sketch.png")
    np.save(folder / "sequence.npy", np.stack([sketch, np.roll(sketch, 8, axis=1)]))  # a 2-frame class-map video
    unknown = sketch.copy()
    unknown[:4, :4] = len(nuwa.class_names) + 1
    PIL.Image.fromarray(unknown.astype(np.uint8), mode="L").save(folder / "unknown_class.png")
    return folder


def _editor(background, layer=None):
    from gradio_client import handle_file

    return {"background": handle_file(str(background)), "layers": [handle_file(str(layer))] if layer else [],
            "composite": None, "id": None}


def _check_image(result, size, upscale):
    view, files, info = result
    with PIL.Image.open(view) as shown:
        assert shown.size == (size * upscale, size * upscale)
    native = [f for f in files if f.endswith(".png") and PIL.Image.open(f).size == (size, size)]
    assert native, files
    assert "seed 0" in info
    return info


def _check_video(result, size, frames, upscale):
    mp4, gif, files, info = result
    with PIL.Image.open(gif) as shown:
        assert shown.size == (size * upscale, size * upscale)
        assert shown.n_frames == frames
    if media.mp4_available():
        assert mp4 and mp4.endswith(".mp4") and Path(mp4).stat().st_size > 0
        assert any(f.endswith(".mp4") for f in files)
    strips = [f for f in files if f.endswith(".png")]  # the frames side by side
    assert strips and PIL.Image.open(strips[0]).width > PIL.Image.open(strips[0]).height
    assert f"{frames} frames" in info
    return info


def test_text_to_image(client, sizes):
    size, _, upscale = sizes
    _check_image(client.predict("a red 7", 0, 1.5, 8, api_name="/t2i"), size, upscale)


def test_text_to_video_longer_than_trained(client, sizes):
    size, frames, upscale = sizes
    result = client.predict("the digit 3 is moving up then down", frames + 1, 0, 1.5, 8, api_name="/t2v")
    assert "sliding window" in _check_video(result, size, frames + 1, upscale)


def test_video_prediction_from_an_uploaded_gif(client, sizes, inputs):
    from gradio_client import handle_file

    size, frames, upscale = sizes
    result = client.predict(handle_file(str(inputs / "clip.gif")), "Example 1", 1, frames - 1, 0, 8, api_name="/v2v")
    info = _check_video(result, size, frames, upscale)
    assert "clip.gif" in info


def test_sketch_to_image_from_the_canvas(client, sizes, inputs):
    size, _, upscale = sizes
    sketch_view, *result = client.predict(_editor(inputs / "sketch.png"), None, "grass", 0, 1.5, 8, api_name="/s2i")
    info = _check_image(result, size, upscale)
    assert "resized" in info  # the 64x64 canvas went to the model's 16x16
    assert PIL.Image.open(sketch_view).size == (size * upscale, size * upscale)


def test_sketch_to_video_moves_the_shapes(client, sizes, inputs):
    size, frames, upscale = sizes
    sketch_view, *result = client.predict(_editor(inputs / "sketch.png"), None, "grass", "right", frames, 0, 1.5, 8,
                                          api_name="/s2v")
    info = _check_video(result, size, frames, upscale)
    assert "Motion: right" in info
    with PIL.Image.open(sketch_view) as sketches:  # one sketch per frame, and the square moved
        assert sketches.n_frames == frames
        first = np.asarray(sketches.convert("RGB"))
        sketches.seek(frames - 1)
        assert not np.array_equal(first, np.asarray(sketches.convert("RGB")))


def test_a_still_sketch_video_keeps_every_frame(client, sizes, inputs):
    """Frames equal to the one before them stay frames of their own in the GIFs (Pillow's writer merged them)."""
    size, frames, upscale = sizes
    sketch_view, *result = client.predict(_editor(inputs / "sketch.png"), None, "grass", "none", frames, 0, 1.5, 8,
                                          api_name="/s2v")
    _check_video(result, size, frames, upscale)
    with PIL.Image.open(sketch_view) as sketches:
        assert sketches.n_frames == frames


def test_the_tabs_and_endpoints_follow_the_task_table(client, web_app):
    """One tab and endpoint per row of nuwa_hf.tasks.TASKS: the tab named by its code and title, guidance offered
    where the task has a condition, and the frame options as inputs."""
    from nuwa_hf.tasks import TASKS

    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    config = web_app[0].config
    tabs = [c["props"]["label"] for c in config["components"] if c.get("type") == "tabitem"]
    assert tabs == [f"{task.code} {task.title}" for task in TASKS]
    for task in TASKS:
        parameters = endpoints[f"/{task.code.lower()}"]["parameters"]
        names = [p["parameter_name"] for p in parameters]
        assert ("guidance" in names) == (task.condition != "none"), (task.code, names)
        # the text tasks' negative prompt comes last and defaults to none, so clients that leave it out still work
        sampling = {"none": ["seed", "top_k"], "sketch": ["seed", "guidance", "top_k"],
                    "text": ["seed", "guidance", "top_k", "negative_prompt"]}[task.condition]
        assert names[-len(sampling):] == sampling, (task.code, names)
        if task.condition == "text":
            assert parameters[-1]["parameter_has_default"] and parameters[-1]["parameter_default"] == ""


def test_an_uploaded_sketch_painted_in_the_class_colours_reads_as_its_class_ids(web_app, inputs):
    """The upload box takes a PNG painted in the class colours (its label says so), read as the ids it was painted
    from: sketch.png is media.sketch_to_image of a 64x64 class map."""
    nuwa = web_app[0].nuwa
    maps, notes = nuwa._sketch_maps(None, str(inputs / "sketch.png"), "grass")
    sketch = np.zeros((64, 64), dtype=np.int64)
    sketch[32:] = 1
    sketch[20:40, 24:40] = 4
    assert np.array_equal(maps, nuwa._model_maps(sketch[None])[0])
    assert "uploaded class map 'sketch.png' (1 frame(s))" in " ".join(notes)
    labels = [c["props"].get("label") or "" for c in web_app[0].config["components"]]
    assert any("painted in the class colours: replaces the canvas" in label for label in labels)


def test_sketch_to_video_from_an_uploaded_sequence(client, sizes, inputs):
    from gradio_client import handle_file

    size, _, upscale = sizes
    result = client.predict(None, handle_file(str(inputs / "sequence.npy")), "grass", "right", 3, 0, 1.5, 8,
                            api_name="/s2v")
    assert "sequence.npy' (2 frame(s))" in _check_video(result[1:], size, 2, upscale)


def test_image_completion_of_the_painted_region(client, sizes, inputs):
    size, _, upscale = sizes
    result = client.predict(_editor(inputs / "picture.png", inputs / "bottom_painted.png"), "painted with the brush",
                            0, 8, api_name="/i2i")
    info = _check_image(result, size, upscale)
    assert "painted mask (50% of the image)" in info
    assert "64x64" in info and "resized" in info


def test_image_manipulation(client, sizes, inputs):
    size, _, upscale = sizes
    result = client.predict(_editor(inputs / "picture.png"), "a blue 7", "top half", 0, 1.5, 8, api_name="/ti2i")
    assert "Region: top half" in _check_image(result, size, upscale)


def test_image_manipulation_completes_an_instruction_naming_no_digit_in_the_page_words(client, sizes, inputs):
    """"make it blue" names no digit: the info line says what the model read in the picture and the caption it edited
    with, naming no Python switch (the page has no control that reads the instruction as given)."""
    size, _, upscale = sizes
    result = client.predict(_editor(inputs / "picture.png"), "make it blue", "top half", 0, 1.5, 8, api_name="/ti2i")
    info = _check_image(result, size, upscale)
    note = next(line for line in info.splitlines() if "reads the picture as" in line)
    assert note.startswith("Note: The instruction 'make it blue' names no digit: the model reads the picture as 'a "), note
    assert "and edits it with 'a blue " in note and note.endswith("'."), note
    assert not any(name in note for name in PYTHON_NAMES + ("complete_instruction",)), note
    assert "as the caption of the whole edited picture" not in info  # not the open-kinds advice too


def test_video_manipulation_of_a_builtin_example(client, sizes):
    size, frames, upscale = sizes
    result = client.predict(None, "Example 2", "the digit 3 is moving left then right", frames, 0, 1.5, 8,
                            api_name="/tv2v")
    assert "built-in example 2" in _check_video(result, size, frames, upscale)


def test_bad_inputs_give_clear_errors_and_the_server_keeps_serving(client, sizes, inputs):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="prompt is empty: type what to generate"):
        client.predict("   ", 0, 1.5, 8, api_name="/t2i")
    with pytest.raises(AppError, match="mask covers nothing: paint over the part of the image to regenerate"):
        client.predict(_editor(inputs / "picture.png", inputs / "nothing_painted.png"), "painted with the brush", 0, 8,
                       api_name="/i2i")
    with pytest.raises(AppError, match=r"has 1 frame\(s\) but 'Given frames' is 2: upload a video with at least 2"):
        client.predict(handle_file(str(inputs / "one_frame.gif")), "Example 1", 2, 1, 0, 8, api_name="/v2v")
    with pytest.raises(AppError, match="Could not read the uploaded file 'broken.gif' as a video"):
        client.predict(handle_file(str(inputs / "broken.gif")), "Example 1", 1, 1, 0, 8, api_name="/v2v")
    with pytest.raises(AppError, match=r"class map holds class id \d+ but the model knows \d+ classes"):
        client.predict(_editor(inputs / "sketch.png"), handle_file(str(inputs / "unknown_class.png")), "grass", 0, 1.5,
                       8, api_name="/s2i")
    size, _, upscale = sizes
    _check_image(client.predict("a red 7", 0, 1.5, 8, api_name="/t2i"), size, upscale)


def test_stop_switch_stops_only_its_session(app_module):
    switch = app_module.StopSwitch()
    with switch.job("a"):
        switch.stop("b")
        switch.check()  # another session's stop does not touch this one
        switch.stop("a")
        with pytest.raises(app_module.GenerationStopped):
            switch.check()
    switch.check()  # outside a job nothing is stopped


def test_stop_ends_a_running_generation_at_its_next_step(app_module, web_app):
    """The Stop button's flag is checked at every decoding step by a logits processor each pipeline call carries: the
    pipeline call raises, and the handlers turn that into a 'Stopped' message."""
    import gradio as gr

    nuwa = web_app[0].nuwa
    with nuwa.switch.job("session"):
        nuwa.switch.stop("session")
        with pytest.raises(app_module.GenerationStopped):
            nuwa.pipeline("T2I")("a red 7", seed=0, logits_processor=[nuwa.stop_check])

    # The handlers' own path (_run): Stop pressed while the 5th token is sampled ends the call at that step.
    steps = []

    class PressStopAtStepFive(app_module.StopAtNextStep):
        def __call__(self, input_ids, scores):
            steps.append(input_ids.shape[1])
            if input_ids.shape[1] == 5:
                self.switch.stop("local")  # the session of a call without a gradio request
            return super().__call__(input_ids, scores)

    original = nuwa.stop_check
    nuwa.stop_check = PressStopAtStepFive(nuwa.switch)
    try:
        with pytest.raises(app_module.GenerationStopped):
            nuwa._run("T2I", None, lambda *args, **kwargs: None, "a red 7", seed=0)
    finally:
        nuwa.stop_check = original
    assert steps == [1, 2, 3, 4, 5]

    @app_module.guarded
    def stopped():
        raise app_module.GenerationStopped()

    with pytest.raises(gr.Error, match="Stopped"):
        stopped()


@pytest.mark.slow
def test_browser_generates_an_image_and_takes_a_screenshot(web_app, chromium, tmp_path):
    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    driver = screenshot.chrome_driver()
    try:
        source = screenshot.generate_text_to_image(driver, web_app[1], "the digit seven in blue", timeout=60)
        assert source.startswith(web_app[1].rstrip("/")) and source.endswith(".png")
        info = driver.find_element("css selector", "#t2i-info textarea").get_attribute("value")
        assert "the digit seven in blue" in info
        path = screenshot.save_screenshot(driver, tmp_path / "t2i.png")
    finally:
        driver.quit()
    assert path.is_file() and path.stat().st_size > 20_000
    with PIL.Image.open(path) as shot:
        assert shot.width >= 1000 and shot.height >= 700
        assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # a rendered page, not a blank one


def test_words_the_model_never_saw_are_named_on_the_info_line(client, sizes):
    size, _, upscale = sizes
    info = _check_image(client.predict("a purple digit 3", 0, 1.5, 8, api_name="/t2i"), size, upscale)
    assert "never saw in training: 'purple'" in info
    assert "never saw" not in _check_image(client.predict("a red digit 3", 0, 1.5, 8, api_name="/t2i"), size, upscale)


def test_image_completion_keeps_the_pixels_outside_the_painted_region(client, sizes, tmp_path):
    size, _, upscale = sizes
    rng = np.random.default_rng(5)
    picture = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    PIL.Image.fromarray(picture).save(tmp_path / "native.png")
    layer = np.zeros((size, size, 4), dtype=np.uint8)
    layer[size // 2:] = (255, 0, 255, 150)
    PIL.Image.fromarray(layer, mode="RGBA").save(tmp_path / "painted.png")
    view, files, info = client.predict(_editor(tmp_path / "native.png", tmp_path / "painted.png"),
                                       "painted with the brush", 0, 8, api_name="/i2i")
    native = next(f for f in files if f.endswith(".png") and PIL.Image.open(f).size == (size, size))
    out = np.asarray(PIL.Image.open(native).convert("RGB"), dtype=np.int16)
    kept = size // 2 - 2  # rows above the 2-pixel seam
    assert np.abs(out[:kept] - picture[:kept].astype(np.int16)).mean() == 0


# --------------------------------------------------------------------------------------------------------------------
# Hostile uploads and file routes (issue 30, items 2 and 4)


def test_hostile_uploads_get_a_clear_message_within_2_s(client, tmp_path, sizes):
    import time

    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    from support.hostile_files import bomb_png, many_frame_gif

    long_gif, wide_gif = many_frame_gif(tmp_path / "long.gif"), many_frame_gif(tmp_path / "wide.gif", 2, (65535, 65535))
    bomb, zip_gif = bomb_png(tmp_path / "bomb.png"), tmp_path / "archive.gif"
    zip_gif.write_bytes(b"PK\x03\x04" + bytes(200))
    calls = [
        (lambda: client.predict(None, handle_file(str(long_gif)), "grass", 0, 1.5, 8, api_name="/s2i"),
         "more than 1000 frames.*NUWA_HF_MAX_VIDEO_FRAMES"),
        (lambda: client.predict(handle_file(str(wide_gif)), "Example 1", 1, 1, 0, 8, api_name="/v2v"),
         "megapixels.*NUWA_HF_MAX_IMAGE_PIXELS"),
        (lambda: client.predict(handle_file(str(zip_gif)), "Example 1", 1, 1, 0, 8, api_name="/v2v"),
         "its content is a ZIP archive"),
        (lambda: client.predict(None, handle_file(str(bomb)), "grass", 0, 1.5, 8, api_name="/s2i"),
         "Could not read the class map 'bomb.png'.*megapixels.*NUWA_HF_MAX_IMAGE_PIXELS"),
    ]
    for call, expected in calls:
        started = time.perf_counter()
        with pytest.raises(AppError, match=expected):
            call()
        assert time.perf_counter() - started < 2
    started = time.perf_counter()  # gradio decodes editor images itself: Pillow's bound is lowered to refuse bombs
    with pytest.raises(AppError, match="uploaded image is too large to decode.*resize it to a few megapixels"):
        client.predict(_editor(bomb), "bottom half", 0, 8, api_name="/i2i")
    assert time.perf_counter() - started < 2
    started = time.perf_counter()  # a video input reads only the frames it uses: the 100,000-frame GIF works
    *_, info = client.predict(handle_file(str(long_gif)), "Example 1", 1, 1, 0, 8, api_name="/v2v")
    assert "'long.gif' (1 frame(s) used)" in info and time.perf_counter() - started < 10
    size, _, upscale = sizes
    _check_image(client.predict("a red 7", 0, 1.5, 8, api_name="/t2i"), size, upscale)  # still serving


def test_the_server_serves_only_its_own_outputs(client, web_app, tmp_path):
    import shutil
    import tempfile
    import urllib.error
    import urllib.parse
    import urllib.request

    url = web_app[1].rstrip("/")
    view = client.predict("a red 7", 0, 1.5, 8, api_name="/t2i")[0]
    secret = Path(tempfile.mkdtemp(prefix="not-served-")) / "secret.txt"
    secret.write_text("private")
    own = web_app[0].nuwa.out_root  # this process' folder under $TMPDIR/nuwa-web-demo
    outputs = sorted(own.glob("*/*.png"))
    assert outputs and Path(view).name in {p.name for p in outputs}
    other_app = Path(tempfile.mkdtemp(prefix="run-other-", dir=own.parent)) / "t2i.png"  # another server's output
    other_app.write_bytes(outputs[-1].read_bytes())

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(f"{url}/gradio_api/file={urllib.parse.quote(path)}", timeout=10) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    assert status(str(outputs[-1])) == 200
    for path in ("/etc/passwd", str(secret), f"{own}/../{secret.parent.name}/secret.txt", f"{own}/../../etc/passwd",
                 f"{own}/../../../{secret.parent.name}/secret.txt", str(SPACE / "app.py"), str(other_app),
                 f"{own}/../{other_app.parent.name}/t2i.png"):
        assert status(path) in (403, 404), path
    shutil.rmtree(other_app.parent)


def test_the_app_listens_on_loopback_unless_told_and_bounds_uploads(app_module, monkeypatch, tmp_path):
    import PIL.Image as Image

    launched = {}

    class FakeBlocks:
        def launch(self, **kwargs):
            launched.update(kwargs)

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.setattr(app_module, "build_demo", lambda model, max_queue=None: FakeBlocks())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    (tmp_path / "model").mkdir()
    assert app_module.main(["--model", str(tmp_path / "model"), "--port", "7999"]) == 0
    assert launched["server_name"] == "127.0.0.1" and launched["server_port"] == 7999
    assert launched["allowed_paths"] == [str(Path(app_module.tempfile.gettempdir()) / "nuwa-web-demo")]
    assert launched["max_file_size"] == f"{media.MAX_INPUT_MB}mb"
    assert Image.MAX_IMAGE_PIXELS * 2 == media.MAX_IMAGE_PIXELS  # Pillow refuses past nuwa-hf's pixel limit
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # told otherwise
    monkeypatch.setenv("NUWA_HF_MAX_INPUT_MB", "5")
    assert app_module.main(["--model", str(tmp_path / "model")]) == 0
    assert launched["server_name"] == "0.0.0.0" and launched["max_file_size"] == "5mb"


def test_uploaded_names_with_control_characters_are_shown_safely(app_module):
    assert app_module.shown_name("/tmp/x/evil\nname\x1b[31m.gif") == "evil?name?[31m.gif"


# --------------------------------------------------------------------------------------------------------------------
# The queue and cancelled requests (issue 30, item 1; the load itself: tests/spaces/test_web_load.py)


def test_the_queue_is_bounded_and_cached_files_expire(web_app, app_module, monkeypatch):
    blocks = web_app[0]
    assert blocks._queue.max_size == app_module.DEFAULT_QUEUE_SIZE == 16
    assert blocks._queue.default_concurrency_limit == 1
    assert blocks.delete_cache == (app_module.CACHE_SWEEP_SECONDS, app_module.CACHE_SECONDS)
    monkeypatch.setenv(app_module.QUEUE_SIZE_ENV_VAR, "3")
    assert app_module.queue_size() == 3
    for bad in ("0", "many"):
        monkeypatch.setenv(app_module.QUEUE_SIZE_ENV_VAR, bad)
        with pytest.raises(ValueError, match=app_module.QUEUE_SIZE_ENV_VAR):
            app_module.queue_size()


def test_uploads_leave_no_stray_files_in_gradios_cache(client, web_app, inputs, sizes):
    """gradio's File (type "filepath") makes an empty temp file per upload that nothing deletes; the app's
    UploadFile does not."""
    import tempfile

    from gradio_client import handle_file

    cache = Path(web_app[0].GRADIO_CACHE if hasattr(web_app[0], "GRADIO_CACHE") else
                 Path(tempfile.gettempdir()) / "gradio")
    before = {p for p in cache.glob("tmp*") if p.is_file()}
    size, frames, upscale = sizes
    for _ in range(2):
        _check_video(client.predict(handle_file(str(inputs / "clip.gif")), "Example 1", 1, frames - 1, 0, 8,
                                    api_name="/v2v"), size, frames, upscale)
    assert {p for p in cache.glob("tmp*") if p.is_file()} == before


def test_the_app_keeps_only_its_newest_output_folders(web_app, app_module):
    nuwa = web_app[0].nuwa
    for _ in range(app_module.KEEP_OUTPUT_FOLDERS + 3):
        nuwa._workdir("T2I")
    assert len([p for p in nuwa.out_root.iterdir() if p.is_dir()]) == app_module.KEEP_OUTPUT_FOLDERS


@pytest.fixture()
def slow_steps(web_app, app_module):
    """Every decoding step takes 50 ms more (a 9-frame T2V: about 7 s); yields the times the steps started."""
    import time

    nuwa = web_app[0].nuwa
    steps = []

    class SlowSteps(app_module.StopAtNextStep):
        def __call__(self, input_ids, scores):
            steps.append(time.perf_counter())
            time.sleep(0.05)
            return super().__call__(input_ids, scores)

    original = nuwa.stop_check
    nuwa.stop_check = SlowSteps(nuwa.switch)
    yield steps
    nuwa.stop_check = original


def _wait_for(condition, limit: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("how", ["cancel", "disconnect"])
def test_a_cancelled_or_disconnected_request_frees_the_slot_at_the_next_token(how, web_app, client, sizes,
                                                                              slow_steps):
    """gradio's /cancel (gradio_client's Job.cancel()) and a client that goes away (its queue stream and heartbeat
    closed) end the running generation at its next decoding step: gradio itself would wait for the worker thread."""
    import time

    import httpx

    web_load = _load("nuwa_web_load", "../../benchmarks/web_load.py")
    blocks, url = web_app
    nuwa = blocks.nuwa
    size, frames, upscale = sizes
    args = ("the digit 3 is moving up then down", 3 * frames, 0, 1.5, 8)
    if how == "cancel":
        job = client.submit(*args, api_name="/t2v")
        _wait_for(lambda: len(slow_steps) >= 3)
        gone = time.perf_counter()
        job.cancel()
    else:
        done = {}

        def disconnect():
            done["note"], _, done["at"] = web_load.cancel_by_disconnecting(url, web_load._fn_index(client, "t2v"),
                                                                           list(args), 0.2)

        import threading

        thread = threading.Thread(target=disconnect)
        thread.start()
        thread.join(timeout=60)
        assert done.get("note") == "cancelled"
        gone = done["at"]
    _wait_for(lambda: not nuwa._generating.locked(), limit=5)
    ended = time.perf_counter()
    late = [t for t in slow_steps if t > gone]
    assert len(late) <= 3, f"{len(late)} steps after the request went away"
    assert ended - gone < 1.0
    assert len(slow_steps) < 3 * frames * 16  # far from the whole video
    _wait_for(lambda: httpx.get(f"{url.rstrip('/')}/gradio_api/queue/status").json()["queue_size"] == 0, limit=5)
    started = time.perf_counter()
    _check_image(client.predict("a red 7", 0, 1.5, 8, api_name="/t2i"), size, upscale)  # the next one is served
    assert time.perf_counter() - started < 10


def test_a_request_cancelled_while_waiting_never_runs(web_app, app_module):
    """The liveness check also runs before a generation starts (after the wait for the model)."""
    nuwa = web_app[0].nuwa
    with pytest.raises(app_module.GenerationStopped):
        with nuwa.switch.job("session", lambda: False):
            nuwa.switch.check()
    assert app_module.gradio_event_watch() is None  # outside gradio's queue: nothing to watch


def test_the_server_caps_malloc_arenas_and_trims_after_each_generation(app_module, monkeypatch):
    """Two glibc arenas and malloc_trim after each generation keep resident memory flat under load (the load run's
    gate: tests/spaces/test_web_load.py); both are no-ops where the C library is not glibc."""
    import platform

    calls = []
    libc = app_module._glibc()
    if platform.libc_ver()[0] == "glibc":
        assert libc is not None

    class FakeLibc:
        def mallopt(self, *args):
            calls.append(("mallopt", *args))

        def malloc_trim(self, *args):
            calls.append(("malloc_trim", *args))

    monkeypatch.setattr(app_module, "_glibc", lambda: FakeLibc())
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    app_module.limit_malloc_arenas()
    app_module.release_freed_memory()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the environment wins
    app_module.limit_malloc_arenas()
    assert calls == [("mallopt", app_module.M_ARENA_MAX, 2), ("malloc_trim", 0)]


def test_the_sampling_sliders_start_at_each_tasks_own_defaults(app_module, tiny_model_folder, tmp_path):
    """generation_config.json's task_sampling (e.g. top-k 32 for text-to-video in the shipped folder) is where the
    pipelines sample; the page's sliders start there too, and at the folder's defaults for the other tasks."""
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_folder, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config.update(do_sample=True, top_k=8, guidance_scale=3.0, _from_model_config=False,
                  task_sampling={"nuwa-text-to-video": {"top_k": 32, "guidance_scale": 5.0, "scorer": "likelihood",
                                                        "num_candidates": 2},
                                 "nuwa-video-prediction": {"top_k": 4}})
    (folder / "generation_config.json").write_text(json.dumps(config))
    blocks = app_module.build_demo(str(folder))
    try:
        value = {c["props"].get("elem_id"): c["props"].get("value") for c in blocks.config["components"]}
        # the info line says when the folder reranks a task's candidates
        settings = {"seed": 0, "top_k": 32, "guidance_scale": 5.0}
        assert "best of 2 by the model's own likelihood" in blocks.nuwa._settings(settings, 1.0, "T2V")
        assert "best of" not in blocks.nuwa._settings(settings, 1.0, "T2I")
        # a video past the trained frames (the frames slider goes to 3x) is one sample, not refused, and says so
        longer = blocks.nuwa.frames + 1
        *_, info = blocks.nuwa.text_to_video("the digit 3", longer, 0, 5.0, 32)
        assert f"{longer} frames; seed 0" in info and "best of" not in info
    finally:
        blocks.close()
    assert (value["t2v-top-k"], value["t2v-guidance"]) == (32, 5.0)
    assert (value["t2i-top-k"], value["t2i-guidance"]) == (8, 3.0)
    assert value["v2v-top-k"] == 4 and "v2v-guidance" not in value


# --------------------------------------------------------------------------------------------------------------------
# A first-time visitor's walk through the tabs in Chromium (1280x1000)


def test_every_tab_label_stays_in_sight(web_app):
    """Eight tab labels are wider than a 1280-pixel window: the tab bar wraps onto a second row instead of hiding
    the last tabs behind gradio's "..." menu (the browser check: test_browser_shows_every_tab_without_a_menu)."""
    tabs = [c for c in web_app[0].config["components"] if c.get("type") == "tabs"]
    assert [t["props"].get("overflow_behavior") for t in tabs] == ["wrap"]


@pytest.mark.slow
def test_browser_shows_every_tab_without_a_menu(web_app, chromium):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    driver = screenshot.chrome_driver(1280, 1000)
    try:
        driver.get(web_app[1])
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#t2i-generate"))
        shown = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "[role=tab]") if b.is_displayed()]
        menus = [m for m in driver.find_elements(By.CSS_SELECTOR, ".overflow-menu button") if m.is_displayed()]
    finally:
        driver.quit()
    from nuwa_hf.tasks import TASKS

    assert shown == [f"{task.code} {task.title}" for task in TASKS] and not menus


def test_a_cleared_editor_asks_for_an_image(client, inputs, tmp_path):
    """The editors' "Clear canvas" sends no picture, a fully transparent one, or (an editor that started with a painted
    layer: the image tabs' built-in example, in Chromium) a plain white one with an empty layer: the message asks for
    an image (or a sketch), not for a mask to be painted over a picture that is not there."""
    from gradio_client.exceptions import AppError

    PIL.Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(tmp_path / "cleared.png")
    PIL.Image.new("RGBA", (64, 64), (255, 255, 255, 255)).save(tmp_path / "white.png")
    no_image = r"<strong>No image\.</strong> The editor is empty.*upload or paste an image into it"
    with pytest.raises(AppError, match=no_image):
        client.predict(_editor(tmp_path / "cleared.png"), "painted with the brush", 0, 8, api_name="/i2i")
    with pytest.raises(AppError, match=no_image):  # what Chromium sends after "Clear canvas" on the I2I tab
        client.predict(_editor(tmp_path / "white.png", tmp_path / "cleared.png"), "painted with the brush", 0, 8,
                       api_name="/i2i")
    with pytest.raises(AppError, match=no_image):
        client.predict(_editor(tmp_path / "white.png", inputs / "bottom_painted.png"), "a blue 7",
                       "painted with the brush", 0, 1.5, 8, api_name="/ti2i")
    with pytest.raises(AppError, match=no_image):
        client.predict(_editor(tmp_path / "cleared.png", inputs / "bottom_painted.png"), "a blue 7",
                       "painted with the brush", 0, 1.5, 8, api_name="/ti2i")
    with pytest.raises(AppError, match="The canvas is empty: draw a sketch"):
        client.predict(_editor(tmp_path / "cleared.png", tmp_path / "cleared.png"), None, "grass", 0, 1.5, 8,
                       api_name="/s2i")
    with pytest.raises(AppError, match="The canvas is empty: draw a sketch"):
        client.predict(_editor(tmp_path / "white.png", tmp_path / "cleared.png"), None, "grass", 0, 1.5, 8,
                       api_name="/s2i")


def test_sketch_to_video_starts_with_a_motion_its_sketch_can_make(web_app, monkeypatch):
    """The S2V tab's starting motion moves the starting sketch's shapes (the shipped model's first held-out scene has
    its circle near the right edge: "right" gave a still video); a shape at the right edge starts moving left."""
    from nuwa_hf.data.sketch_motion import move_shapes

    nuwa = web_app[0].nuwa
    motion = nuwa.default_motion()
    names = len(nuwa.class_names)
    assert motion != "none" and move_shapes(nuwa.default_sketch_map(), motion, nuwa.frames, names)[1] is None
    radios = [c["props"]["value"] for c in web_app[0].config["components"]
              if c.get("type") == "radio" and "Motion" in c["props"].get("label", "")]
    assert radios == [motion]
    size = nuwa.image_size
    at_right_edge = np.zeros((size, size), dtype=np.int64)
    at_right_edge[size // 2:] = 1
    at_right_edge[4:10, size - 6:] = min(4, names - 1)
    monkeypatch.setattr(nuwa, "default_sketch_map", lambda: at_right_edge)
    assert nuwa.default_motion() == "left"


def test_a_motion_the_shapes_cannot_make_is_not_reported_as_done(client, sizes, tmp_path, web_app):
    size, frames, upscale = sizes
    names = len(web_app[0].nuwa.class_names)
    sketch = np.zeros((64, 64), dtype=np.int64)
    sketch[32:] = 1
    sketch[20:40, 56:] = min(4, names - 1)  # a square at the right edge
    media.sketch_to_image(sketch, num_classes=names).save(tmp_path / "edge.png")
    _, *result = client.predict(_editor(tmp_path / "edge.png"), None, "grass", "right", frames, 0, 1.5, 8,
                                api_name="/s2v")
    info = _check_video(result, size, frames, upscale)
    assert "cannot move right" in info and "Motion: right" not in info


# --------------------------------------------------------------------------------------------------------------------
# Polish from a browser walk-through: cleared image editors, the page's wording, pop-up titles, results in sight, the
# input video shown


def _open_tab(driver, url: str, code: str):
    """Open the page in ``driver`` and the tab of task ``code``; returns the tab's prefix."""
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#t2i-generate"))
    tab = next(b for b in driver.find_elements(By.CSS_SELECTOR, "[role=tab]") if b.text.startswith(f"{code} "))
    tab.click()
    prefix = code.lower()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, f"#{prefix}-generate").is_displayed())
    time.sleep(0.5)
    return prefix


def _in_view(driver, element) -> bool:
    """Whether ``element`` lies wholly inside the window (no scrolling needed to see all of it)."""
    top, bottom, left, right, height, width = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.top, r.bottom, r.left, r.right, window.innerHeight, window.innerWidth];", element)
    return bottom > top and top >= 0 and bottom <= height and left >= 0 and right <= width


def _toasts(driver) -> list:
    """(heading, message) of each error pop-up on the page, its bold first words as the message's title."""
    from selenium.webdriver.common.by import By

    return [(t.find_element(By.CSS_SELECTOR, ".toast-title").text.strip(),
             t.find_element(By.CSS_SELECTOR, "[data-testid=toast-text]").get_attribute("innerHTML"))
            for t in driver.find_elements(By.CSS_SELECTOR, ".toast-body.error")]


@pytest.mark.slow
def test_browser_a_cleared_image_editor_asks_for_an_image_under_a_title(web_app, chromium):
    """In Chromium, "Clear canvas" on the I2I / TI2I editors (which start with the built-in example's painted layer)
    sends a plain white picture: Generate says the picture is missing and what to do, under the title "No image",
    instead of "The mask covers nothing"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    driver = screenshot.chrome_driver(1280, 1000)
    said = {}
    try:
        for code in ("I2I", "TI2I"):
            prefix = _open_tab(driver, web_app[1], code)
            editor = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-editor")
            editor.find_element(By.CSS_SELECTOR, "button[aria-label='Clear canvas']").click()
            driver.find_element(By.CSS_SELECTOR, f"#{prefix}-generate").click()
            WebDriverWait(driver, 60).until(_toasts)
            said[code] = _toasts(driver)
    finally:
        driver.quit()
    for code, toasts in said.items():
        assert len(toasts) == 1, (code, toasts)
        _, message = toasts[0]
        assert message.startswith("<strong>No image.</strong> The editor is empty"), (code, message)
        assert "upload or paste an image" in message and "mask covers nothing" not in message


def test_error_pop_ups_say_what_went_wrong_in_their_title(client, inputs, app_module, web_app):
    """Each pop-up's title names the problem in the page's terms (not gradio's "Error"): its first words, in bold
    (gradio 6.31 heads every pop-up with its kind and shows no title), and the error's title for API clients."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    calls = {
        "No prompt": lambda: client.predict("  ", 0, 1.5, 8, api_name="/t2i"),
        "Nothing painted": lambda: client.predict(_editor(inputs / "picture.png", inputs / "nothing_painted.png"),
                                                  "painted with the brush", 0, 8, api_name="/i2i"),
        "Video too short": lambda: client.predict(handle_file(str(inputs / "one_frame.gif")), "Example 1", 2, 1, 0, 8,
                                                  api_name="/v2v"),
        "Unreadable video": lambda: client.predict(handle_file(str(inputs / "broken.gif")), "Example 1", 1, 1, 0, 8,
                                                   api_name="/v2v"),
        "Unknown class in the sketch": lambda: client.predict(
            _editor(inputs / "sketch.png"), handle_file(str(inputs / "unknown_class.png")), "grass", 0, 1.5, 8,
            api_name="/s2i"),
        app_module.INPUT_TITLE: lambda: client.predict("purple cat", 0, 1.5, 8, api_name="/t2i"),  # the pipeline's
    }
    for title, call in calls.items():
        with pytest.raises(AppError) as raised:
            call()
        assert raised.value.title == title and raised.value.message.startswith(f"<strong>{title}.</strong> "), \
            (title, raised.value.message)

    @app_module.guarded
    def broken():
        raise RuntimeError("boom")

    import gradio as gr

    with pytest.raises(gr.Error) as raised:
        broken()
    assert raised.value.title == app_module.FAILED_TITLE and "RuntimeError: boom" in raised.value.message
    with pytest.raises(gr.Error) as raised:  # (the page's seed box refuses negative numbers itself)
        web_app[0].nuwa._options(-1, 8)
    assert raised.value.title == "Invalid seed" and raised.value.message.startswith("<strong>Invalid seed.</strong>")


def test_the_page_words_the_unknown_word_note_for_its_visitors(client, sizes, web_app):
    """The info line names the words left out and what the model read, and tells the visitor to rephrase with the
    words it knows (listed); no Python (argument names, module paths): the page has no control that keeps them. A
    prompt with no known word is refused the same way."""
    from gradio_client.exceptions import AppError

    size, _, upscale = sizes
    info = _check_image(client.predict("a purple digit 3", 0, 1.5, 8, api_name="/t2i"), size, upscale)
    note = next(line for line in info.splitlines() if "never saw" in line)
    assert "never saw in training: 'purple'" in note and "the model reads 'a digit 3'" in note
    assert "rephrase with words it knows" in note and "red" in note and "digit" in note
    python = ("drop_unknown_words", "=False", "=True", "nuwa_hf", "tokenizer", "known_words(")
    assert not any(word in note for word in python), note
    with pytest.raises(AppError) as raised:
        client.predict("purple cat", 0, 1.5, 8, api_name="/t2i")
    assert "never saw 'purple', 'cat'" in raised.value.message
    assert not any(word in raised.value.message for word in python), raised.value.message


@pytest.mark.slow
def test_browser_video_results_appear_in_sight_of_the_generate_button(web_app, chromium):
    """At 1280x1000, on every video tab, Generate is in sight when the tab opens and the result (the MP4 and the GIF)
    appears in sight after pressing it, with no scrolling: the inputs of a tab can be taller than the window."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from nuwa_hf.tasks import TASKS

    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    driver = screenshot.chrome_driver(1280, 1000)
    seen = {}
    try:
        for info in [task for task in TASKS if task.makes_video]:
            prefix = _open_tab(driver, web_app[1], info.code)
            driver.execute_script("window.scrollTo(0, 0)")
            button = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-generate")
            in_sight = _in_view(driver, button)
            driver.execute_script("arguments[0].click()", button)  # a click that scrolls nothing into view

            def result(drv):
                gif = drv.find_elements(By.CSS_SELECTOR, f"#{prefix}-gif img")
                done = gif and drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth", gif[0])
                return gif[0] if done else False

            gif = WebDriverWait(driver, 120).until(result)
            views = [gif] + (driver.find_elements(By.CSS_SELECTOR, f"#{prefix}-mp4 video") if media.mp4_available()
                             else [])
            seen[info.code] = (in_sight, [_in_view(driver, view) for view in views],
                               driver.execute_script("return window.scrollY"))
    finally:
        driver.quit()
    for code, (button_in_sight, views_in_sight, scrolled) in seen.items():
        assert button_in_sight and scrolled == 0, (code, seen[code])
        assert len(views_in_sight) == (2 if media.mp4_available() else 1) and all(views_in_sight), (code, seen[code])


def test_the_video_tabs_show_the_input_video(web_app, app_module, inputs):
    """V2V and TV2V start from the built-in example when nothing is uploaded: the page shows that video (the chosen
    example, or the upload once there is one) beside the upload box."""
    nuwa = web_app[0].nuwa
    components = {c["props"].get("elem_id"): c["props"] for c in web_app[0].config["components"]}
    for code in ("V2V", "TV2V"):
        shown = components[f"{code.lower()}-input-video"]
        assert "built-in example 1" in shown["label"] and shown["value"] is not None
        examples = nuwa.examples(code)
        for choice, index in (("Example 1", 0), ("Example 3", 2)):
            path, label = nuwa.video_preview(code, None, choice)
            assert f"built-in example {index + 1}" in label
            frames = media.load_video(path)
            expected = media.load_video(np.asarray(examples.references[index]))[: nuwa.frames]
            assert len(frames) == len(expected)
            for frame, original in zip(frames, expected):
                assert frame.size == (original.width * nuwa.upscale, original.height * nuwa.upscale)
                small = np.asarray(frame.resize(original.size, PIL.Image.NEAREST), dtype=np.int16)
                assert np.abs(small - np.asarray(original, dtype=np.int16)).mean() < 8  # GIF palette rounding
        path, label = nuwa.video_preview(code, str(inputs / "clip.gif"), "Example 2")
        assert "the upload 'clip.gif'" in label and len(media.load_video(path)) == 3
        path, label = nuwa.video_preview(code, str(inputs / "broken.gif"), "Example 2")
        assert path is None and "cannot be read" in label


@pytest.mark.slow
def test_browser_shows_the_built_in_example_video_and_then_the_upload(web_app, chromium, inputs):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    driver = screenshot.chrome_driver(1280, 1000)
    try:
        prefix = _open_tab(driver, web_app[1], "V2V")
        shown = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-input-video")
        image = WebDriverWait(driver, 30).until(lambda d: shown.find_elements(By.CSS_SELECTOR, "img"))[0]
        first = (shown.text, image.get_attribute("src"), _in_view(driver, image),
                 driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
        upload = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-upload input[type=file]")
        upload.send_keys(str(inputs / "clip.gif"))
        WebDriverWait(driver, 30).until(lambda d: "clip.gif" in d.find_element(By.CSS_SELECTOR,
                                                                                f"#{prefix}-input-video").text)
        after = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-input-video img").get_attribute("src")
    finally:
        driver.quit()
    label, source, in_sight, width = first
    assert "built-in example 1" in label and source.endswith(".gif") and in_sight and width > 0
    assert after != source


# --------------------------------------------------------------------------------------------------------------------
# Negative prompts (the text tasks' Sampling panel) and the notices of rephrased prompts, in the page's words

# Python names the page must never show: the pipelines' arguments and modules
PYTHON_NAMES = ("drop_unknown_words", "rephrase_prompt", "negative_prompt", "guidance_scale", "=False", "=True",
                "nuwa_hf", "tokenizer", "known_words(")


def _native(files, size) -> np.ndarray:
    """The model-size PNG of an image result, as an array (H, W, 3)."""
    native = next(f for f in files if f.endswith(".png") and PIL.Image.open(f).size == (size, size))
    return np.asarray(PIL.Image.open(native).convert("RGB"))


def test_a_negative_prompt_reaches_the_pipeline_and_the_info_line(client, sizes, web_app):
    """The T2I endpoint's last input is the negative prompt: the page's image is the pipeline's own with that
    negative_prompt (and not the one without), the info line names it; an empty or blank box means none."""
    size, _, upscale = sizes
    pipe = web_app[0].nuwa.pipeline("T2I")
    settings = dict(seed=0, top_k=8, guidance_scale=1.5)
    with_negative = np.asarray(pipe("a red 7", negative_prompt="a blue 8", **settings).convert("RGB"))
    without = np.asarray(pipe("a red 7", **settings).convert("RGB"))
    assert not np.array_equal(with_negative, without)  # the negative prompt changes this sample

    view, files, info = client.predict("a red 7", 0, 1.5, 8, "a blue 8", api_name="/t2i")
    assert np.array_equal(_native(files, size), with_negative)
    assert info.splitlines()[:2] == ["Prompt: 'a red 7'.", "Negative prompt: 'a blue 8'."]
    for blank in ("", "   "):
        view, files, info = client.predict("a red 7", 0, 1.5, 8, blank, api_name="/t2i")
        assert np.array_equal(_native(files, size), without) and "Negative prompt" not in info
    view, files, info = client.predict("a red 7", 0, 1.5, 8, api_name="/t2i")  # a client that leaves it out
    assert np.array_equal(_native(files, size), without) and "Negative prompt" not in info


def test_every_text_task_takes_a_negative_prompt(client, sizes, inputs):
    size, frames, upscale = sizes
    *_, info = client.predict("the digit 3 is moving up then down", frames, 0, 1.5, 8, "a red 3", api_name="/t2v")
    assert "Negative prompt: 'a red 3'." in info
    *_, info = client.predict(_editor(inputs / "picture.png"), "a blue 7", "top half", 0, 1.5, 8, "a red 7",
                              api_name="/ti2i")
    assert "Negative prompt: 'a red 7'." in info
    *_, info = client.predict(None, "Example 2", "the digit 3 is moving left then right", frames, 0, 1.5, 8,
                              "moving up then down", api_name="/tv2v")
    assert "Negative prompt: 'moving up then down'." in info


def test_a_negative_prompt_with_guidance_off_is_refused_under_a_title(client, inputs, app_module, sizes):
    """Guidance 1 turns guidance off, and a negative prompt acts only through it: every text tab says so under its
    own bold title, in the page's words (the slider and the box, no Python argument), before generating. Guidance 1
    with the box empty generates."""
    from gradio_client.exceptions import AppError

    _, frames, _ = sizes
    title = app_module.NEGATIVE_GUIDANCE_TITLE
    calls = {
        "t2i": lambda: client.predict("a red 7", 0, 1.0, 8, "a blue 8", api_name="/t2i"),
        "t2v": lambda: client.predict("the digit 3", frames, 0, 1.0, 8, "a blue 8", api_name="/t2v"),
        "ti2i": lambda: client.predict(_editor(inputs / "picture.png"), "a blue 7", "top half", 0, 1.0, 8, "a red 7",
                                       api_name="/ti2i"),
        "tv2v": lambda: client.predict(None, "Example 1", "the digit 3", frames, 0, 1.0, 8, "a red 3",
                                       api_name="/tv2v"),
    }
    for tab, call in calls.items():
        with pytest.raises(AppError) as raised:
            call()
        message = raised.value.message
        assert raised.value.title == title and message.startswith(f"<strong>{title}.</strong> "), (tab, message)
        assert "guidance scale 1" in message and "raise 'Guidance scale'" in message, (tab, message)
        assert "clear the negative prompt" in message, (tab, message)
        assert not any(name in message for name in PYTHON_NAMES), (tab, message)
    _, files, info = client.predict("a red 7", 0, 1.0, 8, "", api_name="/t2i")
    assert "guidance 1;" in info and "Negative prompt" not in info


def test_the_page_words_negative_prompt_and_rephrasing_notices_for_its_visitors(client, sizes, app_module):
    """The info line says which words of the negative prompt the model never saw and what it read, how a prompt's
    motion was rephrased into the captions' words, and a negative prompt with no known word is refused: all in the
    page's words (rephrase with the words it knows), with no Python names."""
    from gradio_client.exceptions import AppError

    size, frames, upscale = sizes
    info = _check_image(client.predict("a red 7", 0, 1.5, 8, "a purple 8", api_name="/t2i"), size, upscale)
    note = next(line for line in info.splitlines() if "never saw" in line)
    assert note.startswith("Note: The negative prompt 'a purple 8' has word(s) the model never saw in training: "
                           "'purple'; they were left out, so the model reads 'a 8'."), note
    assert "rephrase with words it knows" in note and "red" in note
    assert not any(name in note for name in PYTHON_NAMES), note

    info = _check_video(client.predict("a red 5 bouncing up and down", frames, 0, 1.5, 8, api_name="/t2v"),
                        size, frames, upscale)
    note = next(line for line in info.splitlines() if "was read as" in line)
    assert note == ("Note: The prompt 'a red 5 bouncing up and down' was read as 'a red 5 bouncing up then down': "
                    "'up and down' as 'up then down', the words the training captions say these motions with."), note
    *_, info = client.predict(None, "Example 1", "the digit 3 is moving side to side", frames, 0, 1.5, 8,
                              api_name="/tv2v")
    assert "'side to side' as 'left then right'" in info
    assert not any(name in info for name in PYTHON_NAMES), info

    with pytest.raises(AppError) as raised:
        client.predict("a red 7", 0, 1.5, 8, "purple cat", api_name="/t2i")
    message = raised.value.message
    assert raised.value.title == app_module.INPUT_TITLE
    assert "The negative prompt 'purple cat' has no word the model saw in training" in message
    assert "say what to steer away from in the words it knows" in message
    assert not any(name in message for name in PYTHON_NAMES), message


def test_the_info_line_lists_the_known_words_once(client, sizes, web_app):
    """A prompt and a negative prompt that both have unknown words give two notes; the list of the words the model
    knows (tens of words) closes the last of them only."""
    size, _, upscale = sizes
    known = web_app[0].nuwa.wording.known
    info = _check_image(client.predict("a purple 7", 0, 1.5, 8, "a purple 8", api_name="/t2i"), size, upscale)
    notes = [line for line in info.splitlines() if "never saw" in line]
    assert len(notes) == 2 and info.count(known) == 1, info
    assert notes[0].endswith("so the model reads 'a 7'.") and notes[1].endswith(known), notes


def test_a_prompt_holding_the_word_resized_keeps_its_note(client, sizes):
    """The page words the pipelines' resize notice itself and leaves theirs out, but only that notice: a prompt
    notice that holds the word "resized" still reaches the info line."""
    size, _, upscale = sizes
    info = _check_image(client.predict("a red 7 resized", 0, 1.5, 8, api_name="/t2i"), size, upscale)
    assert "never saw in training: 'resized'" in info


def _open_sampling(driver, prefix: str, guidance: Optional[float] = None, negative: Optional[str] = None):
    """Open the tab's Sampling panel; set the guidance slider (through its number box) and type the negative
    prompt. Returns the negative prompt box."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    panel = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-sampling")
    panel.find_element(By.CSS_SELECTOR, "button.label-wrap").click()
    box = WebDriverWait(driver, 30).until(
        lambda d: next((b for b in d.find_elements(By.CSS_SELECTOR, f"#{prefix}-negative-prompt input, "
                                                                    f"#{prefix}-negative-prompt textarea")
                        if b.is_displayed()), False))
    if guidance is not None:
        number = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-guidance input[type=number]")
        number.send_keys(Keys.CONTROL, "a")
        number.send_keys(f"{guidance:g}", Keys.TAB)
        WebDriverWait(driver, 10).until(
            lambda d: float(d.find_element(By.CSS_SELECTOR, f"#{prefix}-guidance input[type=range]")
                            .get_attribute("value")) == guidance)
    if negative is not None:
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(negative)
    return box


@pytest.mark.slow
def test_browser_generates_with_a_negative_prompt(web_app, chromium):
    """In Chromium at 1280x1000: type a prompt, open Sampling, raise guidance, type a negative prompt, press Generate:
    the image shown is the pipeline's with that negative prompt, and the info line names both prompts."""
    import io
    import urllib.request

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    blocks, url = web_app
    nuwa = blocks.nuwa
    top_k = next(c["props"]["value"] for c in blocks.config["components"] if c["props"].get("elem_id") == "t2i-top-k")
    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    driver = screenshot.chrome_driver(1280, 1000)
    try:
        prefix = _open_tab(driver, url, "T2I")
        prompt = driver.find_element(By.CSS_SELECTOR, "#t2i-prompt textarea, #t2i-prompt input")
        prompt.click()
        prompt.send_keys(Keys.CONTROL, "a")
        prompt.send_keys("a red 7")
        box = _open_sampling(driver, prefix, guidance=3.0, negative="a blue 8")
        box_in_sight = _in_view(driver, box)
        driver.find_element(By.CSS_SELECTOR, f"#{prefix}-generate").click()

        def generated(drv):
            for image in drv.find_elements(By.CSS_SELECTOR, f"#{prefix}-output img"):
                source = image.get_attribute("src") or ""
                if "t2i" in source and drv.execute_script("return arguments[0].complete && "
                                                          "arguments[0].naturalWidth", image):
                    return source
            return False

        source = WebDriverWait(driver, 60).until(generated)
        WebDriverWait(driver, 10).until(
            lambda d: "Negative prompt" in d.find_element(By.CSS_SELECTOR, f"#{prefix}-info textarea")
            .get_attribute("value"))
        info = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-info textarea").get_attribute("value")
        toasts = _toasts(driver)
    finally:
        driver.quit()
    assert box_in_sight and not toasts, toasts
    assert info.splitlines()[:2] == ["Prompt: 'a red 7'.", "Negative prompt: 'a blue 8'."], info
    assert f"top-k {top_k or 'off'}, guidance 3;" in info, info
    with urllib.request.urlopen(source, timeout=10) as answer:
        shown = np.asarray(PIL.Image.open(io.BytesIO(answer.read())).convert("RGB"))
    expected = nuwa.pipeline("T2I")("a red 7", seed=0, top_k=top_k, guidance_scale=3.0, negative_prompt="a blue 8")
    assert np.array_equal(shown[::nuwa.upscale, ::nuwa.upscale], np.asarray(expected.convert("RGB")))


@pytest.mark.slow
def test_browser_a_negative_prompt_with_guidance_off_shows_the_error(web_app, chromium, app_module):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    driver = screenshot.chrome_driver(1280, 1000)
    try:
        prefix = _open_tab(driver, web_app[1], "T2I")
        _open_sampling(driver, prefix, guidance=1.0, negative="a blue 8")
        driver.find_element(By.CSS_SELECTOR, f"#{prefix}-generate").click()
        WebDriverWait(driver, 60).until(_toasts)
        toasts = _toasts(driver)
        shown = driver.find_elements(By.CSS_SELECTOR, f"#{prefix}-output img")
    finally:
        driver.quit()
    title = app_module.NEGATIVE_GUIDANCE_TITLE
    assert len(toasts) == 1, toasts
    heading, message = toasts[0]
    assert message.startswith(f"<strong>{title}.</strong> The negative prompt 'a blue 8' acts through guidance"), \
        message
    assert "raise 'Guidance scale' under Sampling above 1" in message and "clear the negative prompt" in message
    assert not shown  # nothing was generated


def _popped_up(blocks, monkeypatch) -> list:
    """The notices the handlers pop up from now on, as [(level, message)]: what gradio's queue sends the page (gr.Info
    and gr.Warning end there; a gr.Error is raised instead)."""
    queue, said = blocks._queue, []
    original = queue.log_message

    def record(**message):
        said.append((message["level"], message["log"]))
        return original(**message)

    monkeypatch.setattr(queue, "log_message", record)
    return said


def test_the_pipelines_notes_pop_up_as_notices_headed_by_their_kind(client, sizes, inputs, web_app, monkeypatch):
    """Each of the pipelines' notes on the info line also pops up, as gradio's Info when it says how the input was
    read (rephrased, completed from the picture) and as a Warning when it says what the model will not honour (words
    it never saw): never as an error, which stops the generation. The pop-up's text is the note's, escaped as HTML
    (gradio renders it as HTML; the prompt is the visitor's). A prompt the model reads as typed pops up nothing."""
    import html

    size, _, upscale = sizes
    said = _popped_up(web_app[0], monkeypatch)
    info = _check_image(client.predict(_editor(inputs / "picture.png"), "make it blue", "top half", 0, 1.5, 8,
                                       api_name="/ti2i"), size, upscale)
    notes = [line.removeprefix("Note: ") for line in info.splitlines() if line.startswith("Note: ")]
    assert [level for level, _ in said] == ["warning", "info"], said
    assert [html.unescape(message) for _, message in said] == notes, (said, notes)
    assert "never saw in training: 'make', 'it'" in said[0][1] and "reads the picture as 'a " in said[1][1]

    said.clear()
    info = _check_image(client.predict("a red 7 <i>bouncing</i> up and down", 0, 1.5, 8, api_name="/t2i"),
                        size, upscale)
    levels = dict((level, message) for level, message in said)
    assert [level for level, _ in said] == ["info", "warning"], said
    assert levels["info"].startswith("The prompt 'a red 7 &lt;i&gt;bouncing&lt;/i&gt; up and down' was read as "), said
    assert "<i>" not in levels["warning"] and "never saw in training" in levels["warning"], said
    assert [html.unescape(message) for _, message in said] == \
        [line.removeprefix("Note: ") for line in info.splitlines() if line.startswith("Note: ")]

    said.clear()
    info = _check_image(client.predict("a red 7", 0, 1.5, 8, api_name="/t2i"), size, upscale)
    assert said == [] and "Note:" not in info


def test_the_manipulation_tabs_name_their_instruction(client, sizes, inputs, app_module):
    """The TI2I and TV2V tabs call their text box "Instruction": their notes and errors say "instruction", never
    "prompt" (the pipelines' argument), and the text tabs keep saying "prompt". The painted-region error says what the
    tab does to the region, as its labels do ("Region to change" on TI2I, "Region to regenerate" on I2I)."""
    from gradio_client.exceptions import AppError

    size, frames, upscale = sizes
    assert [app_module.prompt_field(code) for code in ("T2I", "T2V", "TI2I", "TV2V")] == \
        ["prompt", "prompt", "instruction", "instruction"]
    info = _check_image(client.predict(_editor(inputs / "picture.png"), "turn the 7 into a purple 8", "top half", 0,
                                       1.5, 8, api_name="/ti2i"), size, upscale)
    notes = [line for line in info.splitlines() if line.startswith("Note: ")]
    assert notes[0].startswith("Note: The instruction 'turn the 7 into a purple 8' was read as 'a purple 8': "), notes
    assert "(the model reads an instruction as the caption of the whole edited picture" in notes[0], notes
    assert notes[1].startswith("Note: The instruction 'a purple 8' has word(s) the model never saw"), notes
    info = _check_video(client.predict(None, "Example 1", "make it bounce up and down", frames, 0, 1.5, 8,
                                       api_name="/tv2v"), size, frames, upscale)
    notes = [line for line in info.splitlines() if line.startswith("Note: ")]
    assert notes[0].startswith("Note: The instruction 'make it bounce up and down' was read as "), notes
    assert notes[1].startswith("Note: The instruction 'make it bounce up then down' has word(s) "), notes
    for call in (lambda: client.predict(None, "Example 1", "purple cat", frames, 0, 1.5, 8, api_name="/tv2v"),
                 lambda: client.predict(_editor(inputs / "picture.png"), "purple cat", "top half", 0, 1.5, 8,
                                        api_name="/ti2i")):
        with pytest.raises(AppError) as raised:
            call()
        assert "</strong> The instruction 'purple cat' has no word the model saw" in raised.value.message
    assert not any("prompt" in line for line in notes), notes
    info = _check_image(client.predict("a purple 7", 0, 1.5, 8, api_name="/t2i"), size, upscale)
    assert "Note: The prompt 'a purple 7' has word(s)" in info

    for api_name, verb, args in (("/ti2i", "change", ("purple cat", "painted with the brush", 0, 1.5, 8)),
                                 ("/i2i", "regenerate", ("painted with the brush", 0, 8))):
        with pytest.raises(AppError) as raised:
            client.predict(_editor(inputs / "picture.png", inputs / "nothing_painted.png"), *args, api_name=api_name)
        assert f"paint over the part of the image to {verb} with the brush" in raised.value.message
        assert f"under 'Region to {verb}'" in raised.value.message


def _all_toasts(driver) -> list:
    """(kind, heading, [messages]) of each pop-up on the page; gradio groups the messages of one kind in one."""
    from selenium.webdriver.common.by import By

    return [(next(kind for kind in ("error", "warning", "info", "success") if kind in t.get_attribute("class").split()),
             t.find_element(By.CSS_SELECTOR, ".toast-title").text.strip(),
             [m.get_attribute("innerHTML") for m in t.find_elements(By.CSS_SELECTOR, "[data-testid=toast-text]")])
            for t in driver.find_elements(By.CSS_SELECTOR, ".toast-body")]


@pytest.mark.slow
def test_browser_shows_notices_under_their_kind_and_errors_as_errors(web_app, chromium):
    """In Chromium, on the TI2I tab: "make it blue" generates, and its notes pop up headed "Warning" (words left out)
    and "Info" (the digit read in the picture), saying "instruction", with no error; an emptied instruction is
    refused under "Error" with the problem and the fix."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    screenshot = _load("nuwa_space_screenshot", "screenshot.py")
    driver = screenshot.chrome_driver(1280, 1000)
    try:
        prefix = _open_tab(driver, web_app[1], "TI2I")
        box = driver.find_element(By.CSS_SELECTOR, f"#{prefix}-instruction textarea, #{prefix}-instruction input")
        box.click()
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("make it blue")
        driver.find_element(By.CSS_SELECTOR, f"#{prefix}-generate").click()
        WebDriverWait(driver, 60).until(lambda d: len(_all_toasts(d)) >= 2)
        notices = _all_toasts(driver)
        def closed(drv):  # closing one pop-up redraws the others: one at a time
            buttons = drv.find_elements(By.CSS_SELECTOR, "[data-testid=toast-close]")
            if buttons:
                buttons[0].click()
            return not buttons

        WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(closed)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        driver.find_element(By.CSS_SELECTOR, f"#{prefix}-generate").click()
        WebDriverWait(driver, 60).until(_all_toasts)
        errors = _all_toasts(driver)
    finally:
        driver.quit()
    headings = sorted((kind, heading) for kind, heading, _ in notices)
    assert headings == [("info", "Info"), ("warning", "Warning")], notices
    shown = {kind: messages for kind, _, messages in notices}
    assert len(shown["warning"]) == 1 and shown["warning"][0].startswith(
        "The instruction 'make it blue' has word(s) the model never saw in training: 'make', 'it'"), shown
    assert len(shown["info"]) == 1 and shown["info"][0].startswith(
        "The instruction 'make it blue' names no digit: the model reads the picture as 'a "), shown
    assert len(errors) == 1 and errors[0][:2] == ("error", "Error"), errors
    assert errors[0][2] == ["<strong>No instruction.</strong> The instruction is empty: type what to generate, e.g. "
                            "'a blue 7'."], errors


def test_errors_name_an_upload_by_its_file_name_not_the_servers_folders(client, inputs, app_module):
    """media's and Pillow's messages hold the path of the file they read: for an upload, gradio's upload folder and a
    hash folder on the server. The pop-up names the file as the visitor gave it, and says the fix once."""
    from gradio.utils import get_upload_folder
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    broken = handle_file(str(inputs / "broken.gif"))
    for call in (lambda: client.predict(broken, "Example 1", 1, 1, 0, 8, api_name="/v2v"),
                 lambda: client.predict(broken, "Example 1", "a red 3", 3, 0, 1.5, 8, api_name="/tv2v"),
                 lambda: client.predict(_editor(inputs / "sketch.png"), broken, "grass", 0, 1.5, 8, api_name="/s2i")):
        with pytest.raises(AppError) as raised:
            call()
        message = raised.value.message
        assert "'broken.gif' is not a " in message and get_upload_folder() not in message, message
        assert "/gradio/" not in message and message.count("Give a ") == 1 and "Upload a GIF" not in message, message
    folder = f"{get_upload_folder()}/{'0' * 64}"
    assert app_module.without_upload_folders(f"'{folder}/my clip.gif' is not a video") == "'my clip.gif' is not a video"
    elsewhere = "'/home/me/clip.gif' is not a video"
    assert app_module.without_upload_folders(elsewhere) == elsewhere
