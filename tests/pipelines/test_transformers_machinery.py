"""The NUWA pipelines run on transformers' own Pipeline machinery (issue 19): datasets, generators, KeyDataset,
batch_size and num_workers behave as in every transformers pipeline, and the shape of a result depends only on the
inputs' form, never on batching."""

import warnings

import datasets
import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline
from transformers.pipelines.pt_utils import KeyDataset

import nuwa_hf  # noqa: F401

SIZE, FRAMES = 16, 3
PROMPTS = ["a red 3", "a blue 8", "a green 5"]


def load(task, folder, **kwargs):
    pipe = pipeline(task, model=folder, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def image(seed):
    return PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def generators(*seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


@pytest.fixture(scope="module")
def t2i(tiny_model_folder):
    return load("nuwa-text-to-image", tiny_model_folder)


def test_call_is_transformers_call(t2i):
    from transformers import Pipeline

    from nuwa_hf.pipelines import NuwaPipeline

    # The base class adds no __call__ logic of its own beyond input adaptation; the steps are transformers'.
    assert type(t2i).preprocess is not Pipeline.preprocess and type(t2i)._forward is NuwaPipeline._forward
    model_inputs = t2i.preprocess("a red 3")
    assert set(model_inputs) == {"input_ids", "plan", "prompt", "notices"}
    assert model_inputs["input_ids"].shape[0] == 1 and model_inputs["input_ids"].device.type == "cpu"
    outputs = t2i.forward(model_inputs, seed=0, output_type="pil")
    assert outputs["tokens"].shape[:2] == (1, 1) and outputs["pixels"].shape[-2:] == (SIZE, SIZE)
    assert isinstance(t2i.postprocess(outputs), PIL.Image.Image)


def test_nesting_does_not_depend_on_batch_size(t2i):
    for batch_size in (1, 2, 8):
        out = t2i(PROMPTS, seed=0, batch_size=batch_size)
        assert isinstance(out, list) and len(out) == 3 and all(isinstance(i, PIL.Image.Image) for i in out)
        two = t2i(PROMPTS, seed=0, batch_size=batch_size, num_outputs_per_input=2)
        assert len(two) == 3 and all(len(per) == 2 for per in two)


def test_per_input_generators_make_batches_equal_to_single_calls(t2i):
    alone = [t2i(p, generator=g, output_type="tokens") for p, g in zip(PROMPTS, generators(1, 2, 3))]
    for batch_size in (1, 2, 3):
        batched = t2i(PROMPTS, generator=generators(1, 2, 3), output_type="tokens", batch_size=batch_size)
        assert all(torch.equal(a, b) for a, b in zip(alone, batched)), batch_size


def test_a_dataset_streams_lazily_and_matches_the_list_call(t2i):
    rows = datasets.Dataset.from_dict({"prompt": PROMPTS})
    expected = t2i(PROMPTS, seed=4, batch_size=1, output_type="tokens")
    stream = t2i(rows, seed=4, batch_size=1, output_type="tokens")
    assert not isinstance(stream, list), "a dataset gives an iterator, as in transformers"
    got = list(stream)
    assert len(got) == 3 and all(torch.equal(a, b) for a, b in zip(expected, got))
    # transformers' KeyDataset over a column, with batching: same results as the list call with the same batching.
    keyed = list(t2i(KeyDataset(rows, "prompt"), seed=4, batch_size=2, output_type="tokens"))
    listed = t2i(PROMPTS, seed=4, batch_size=2, output_type="tokens")
    assert all(torch.equal(a, b) for a, b in zip(keyed, listed))


def test_a_python_generator_of_inputs(t2i):
    stream = t2i((p for p in PROMPTS), seed=1, batch_size=2, output_type="tokens")
    got = list(stream)
    assert len(got) == 3 and all(t.shape == (4, 4) for t in got)
    again = list(t2i((p for p in PROMPTS), seed=1, batch_size=2, output_type="tokens"))
    assert all(torch.equal(a, b) for a, b in zip(got, again)), "a seeded stream is reproducible"


def test_num_workers_prepare_inputs_in_dataloader_workers(t2i):
    expected = t2i(PROMPTS, seed=2, batch_size=2, output_type="tokens")
    got = t2i(PROMPTS, seed=2, batch_size=2, num_workers=1, output_type="tokens")
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_request_dicts_for_multi_input_tasks(tiny_model_folder):
    edit = load("nuwa-image-manipulation", tiny_model_folder)
    request = {"image": image(1), "prompt": "a red circle", "mask": "center"}
    single = edit(request, seed=0, output_type="tokens")
    positional = edit(image(1), "a red circle", mask="center", seed=0, output_type="tokens")
    assert torch.equal(single, positional)
    rows = datasets.Dataset.from_list([{"image": np.asarray(image(i)), "prompt": p, "mask": "center"}
                                       for i, p in enumerate(PROMPTS[:2])])
    assert len(list(edit(rows, seed=0))) == 2
    with pytest.raises(ValueError, match="needs the region"):
        edit({"image": image(1), "prompt": "a red circle"})


def test_videos_of_different_lengths_in_one_batch(tiny_model_folder):
    predict = load("nuwa-video-prediction", tiny_model_folder)
    videos = [[image(1), image(2)], [image(3)]]
    batched = predict(videos, generator=generators(5, 6), batch_size=2, output_type="tokens")
    alone = [predict(v, generator=g, output_type="tokens") for v, g in zip(videos, generators(5, 6))]
    assert [tuple(t.shape) for t in batched] == [(FRAMES, 4, 4), (FRAMES, 4, 4)]
    assert all(torch.equal(a, b) for a, b in zip(alone, batched))
    future = predict(videos, include_condition_frames=False, batch_size=2, seed=0)
    assert [len(v) for v in future] == [FRAMES - 2, FRAMES - 1], "each input keeps its own plan"


def test_one_name_for_outputs_per_input(t2i, tiny_model_folder):
    with pytest.warns(FutureWarning, match="num_images_per_prompt is now called num_outputs_per_input"):
        old = t2i("a red 3", num_images_per_prompt=2, seed=0, output_type="tokens")
    new = t2i("a red 3", num_outputs_per_input=2, seed=0, output_type="tokens")
    assert all(torch.equal(a, b) for a, b in zip(old, new))
    with pytest.raises(TypeError, match="different numbers of outputs"):
        t2i("a red 3", num_images_per_prompt=2, num_outputs_per_input=3)
    video = load("nuwa-text-to-video", tiny_model_folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(video("the digit 3", num_outputs_per_input=2, num_frames=2, seed=0)) == 2


def test_empty_and_bad_streams(t2i):
    with pytest.raises(ValueError, match="empty list of inputs"):
        t2i([])
    with pytest.raises(TypeError, match="generator= as a list needs the inputs as a list"):
        t2i((p for p in PROMPTS), generator=generators(1, 2, 3))
    with pytest.raises(ValueError, match="empty"):
        list(t2i(iter_prompts(["a red 3", "  "])))


def iter_prompts(prompts):
    yield from prompts


@pytest.mark.parametrize("dtype_argument", ["dtype", "torch_dtype"])
def test_a_pipeline_loaded_in_bfloat16_saves_and_loads_again(tiny_model_folder, tmp_path, dtype_argument):
    """pipeline(..., dtype=torch.bfloat16) hands the dtype to the processor as well (transformers passes its model
    kwargs to AutoProcessor); the tokenizer kept it in its config and save_pretrained failed with "Object of type dtype
    is not JSON serializable". The processor leaves the model's loading arguments out."""
    pipe = load("nuwa-text-to-image", tiny_model_folder, **{dtype_argument: torch.bfloat16})
    assert pipe.model.dtype == torch.bfloat16
    pipe.save_pretrained(tmp_path)
    config = (tmp_path / "tokenizer_config.json").read_text()
    assert "dtype" not in config
    again = load("nuwa-text-to-image", tmp_path)
    assert again.model.dtype == torch.bfloat16
    assert np.array_equal(np.asarray(again(PROMPTS[0], seed=0)), np.asarray(pipe(PROMPTS[0], seed=0)))
