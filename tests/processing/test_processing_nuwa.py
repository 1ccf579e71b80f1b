"""NuwaProcessor: text, images, videos and sketches to model inputs, which the model's VQ-GANs code to token grids;
decoded pixels back to pictures; save and load."""

import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from nuwa_hf.models.nuwa import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN
from nuwa_hf.processing import NuwaImageProcessor, NuwaProcessor, train_caption_tokenizer


CAPTIONS = ["a red circle on a blue background", "a green square", "a yellow triangle next to a red circle"] * 4
NUM_CLASSES = 4


@pytest.fixture(scope="module")
def processor():
    torch.manual_seed(0)
    tokenizer = train_caption_tokenizer(CAPTIONS, vocab_size=600, model_max_length=12)
    return NuwaProcessor(NuwaImageProcessor(num_sketch_classes=NUM_CLASSES), tokenizer)


@pytest.fixture(scope="module")
def model(processor):
    """A tiny NUWA that owns a VQ-GAN (32x32 -> 8x8) and a VQ-GAN-Seg of NUM_CLASSES classes."""
    torch.manual_seed(0)
    vqgan, seg = NuwaVQGAN.tiny().eval(), NuwaSegVQGAN.tiny(num_classes=NUM_CLASSES).eval()
    config = NuwaConfig.tiny(text_vocab_size=len(processor.tokenizer), visual_vocab_size=vqgan.codebook_size,
                             sketch_vocab_size=seg.codebook_size, max_text_length=12, max_visual_grid=(3, 8, 8),
                             text_pad_token_id=int(processor.tokenizer.pad_token_id))
    model = NuwaForConditionalGeneration(config).eval()
    model.set_visual_tokenizers(vqgan=vqgan, sketch_vqgan=seg)
    return model


def pictures(count, size=(48, 40), seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(count)]


def test_text_images_and_sketches_become_model_inputs_and_token_grids(processor, model):
    images = pictures(2)
    sketches = np.random.default_rng(1).integers(0, NUM_CLASSES, (2, 40, 48))
    batch = processor(text=["a red circle", "a green square"], images=images, sketches=sketches)
    assert batch["input_ids"].shape[0] == 2 and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].shape == batch["input_ids"].shape
    assert batch["pixel_values"].shape == (2, 1, 3, 32, 32) and batch["pixel_values"].is_floating_point()
    assert batch["sketch_maps"].shape == (2, 1, 32, 32) and batch["sketch_maps"].dtype == torch.long
    assert "visual_tokens" not in batch, "the processor runs no network: the model's VQ-GANs code the pixels"
    # The model's encode methods are exactly its VQ-GANs' codes of the processed inputs.
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    visual = model.encode_images(batch["pixel_values"])
    assert visual.shape == (2, 1, 8, 8) and visual.dtype == torch.long
    assert torch.equal(visual[:, 0], model.vqgan.encode_to_indices(pixels))
    maps = processor.image_processor.preprocess_sketches(sketches, return_tensors="pt")["sketch_maps"]
    sketch = model.encode_sketches(batch["sketch_maps"])
    assert torch.equal(sketch[:, 0], model.sketch_vqgan.encode_to_indices(maps))


def test_model_forward_takes_the_processor_output_as_is(processor, model):
    """`model(**processor(text=..., images=...))` gives the training loss, with gradients (issue 18 row 6)."""
    batch = processor(text=["a red circle", "a green square"], images=pictures(2, seed=4))
    model.train()
    try:
        loss = model(**batch).loss
        loss.backward()
    finally:
        model.eval()
    grads = [p.grad for p in model.model.decoder.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.vqgan.parameters()), "the VQ-GAN is frozen"
    model.zero_grad(set_to_none=True)
    labels = model.encode_images(batch["pixel_values"])
    with torch.no_grad():
        expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        actual = model(**batch).loss
    torch.testing.assert_close(actual, expected)
    with pytest.raises(ValueError, match="not both"):
        model(**batch, labels=labels)


