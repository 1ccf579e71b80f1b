"""Bad input, table-driven (issue 20): every row is a careless or hostile call to a pipeline, the diffusers face or the
media helpers, and the error type and a piece of the message it must get. Rows with ``None`` as the error must succeed
with well-formed output (the input is handled sensibly). The rows are grouped as the issue counted them:
silently wrong, raw errors, crash / hang (work limits). Loading errors (issue 20, deliverable 5) are tested elsewhere.

Every failing row fails before a token is generated, so the whole table runs in a few seconds on the tiny model.
"""

import math

import numpy as np
import PIL.Image
import pytest
import torch

from nuwa_hf import media
from nuwa_hf.pipelines import NuwaDiffusionPipeline
from nuwa_hf.pipelines import work_limits
from nuwa_hf.pipelines.work_limits import WorkLimitError

SIZE = 16
RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
VIDEO = RNG.integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
SKETCH = np.zeros((SIZE, SIZE), dtype=np.int64)
SKETCH_VIDEO = np.zeros((2, SIZE, SIZE), dtype=np.int64)


def nan_image():
    image = IMAGE.astype(np.float32) / 255
    image[3, 4, 1] = np.nan
    return image


def inf_video():
    video = VIDEO.astype(np.float32) / 255
    video[1, 0, 0, 0] = np.inf
    return video


def nan_sketch():
    sketch = SKETCH.astype(np.float64)
    sketch[0, 0] = np.nan
    return sketch


def nan_mask():
    mask = np.zeros((SIZE, SIZE), dtype=np.float32)
    mask[8:] = 1.0
    mask[0, 0] = np.nan
    return mask


def mixed_size_frames():
    return [PIL.Image.new("RGB", (SIZE, SIZE)), PIL.Image.new("RGB", (SIZE * 2, SIZE))]


def scorer(candidates, prompt):
    return list(range(len(candidates)))


T2I, T2V, V2V, S2I = "nuwa-text-to-image", "nuwa-text-to-video", "nuwa-video-prediction", "nuwa-sketch-to-image"
I2I, TI2I, S2V, TV2V = "nuwa-image-completion", "nuwa-image-manipulation", "nuwa-sketch-to-video", "nuwa-video-manipulation"

