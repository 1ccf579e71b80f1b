"""Generation in the model (issue 29, item 3): ``model.generate_visual`` codes known pixels with the model's own VQ-GAN,
slides past the trained length and decodes to pixels, and gives exactly the tokens the pipelines give for the same
seed; ``model.visual_generation_config`` is the one place the sampling options are checked and merged."""

import shutil

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import GenerationConfig, pipeline

import nuwa_hf  # noqa: F401  (registers the model and the pipelines)
from nuwa_hf.pipelines.regions import blank_pixels, grow_token_mask, region_to_token_mask

SIZE, GRID, FRAMES = 16, 4, 3  # the tiny folder: 16x16 pixels -> 4x4 tokens, 3 trained frames


@pytest.fixture(autouse=True)
def one_thread(single_threaded_torch):
    yield


def seeded(*seeds):
    """One generator per input, as the pipelines' ``seed=s`` makes them (input i: ``s + i``)."""
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def frames(count, seed=0):
    rng = np.random.default_rng(seed)
    return [PIL.Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)) for _ in range(count)]


def text_ids(pipe, *prompts):
    limit = min(pipe.model.config.max_text_length, pipe.processor.text_max_length or pipe.model.config.max_text_length)
    return pipe.processor(text=list(prompts), max_length=limit, padding="max_length", return_tensors="pt")["input_ids"]


def test_text_to_image_same_tokens_as_the_pipeline(pipes):
    pipe = pipes("nuwa-text-to-image")
    expected = pipe(["a red 3", "a blue 8"], seed=5, num_outputs_per_input=2, output_type="tokens")
    out = pipe.model.generate_visual(input_ids=text_ids(pipe, "a red 3", "a blue 8"), visual_grid=(1, GRID, GRID),
                                     task="nuwa-text-to-image", num_return_sequences=2, generator=seeded(5, 6))
    assert out.tokens.shape == (4, 1, GRID, GRID)
    assert torch.equal(out.tokens[:, 0], torch.stack([t for pair in expected for t in pair]))
    assert out.pixel_values.shape == (4, 1, 3, SIZE, SIZE)
    assert torch.equal(out.pixel_values, pipe.model.decode_visual_tokens(out.tokens))


def test_video_prediction_from_pixels_same_tokens_as_the_pipeline(pipes):
    pipe = pipes("nuwa-video-prediction")
    video = frames(2)
    expected = pipe(video, seed=3, output_type="tokens")  # the two given frames, then one predicted
    pixels = pipe.processor(videos=[video], return_tensors="pt")["pixel_values"]  # (1, 2, 3, 16, 16)
    out = pipe.model.generate_visual(pixel_values=pixels, task="V2V", generator=seeded(3), return_pixels=False)
    assert out.pixel_values is None and out.tokens.shape == (1, FRAMES, GRID, GRID)
    assert torch.equal(out.tokens[0], expected)
    assert torch.equal(out.tokens[:, :2], pipe.model.encode_videos(pixels)), "the given frames are kept"


def test_sliding_past_the_trained_length_same_tokens_as_the_pipeline(pipes):
    pipe = pipes("nuwa-text-to-video")
    expected = pipe("the digit 3", num_frames=5, seed=4, output_type="tokens")
    out = pipe.model.generate_visual(input_ids=text_ids(pipe, "the digit 3"), visual_grid=(5, GRID, GRID),
                                     task="T2V", generator=seeded(4))
    assert out.tokens.shape == (1, 5, GRID, GRID) and out.pixel_values.shape == (1, 5, 3, SIZE, SIZE)
    assert torch.equal(out.tokens[0], expected)
    # the prediction slides as well, continuing its given frames
    predict = pipes("nuwa-video-prediction")
    video = frames(3, seed=1)
    expected = predict(video, num_condition_frames=3, num_frames_to_predict=2, seed=8, output_type="tokens")
    pixels = predict.processor(videos=[video], return_tensors="pt")["pixel_values"]
    out = predict.model.generate_visual(pixel_values=pixels, visual_grid=(5, GRID, GRID), generator=seeded(8),
                                        task="V2V", return_pixels=False)
    assert torch.equal(out.tokens[0], expected)


