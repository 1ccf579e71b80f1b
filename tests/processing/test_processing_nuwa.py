"""NuwaProcessor: text, images, videos and sketches to token grids; token grids back to pictures; save and load."""

import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN
from nuwa_hf.processing import NuwaImageProcessor, NuwaProcessor, train_caption_tokenizer


CAPTIONS = ["a red circle on a blue background", "a green square", "a yellow triangle next to a red circle"] * 4
NUM_CLASSES = 4


@pytest.fixture(scope="module")
def processor():
    torch.manual_seed(0)
    tokenizer = train_caption_tokenizer(CAPTIONS, vocab_size=600, model_max_length=12)
    return NuwaProcessor(
        NuwaImageProcessor(num_sketch_classes=NUM_CLASSES),
        tokenizer,
        vqgan=NuwaVQGAN.tiny().eval(),
        seg_vqgan=NuwaSegVQGAN.tiny(num_classes=NUM_CLASSES).eval(),
    )


def pictures(count, size=(48, 40), seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(count)]


def test_text_images_and_sketches_become_token_grids(processor):
    images = pictures(2)
    sketches = np.random.default_rng(1).integers(0, NUM_CLASSES, (2, 40, 48))
    batch = processor(text=["a red circle", "a green square"], images=images, sketches=sketches)
    assert batch["input_ids"].shape[0] == 2 and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].shape == batch["input_ids"].shape
    assert batch["visual_tokens"].shape == (2, 1, 8, 8) and batch["visual_tokens"].dtype == torch.long
    assert batch["sketch_tokens"].shape == (2, 1, 8, 8) and batch["sketch_tokens"].dtype == torch.long
    # The tokens are exactly the VQ-GANs' codes of the processed inputs.
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    assert torch.equal(batch["visual_tokens"][:, 0], processor.vqgan.encode_to_indices(pixels))
    maps = processor.image_processor.preprocess_sketches(sketches, return_tensors="pt")["sketch_maps"]
    assert torch.equal(batch["sketch_tokens"][:, 0], processor.seg_vqgan.encode_to_indices(maps))


def test_videos_and_video_sketches_code_frame_by_frame(processor):
    videos = [pictures(3, seed=2), pictures(3, seed=3)]
    video_sketches = [[np.full((40, 48), t % NUM_CLASSES) for t in range(3)]] * 2
    batch = processor(videos=videos, sketches=video_sketches)
    assert batch["visual_tokens"].shape == (2, 3, 8, 8)
    assert batch["sketch_tokens"].shape == (2, 3, 8, 8)
    single = processor(images=videos[1][2])["visual_tokens"]
    assert torch.equal(batch["visual_tokens"][1, 2], single[0, 0])
    as_array = processor(videos=np.stack([np.asarray(frame) for frame in videos[0]]))["visual_tokens"]
    assert torch.equal(as_array[0], batch["visual_tokens"][0])


def test_decode_visual_gives_images_or_frame_lists(processor):
    tokens = torch.randint(0, processor.vqgan.codebook_size, (2, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    images = processor.decode_visual(tokens)
    assert len(images) == 2 and all(isinstance(image, Image.Image) and image.size == (32, 32) for image in images)
    assert processor.decode_visual(tokens, output_type="np").shape == (2, 32, 32, 3)
    video_tokens = tokens.repeat(1, 3, 1, 1)
    videos = processor.decode_visual(video_tokens)
    assert len(videos) == 2 and len(videos[0]) == 3 and isinstance(videos[0][2], Image.Image)
    frames = processor.decode_visual(video_tokens, output_type="pt")
    assert frames.shape == (2, 3, 3, 32, 32) and 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    np.testing.assert_array_equal(np.asarray(videos[1][0]), np.asarray(images[1]))


def test_decode_sketch_gives_class_maps(processor):
    tokens = torch.randint(
        0, processor.seg_vqgan.codebook_size, (2, 3, 8, 8), generator=torch.Generator().manual_seed(1)
    )
    maps = processor.decode_sketch(tokens)
    assert maps.shape == (2, 3, 32, 32) and maps.dtype == torch.long
    assert int(maps.max()) < NUM_CLASSES
    assert processor.decode_sketch(tokens[:, :1]).shape == (2, 32, 32)
    assert processor.decode_sketch(tokens[:, :1], output_type="pil")[0].mode == "P"


def test_long_prompts_are_truncated_with_a_warning(processor, caplog):
    prompt = "a red circle next to a green square next to a yellow triangle on a blue background"
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.processing.processing_nuwa"):
        batch = processor(text=[prompt, "a red circle"])
    assert "truncated" in caplog.text
    assert batch["input_ids"].shape == (2, 12)
    assert int(batch["input_ids"][0, -1]) == processor.tokenizer.eos_token_id
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.processing.processing_nuwa"):
        processor(text="a red circle")
    assert "truncated" not in caplog.text


def test_empty_prompts_and_mismatched_batches_are_errors(processor):
    with pytest.raises(ValueError, match="empty"):
        processor(text="")
    with pytest.raises(ValueError, match="Prompt 1 is empty"):
        processor(text=["a red circle", "   "])
    with pytest.raises(ValueError, match="different batch sizes"):
        processor(text=["a red circle"], images=pictures(2))
    with pytest.raises(ValueError, match="either `images` or `videos`"):
        processor(images=pictures(1), videos=[pictures(2)])
    with pytest.raises(ValueError, match="num_sketch_classes=4"):
        processor(sketches=np.full((40, 48), NUM_CLASSES))
    with pytest.raises(ValueError, match="no frames"):
        processor(videos=[pictures(1), []])


def test_save_and_load_round_trip_with_the_vqgans(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "vqgan" / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / "vqgan_seg" / "diffusion_pytorch_model.safetensors").is_file()
    reloaded = NuwaProcessor.from_pretrained(tmp_path)
    assert isinstance(reloaded.vqgan, NuwaVQGAN) and isinstance(reloaded.seg_vqgan, NuwaSegVQGAN)
    assert reloaded.image_processor.num_sketch_classes == NUM_CLASSES
    inputs = dict(text=["a green square"], images=pictures(1, seed=5), sketches=np.zeros((1, 40, 48), np.int64))
    expected, actual = processor(**inputs), reloaded(**inputs)
    for key in ("input_ids", "attention_mask", "visual_tokens", "sketch_tokens"):
        assert torch.equal(actual[key], expected[key]), key


def test_without_vqgans_the_processor_explains_itself_or_returns_pixels(processor, tmp_path):
    bare = NuwaProcessor(processor.image_processor, processor.tokenizer, max_text_length=8)
    bare.save_pretrained(tmp_path)
    reloaded = NuwaProcessor.from_pretrained(tmp_path)
    assert reloaded.vqgan is None and reloaded.seg_vqgan is None and reloaded.max_text_length == 8
    with pytest.raises(ValueError, match="processor.vqgan"):
        reloaded(images=pictures(1))
    with pytest.raises(ValueError, match="processor.seg_vqgan"):
        reloaded.decode_sketch(torch.zeros(1, 1, 8, 8, dtype=torch.long))
    batch = reloaded(images=pictures(2), sketches=np.zeros((2, 40, 48), np.int64), return_tokens=False)
    assert batch["pixel_values"].shape == (2, 1, 3, 32, 32)
    assert batch["sketch_maps"].shape == (2, 1, 32, 32)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        NuwaProcessor.from_pretrained(tmp_path / "missing_folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no processor_config.json"):
        NuwaProcessor.from_pretrained(tmp_path / "empty")
