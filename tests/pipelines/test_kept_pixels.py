"""Kept pixels stay kept (issue 28): outside the edited region, and in the given frames, an editing task returns the
input's own pixels exactly; only a seam of ``seam`` pixels around the region is blended."""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf.pipelines.paste_back import keep_original_pixels, region_alpha

SIZE = 16  # the tiny model: 16 px, 4x4 tokens of 4 px


def picture(seed):
    return PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def as_array(image):
    return np.asarray(image, dtype=np.int16)


def test_region_alpha_is_zero_beyond_the_seam_and_one_deep_inside():
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[2:] = True  # bottom half of a 16-px image: rows 8..15
    alpha = region_alpha(mask, (16, 16), seam=2)
    assert torch.all(alpha[:6] == 0) and torch.all(alpha[10:] == 1)
    assert torch.all((alpha[6:10] > 0) & (alpha[6:10] < 1))
    assert torch.equal(region_alpha(mask, (16, 16), seam=0)[:8], torch.zeros(8, 16))


def test_given_frames_are_copied_and_generated_ones_left():
    pixels, original = torch.rand(1, 2, 3, 3, 4, 4), torch.rand(1, 3, 3, 4, 4)
    out = keep_original_pixels(pixels, original, known_frames=2)
    assert torch.equal(out[0, 1, :2], original[0, :2]) and torch.equal(out[0, :, 2], pixels[0, :, 2])


@pytest.mark.parametrize("task, args, kept_rows", [
    ("nuwa-image-completion", dict(mask="bottom half"), slice(0, 6)),
    ("nuwa-image-manipulation", dict(prompt="a blue 7", mask="bottom half"), slice(0, 6)),
])
def test_region_edits_keep_the_pixels_outside_the_seam(tiny_model_folder, task, args, kept_rows):
    pipe = pipeline(task, model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    image = picture(0)
    if task == "nuwa-image-manipulation":
        outputs = pipe(image, args["prompt"], args["mask"], seed=0, num_outputs_per_input=3)
    else:
        outputs = pipe(image, mask=args["mask"], seed=0, num_outputs_per_input=3)
    for output in outputs:  # every output, over seeds: the kept part is the input's, exactly
        assert np.abs(as_array(output)[kept_rows] - as_array(image)[kept_rows]).mean() == 0
    assert any(np.abs(as_array(o)[10:] - as_array(image)[10:]).mean() > 0 for o in outputs), "the region is new"
    if task == "nuwa-image-completion":
        reconstructed = pipe(image, mask=args["mask"], seed=0, keep_original_pixels=False)
        assert np.abs(as_array(reconstructed)[kept_rows] - as_array(image)[kept_rows]).mean() > 0
        hard = pipe(image, mask=args["mask"], seed=0, seam=0)
        assert np.abs(as_array(hard)[:8] - as_array(image)[:8]).mean() == 0


def test_video_tasks_return_the_given_frames_unchanged(tiny_model_folder):
    frames = [picture(1), picture(2)]
    predict = pipeline("nuwa-video-prediction", model=tiny_model_folder)
    predict.set_progress_bar_config(disable=True)
    video = predict(frames, num_condition_frames=2, num_frames_to_predict=1, include_condition_frames=True, seed=0)
    assert len(video) == 3
    for given, out in zip(frames, video[:2]):
        assert np.array_equal(as_array(out), as_array(given))
    manipulate = pipeline("nuwa-video-manipulation", model=tiny_model_folder)
    manipulate.set_progress_bar_config(disable=True)
    edited = manipulate([frames[0]], "the digit 3 is moving left then right", seed=0)
    assert np.array_equal(as_array(edited[0]), as_array(frames[0]))


def test_bad_values_are_named(tiny_model_folder):
    pipe = pipeline("nuwa-image-completion", model=tiny_model_folder)
    with pytest.raises(TypeError, match="keep_original_pixels must be True or False"):
        pipe(picture(0), keep_original_pixels="yes")
    with pytest.raises(ValueError, match=r"seam must be a whole number of pixels in \[0, 16\]"):
        pipe(picture(0), seam=-1)


def test_diffusers_face_keeps_the_pixels(tiny_model_folder):
    from nuwa_hf.pipelines import NuwaDiffusionPipeline

    pipe = NuwaDiffusionPipeline.from_pretrained(tiny_model_folder)
    image = picture(3)
    result = pipe("I2I", image=image, mask="bottom half", seed=0)
    output = result.images[0] if hasattr(result, "images") else result[0]
    output = output[0] if isinstance(output, list) else output
    assert np.abs(as_array(output)[:6] - as_array(image)[:6]).mean() == 0