def test_image_completion_from_an_image_and_a_region_same_tokens_as_the_pipeline(pipes):
    """The pipeline's completion is generate_visual on the picture it codes: by default the region blacked out
    (blank_region), with regenerate_border=1 the region grown by one token too; with blank_region=False, the picture
    and region as given."""
    pipe = pipes("nuwa-image-completion")
    image = frames(1, seed=2)[0]
    mask = region_to_token_mask("top left", image.size, (GRID, GRID), pipe.processor.image_processor)  # (4, 4) bool
    pixels = pipe.processor(images=[image], return_tensors="pt")["pixel_values"]
    as_given = pipe(image, mask="top left", seed=9, output_type="tokens", num_outputs_per_input=2,
                    blank_region=False)
    out = pipe.model.generate_visual(pixel_values=pixels, region_mask=mask, task="I2I", num_return_sequences=2,
                                     generator=seeded(9))
    assert out.tokens.shape == (2, 1, GRID, GRID)
    assert torch.equal(out.tokens[:, 0], torch.stack(as_given))
    kept = pipe.model.encode_videos(pixels)[0, 0]
    assert torch.equal(out.tokens[:, 0][:, ~mask], kept[~mask].expand(2, -1)), "outside the region: the image's tokens"

    blanked, grown = blank_pixels(pixels, mask), grow_token_mask(mask, 1)
    by_default = pipe(image, mask="top left", seed=9, output_type="tokens", num_outputs_per_input=2)
    out = pipe.model.generate_visual(pixel_values=blanked, region_mask=mask, task="I2I", num_return_sequences=2,
                                     generator=seeded(9))
    assert torch.equal(out.tokens[:, 0], torch.stack(by_default))
    expected = pipe(image, mask="top left", seed=9, output_type="tokens", num_outputs_per_input=2, regenerate_border=1)
    assert grown.sum() > mask.sum()
    out = pipe.model.generate_visual(pixel_values=blanked, region_mask=grown, task="I2I", num_return_sequences=2,
                                     generator=seeded(9))
    assert torch.equal(out.tokens[:, 0], torch.stack(expected))
    kept = pipe.model.encode_videos(blanked)[0, 0]
    assert torch.equal(out.tokens[:, 0][:, ~grown], kept[~grown].expand(2, -1)), "outside the ring: the blanked tokens"


def test_sketch_to_image_same_tokens_as_the_pipeline(pipes):
    pipe = pipes("nuwa-sketch-to-image")
    sketch = np.zeros((SIZE, SIZE), dtype=np.int64)
    sketch[4:12, 2:9] = 1
    expected = pipe(sketch, seed=1, guidance_scale=2.0, output_type="tokens")
    maps = pipe.processor(sketches=[sketch], return_tensors="pt")["sketch_maps"]
    out = pipe.model.generate_visual(sketch_maps=maps, visual_grid=(1, GRID, GRID), guidance_scale=2.0,
                                     generator=seeded(1), return_pixels=False)
    assert torch.equal(out.tokens[0, 0], expected)  # image tasks give the (h, w) grid


