"""The eight NUWA pipelines as a user calls them: transformers.pipeline(task, model=folder)(...)."""

import json
import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf import media
from nuwa_hf.pipelines import PIPELINE_CLASSES, NuwaModelFolderError

GRID = (4, 4)  # tokens of the tiny folder
SIZE = 16      # pixels
FRAMES = 3     # trained frames


def load(task, folder, **kwargs):
    generate = pipeline(task, model=folder, **kwargs)
    generate.set_progress_bar_config(disable=True)
    return generate


def random_image(seed=0, size=SIZE):
    return PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def image_tokens(generate, image):
    return generate.model.encode_images(generate.processor(images=[image], return_tensors="pt")["pixel_values"])[0, 0]


@pytest.fixture(scope="module")
def text_to_image(tiny_model_folder):
    return load("nuwa-text-to-image", tiny_model_folder)


def test_every_task_is_registered_and_loads_its_class(tiny_model_folder):
    for task, cls in PIPELINE_CLASSES.items():
        assert isinstance(load(task, tiny_model_folder), cls)


def test_text_to_image_returns_a_pil_image_reproducible_by_seed(text_to_image):
    first = text_to_image("a red 3 in the top left", seed=7)
    again = text_to_image("a red 3 in the top left", seed=7)
    assert isinstance(first, PIL.Image.Image) and first.mode == "RGB" and first.size == (SIZE, SIZE)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    tokens = [text_to_image("a red 3 in the top left", seed=s, output_type="tokens") for s in range(4)]
    assert any(not torch.equal(tokens[0], t) for t in tokens[1:]), "different seeds should sample differently"


def test_text_to_image_generator_is_reproducible(text_to_image):
    a = text_to_image("a blue 8", generator=torch.Generator().manual_seed(3), output_type="tokens")
    b = text_to_image("a blue 8", generator=torch.Generator().manual_seed(3), output_type="tokens")
    assert torch.equal(a, b)


def test_text_to_image_batches_and_output_types(text_to_image):
    images = text_to_image(["a red 3", "a blue 8"], num_outputs_per_input=2, seed=0)
    assert len(images) == 2 and all(len(per_prompt) == 2 for per_prompt in images)
    assert all(isinstance(image, PIL.Image.Image) for per_prompt in images for image in per_prompt)
    array = text_to_image("a red 3", seed=0, output_type="np")
    assert array.shape == (SIZE, SIZE, 3) and array.dtype == np.float32 and 0 <= array.min() and array.max() <= 1
    tensor = text_to_image("a red 3", seed=0, output_type="pt")
    assert tuple(tensor.shape) == (3, SIZE, SIZE)
    tokens = text_to_image("a red 3", seed=0, output_type="tokens")
    assert tuple(tokens.shape) == GRID and tokens.dtype == torch.long
    # The same row of a batch and a single call agree when the batch is generated one row at a time.
    batched = text_to_image(["a red 3", "a blue 8"], seed=5, batch_size=1, output_type="tokens")
    assert torch.equal(batched[0], text_to_image("a red 3", seed=5, output_type="tokens"))


def test_sampling_and_guidance_arguments_pass_through(text_to_image):
    image = text_to_image("a red 3", seed=0, temperature=0.7, top_k=5, top_p=0.9, guidance_scale=2.0)
    assert image.size == (SIZE, SIZE)
    greedy = [text_to_image("a red 3", do_sample=False, output_type="tokens") for _ in range(2)]
    assert torch.equal(greedy[0], greedy[1])


def test_generate_kwargs_as_transformers_pipelines_take_them(text_to_image):
    """pipeline(...)(prompt, generate_kwargs={...}) is the same call as the direct arguments (issue 18 row 9)."""
    direct = text_to_image("a red digit 3", seed=0, output_type="np", top_k=4, temperature=0.7)
    through = text_to_image("a red digit 3", seed=0, output_type="np", generate_kwargs={"top_k": 4, "temperature": 0.7})
    assert np.array_equal(direct, through)
    with pytest.raises(TypeError, match="max_new_tokens.*not supported"):
        text_to_image("a red digit 3", generate_kwargs={"max_new_tokens": 5})
    with pytest.raises(TypeError, match="both directly and in generate_kwargs"):
        text_to_image("a red digit 3", top_k=4, generate_kwargs={"top_k": 8})
    with pytest.raises(TypeError, match="must be a dict"):
        text_to_image("a red digit 3", generate_kwargs=[("top_k", 4)])