# (row id, task, positional arguments, keyword arguments, error type or None, piece of the message)
PIPELINE_ROWS = [
    # --- silently wrong before issue 20: sampling options --------------------------------------------------------
    ("guidance -1", T2I, ("a red 3",), {"guidance_scale": -1}, ValueError, "guidance_scale must be a finite number >= 1"),
    ("guidance 0", T2I, ("a red 3",), {"guidance_scale": 0}, ValueError, "steer away from"),
    ("guidance 0.5", T2I, ("a red 3",), {"guidance_scale": 0.5}, ValueError, "guidance_scale must be"),
    ("guidance 1 is off", T2I, ("a red 3",), {"guidance_scale": 1}, None, ""),
    ("temperature inf", T2I, ("a red 3",), {"temperature": math.inf}, ValueError, "temperature must be a finite number > 0"),
    ("temperature 0", T2I, ("a red 3",), {"temperature": 0}, ValueError, "temperature must be"),
    ("temperature -1", T2I, ("a red 3",), {"temperature": -1.0}, ValueError, "temperature must be"),
    ("temperature numpy", T2I, ("a red 3",), {"temperature": np.float32(0.7)}, None, ""),
    ("top_k -1", T2I, ("a red 3",), {"top_k": -1}, ValueError, "top_k must be an integer >= 0"),
    ("top_k 2.5", T2I, ("a red 3",), {"top_k": 2.5}, TypeError, "top_k must be an integer >= 0"),
    ("top_k 0 is off", T2I, ("a red 3",), {"top_k": 0}, None, ""),
    ("top_p 0", T2I, ("a red 3",), {"top_p": 0}, ValueError, "top_p must be a number in (0, 1]"),
    ("top_p 1.5", T2I, ("a red 3",), {"top_p": 1.5}, ValueError, "top_p must be"),
    ("do_sample 'no'", T2I, ("a red 3",), {"do_sample": "no"}, TypeError, "do_sample must be True or False"),
    ("do_sample 1", T2I, ("a red 3",), {"do_sample": 1}, TypeError, "do_sample must be True or False"),
    ("batch_size 0", T2I, ("a red 3",), {"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
    ("batch_size -3", T2I, ("a red 3",), {"batch_size": -3}, ValueError, "batch_size must be"),
    ("batch_size 2.0", T2I, ("a red 3",), {"batch_size": 2.0}, TypeError, "batch_size must be"),
    ("batch_size huge, one row", T2I, ("a red 3",), {"batch_size": 10**9}, None, ""),
    ("seed -1", T2I, ("a red 3",), {"seed": -1}, ValueError, "seed must be an integer in [0, "),
    ("seed 2**64", T2I, ("a red 3",), {"seed": 2**64}, ValueError, "seed must be"),
    ("seed 1.5", T2I, ("a red 3",), {"seed": 1.5}, TypeError, "seed must be"),
    ("num_candidates 0", T2I, ("a red 3",), {"num_candidates": 0, "scorer": scorer}, ValueError,
     "num_candidates must be an integer >= 1"),
    ("num_outputs_per_input 0", T2I, ("a red 3",), {"num_outputs_per_input": 0}, ValueError, ">= 1"),
    ("generate_kwargs temperature 0", T2I, ("a red 3",), {"generate_kwargs": {"temperature": 0}}, ValueError,
     "temperature must be"),
    ("allow_large 'yes'", T2I, ("a red 3",), {"allow_large": "yes"}, TypeError, "allow_large must be True or False"),
    # --- silently wrong before issue 20: inputs reinterpreted ------------------------------------------------------
    ("RGB array as a sketch", S2I, (IMAGE,), {}, ValueError, "looks like an RGB(A) picture"),
    ("RGB video as a video sketch", S2V, (VIDEO,), {}, ValueError, "looks like an RGB(A) picture"),
    ("RGB image as a video sketch", S2V, (IMAGE,), {}, ValueError, "looks like an RGB(A) picture"),
    ("NaN pixel", I2I, (nan_image(),), {}, ValueError, "NaN or infinite"),
    ("inf pixel in a video", V2V, (inf_video(),), {}, ValueError, "NaN or infinite"),
    ("NaN in a sketch", S2I, (nan_sketch(),), {}, ValueError, "NaN or infinite"),
    ("NaN in a mask", I2I, (IMAGE, nan_mask()), {}, ValueError, "NaN or infinite"),
    ("pixels above 255", I2I, (IMAGE.astype(np.int64) * 300,), {}, ValueError, "outside 0..255"),
    ("negative pixels", I2I, (IMAGE.astype(np.int64) - 300,), {}, ValueError, "outside 0..255"),
    ("complex pixels", I2I, (IMAGE.astype(np.complex64),), {}, TypeError, "dtype complex64"),
    ("V2V frames of mixed sizes", V2V, (mixed_size_frames(),), {}, ValueError, "different sizes"),
    ("TV2V frames of mixed sizes", TV2V, (mixed_size_frames(), "the digit 3"), {}, ValueError, "different sizes"),
    # Each input of a batch is generated as if alone (transformers' semantics), so lengths may differ.
    ("V2V batch of unequal frame counts", V2V, ([VIDEO, VIDEO[:1]],), {}, None, ""),
    ("V2V unequal counts cut explicitly", V2V, ([VIDEO, VIDEO[:1]],), {"num_condition_frames": 1}, None, ""),
    ("TV2V batch of unequal frame counts", TV2V, ([VIDEO, VIDEO[:1]], "the digit 3"), {}, None, ""),
    ("S2V batch of unequal frame counts", S2V, ([SKETCH_VIDEO, SKETCH_VIDEO[:1]],), {}, None, ""),
    ("T2I given image=", T2I, ("a red 3",), {"image": IMAGE}, TypeError, "Unexpected argument(s) ['image']"),
    ("T2V given sketch=", T2V, ("the digit 3",), {"sketch": SKETCH}, TypeError, "Unexpected argument(s) ['sketch']"),
    ("S2I given prompt=", S2I, (SKETCH,), {"prompt": "a red 3"}, TypeError, "Unexpected argument(s) ['prompt']"),
    ("V2V given num_frames=", V2V, (VIDEO,), {"num_frames": 2}, TypeError, "Unexpected argument(s) ['num_frames']"),
    ("I2I given num_frames=", I2I, (IMAGE,), {"num_frames": 2}, TypeError, "Unexpected argument(s) ['num_frames']"),
    # --- raw errors before issue 20 ---------------------------------------------------------------------------------
    ("guidance nan", T2I, ("a red 3",), {"guidance_scale": math.nan}, ValueError, "guidance_scale must be"),
    ("guidance inf", T2I, ("a red 3",), {"guidance_scale": math.inf}, ValueError, "guidance_scale must be"),
    ("guidance 'high'", T2I, ("a red 3",), {"guidance_scale": "high"}, TypeError,
     "guidance_scale must be a finite number >= 1 (1 = no guidance; > 1 follows the condition more closely), got 'high'"),
    ("guidance True", T2I, ("a red 3",), {"guidance_scale": True}, TypeError, "guidance_scale must be"),
    ("temperature 'hot'", T2I, ("a red 3",), {"temperature": "hot"}, TypeError, "temperature must be"),
    ("top_p nan", T2I, ("a red 3",), {"top_p": math.nan}, ValueError, "top_p must be"),
    ("top_k '5'", T2I, ("a red 3",), {"top_k": "5"}, TypeError, "top_k must be"),
    ("seed '0'", T2I, ("a red 3",), {"seed": "0"}, TypeError, "seed must be"),
    ("empty sketch", S2I, (np.zeros((0, 0), dtype=np.int64),), {}, ValueError, "is empty"),
    ("empty image", I2I, (np.zeros((0, 0, 3), dtype=np.uint8),), {}, ValueError, "is empty"),
    ("string pixels", I2I, (np.zeros((SIZE, SIZE, 3), dtype="<U1"),), {}, TypeError, "dtype <U1"),
    ("empty video", V2V, (np.zeros((0, SIZE, SIZE, 3), dtype=np.uint8),), {}, ValueError, "no frames"),
    ("empty prompt", T2I, ("  ",), {}, ValueError, "is empty"),
    ("prompt bytes", T2I, (b"a red 3",), {}, TypeError, "must be a string"),
    ("output_type jpeg", T2I, ("a red 3",), {"output_type": "jpeg"}, ValueError, "output_type must be one of"),
    ("generator a string", T2I, ("a red 3",), {"generator": "0"}, TypeError, "generator must be a torch.Generator"),
    ("sketch class out of range", S2I, (np.full((SIZE, SIZE), 99),), {}, ValueError, "class id"),
    ("box outside the image", I2I, (IMAGE, (0, 0, 99, 99)), {}, ValueError, "does not fit"),
    # a request dict (a dataset row) without the task's key: was 'The prompt must be a string, got NoneType'
    ("T2I dict with a caption key", T2I, ({"caption": "a red 3"},), {}, ValueError,
     "the keys ['caption'] but no 'prompt' or 'text': name its prompt 'prompt'"),
    ("V2V dict with a clip key", V2V, ({"clip": VIDEO},), {}, ValueError, "no 'video': name its video 'video'"),
    ("S2I dict with a map key", S2I, ({"map": SKETCH},), {}, ValueError, "no 'sketch': name its sketch 'sketch'"),
    # a URL (transformers' image pipelines fetch them): was "The image file 'http:/example.com/x.png' does not exist"
    ("I2I given a URL", I2I, ("https://example.com/digit.png",), {}, ValueError,
     "'https://example.com/digit.png' is a URL; nuwa-hf reads local files and in-memory inputs only"),
    ("V2V given a URL", V2V, ("http://example.com/clip.gif",), {}, ValueError, "is a URL"),
    ("S2I given a URL", S2I, ("HTTPS://example.com/sketch.png",), {}, ValueError, "download it first"),
    ("TI2I dict without a prompt", TI2I, ({"image": IMAGE, "mask": "all"},), {}, ValueError,
     "the keys ['image', 'mask'] but no 'prompt' or 'text'"),
    # --- crash / hang before issue 20: work limits --------------------------------------------------------------------
    ("T2V 100000 frames", T2V, ("the digit 3",), {"num_frames": 100000}, WorkLimitError, "allow_large=True"),
    ("V2V 100000 frames to predict", V2V, (VIDEO,), {"num_frames_to_predict": 100000}, WorkLimitError,
     "num_condition_frames + num_frames_to_predict asks for 100002 frames"),
    ("TV2V 100000 frames", TV2V, (VIDEO, "the digit 3"), {"num_frames": 100000}, WorkLimitError, "limit of 12"),
    ("1000 candidates", T2I, ("a red 3",), {"num_candidates": 1000, "scorer": scorer}, WorkLimitError,
     "limit of 64 candidates"),
    ("1000 images", T2I, ("a red 3",), {"num_outputs_per_input": 1000}, WorkLimitError, "limit of 256 per input"),
    ("T2V at the frame limit", T2V, ("the digit 3",), {"num_frames": 4}, None, ""),
    # --- other libraries' names for an option or input: the message names ours --------------------------------------
    ("text= for prompt", T2I, (), {"text": "a red 3"}, TypeError, "missing 1 required positional argument: 'prompt'"),
    ("TI2I text=", TI2I, (IMAGE,), {"text": "a red 3", "mask": "center"}, ValueError, "did you mean prompt=?"),
    ("TV2V caption=", TV2V, (VIDEO,), {"caption": "the digit 3"}, ValueError, "(got caption=; did you mean prompt=?)"),
    ("num_images", T2I, ("a red 3",), {"num_images": 2}, TypeError, "did you mean num_outputs_per_input=?"),
    ("guidance", T2I, ("a red 3",), {"guidance": 2.0}, TypeError, "did you mean guidance_scale=?"),
    ("topk", T2I, ("a red 3",), {"topk": 4}, TypeError, "did you mean top_k=?"),
]


def _pictures(result):
    """Every PIL image of a (possibly nested) pipeline output."""
    if isinstance(result, PIL.Image.Image):
        return [result]
    assert isinstance(result, list) and result, f"expected images or lists of them, got {type(result).__name__}"
    return [image for item in result for image in _pictures(item)]


def _well_formed(result, task):
    pictures = _pictures(result)
    assert all(p.size == (SIZE, SIZE) and p.mode == "RGB" for p in pictures)


@pytest.mark.parametrize("row", PIPELINE_ROWS, ids=[row[0] for row in PIPELINE_ROWS])
def test_pipeline_bad_input(row, pipes):
    _, task, args, kwargs, error, message = row
    pipe = pipes(task)
    if error is None:
        _well_formed(pipe(*args, seed=0, **kwargs), task)
        return
    with pytest.raises(error) as caught:
        pipe(*args, **kwargs)
    assert message in str(caught.value)


def test_a_dataset_whose_column_has_another_name_is_told_to_rename_it(pipes):
    """A 🤗 dataset of captions in a 'caption' column (the usual name on the Hub) gets the fix, not a None error."""
    datasets = pytest.importorskip("datasets")
    rows = datasets.Dataset.from_dict({"caption": ["a red 3", "a blue 7"]})
    with pytest.raises(ValueError, match=r"rename_column\('caption', 'prompt'\)"):
        list(pipes(T2I)(rows, seed=0))
    renamed = list(pipes(T2I)(rows.rename_column("caption", "prompt"), seed=0))
    assert len(renamed) == 2 and all(isinstance(image, PIL.Image.Image) for image in renamed)


def test_the_table_covers_every_category():
    assert len(PIPELINE_ROWS) + len(DIFFUSERS_ROWS) + len(MEDIA_ROWS) >= 60
    failing = [row for row in PIPELINE_ROWS if row[4] is not None]
    assert {row[1] for row in failing} == {T2I, T2V, V2V, S2I, I2I, TI2I, S2V, TV2V}


# --------------------------------------------------------------------------------------------------------------------
# The diffusers face: the same rules, and no stray argument ignored

DIFFUSERS_ROWS = [
    ("T2I given sketch=", ("T2I",), {"prompt": "a red 3", "sketch": SKETCH}, TypeError, "does not take sketch="),
    ("S2I given prompt=", ("S2I",), {"sketch": SKETCH, "prompt": "a red 3"}, TypeError, "does not take prompt="),
    ("T2V given mask=", ("T2V",), {"prompt": "the digit 3", "mask": "top half"}, TypeError, "does not take mask="),
    ("I2I given num_frames=", ("I2I",), {"image": IMAGE, "num_frames": 3}, TypeError, "does not take num_frames="),
    ("V2V given video= and image=", ("V2V",), {"video": VIDEO, "image": IMAGE}, TypeError, "not both"),
    ("guidance -1", ("T2I",), {"prompt": "a red 3", "guidance_scale": -1}, ValueError,
     "guidance_scale must be a finite number >= 1"),
    ("temperature 'hot'", ("T2I",), {"prompt": "a red 3", "temperature": "hot"}, TypeError, "temperature must be"),
    ("do_sample 'no'", ("T2I",), {"prompt": "a red 3", "do_sample": "no"}, TypeError, "do_sample must be"),
    ("num_images_per_prompt 0", ("T2I",), {"prompt": "a red 3", "num_images_per_prompt": 0}, ValueError,
     "num_images_per_prompt must be"),
    ("RGB array as a sketch", ("S2I",), {"sketch": IMAGE}, ValueError, "looks like an RGB(A) picture"),
    ("T2V 100000 frames", ("T2V",), {"prompt": "the digit 3", "num_frames": 100000}, WorkLimitError, "allow_large"),
]


@pytest.fixture(scope="module")
def diffusers_pipe(tiny_model_folder):
    pipe = NuwaDiffusionPipeline.from_pretrained(tiny_model_folder).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("row", DIFFUSERS_ROWS, ids=[row[0] for row in DIFFUSERS_ROWS])
def test_diffusers_face_bad_input(row, diffusers_pipe):
    _, args, kwargs, error, message = row
    with pytest.raises(error) as caught:
        diffusers_pipe(*args, **kwargs)
    assert message in str(caught.value)


def test_one_message_for_one_mistake_in_the_api_and_the_diffusers_face(pipes, diffusers_pipe):
    with pytest.raises(ValueError) as from_api:
        pipes(T2I)("a red 3", guidance_scale=-1)
    with pytest.raises(ValueError) as from_diffusers:
        diffusers_pipe("T2I", prompt="a red 3", guidance_scale=-1)
    assert str(from_api.value) == str(from_diffusers.value)


# --------------------------------------------------------------------------------------------------------------------
# Media helpers (what the CLI writes with)

MEDIA_ROWS = [
    ("fps 0.00001", lambda path: media.save_gif([IMAGE], path, fps=0.00001), ValueError, "fps must be a number between"),
    ("fps nan", lambda path: media.save_gif([IMAGE], path, fps=math.nan), ValueError, "fps must be"),
    ("fps 1000", lambda path: media.save_gif([IMAGE], path, fps=1000), ValueError, "fps must be"),
    ("fps '4'", lambda path: media.save_gif([IMAGE], path, fps="4"), TypeError, "fps must be"),
    ("NaN frame", lambda path: media.save_gif([nan_image()], path), ValueError, "NaN or infinite"),
    ("mixed frame sizes", lambda path: media.load_video(mixed_size_frames()), ValueError, "different sizes"),
]


@pytest.mark.parametrize("row", MEDIA_ROWS, ids=[row[0] for row in MEDIA_ROWS])
def test_media_bad_input(row, tmp_path):
    _, call, error, message = row
    with pytest.raises(error) as caught:
        call(tmp_path / "out.gif")
    assert message in str(caught.value)
    assert not list(tmp_path.iterdir()), "nothing is written"


# --------------------------------------------------------------------------------------------------------------------
# The memory estimate


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_work(pipes, monkeypatch):
    pipe = pipes(T2I)
    rows = 8
    needed = work_limits.estimate_chunk_bytes(pipe.model.config, (1, 4, 4), rows, guidance=False)
    assert needed == 2 * rows * pipe.model.config.decoder_layers * 2 * 17 * pipe.model.config.hidden_size * 4
    monkeypatch.setattr(work_limits, "free_memory_bytes", lambda device: needed)  # 80 % of it is usable
    prompts = ["a red 3"] * rows
    with pytest.raises(WorkLimitError, match=r"lower batch_size to 6 or less"):
        pipe(prompts, batch_size=rows)
    images = pipe(prompts, batch_size=6, seed=0)  # what the message advises works
    assert len(images) == rows
    # One input whose outputs alone do not fit: the message asks for fewer outputs instead.
    with pytest.raises(WorkLimitError, match=r"ask for at most 6 outputs x candidates per input"):
        pipe("a red 3", num_outputs_per_input=rows)
    assert len(pipe(prompts, batch_size=rows, seed=0, allow_large=True)) == rows


def test_seeded_calls_stay_reproducible_with_numpy_numbers(pipes):
    pipe = pipes(T2I)
    first = pipe("a red 3", seed=np.int64(5), top_k=np.int32(8), output_type="np")
    second = pipe("a red 3", seed=5, top_k=8, output_type="np")
    assert np.array_equal(first, second)
    assert torch.is_tensor(pipe("a red 3", seed=5, output_type="pt"))
