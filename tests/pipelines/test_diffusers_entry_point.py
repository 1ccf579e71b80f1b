"""The diffusers-style entry point: one DiffusionPipeline for the eight tasks, same engine as the transformers ones."""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

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