def test_logits_processors_run_at_every_step_as_in_transformers(text_to_image):
    """logits_processor=[...] (directly or in generate_kwargs) reaches generate(): here it bans the lower half of the
    codebook, so every generated token comes from the upper half; one check per token."""
    from transformers import LogitsProcessor

    codes = text_to_image.model.config.visual_vocab_size
    calls = []

    class UpperHalfOnly(LogitsProcessor):
        def __call__(self, input_ids, scores):
            calls.append(input_ids.shape[1])
            return scores.index_fill(-1, torch.arange(codes // 2), float("-inf"))

    tokens = text_to_image("a red digit 3", seed=0, output_type="tokens", logits_processor=[UpperHalfOnly()])
    assert int(tokens.min()) >= codes // 2 and calls == list(range(1, GRID[0] * GRID[1] + 1))
    through = text_to_image("a red digit 3", seed=0, output_type="tokens",
                            generate_kwargs={"logits_processor": [UpperHalfOnly()]})
    assert torch.equal(through, tokens)
    with pytest.raises(TypeError, match="logits_processor must be a list of transformers LogitsProcessor"):
        text_to_image("a red digit 3", logits_processor=["top_k"])


def test_text_to_video_frames_and_sliding_past_the_trained_length(tiny_model_folder):
    generate = load("nuwa-text-to-video", tiny_model_folder)
    video = generate("the digit 3 is moving up then down", seed=0)
    assert isinstance(video, list) and len(video) == FRAMES and all(f.size == (SIZE, SIZE) for f in video)
    longer = generate("the digit 3 is moving up then down", num_frames=FRAMES + 2, seed=0, output_type="np")
    assert longer.shape == (FRAMES + 2, SIZE, SIZE, 3)
    two = generate(["the digit 3", "the digit 5"], num_outputs_per_input=2, num_frames=2, seed=0, output_type="pt")
    assert len(two) == 2 and tuple(two[1][0].shape) == (2, 3, SIZE, SIZE)


def test_video_prediction_keeps_the_given_frame(tiny_model_folder, tmp_path):
    generate = load("nuwa-video-prediction", tiny_model_folder)
    first = random_image(1)
    tokens = generate(first, seed=0, output_type="tokens")
    assert tuple(tokens.shape) == (FRAMES, *GRID)
    assert torch.equal(tokens[0], image_tokens(generate, first)), "the given frame is teacher-forced"
    # From a GIF file, predicted frames only, and further than the trained length.
    gif = media.save_gif([first, random_image(2)], tmp_path / "clip.gif")
    future = generate(str(gif), num_condition_frames=1, include_condition_frames=False, seed=0)
    assert len(future) == FRAMES - 1
    long = generate(first, num_frames_to_predict=4, seed=0, output_type="tokens")
    assert long.shape[0] == 5 and torch.equal(long[0], tokens[0])
    batch = generate([[first], [random_image(3)]], seed=0)
    assert len(batch) == 2 and all(len(video) == FRAMES for video in batch)


def test_sketch_to_image_from_arrays_and_png(tiny_model_folder, tmp_path):
    generate = load("nuwa-sketch-to-image", tiny_model_folder)
    sketch = np.zeros((SIZE, SIZE), dtype=np.int64)
    sketch[8:] = 2
    sketch[2:6, 2:6] = 5
    image = generate(sketch, seed=0)
    assert isinstance(image, PIL.Image.Image) and image.size == (SIZE, SIZE)
    path = tmp_path / "sketch.png"
    PIL.Image.fromarray(sketch.astype(np.uint8)).save(path)
    same = generate(str(path), seed=0, output_type="tokens")
    assert torch.equal(same, generate(sketch, seed=0, output_type="tokens"))
    assert len(generate([sketch, sketch], seed=0)) == 2


def test_sketch_to_video(tiny_model_folder):
    generate = load("nuwa-sketch-to-video", tiny_model_folder)
    sketches = np.random.default_rng(0).integers(0, 8, (FRAMES, SIZE, SIZE))
    video = generate(sketches, seed=0)
    assert len(video) == FRAMES and video[0].size == (SIZE, SIZE)
    assert len(generate(list(sketches[:2]), seed=0)) == 2  # a list of maps is one video sketch
    with pytest.raises(ValueError, match="at most 3"):
        generate(np.zeros((FRAMES + 1, SIZE, SIZE), dtype=np.int64))


def test_sketch_to_video_reads_a_gif_of_class_ids(tiny_model_folder, tmp_path):
    """A video sketch saved as a GIF of class-id frames (mode L, as the error messages suggest) works as a path and
    gives what the same maps as an array give; it used to be refused at frame 1, which Pillow reads in mode RGB."""
    generate = load("nuwa-sketch-to-video", tiny_model_folder)
    sketches = np.random.default_rng(1).integers(0, 6, (FRAMES, SIZE, SIZE))
    frames = [PIL.Image.fromarray(m.astype(np.uint8), mode="L") for m in sketches]
    frames[0].save(tmp_path / "sketch.gif", save_all=True, append_images=frames[1:], duration=250)
    tokens = generate(str(tmp_path / "sketch.gif"), seed=0, output_type="tokens")
    assert torch.equal(tokens, generate(sketches, seed=0, output_type="tokens"))


@pytest.mark.parametrize("mask", ["bottom half", (0, 8, 16, 16), (0.0, 0.5, 1.0, 1.0), "mask-image"])
def test_image_completion_keeps_the_known_part(tiny_model_folder, mask):
    generate = load("nuwa-image-completion", tiny_model_folder)
    image = random_image(4)
    if mask == "mask-image":
        array = np.zeros((SIZE, SIZE), dtype=np.uint8)
        array[8:] = 255
        mask = PIL.Image.fromarray(array, mode="L")
    # by default the region (rows 8..15) is black when encoded and the ring above it (token row 1) is sampled too
    blanked = np.asarray(image).copy()
    blanked[8:] = 0
    known = image_tokens(generate, PIL.Image.fromarray(blanked))
    tokens = generate(image, mask=mask, seed=0, output_type="tokens")
    assert torch.equal(tokens[:1], known[:1]), "tokens outside the region and its ring are kept"
    with_text = generate(image, mask=mask, prompt="a red 3", seed=0, output_type="tokens")
    assert torch.equal(with_text[:1], known[:1])
    as_given = generate(image, mask=mask, seed=0, output_type="tokens", blank_region=False, regenerate_border=0)
    assert torch.equal(as_given[:2], image_tokens(generate, image)[:2]), "the picture's own tokens outside the region"


def test_image_completion_from_a_larger_image_and_a_path(tiny_model_folder, tmp_path):
    generate = load("nuwa-image-completion", tiny_model_folder)
    big = random_image(5, size=40)
    path = tmp_path / "big.png"
    big.save(path)
    mask = np.zeros((40, 40), dtype=bool)
    mask[:, 30:] = True  # the right side
    completed = generate(str(path), mask=mask, seed=0)
    assert completed.size == (SIZE, SIZE)


def test_image_manipulation_regenerates_only_the_region(tiny_model_folder):
    generate = load("nuwa-image-manipulation", tiny_model_folder)
    image = random_image(6)
    tokens = generate(image, "a red circle on grass", mask="top left", seed=0, output_type="tokens")
    known = image_tokens(generate, image)
    outside = torch.ones(GRID, dtype=torch.bool)
    outside[:2, :2] = False
    assert torch.equal(tokens[outside], known[outside])
    edits = generate([image, random_image(7)], ["a red circle", "a blue square"], mask="center", seed=0)
    assert len(edits) == 2


def test_video_manipulation_keeps_the_first_frame(tiny_model_folder):
    generate = load("nuwa-video-manipulation", tiny_model_folder)
    frames = [random_image(8), random_image(9)]
    tokens = generate(frames, "the digit 3 is moving left then right", seed=0, output_type="tokens")
    assert tuple(tokens.shape) == (FRAMES, *GRID)
    assert torch.equal(tokens[0], image_tokens(generate, frames[0]))
    longer = generate(frames, "the digit 3", num_frames=FRAMES + 1, seed=0)
    assert len(longer) == FRAMES + 1


def test_reranking_keeps_the_best_candidate_by_the_scorer(text_to_image):
    seen = []

    def brightness(candidates, prompt):
        assert prompt == "a red 3"
        scores = [float(np.asarray(c).mean()) for c in candidates]
        seen.append(scores)
        return scores

    best = text_to_image("a red 3", seed=0, scorer=brightness, num_candidates=4)
    assert len(seen) == 1 and len(seen[0]) == 4
    assert float(np.asarray(best).mean()) == pytest.approx(max(seen[0]))
    two = text_to_image("a red 3", seed=0, scorer=brightness, num_candidates=3, num_outputs_per_input=2)
    assert sorted(float(np.asarray(i).mean()) for i in two) == pytest.approx(sorted(seen[-1])[-2:])


def test_a_scorer_set_on_the_pipeline_is_used(tiny_model_folder):
    calls = []
    generate = load("nuwa-text-to-image", tiny_model_folder,
                    scorer=lambda candidates, prompt: calls.append(len(candidates)) or [0.0] * len(candidates))
    generate("a red 3", seed=0, num_candidates=2)
    assert calls == [2]


# ---------------------------------------------------------------------------------------------------------------------
# Bad input: clear errors that name the fix


def test_unknown_task_lists_the_known_ones(tiny_model_folder):
    with pytest.raises(KeyError, match="nuwa-text-to-image"):
        pipeline("nuwa-text-to-sound", model=tiny_model_folder)


def test_model_folder_without_vqgan(folder_without_vqgan, folder_without_sketch_vqgan):
    with pytest.raises(NuwaModelFolderError, match=r"no VQ-GAN .*set_visual_tokenizers"):
        pipeline("nuwa-text-to-image", model=folder_without_vqgan)
    with pytest.raises(NuwaModelFolderError, match=r"no sketch VQ-GAN .*set_visual_tokenizers\(sketch_vqgan="):
        pipeline("nuwa-sketch-to-image", model=folder_without_sketch_vqgan)
    assert pipeline("nuwa-text-to-image", model=folder_without_sketch_vqgan) is not None


def test_an_old_layout_folder_still_loads_and_gives_the_same_outputs(tiny_model_folder, legacy_model_folder, caplog):
    """Users' folders written before the VQ-GANs moved into the model are converted on load, with a warning."""
    new = load("nuwa-text-to-image", tiny_model_folder)
    with caplog.at_level("WARNING"):
        old = load("nuwa-text-to-image", legacy_model_folder)
    assert "old layout" in caplog.text and "convert_nuwa_legacy_folder" in caplog.text
    assert old.model.name_or_path == legacy_model_folder
    assert torch.equal(old("a red 3", seed=0, output_type="tokens"), new("a red 3", seed=0, output_type="tokens"))
    sketch = load("nuwa-sketch-to-image", legacy_model_folder)
    assert sketch(np.zeros((SIZE, SIZE), dtype=np.int64), seed=0).size == (SIZE, SIZE)


def test_bad_counts_prompts_and_options(text_to_image):
    with pytest.raises(ValueError, match="integer >= 1"):
        text_to_image("a red 3", num_outputs_per_input=-1)
    with pytest.raises(ValueError, match="empty"):
        text_to_image("  ")
    with pytest.raises(ValueError, match="no scorer"):
        text_to_image("a red 3", num_candidates=3)
    with pytest.raises(ValueError, match="output_type"):
        text_to_image("a red 3", output_type="gif")
    with pytest.raises(TypeError, match="Unexpected"):
        text_to_image("a red 3", num_inference_steps=50)
    with pytest.raises(ValueError, match="seed= or generator="):
        text_to_image("a red 3", seed=1, generator=torch.Generator())


def test_bad_frame_counts(tiny_model_folder):
    video = load("nuwa-text-to-video", tiny_model_folder)
    with pytest.raises(ValueError, match="num_frames"):
        video("the digit 3", num_frames=0)
    prediction = load("nuwa-video-prediction", tiny_model_folder)
    with pytest.raises(ValueError, match="no frames"):
        prediction([])
    with pytest.raises(ValueError, match="only 1 frame"):
        prediction(random_image(), num_condition_frames=2)
    with pytest.raises(ValueError, match="guidance_scale needs a condition"):
        prediction(random_image(), guidance_scale=3.0)


def test_wrong_image_mode_and_wrong_mask_size(tiny_model_folder):
    completion = load("nuwa-image-completion", tiny_model_folder)
    depth_like = PIL.Image.fromarray(np.zeros((SIZE, SIZE), dtype=np.int32), mode="I")
    with pytest.raises(ValueError, match="RGB"):
        completion(depth_like)
    with pytest.raises(ValueError, match="resize the mask"):
        completion(random_image(), mask=np.ones((10, 12), dtype=bool))
    with pytest.raises(ValueError, match="mode '1' or 'L'"):
        completion(random_image(), mask=PIL.Image.new("RGB", (SIZE, SIZE), (255, 0, 0)))  # greys in RGB are read
    with pytest.raises(ValueError, match="Unknown region"):
        completion(random_image(), mask="the cat")
    with pytest.raises(ValueError, match="does not fit"):
        completion(random_image(), mask=(0, 0, 100, 100))
    manipulation = load("nuwa-image-manipulation", tiny_model_folder)
    with pytest.raises(ValueError, match="region to change"):
        manipulation(random_image(), "a red 3", None)


def test_sketches_must_be_class_maps_within_the_known_classes(tiny_model_folder):
    sketch = load("nuwa-sketch-to-image", tiny_model_folder)
    with pytest.raises(ValueError, match="class id"):
        sketch(np.full((SIZE, SIZE), 99, dtype=np.int64))
    with pytest.raises(ValueError, match="far from every class colour"):
        sketch(random_image())  # an RGB picture is read as a drawing in the class colours: noise is none


def test_a_sketch_painted_in_the_class_colours_is_read_as_its_classes(tiny_model_folder, tmp_path):
    """A user paints a sketch in the class colours (an RGB PNG or JPEG, larger than the model's frames, anti-aliased):
    S2I and S2V read it as the classes painted, the same output as the class ids at the same seed."""
    sketch = load("nuwa-sketch-to-image", tiny_model_folder)
    classes = sketch.num_sketch_classes
    ids = np.zeros((SIZE, SIZE), dtype=np.int64)
    ids[SIZE // 2:] = 2
    ids[2:6, 2:6] = 3
    painted = media.upscaled(media.sketch_to_image(ids, num_classes=classes), 4)  # 4x the frame, RGB
    painted.save(tmp_path / "painted.png")
    expected = np.asarray(sketch(ids, seed=3))
    assert np.array_equal(np.asarray(sketch(str(tmp_path / "painted.png"), seed=3)), expected)
    assert np.array_equal(np.asarray(sketch(painted.convert("RGBA"), seed=3)), expected)
    painted.quantize(colors=8).save(tmp_path / "indexed.png")  # an indexed export: palette in its own order
    assert np.array_equal(np.asarray(sketch(str(tmp_path / "indexed.png"), seed=3)), expected)
    own = sketch.processor.image_processor.postprocess_sketches(ids[None], output_type="pil")[0]  # ids in mode P
    assert np.array_equal(np.asarray(sketch(own, seed=3)), expected)
    soft = painted.resize((SIZE * 16, SIZE * 16), PIL.Image.BICUBIC)  # blended edges, saved as a JPEG
    soft.save(tmp_path / "painted.jpg", quality=80)
    assert sketch(str(tmp_path / "painted.jpg"), seed=3).size == (SIZE, SIZE)
    video = load("nuwa-sketch-to-video", tiny_model_folder)
    frames = [painted, painted.transpose(PIL.Image.FLIP_LEFT_RIGHT)]
    expected = [np.asarray(f) for f in video(np.stack([ids, ids[:, ::-1]]), seed=3)]
    read = [np.asarray(f) for f in video(frames, seed=3)]
    assert len(read) == 2 and all(np.array_equal(a, b) for a, b in zip(read, expected))


def test_guidance_default_from_the_model_folder_generation_config(tiny_model_folder, tmp_path):
    """A folder whose generation_config.json sets guidance_scale (as the shipped checkpoint does) still generates:
    the value is NUWA's default guidance for conditioned tasks and is not applied to the None condition."""
    import shutil

    from transformers import GenerationConfig

    folder = tmp_path / "guided"
    shutil.copytree(tiny_model_folder, folder)
    config = GenerationConfig.from_pretrained(folder)
    config.guidance_scale, config.do_sample, config.top_k = 3.0, True, 8
    config.save_pretrained(folder)
    guided = load("nuwa-text-to-image", str(folder))
    assert guided("a red 3", seed=0).size == (SIZE, SIZE)
    explicit = load("nuwa-text-to-image", tiny_model_folder)("a red 3", seed=0, guidance_scale=3.0, top_k=8,
                                                             output_type="tokens")
    assert torch.equal(guided("a red 3", seed=0, output_type="tokens"), explicit)
    assert len(load("nuwa-video-prediction", str(folder))(random_image(), seed=0)) == FRAMES


def test_per_task_sampling_defaults_from_generation_config(tiny_model_folder, tmp_path):
    """generation_config.json's task_sampling tunes one task (here T2I: guidance 2, top-k 4) and leaves the others on
    the folder's defaults; a caller's own value still wins."""
    import shutil

    from transformers import GenerationConfig

    folder = tmp_path / "per-task"
    shutil.copytree(tiny_model_folder, folder)
    config = GenerationConfig.from_pretrained(folder)
    config.do_sample, config.guidance_scale, config.top_k = True, 3.0, 16
    config.task_sampling = {"nuwa-text-to-image": {"guidance_scale": 2.0, "top_k": 4}}
    config._from_model_config = False  # else transformers drops the extra field when it loads the file
    config.save_pretrained(folder)
    plain = load("nuwa-text-to-image", tiny_model_folder)
    tuned_image = load("nuwa-text-to-image", str(folder))
    tokens = lambda pipe, **kw: pipe("a red 3", seed=0, output_type="tokens", **kw)  # noqa: E731
    assert torch.equal(tokens(tuned_image), tokens(plain, guidance_scale=2.0, top_k=4))
    assert not torch.equal(tokens(tuned_image), tokens(plain, guidance_scale=3.0, top_k=16))
    assert torch.equal(tokens(tuned_image, top_k=16), tokens(plain, guidance_scale=2.0, top_k=16))
    video = load("nuwa-text-to-video", str(folder))("a red 3", seed=0, output_type="tokens")
    assert torch.equal(video, load("nuwa-text-to-video", tiny_model_folder)("a red 3", seed=0, output_type="tokens",
                                                                            guidance_scale=3.0, top_k=16))


def test_a_saved_text_visual_scorer_reranks_by_path(text_to_image, tmp_path):
    from nuwa_hf.evaluation import TextVisualDualEncoder
    from nuwa_hf.evaluation.scorers.word_tokenizer import build_vocabulary

    scorer = TextVisualDualEncoder(vocabulary=build_vocabulary(["a red 3", "a blue 8"]), visual="image", channels=3,
                                   frame_size=16)
    scorer.save_pretrained(tmp_path / "scorer")
    image = text_to_image("a red 3", seed=0, scorer=str(tmp_path / "scorer"), num_candidates=2)
    assert isinstance(image, PIL.Image.Image)


def test_save_pretrained_writes_a_complete_folder(text_to_image, tmp_path):
    text_to_image.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["vqgan_config"] and config["sketch_vqgan_config"], "the VQ-GANs are saved inside the model"
    assert not (tmp_path / "saved" / "vqgan").exists()
    assert not (tmp_path / "saved" / "text_to_image.py").exists(), "the pipeline's own code is not copied"
    again = load("nuwa-sketch-to-image", str(tmp_path / "saved"))
    assert again(np.zeros((SIZE, SIZE), dtype=np.int64), seed=0).size == (SIZE, SIZE)


@pytest.mark.parametrize("task, args, options", [
    ("nuwa-text-to-image", ("a red 3",), {}),
    ("nuwa-image-completion", (np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),),
     {"mask": "bottom half"}),
    ("nuwa-sketch-to-image", (np.random.default_rng(4).integers(0, 3, (SIZE, SIZE)),), {}),
])
def test_likelihood_reranking_keeps_the_candidate_the_model_finds_most_likely(tiny_model_folder, task, args, options):
    """scorer="likelihood": of the candidates a seeded call samples (the same rows num_outputs_per_input gives), the
    output is the one whose whole token grid has the highest log-likelihood under the model given the condition,
    computed here independently with the model's forward."""
    pipe = load(task, tiny_model_folder)
    candidates = pipe(*args, seed=0, num_outputs_per_input=4, output_type="tokens", **options)
    best = pipe(*args, seed=0, scorer="likelihood", num_candidates=4, output_type="tokens", **options)
    if task == "nuwa-text-to-image":
        condition = {"input_ids": pipe.preprocess(args[0])["input_ids"]}
    elif task == "nuwa-sketch-to-image":
        condition = {"sketch_maps": pipe.preprocess(args[0])["sketch_maps"][:, :1]}
    else:  # image completion: the "None" condition; the kept half is part of each candidate's grid
        condition = {"condition_type": "none"}
    log_likelihoods = []
    for grid in candidates:
        labels = torch.as_tensor(grid).reshape(1, 1, *torch.as_tensor(grid).shape[-2:])
        with torch.no_grad():
            logits = pipe.model(**condition, labels=labels).logits
        log_likelihoods.append(-torch.nn.functional.cross_entropy(logits[0], labels.flatten(), reduction="sum"))
    assert len({tuple(torch.as_tensor(c).flatten().tolist()) for c in candidates}) > 1  # a real choice was made
    assert torch.equal(torch.as_tensor(best), torch.as_tensor(candidates[int(torch.stack(log_likelihoods).argmax())]))


def _log_likelihood(model, labels, **condition):
    """log p(labels | condition) summed over the grid, from the model's forward (independent of token_grid_losses)."""
    with torch.no_grad():
        logits = model(**condition, labels=labels).logits
    return -torch.nn.functional.cross_entropy(logits[0], labels.flatten(), reduction="sum")


@pytest.mark.parametrize("task, args, options", [
    ("nuwa-text-to-image", ("a red 3",), {}),
    ("nuwa-image-manipulation", (np.random.default_rng(5).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
                                 "a blue 7"), {"mask": "bottom half"}),
    ("nuwa-image-completion", (np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),),
     {"mask": "bottom half", "prompt": "a green 2"}),
    ("nuwa-sketch-to-image", (np.random.default_rng(4).integers(0, 3, (SIZE, SIZE)),), {}),
])
def test_condition_gain_reranking_keeps_the_candidate_the_condition_makes_likeliest(tiny_model_folder, task, args,
                                                                                    options):
    """scorer="condition_gain": of the candidates a seeded call samples, the output is the one with the highest
    log p(grid | condition) - log p(grid | null condition), the null condition being classifier-free guidance's (an
    all-padding prompt of max_text_length for text, the "None" condition for a sketch), both computed here with the
    model's forward (the likelihood's choice too, the same candidates ranked by the other scorer)."""
    pipe = load(task, tiny_model_folder)
    candidates = pipe(*args, seed=0, num_outputs_per_input=8, output_type="tokens", **options)
    best = pipe(*args, seed=0, scorer="condition_gain", num_candidates=8, output_type="tokens", **options)
    by_likelihood = pipe(*args, seed=0, scorer="likelihood", num_candidates=8, output_type="tokens", **options)
    config = pipe.model.config
    if task == "nuwa-sketch-to-image":
        condition = {"sketch_maps": pipe.preprocess(args[0])["sketch_maps"][:, :1]}
        null = {"condition_type": "none"}
    else:
        prompt = args[1] if task == "nuwa-image-manipulation" else options.get("prompt", args[0])
        condition = {"input_ids": load("nuwa-text-to-image", tiny_model_folder).preprocess(prompt)["input_ids"]}
        null = {"input_ids": torch.full((1, config.max_text_length), config.text_pad_token_id)}
    likelihoods, gains = [], []
    for grid in candidates:
        labels = torch.as_tensor(grid).reshape(1, 1, *torch.as_tensor(grid).shape[-2:])
        likelihoods.append(_log_likelihood(pipe.model, labels, **condition))
        gains.append(likelihoods[-1] - _log_likelihood(pipe.model, labels, **null))
    assert len({tuple(torch.as_tensor(c).flatten().tolist()) for c in candidates}) > 1  # a real choice was made
    gains, likelihoods = torch.stack(gains), torch.stack(likelihoods)
    assert torch.equal(torch.as_tensor(best), torch.as_tensor(candidates[int(gains.argmax())]))
    assert torch.equal(torch.as_tensor(by_likelihood), torch.as_tensor(candidates[int(likelihoods.argmax())]))


def test_condition_gain_and_likelihood_keep_different_candidates(tiny_model_folder):
    """The two model scorers are not the same ranking: over a few seeded calls of 8 candidates, the gain keeps
    another candidate than the likelihood at least once (else the test above could not tell them apart)."""
    pipe = load("nuwa-text-to-image", tiny_model_folder)
    kept = {scorer: [pipe("a red 3", seed=seed, scorer=scorer, num_candidates=8, output_type="tokens")
                     for seed in range(3)] for scorer in ("likelihood", "condition_gain")}
    assert any(not torch.equal(a, b) for a, b in zip(kept["likelihood"], kept["condition_gain"]))


def test_condition_gain_reranking_refuses_requests_without_a_condition(tiny_model_folder):
    """Video prediction and image completion without a prompt have no condition: the gain would be 0 for every
    candidate, so the call is refused with the scorer to use instead (likelihood reranking still works)."""
    completion = load("nuwa-image-completion", tiny_model_folder)
    with pytest.raises(ValueError, match="has no condition, so there is nothing to gain from: use "
                                         "scorer='likelihood', or give a prompt"):
        completion(random_image(3), mask="bottom half", scorer="condition_gain", num_candidates=2, seed=0)
    prediction = load("nuwa-video-prediction", tiny_model_folder)
    with pytest.raises(ValueError, match="nuwa-video-prediction request has no condition"):
        prediction(random_image(1), scorer="condition_gain", num_candidates=2, seed=0)
    assert completion(random_image(3), mask="bottom half", scorer="likelihood", num_candidates=2, seed=0).size == (
        SIZE, SIZE)


def _values_of(pipe):
    """The tiny tokenizer's motions, numerals and colours (what the attribute posterior swaps)."""
    from nuwa_hf.processing.vocabulary import known_numerals, vocabulary_by_kind

    vocabulary = vocabulary_by_kind(pipe.processor.tokenizer)
    return {"motion": vocabulary["motions"], "digit": known_numerals(pipe.processor.tokenizer),
            "colour": vocabulary["colours"]}


def _log_likelihood_from(model, labels, first_frame, **condition):
    """log p(labels | condition) summed over the frames from ``first_frame`` on (model's forward, by hand)."""
    with torch.no_grad():
        logits = model(**condition, labels=labels).logits[0]
    losses = torch.nn.functional.cross_entropy(logits, labels.flatten(), reduction="none")
    return -losses.view(labels.shape[1], -1)[first_frame:].sum()


@pytest.mark.parametrize("task, args, words, first_frame", [
    ("nuwa-text-to-image", ("a red 3",), {"digit": "3", "colour": "red"}, 0),
    ("nuwa-text-to-video", ("the digit 3 is moving left then right",), {"digit": "3", "motion": "left then right"}, 0),
    ("nuwa-video-manipulation", ([random_image(8), random_image(9)], "the digit 5 is moving up then down"),
     {"digit": "5", "motion": "up then down"}, 1),
])
def test_attribute_posterior_reranking_keeps_the_candidate_the_model_reads_as_asked(tiny_model_folder, task, args,
                                                                                    words, first_frame):
    """scorer="attribute_posterior": of the candidates a seeded call samples, the output is the one with the highest
    sum over the prompt's attributes of log p(x | prompt) - logsumexp over the prompt with that attribute's words
    replaced by each value the model knows (the prompt itself included) of log p(x | that prompt), the captions written
    here as text and the log-likelihoods computed with the model's forward, over the frames the model sampled (a
    manipulated video's given first frame left out)."""
    pipe = load(task, tiny_model_folder)
    prompt = args[-1]
    candidates = pipe(*args, seed=0, num_outputs_per_input=6, output_type="tokens")
    best = pipe(*args, seed=0, scorer="attribute_posterior", num_candidates=6, output_type="tokens")
    text = load("nuwa-text-to-image", tiny_model_folder)
    ids = lambda caption: text.preprocess(caption)["input_ids"]  # noqa: E731
    values = _values_of(pipe)
    scores = []
    for grid in candidates:
        grid = torch.as_tensor(grid)
        labels = grid.reshape(1, -1, *grid.shape[-2:])
        total = torch.zeros(())
        for kind, asked in words.items():
            logs = torch.stack([_log_likelihood_from(pipe.model, labels, first_frame,
                                                     input_ids=ids(prompt.replace(asked, value)))
                                for value in values[kind]])
            total = total + logs[values[kind].index(asked)] - torch.logsumexp(logs, dim=0)
        scores.append(total)
    assert len({tuple(torch.as_tensor(c).flatten().tolist()) for c in candidates}) > 1  # a real choice was made
    assert torch.equal(torch.as_tensor(best), torch.as_tensor(candidates[int(torch.stack(scores).argmax())]))


def test_attribute_posterior_and_likelihood_keep_different_candidates(tiny_model_folder):
    """The posterior is not the likelihood's ranking: over a few seeded calls, it keeps another candidate at least
    once (else the test above could not tell them apart)."""
    pipe = load("nuwa-text-to-video", tiny_model_folder)
    kept = {scorer: [pipe("the digit 7 is moving down then up", seed=seed, scorer=scorer, num_candidates=6,
                          output_type="tokens") for seed in range(3)]
            for scorer in ("likelihood", "attribute_posterior")}
    assert any(not torch.equal(a, b) for a, b in zip(kept["likelihood"], kept["attribute_posterior"]))


def test_attribute_posterior_reranking_refuses_prompts_that_name_no_attribute(tiny_model_folder, monkeypatch):
    """Asked for in the call, the posterior needs a prompt naming a motion, digit or colour the model knows: a prompt
    naming none, and a request without a prompt, are refused before anything is sampled, naming the scorer to use."""
    video = load("nuwa-text-to-video", tiny_model_folder)
    completion = load("nuwa-image-completion", tiny_model_folder)

    def no_generation(*args, **kwargs):
        raise AssertionError("generated before the call was refused")

    for pipe in (video, completion):
        monkeypatch.setattr(pipe.model, "generate_visual", no_generation)
    with pytest.raises(ValueError, match=r"the prompt 'the digit' names none of them the model knows \(motion: up "
                                         r"then down.*digit: 0, 1, 3.*colour: red.*\): name one, or use "
                                         r"scorer='likelihood'"):
        video("the digit", scorer="attribute_posterior", num_candidates=2, seed=0)
    with pytest.raises(ValueError, match="nuwa-image-completion request has no prompt: use scorer='likelihood'"):
        completion(random_image(3), mask="bottom half", scorer="attribute_posterior", num_candidates=2, seed=0)
    # a batch is checked input by input: one prompt without an attribute refuses the call
    with pytest.raises(ValueError, match="the prompt 'the digit' names none"):
        video(["a red 3", "the digit"], scorer="attribute_posterior", num_candidates=2, seed=0)


def test_a_folders_attribute_posterior_default_reads_the_likelihood_where_there_is_nothing_to_read(tiny_model_folder,
                                                                                                   tmp_path):
    """A folder whose entry names "attribute_posterior" reranks prompts naming an attribute by it (as the explicit
    scorer), and ranks the rest by the likelihood: a prompt naming none, a completion without a prompt."""
    folder, _ = folder_with_task_sampling(tiny_model_folder, tmp_path, {
        "nuwa-text-to-video": {"scorer": "attribute_posterior", "num_candidates": 4},
        "nuwa-image-completion": {"scorer": "attribute_posterior", "num_candidates": 4}})
    tokens = lambda pipe, *args, **kw: torch.as_tensor(pipe(*args, seed=3, output_type="tokens", **kw))  # noqa: E731
    video, plain = load("nuwa-text-to-video", str(folder)), load("nuwa-text-to-video", tiny_model_folder)
    asked = "the digit 0 is moving up then down"
    assert torch.equal(tokens(video, asked), tokens(plain, asked, scorer="attribute_posterior", num_candidates=4))
    assert torch.equal(tokens(video, "the digit"), tokens(plain, "the digit", scorer="likelihood", num_candidates=4))
    # one batch holding both (the second input seeded 3 + 1): each input reranked as alone
    both = video([asked, "the digit"], seed=3, output_type="tokens", batch_size=2)
    assert torch.equal(torch.as_tensor(both[0]), tokens(video, asked))
    assert torch.equal(torch.as_tensor(both[1]), torch.as_tensor(video("the digit", seed=4, output_type="tokens")))
    completion = load("nuwa-image-completion", str(folder))
    plain_completion = load("nuwa-image-completion", tiny_model_folder)
    image = random_image(3)
    assert torch.equal(tokens(completion, image, mask="bottom half"),
                       tokens(plain_completion, image, mask="bottom half", scorer="likelihood", num_candidates=4))


def folder_with_task_sampling(tiny_model_folder, tmp_path, task_sampling: dict):
    """A copy of the tiny model folder whose generation_config.json samples and has ``task_sampling`` -> (folder, the
    config dict written, to change and write again)."""
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_folder, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config.update(do_sample=True, _from_model_config=False, task_sampling=task_sampling)
    (folder / "generation_config.json").write_text(json.dumps(config))
    return folder, config


def test_a_folders_condition_gain_default_is_one_sample_where_there_is_no_condition(tiny_model_folder, tmp_path):
    """A folder whose image-completion entry names "condition_gain" reranks completions that have a prompt by it (as
    an explicit scorer= would) and gives one sample for those without (nothing to gain from; asked for in the call,
    that is an error instead)."""
    folder, _ = folder_with_task_sampling(
        tiny_model_folder, tmp_path, {"nuwa-image-completion": {"scorer": "condition_gain", "num_candidates": 4}})
    reranking, plain = load("nuwa-image-completion", str(folder)), load("nuwa-image-completion", tiny_model_folder)
    image = random_image(3)
    call = dict(mask="bottom half", seed=2, output_type="tokens")
    assert torch.equal(torch.as_tensor(reranking(image, **call)), torch.as_tensor(plain(image, **call)))
    prompted = dict(call, prompt="a green 2")
    assert torch.equal(torch.as_tensor(reranking(image, **prompted)), torch.as_tensor(
        plain(image, **prompted, scorer="condition_gain", num_candidates=4)))
    assert not torch.equal(torch.as_tensor(reranking(image, **prompted)), torch.as_tensor(plain(image, **prompted)))


def test_condition_gain_reranking_of_a_sketch_video_and_a_text_video(tiny_model_folder):
    """Video tasks: the gain of a whole 3-frame grid, as a direct computation with the model's forward; longer than
    the trained frames is refused by name."""
    pipe = load("nuwa-sketch-to-video", tiny_model_folder)
    sketch = np.random.default_rng(8).integers(0, 3, (FRAMES, SIZE, SIZE))
    candidates = pipe(sketch, seed=1, num_outputs_per_input=4, output_type="tokens")
    best = pipe(sketch, seed=1, scorer="condition_gain", num_candidates=4, output_type="tokens")
    condition = {"sketch_maps": pipe.preprocess(sketch)["sketch_maps"]}
    gains = torch.stack([_log_likelihood(pipe.model, torch.as_tensor(c)[None], **condition)
                         - _log_likelihood(pipe.model, torch.as_tensor(c)[None], condition_type="none")
                         for c in candidates])
    assert torch.equal(torch.as_tensor(best), torch.as_tensor(candidates[int(gains.argmax())]))
    video = load("nuwa-text-to-video", tiny_model_folder)
    with pytest.raises(ValueError, match="scorer='condition_gain' scores grids up to the 3 frames"):
        video("the digit 3", num_frames=5, scorer="condition_gain", num_candidates=2, seed=0)


def test_a_misspelt_scorer_name_is_told_the_choices(tiny_model_folder):
    with pytest.raises(FileNotFoundError, match="neither 'likelihood' .*, 'condition_gain' .* nor an existing folder "
                                                "of a saved scorer"):
        load("nuwa-text-to-image", tiny_model_folder)("a red 3", scorer="likelihod", num_candidates=2)


def test_likelihood_reranking_refuses_grids_longer_than_trained(tiny_model_folder, monkeypatch):
    video = load("nuwa-text-to-video", tiny_model_folder)

    def no_generation(*args, **kwargs):
        raise AssertionError("generated before the call was refused")

    monkeypatch.setattr(video.model, "generate_visual", no_generation)  # refused before any work
    with pytest.raises(ValueError, match="scorer='likelihood' scores grids up to the 3 frames"):
        video("the digit 3", num_frames=5, scorer="likelihood", num_candidates=2, seed=0)


def test_a_folders_default_reranking_leaves_a_video_past_the_trained_frames_at_one_sample(tiny_model_folder,
                                                                                           tmp_path):
    """The shipped folder reranks T2V by default (task_sampling); a longer video, which slides a window past the
    trained frames (`nuwa-hf generate --help`'s --num-frames 12 example), is one sample instead of an error, and a
    video of the trained length is still reranked."""
    folder, _ = folder_with_task_sampling(tiny_model_folder, tmp_path,
                                          {"nuwa-text-to-video": {"scorer": "likelihood", "num_candidates": 3}})
    reranking, plain = load("nuwa-text-to-video", str(folder)), load("nuwa-text-to-video", tiny_model_folder)
    long = reranking("the digit 3", num_frames=5, seed=1, output_type="tokens")
    assert torch.equal(torch.as_tensor(long), torch.as_tensor(
        plain("the digit 3", num_frames=5, seed=1, output_type="tokens")))
    assert reranking._reranking({}, frames=5) == (None, 1)
    assert reranking._reranking({}, frames=3)[1] == 3
    assert torch.equal(torch.as_tensor(reranking("the digit 3", num_frames=3, seed=1, output_type="tokens")),
                       torch.as_tensor(plain("the digit 3", num_frames=3, seed=1, output_type="tokens",
                                             scorer="likelihood", num_candidates=3)))


def test_a_model_folder_can_make_likelihood_reranking_a_tasks_default(tiny_model_folder, tmp_path):
    """generation_config.json's task_sampling entry {"scorer": "likelihood", "num_candidates": 3} reranks that task's
    calls by default (as an explicit scorer= would), other tasks not; num_candidates=1 turns it off; a folder cannot
    name any other scorer."""
    folder, config = folder_with_task_sampling(tiny_model_folder, tmp_path,
                                               {"nuwa-text-to-image": {"scorer": "likelihood", "num_candidates": 3}})
    reranking, plain = load("nuwa-text-to-image", str(folder)), load("nuwa-text-to-image", tiny_model_folder)
    default = reranking("a red 3", seed=2, output_type="tokens")
    explicit = plain("a red 3", seed=2, output_type="tokens", scorer="likelihood", num_candidates=3)
    single = plain("a red 3", seed=2, output_type="tokens")
    assert torch.equal(torch.as_tensor(default), torch.as_tensor(explicit))
    assert torch.equal(torch.as_tensor(reranking("a red 3", seed=2, output_type="tokens", num_candidates=1)),
                       torch.as_tensor(single))
    more = reranking("a red 3", seed=2, output_type="tokens", num_candidates=5)
    assert torch.equal(torch.as_tensor(more), torch.as_tensor(
        plain("a red 3", seed=2, output_type="tokens", scorer="likelihood", num_candidates=5)))
    video = load("nuwa-text-to-video", str(folder))
    assert video._reranking({}) == (None, 1)  # another task: no entry, no reranking
    config["task_sampling"]["nuwa-text-to-image"]["scorer"] = "condition_gain"  # the other scorer the model computes
    (folder / "generation_config.json").write_text(json.dumps(config))
    gain_default = load("nuwa-text-to-image", str(folder))("a red 3", seed=2, output_type="tokens")
    assert torch.equal(torch.as_tensor(gain_default),
                       torch.as_tensor(plain("a red 3", seed=2, output_type="tokens", scorer="condition_gain",
                                             num_candidates=3)))
    config["task_sampling"]["nuwa-text-to-image"]["scorer"] = "clip"
    (folder / "generation_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="can only name 'likelihood', 'condition_gain' or 'attribute_posterior'"):
        load("nuwa-text-to-image", str(folder))("a red 3", seed=0)