def test_one_generation_config_per_call_caller_over_task_over_folder(tiny_model_folder, tmp_path):
    from nuwa_hf.models.nuwa import NuwaForConditionalGeneration

    folder = tmp_path / "tuned"
    shutil.copytree(tiny_model_folder, folder)
    config = GenerationConfig.from_pretrained(folder)
    config.do_sample, config.guidance_scale, config.top_k = True, 3.0, 16
    config.task_sampling = {"nuwa-text-to-image": {"guidance_scale": 2.0, "top_k": 4, "temperature": 0.5}}
    config._from_model_config = False
    config.save_pretrained(folder)
    model = NuwaForConditionalGeneration.from_pretrained(folder)

    tuned = model.visual_generation_config("T2I")
    assert (tuned.do_sample, tuned.guidance_scale, tuned.top_k, tuned.temperature) == (True, 2.0, 4, 0.5)
    own = model.visual_generation_config("T2I", top_k=np.int32(2), generation_config=GenerationConfig(temperature=0.9))
    assert (own.guidance_scale, own.top_k, own.temperature) == (2.0, 2, 0.9) and type(own.top_k) is int
    video = model.visual_generation_config("T2V")  # no entry: the folder's guidance; top_k left to generate's default
    assert (video.guidance_scale, video.top_k) == (3.0, None)
    greedy = model.visual_generation_config("T2I", do_sample=False)  # greedy ignores the sampling controls
    assert (greedy.do_sample, greedy.top_k, greedy.temperature, greedy.guidance_scale) == (False, None, None, 2.0)
    unguided = model.visual_generation_config("T2I", condition="none")  # nothing to guide toward
    assert unguided.guidance_scale is None and unguided.top_k == 4
    assert model.visual_generation_config(generation_config=tuned).to_diff_dict() == tuned.to_diff_dict()

    # The model call and the pipeline give the same tokens for the merged config
    pipe = pipeline("nuwa-text-to-image", model=str(folder))
    pipe.set_progress_bar_config(disable=True)
    ids = text_ids(pipe, "a red 3")
    out = model.generate_visual(input_ids=ids, visual_grid=(1, GRID, GRID), task="T2I", generator=seeded(0))
    assert torch.equal(out.tokens[0, 0], pipe("a red 3", seed=0, output_type="tokens"))
    plain = model.generate_visual(input_ids=ids, visual_grid=(1, GRID, GRID), generator=seeded(0))  # no task entry
    assert not torch.equal(out.tokens, plain.tokens)
    # a GenerationConfig given to the pipeline carries the same options as the named arguments
    assert torch.equal(pipe("a red 3", seed=0, output_type="tokens", generation_config=GenerationConfig(top_k=2)),
                       pipe("a red 3", seed=0, output_type="tokens", top_k=2))


BAD_OPTIONS = [
    ({"temperature": 0}, ValueError, "temperature must be a finite number > 0"),
    ({"guidance_scale": 0.5}, ValueError, "steer away from"),
    ({"top_k": 2.5}, TypeError, "top_k must be an integer >= 0"),
    ({"top_p": 1.5}, ValueError, "top_p must be a number in (0, 1]"),
    ({"do_sample": "no"}, TypeError, "do_sample must be True or False"),
    ({"generation_config": GenerationConfig(temperature=-1.0)}, ValueError, "temperature must be"),
    ({"generation_config": {"top_k": 3}}, TypeError, "must be a transformers GenerationConfig"),
    ({"num_beams": 4}, TypeError, "are not sampling options"),
    ({"condition": "none", "guidance_scale": 2.0}, ValueError, "guidance_scale needs a condition"),
]


@pytest.mark.parametrize("options,error,message", BAD_OPTIONS, ids=[str(row[0]) for row in BAD_OPTIONS])
def test_bad_sampling_options_are_refused_in_one_place(pipes, options, error, message):
    model = pipes("nuwa-text-to-image").model
    with pytest.raises(error) as caught:
        model.visual_generation_config("T2I", **options)
    assert message in str(caught.value)


def test_a_bad_generation_config_gets_the_rule_in_the_pipeline_too(pipes):
    with pytest.raises(ValueError, match="top_p must be a number in"):
        pipes("nuwa-text-to-image")("a red 3", generation_config=GenerationConfig(top_p=0.0))
    with pytest.raises(ValueError, match="guidance_scale needs a condition"):
        pipes("nuwa-video-prediction")(frames(1), generation_config=GenerationConfig(guidance_scale=2.0))


def test_bad_pixel_inputs_get_clear_errors(pipes):
    model = pipes("nuwa-image-completion").model
    pixels = torch.zeros(1, 1, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match="region_mask must be boolean"):
        model.generate_visual(pixel_values=pixels, region_mask=torch.ones(GRID, GRID))
    with pytest.raises(ValueError, match="token grid of pixel_values"):
        model.generate_visual(pixel_values=pixels, region_mask=torch.ones(GRID + 1, GRID, dtype=torch.bool))
    with pytest.raises(ValueError, match="give pixel_values too"):
        model.generate_visual(region_mask=torch.ones(GRID, GRID, dtype=torch.bool))
    with pytest.raises(ValueError, match="nothing is left to generate"):
        model.generate_visual(pixel_values=torch.zeros(1, FRAMES, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="pixel_values must be"):
        model.generate_visual(pixel_values=torch.zeros(1, 1, 1, SIZE, SIZE))
    with pytest.raises(ValueError, match="one condition"):
        model.generate_visual(input_ids=torch.zeros(1, 4, dtype=torch.long), sketch_maps=torch.zeros(1, SIZE, SIZE))
