"""The diffusers-style entry point: one DiffusionPipeline for the eight tasks, same engine as the transformers ones."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DiffusionPipeline
from transformers import pipeline

import nuwa_hf
from nuwa_hf.pipelines import NuwaDiffusionPipeline, NuwaPipelineOutput


@pytest.fixture(scope="module")
def diffusers_pipe(tiny_model_folder):
    pipe = NuwaDiffusionPipeline.from_pretrained(tiny_model_folder).to("cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_images_and_frames_like_diffusers(diffusers_pipe):
    out = diffusers_pipe("text-to-image", prompt=["a red 3", "a blue 8"], num_images_per_prompt=2,
                         generator=torch.Generator().manual_seed(0))
    assert isinstance(out, NuwaPipelineOutput) and out.frames is None
    assert len(out.images) == 4 and all(isinstance(i, PIL.Image.Image) for i in out.images)
    video = diffusers_pipe("T2V", prompt="the digit 3", num_frames=2, output_type="np").frames
    assert video.shape == (1, 2, 16, 16, 3)
    (images,) = diffusers_pipe("S2I", sketch=np.zeros((16, 16), dtype=np.int64), return_dict=False)
    assert len(images) == 1


def test_same_result_as_the_transformers_pipeline(diffusers_pipe, tiny_model_folder):
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    ours = diffusers_pipe("image-manipulation", image=image, prompt="a red circle", mask="center", seed=3,
                          output_type="np").images[0]
    theirs = pipeline("nuwa-image-manipulation", model=tiny_model_folder)(image, "a red circle", "center", seed=3,
                                                                         output_type="np")
    assert np.array_equal(ours, theirs)


def test_missing_inputs_and_round_trip(diffusers_pipe, tmp_path):
    with pytest.raises(ValueError, match="needs image, prompt, mask"):
        diffusers_pipe("TI2I")
    diffusers_pipe.save_pretrained(tmp_path / "copy")
    again = pipeline("nuwa-video-prediction", model=str(tmp_path / "copy"))
    assert len(again(PIL.Image.new("RGB", (16, 16)), seed=0)) == 3


# --------------------------------------------------------------------------------------------------------------------
# Issue 28 item 4a: a user imports the class from nuwa_hf, as the README names it, and asks for two outputs with the
# pipelines' name for the count (num_outputs_per_input, "one name in every task"). It used to collide with the name the
# entry point passes on (TypeError: got multiple values for keyword argument 'num_outputs_per_input').

RANDOM = np.random.default_rng(1)
ONE_INPUT_PER_TASK = {  # task code -> the inputs of one request on the tiny folder (16x16 pixels, 3 frames)
    "T2I": {"prompt": "a red 7"},
    "T2V": {"prompt": "the digit 3", "num_frames": 2},
    "V2V": {"image": PIL.Image.fromarray(RANDOM.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "num_frames": 1},
    "S2I": {"sketch": np.zeros((16, 16), dtype=np.int64)},
    "S2V": {"sketch": np.zeros((2, 16, 16), dtype=np.int64)},
    "I2I": {"image": PIL.Image.fromarray(RANDOM.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "mask": "bottom half"},
    "TI2I": {"image": PIL.Image.fromarray(RANDOM.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "prompt": "a red 7",
             "mask": "center"},
    "TV2V": {"image": PIL.Image.fromarray(RANDOM.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "prompt": "a red 7",
             "num_frames": 2},
}


def test_importable_from_the_package_root():
    from nuwa_hf import NuwaDiffusionPipeline as from_root

    assert from_root is NuwaDiffusionPipeline


@pytest.mark.parametrize("task", sorted(ONE_INPUT_PER_TASK))
def test_num_outputs_per_input_works_in_every_task(diffusers_pipe, task):
    out = diffusers_pipe(task, num_outputs_per_input=2, seed=0, **ONE_INPUT_PER_TASK[task])
    samples = out.frames if out.images is None else out.images
    assert len(samples) == 2, f"{task}: {len(samples)} outputs for one input with num_outputs_per_input=2"
    # The same request under diffusers' name gives the same outputs.
    again = diffusers_pipe(task, num_images_per_prompt=2, seed=0, output_type="np", **ONE_INPUT_PER_TASK[task])
    ours = diffusers_pipe(task, num_outputs_per_input=2, seed=0, output_type="np", **ONE_INPUT_PER_TASK[task])
    assert np.array_equal(again.frames if again.images is None else again.images,
                          ours.frames if ours.images is None else ours.images)


def test_both_count_names_must_agree(diffusers_pipe):
    out = diffusers_pipe("T2I", prompt="a red 7", num_outputs_per_input=2, num_images_per_prompt=2, seed=0)
    assert len(out.images) == 2
    with pytest.raises(TypeError, match="same count.*give one"):
        diffusers_pipe("T2I", prompt="a red 7", num_outputs_per_input=2, num_images_per_prompt=3)
    with pytest.raises(ValueError, match="num_outputs_per_input must be"):
        diffusers_pipe("T2I", prompt="a red 7", num_outputs_per_input=0)


def test_the_pipelines_frame_count_name_points_to_this_ones(diffusers_pipe):
    with pytest.raises(TypeError, match="num_frames=3 instead"):
        diffusers_pipe("V2V", image=ONE_INPUT_PER_TASK["V2V"]["image"], num_frames_to_predict=3)


# --------------------------------------------------------------------------------------------------------------------
# Issue 29: model folders hold data only. save_pretrained writes the model and processor files and a card, and no
# diffusers entry point (model_index.json + a pipeline module to import): this class loads the folder.


def test_save_pretrained_writes_data_only(diffusers_pipe, tmp_path):
    diffusers_pipe.save_pretrained(tmp_path / "saved")
    files = sorted(path.name for path in (tmp_path / "saved").iterdir())
    assert files == ["README.md", "checksums.json", "config.json", "generation_config.json", "model.safetensors",
                     "processor_config.json", "tokenizer.json", "tokenizer_config.json"]
    again = NuwaDiffusionPipeline.from_pretrained(str(tmp_path / "saved")).to("cpu")
    again.set_progress_bar_config(disable=True)
    expected = diffusers_pipe("text-to-image", prompt="a red 7", generator=torch.Generator().manual_seed(0),
                              output_type="np").images[0]
    actual = again("text-to-image", prompt="a red 7", generator=torch.Generator().manual_seed(0),
                   output_type="np").images[0]
    assert np.array_equal(actual, expected)


# --------------------------------------------------------------------------------------------------------------------
# Issue 29 item 3: the arguments each task takes are read off the task table (nuwa_hf.tasks), not restated here.


def test_the_arguments_each_task_takes_come_from_the_task_table():
    from nuwa_hf.pipelines.diffusers_pipeline import task_arguments
    from nuwa_hf.tasks import TASKS

    expected = {  # what the entry point took when it kept its own table
        "T2I": {"prompt"}, "T2V": {"prompt", "num_frames"}, "V2V": {"video", "image", "num_frames", "num_condition_frames"},
        "S2I": {"sketch"}, "S2V": {"sketch"}, "I2I": {"image", "mask", "prompt"}, "TI2I": {"image", "prompt", "mask"},
        "TV2V": {"video", "image", "prompt", "num_frames", "num_condition_frames"},
    }
    assert {task.code: set(task_arguments(task.name)) for task in TASKS} == expected
    assert task_arguments("TI2I") == ("image", "prompt", "mask")  # in the table's order, for the error message


@pytest.mark.parametrize("task, inputs", [("text-to-image", {"prompt": ["a red 3", "a blue 8"]}),
                                          ("T2V", {"prompt": "the digit 3", "num_frames": 2})])
def test_latent_output_is_the_token_grids_that_decode_to_the_pictures(diffusers_pipe, task, inputs):
    """diffusers' output_type="latent": NUWA's latents are its VQ-GAN token grids, which the model decodes into the
    pixels the other output types give for the same seed."""
    latent = diffusers_pipe(task, seed=4, output_type="latent", **inputs)
    pictures = diffusers_pipe(task, seed=4, output_type="pt", **inputs)
    tokens, expected = (latent.frames, pictures.frames) if task == "T2V" else (latent.images, pictures.images)
    grid = tuple(diffusers_pipe.transformer.config.max_visual_grid)
    assert tokens.dtype == torch.int64 and tokens.shape[0] == expected.shape[0]
    assert tokens.shape[-2:] == grid[1:] and (tokens.dim() == 4) == (task == "T2V")
    with torch.no_grad():
        pixels = diffusers_pipe.transformer.decode_visual_tokens(tokens)
    decoded = diffusers_pipe.processor.postprocess(pixels, output_type="pt")
    decoded = torch.stack(list(decoded)) if isinstance(decoded, (list, tuple)) else decoded
    # the pipelines round pictures to 8 bits, as the PNG they are saved as holds them
    assert torch.allclose(decoded.reshape(expected.shape).float(), expected.float(), atol=1 / 255)
    with pytest.raises(ValueError, match="'latent'"):
        diffusers_pipe(task, output_type="latents", **inputs)
