"""NuwaImageProcessor: images, frames and sketches in; [-1, 1] pixels and class maps out; pictures back."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from nuwa_hf.processing import NuwaImageProcessor


@pytest.fixture
def processor():
    return NuwaImageProcessor(num_sketch_classes=4)


def scene(width=48, height=40):
    """An RGB picture and its exact class map: a red rectangle (class 2) on a grey background (class 0)."""
    image = Image.new("RGB", (width, height), (128, 128, 128))
    class_map = Image.new("L", (width, height), 0)
    box = (14, 8, 33, 27)
    ImageDraw.Draw(image).rectangle(box, fill=(255, 0, 0))
    ImageDraw.Draw(class_map).rectangle(box, fill=2)
    return image, class_map


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (48, 40), (255, 0, 0)),
        np.full((40, 48, 3), (255, 0, 0), dtype=np.uint8),
        np.moveaxis(np.full((40, 48, 3), (255, 0, 0), dtype=np.uint8), -1, 0),
        torch.tensor(np.moveaxis(np.full((40, 48, 3), (255, 0, 0), dtype=np.uint8), -1, 0)),
    ],
    ids=["pil", "hwc", "chw", "torch"],
)
def test_images_become_cropped_pixels_in_minus_one_to_one(processor, image):
    pixels = processor(image, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 32, 32) and pixels.dtype == torch.float32
    red = torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1)
    torch.testing.assert_close(pixels[0], red.expand(3, 32, 32), atol=1e-6, rtol=0)


def test_grey_images_and_batches(processor):
    grey = np.full((40, 40), 255, dtype=np.uint8)
    assert processor(grey, return_tensors="pt")["pixel_values"].shape == (1, 3, 32, 32)
    batch = np.zeros((5, 40, 48, 3), dtype=np.uint8)
    assert processor(batch, return_tensors="pt")["pixel_values"].shape == (5, 3, 32, 32)


def test_videos_are_processed_frame_by_frame(processor):
    frames = [Image.new("RGB", (48, 40), (10 * t, 0, 0)) for t in range(4)]
    video = processor.preprocess_videos(frames, return_tensors="pt")["pixel_values_videos"]
    assert video.shape == (1, 4, 3, 32, 32)
    for t, frame in enumerate(frames):
        torch.testing.assert_close(video[0, t], processor(frame, return_tensors="pt")["pixel_values"][0])
    batch = processor.preprocess_videos(np.zeros((2, 3, 40, 48, 3), dtype=np.uint8), return_tensors="pt")
    assert batch["pixel_values_videos"].shape == (2, 3, 3, 32, 32)


def test_sketches_keep_class_ids_and_align_with_their_images(processor):
    image, class_map = scene()
    pixels = processor(image, return_tensors="pt")["pixel_values"][0]
    maps = processor.preprocess_sketches(class_map, return_tensors="pt")["sketch_maps"]
    assert maps.shape == (1, 32, 32) and maps.dtype == torch.int64
    assert set(maps.unique().tolist()) <= {0, 2}, "nearest-neighbour resampling never invents class ids"
    is_red = (pixels[0] > 0.5) & (pixels[1] < -0.5)
    agreement = (is_red == (maps[0] == 2)).float().mean()
    assert agreement > 0.95, "the sketch must get exactly the image's resize and crop"
    video_maps = processor.preprocess_video_sketches([[class_map] * 3], return_tensors="pt")["sketch_maps"]
    assert video_maps.shape == (1, 3, 32, 32)
    assert torch.equal(video_maps[0, 2], maps[0])


def test_postprocessing_gives_back_pictures(processor):
    image, _ = scene(32, 32)
    pixels = processor(image, return_tensors="pt")["pixel_values"]
    restored = processor.postprocess(pixels, output_type="pil")[0]
    assert np.abs(np.asarray(restored).astype(int) - np.asarray(image).astype(int)).max() <= 1
    arrays = processor.postprocess(pixels.unsqueeze(1).repeat(1, 2, 1, 1, 1), output_type="np")
    assert arrays.shape == (1, 2, 32, 32, 3) and 0.0 <= arrays.min() and arrays.max() <= 1.0
    frames = processor.postprocess(pixels.unsqueeze(1).repeat(1, 2, 1, 1, 1), output_type="pil")
    assert len(frames) == 1 and len(frames[0]) == 2 and frames[0][1].size == (32, 32)
    sketch = processor.postprocess_sketches(torch.tensor([[[0, 3], [2, 1]]]), output_type="pil")[0]
    assert sketch.mode == "P" and np.asarray(sketch).tolist() == [[0, 3], [2, 1]]


def test_save_and_load_keep_the_settings(processor, tmp_path):
    custom = NuwaImageProcessor(
        size={"shortest_edge": 64}, crop_size={"height": 64, "width": 48}, num_sketch_classes=9
    )
    custom.save_pretrained(tmp_path)
    reloaded = NuwaImageProcessor.from_pretrained(tmp_path)
    assert reloaded.num_sketch_classes == 9
    assert reloaded(np.zeros((100, 80, 3), np.uint8), return_tensors="pt")["pixel_values"].shape == (1, 3, 64, 48)


def test_bad_inputs_raise_clear_errors(processor):
    with pytest.raises(ValueError, match="1 \\(grey\\), 3 \\(RGB\\) or 4 \\(RGBA\\) channels"):
        processor(np.zeros((40, 48, 2), np.uint8))
    with pytest.raises(ValueError, match="num_sketch_classes=4"):
        processor.preprocess_sketches(np.full((40, 40), 4))
    with pytest.raises(ValueError, match="class ids"):
        processor.preprocess_sketches(np.full((40, 40), -1))
    with pytest.raises(ValueError, match="mode 'RGB'"):
        processor.preprocess_sketches(Image.new("RGB", (40, 40)))
    with pytest.raises(TypeError, match="integer class ids"):
        processor.preprocess_sketches(np.zeros((40, 40), np.float32))
    with pytest.raises(ValueError, match="no frames|empty"):
        processor.preprocess_videos([])
    with pytest.raises(ValueError, match="no frames"):
        processor.preprocess_videos([[Image.new("RGB", (40, 40))], []])
    with pytest.raises(ValueError, match="same number of frames"):
        processor.preprocess_videos([[Image.new("RGB", (40, 40))] * 2, [Image.new("RGB", (40, 40))] * 3])
    with pytest.raises(ValueError, match="output_type"):
        processor.postprocess(torch.zeros(1, 3, 32, 32), output_type="jpeg")