def test_videos_and_video_sketches_code_frame_by_frame(processor, model):
    videos = [pictures(3, seed=2), pictures(3, seed=3)]
    video_sketches = [[np.full((40, 48), t % NUM_CLASSES) for t in range(3)]] * 2
    batch = processor(videos=videos, sketches=video_sketches)
    assert batch["pixel_values"].shape == (2, 3, 3, 32, 32)
    assert model.encode_sketches(batch["sketch_maps"]).shape == (2, 3, 8, 8)
    tokens = model.encode_videos(batch["pixel_values"])
    assert tokens.shape == (2, 3, 8, 8)
    single = model.encode_images(processor(images=videos[1][2])["pixel_values"])
    assert torch.equal(tokens[1, 2], single[0, 0])
    as_array = processor(videos=np.stack([np.asarray(frame) for frame in videos[0]]))["pixel_values"]
    assert torch.equal(model.encode_videos(as_array)[0], tokens[0])


def test_decoded_tokens_become_images_or_frame_lists(processor, model):
    tokens = torch.randint(0, model.vqgan.codebook_size, (2, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    pixels = model.decode_visual_tokens(tokens)
    assert pixels.shape == (2, 1, 3, 32, 32) and float(pixels.abs().max()) <= 1.0
    images = processor.postprocess(pixels)
    assert len(images) == 2 and all(isinstance(image, Image.Image) and image.size == (32, 32) for image in images)
    assert processor.postprocess(pixels, output_type="np").shape == (2, 32, 32, 3)
    video_tokens = tokens.repeat(1, 3, 1, 1)
    videos = processor.postprocess(model.decode_visual_tokens(video_tokens))
    assert len(videos) == 2 and len(videos[0]) == 3 and isinstance(videos[0][2], Image.Image)
    frames = processor.postprocess(model.decode_visual_tokens(video_tokens), output_type="pt")
    assert frames.shape == (2, 3, 3, 32, 32) and 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    np.testing.assert_array_equal(np.asarray(videos[1][0]), np.asarray(images[1]))


def test_decoded_sketch_tokens_become_class_maps(processor, model):
    tokens = torch.randint(
        0, model.sketch_vqgan.codebook_size, (2, 3, 8, 8), generator=torch.Generator().manual_seed(1)
    )
    maps = processor.postprocess_sketches(model.decode_sketch_tokens(tokens))
    assert maps.shape == (2, 3, 32, 32) and maps.dtype == torch.long
    assert int(maps.max()) < NUM_CLASSES
    single = processor.postprocess_sketches(model.decode_sketch_tokens(tokens[:, :1]))
    assert single.shape == (2, 32, 32)
    assert processor.postprocess_sketches(model.decode_sketch_tokens(tokens[:, :1]), output_type="pil")[0].mode == "P"


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


def test_save_and_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    assert not (tmp_path / "vqgan").exists(), "the processor holds no network"
    reloaded = NuwaProcessor.from_pretrained(tmp_path)
    assert reloaded.image_processor.num_sketch_classes == NUM_CLASSES
    inputs = dict(text=["a green square"], images=pictures(1, seed=5), sketches=np.zeros((1, 40, 48), np.int64))
    expected, actual = processor(**inputs), reloaded(**inputs)
    for key in ("input_ids", "attention_mask", "pixel_values", "sketch_maps"):
        assert torch.equal(actual[key], expected[key]), key


def test_the_old_vqgan_arguments_say_where_the_vqgans_went(processor, tmp_path):
    with pytest.raises(TypeError, match=r"part of the NUWA model now .*model.encode_videos"):
        NuwaProcessor(processor.image_processor, processor.tokenizer, vqgan=NuwaVQGAN.tiny())
    with pytest.raises(TypeError, match="return_tokens"):
        processor(images=pictures(1), return_tokens=True)
    with pytest.raises(AttributeError, match="decode_visual_tokens"):
        processor.decode_visual(torch.zeros(1, 1, 8, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="load_vqgans"):
        NuwaProcessor.from_pretrained(tmp_path, load_vqgans=True)


def test_loading_errors_name_the_folder_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        NuwaProcessor.from_pretrained(tmp_path / "missing_folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no processor_config.json"):
        NuwaProcessor.from_pretrained(tmp_path / "empty")


def test_save_pretrained_writes_no_code_and_names_code_only_when_asked(processor, tmp_path):
    """Issue 29: the processor folder holds data (tokenizer, processor_config.json, a card); remote_code= makes
    processor_config.json's auto_map name a code repository's classes (loaded without nuwa_hf in
    tests/hub/test_hub_end_to_end.py); the installed package still loads it without trust_remote_code."""
    import json

    from transformers import AutoProcessor

    processor.save_pretrained(tmp_path / "plain")
    assert not list((tmp_path / "plain").glob("*.py"))
    for name in ("processor_config.json", "tokenizer_config.json"):
        assert "auto_map" not in (tmp_path / "plain" / name).read_text(), name
    assert "library_name: nuwa-hf" in (tmp_path / "plain" / "README.md").read_text()

    processor.save_pretrained(tmp_path / "pointing", remote_code="someone/nuwa-hf-code")
    assert not list((tmp_path / "pointing").glob("*.py"))
    saved = json.loads((tmp_path / "pointing" / "processor_config.json").read_text())
    assert saved["auto_map"]["AutoProcessor"].startswith("someone/nuwa-hf-code--v")
    assert saved["auto_map"]["AutoProcessor"].endswith("/processing_nuwa.NuwaProcessor")
    assert saved["image_processor"]["auto_map"]["AutoImageProcessor"].endswith(
        "/image_processing_nuwa.NuwaImageProcessor")
    assert type(AutoProcessor.from_pretrained(tmp_path / "pointing")) is NuwaProcessor

    # A tokenizer loaded from an older folder carries that folder's auto_map (to code it no longer holds): a plain
    # save drops it.
    processor.tokenizer.init_kwargs["auto_map"] = {"AutoProcessor": "processing_nuwa.NuwaProcessor"}
    try:
        processor.save_pretrained(tmp_path / "from-old")
    finally:
        processor.tokenizer.init_kwargs.pop("auto_map", None)
    for name in ("processor_config.json", "tokenizer_config.json"):
        assert "auto_map" not in (tmp_path / "from-old" / name).read_text(), name


def test_the_model_card_lists_the_prompt_words_whichever_is_saved_first(tiny_model_folder, tmp_path):
    """The model and the processor each write the card when the folder has none: saved model first, the card came
    without the tokenizer's word list, which the processor's save must add (as it brings the tokenizer); a card kept
    by hand is left alone, and a later tokenizer's new words reach the card this package wrote."""
    from nuwa_hf.processing.vocabulary import add_caption_words

    saved_model = NuwaForConditionalGeneration.from_pretrained(tiny_model_folder)
    saved_processor = NuwaProcessor.from_pretrained(tiny_model_folder)
    for folder, order in (("a", [saved_model, saved_processor]), ("b", [saved_processor, saved_model])):
        for obj in order:
            obj.save_pretrained(tmp_path / folder)
    card = (tmp_path / "a" / "README.md").read_text()
    assert card == (tmp_path / "b" / "README.md").read_text()  # the same card in both orders
    assert card.count("## Prompt words") == 1 and "- colours: red, green, blue, yellow" in card
    assert "library_name: nuwa-hf" in card

    # the tokenizer learns a word (a fine-tuning run's captions): saving the processor again updates the list
    add_caption_words(saved_processor.tokenizer, ["a red cat"])
    saved_processor.save_pretrained(tmp_path / "a")
    updated = (tmp_path / "a" / "README.md").read_text()
    assert updated.count("## Prompt words") == 1 and "cat" in updated.split("## Prompt words")[1]
    assert updated.split("## Prompt words")[0] == card.split("## Prompt words")[0]  # the rest unchanged

    # a card written by hand is the user's: no list is added to it
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "README.md").write_text("---\nlibrary_name: nuwa-hf\n---\n# my model\n")
    saved_model.save_pretrained(tmp_path / "own")
    saved_processor.save_pretrained(tmp_path / "own")
    assert (tmp_path / "own" / "README.md").read_text() == "---\nlibrary_name: nuwa-hf\n---\n# my model\n"
