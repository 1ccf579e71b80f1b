"""The one input convention every metric relies on: layouts, value ranges, and clear refusals."""

import numpy as np
import pytest
import torch
from PIL import Image

from nuwa_hf.evaluation.image_inputs import as_float_images, as_float_videos, as_label_maps, as_texts, as_uint8_images


def test_layouts_agree():
    rng = np.random.default_rng(0)
    channels_last = rng.integers(0, 256, (3, 8, 9, 3), dtype=np.uint8)
    channels_first = torch.from_numpy(channels_last).permute(0, 3, 1, 2)
    as_pil = [Image.fromarray(image) for image in channels_last]
    expected = as_float_images(channels_last)
    assert expected.shape == (3, 3, 8, 9) and expected.dtype == torch.float32
    assert torch.equal(as_float_images(channels_first), expected)
    assert torch.equal(as_float_images(as_pil), expected)
    assert torch.equal(as_float_images(list(channels_last)), expected)
    assert np.array_equal(as_uint8_images(expected), channels_last)


def test_gray_is_repeated_and_luma_is_pil_like():
    gray = np.random.default_rng(1).integers(0, 256, (2, 5, 5), dtype=np.uint8)
    rgb = as_float_images(gray)
    assert rgb.shape == (2, 3, 5, 5) and torch.equal(rgb[:, 0], rgb[:, 2])
    colour = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    colour[..., 0] = 200
    pil_luma = np.asarray(Image.fromarray(colour[0]).convert("L"), dtype=np.float32) / 255
    assert np.allclose(as_float_images(colour, channels=1)[0, 0].numpy(), pil_luma, atol=1 / 255)


def test_videos_keep_time_axis():
    videos = np.zeros((2, 4, 6, 6, 3), dtype=np.uint8)
    videos[1, 3] = 255
    clips = as_float_videos(videos)
    assert clips.shape == (2, 4, 3, 6, 6)
    assert clips[1, 3].min() == 1 and clips[1, :3].max() == 0


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((1, 4, 4), 2.0, dtype=np.float32), r"\[0, 1\]"),
        (np.zeros((1, 4, 4, 5), dtype=np.uint8), "channel"),
        (np.zeros((1, 4, 4), dtype=np.int32), "uint8"),
        ([np.zeros((4, 4), np.uint8), np.zeros((5, 5), np.uint8)], "same shape"),
    ],
)
def test_bad_images_are_refused_with_a_fix(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        as_float_images(bad)


def test_label_maps_and_texts():
    assert as_label_maps(np.ones((4, 4), dtype=np.uint8)).shape == (1, 4, 4)
    with pytest.raises(TypeError, match="integer"):
        as_label_maps(np.full((1, 2, 2), 0.5))
    with pytest.raises(TypeError, match="list"):
        as_texts("a caption")
