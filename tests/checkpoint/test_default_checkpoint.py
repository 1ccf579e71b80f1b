"""The shipped default checkpoint (checkpoints/nuwa-tiny): loads through the Auto classes and every pipeline, and
gives outputs of the right shapes. Fast: a few sampled tokens per test, one thread."""

import json
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

FOLDER = Path(__file__).resolve().parents[2] / "checkpoints" / "nuwa-tiny"
pytestmark = pytest.mark.skipif(not (FOLDER / "config.json").is_file(), reason="checkpoints/nuwa-tiny not present")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    import nuwa_hf  # noqa: F401  (registers the Auto classes and pipelines)
    from transformers import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_pretrained(FOLDER, use_safetensors=True).eval()


@pytest.fixture(scope="module")
def processor():
    from nuwa_hf.processing import NuwaProcessor

    return NuwaProcessor.from_pretrained(FOLDER)


@pytest.fixture(scope="module")
def sizes(model, processor):
    crop = processor.image_processor.crop_size
    size = int(getattr(crop, "height", None) or crop["height"])
    frames, h, w = (int(v) for v in model.config.max_visual_grid)
    return size, frames, (h, w)


def test_folder_layout_and_size():
    names = {p.name for p in FOLDER.iterdir()}
    for required in ("config.json", "generation_config.json", "model.safetensors", "README.md", "processor_config.json"):
        assert required in names, required
    assert "vqgan" not in names and "vqgan_seg" not in names, "the VQ-GANs live inside the model (model.safetensors)"
    assert not list(FOLDER.rglob("*.bin")) and not list(FOLDER.rglob("*.pt")), "weights are safetensors only"
    total = sum(p.stat().st_size for p in FOLDER.rglob("*") if p.is_file())
    assert total <= 40 * 1024 * 1024, f"{total / 2**20:.1f} MB > 40 MB"


def test_card_metadata():
    from huggingface_hub import ModelCard

    card = ModelCard.load(FOLDER / "README.md")
    assert card.data.pipeline_tag and card.data.license
    assert "How it was trained" in card.text and "train_default_checkpoint.py" in card.text


def test_auto_model_and_processor(model, processor, sizes):
    from nuwa_hf.models.nuwa import NuwaForConditionalGeneration
    from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN

    size, frames, grid = sizes
    assert isinstance(model, NuwaForConditionalGeneration)
    assert isinstance(model.vqgan, NuwaVQGAN) and isinstance(model.sketch_vqgan, NuwaSegVQGAN)
    assert model.config.visual_vocab_size == model.vqgan.codebook_size
    assert model.config.sketch_vocab_size == model.sketch_vqgan.codebook_size
    assert len(processor.tokenizer) <= model.config.text_vocab_size
    ids = processor.tokenizer(["the digit 3 is moving up then down"], padding="max_length",
                              max_length=model.config.max_text_length, truncation=True, return_tensors="pt")
    labels = torch.randint(0, model.config.visual_vocab_size, (1, frames, *grid))
    with torch.no_grad():
        out = model(input_ids=ids["input_ids"], labels=labels)
    assert torch.isfinite(out.loss)


def _pipe(task, model, processor):
    from transformers import pipeline

    pipe = pipeline(task, model=model, processor=processor)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _digit_image(size):
    from nuwa_hf import data

    row = data.world_rows("t2i", "test", 1, seed=0, image_size=size)[0]
    return PIL.Image.fromarray(np.asarray(row["image"]))


def _scene(size, frames=None):
    from nuwa_hf import data

    if frames is None:
        return np.asarray(data.scene_images("test", 1, seed=0, image_size=size)[0]["sketch"])
    return np.asarray(data.scene_videos("test", 1, seed=0, image_size=size, num_frames=max(frames, 3))[0]["sketch"])[:frames]


def test_text_to_image(model, processor, sizes):
    size, _, grid = sizes
    image = _pipe("nuwa-text-to-image", model, processor)("a red 3", seed=0)
    assert isinstance(image, PIL.Image.Image) and image.size == (size, size)


def test_text_to_video(model, processor, sizes):
    size, frames, _ = sizes
    video = _pipe("nuwa-text-to-video", model, processor)("the digit 7 is moving left then right", seed=0,
                                                           output_type="np")
    assert video.shape == (frames, size, size, 3)


def test_video_prediction(model, processor, sizes):
    size, frames, grid = sizes
    video = _pipe("nuwa-video-prediction", model, processor)(_digit_image(size), seed=0, output_type="tokens")
    assert tuple(video.shape) == (frames, *grid)


def test_sketch_to_image(model, processor, sizes):
    size, _, _ = sizes
    image = _pipe("nuwa-sketch-to-image", model, processor)(_scene(size), seed=0, output_type="np")
    assert image.shape == (size, size, 3)


def test_sketch_to_video(model, processor, sizes):
    size, frames, _ = sizes
    video = _pipe("nuwa-sketch-to-video", model, processor)(_scene(size, frames), seed=0, output_type="np")
    assert video.shape == (frames, size, size, 3)


def test_image_completion_keeps_the_top_half(model, processor, sizes):
    size, _, grid = sizes
    pipe = _pipe("nuwa-image-completion", model, processor)
    image = _digit_image(size)

    def encoded(array):
        pixels = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].float() / 127.5 - 1
        return model.vqgan.encode_to_indices(pixels)[0]

    # by default the region is blacked out before encoding and one token row above it is regenerated too
    tokens = pipe(image, mask="bottom half", seed=0, output_type="tokens")
    blanked = np.asarray(image).copy()
    blanked[size // 2:] = 0
    assert tuple(tokens.shape) == grid
    assert torch.equal(tokens[: grid[0] // 2 - 1], encoded(blanked)[: grid[0] // 2 - 1])
    # as before: the picture encoded as given, the region's tokens alone sampled
    tokens = pipe(image, mask="bottom half", seed=0, output_type="tokens", blank_region=False, regenerate_border=0)
    assert torch.equal(tokens[: grid[0] // 2], encoded(np.asarray(image))[: grid[0] // 2])


def test_image_manipulation(model, processor, sizes):
    size, _, _ = sizes
    image = _pipe("nuwa-image-manipulation", model, processor)(_digit_image(size), "the digit three in blue",
                                                               mask="center", seed=0)
    assert image.size == (size, size)


def test_video_manipulation(model, processor, sizes):
    size, frames, _ = sizes
    video = _pipe("nuwa-video-manipulation", model, processor)([_digit_image(size)], "the digit 3 is moving up then down",
                                                               seed=0, output_type="np")
    assert video.shape == (frames, size, size, 3)


def test_the_shipped_folder_holds_data_only():
    """Issue 29: no code in the checkpoint and no reference to code; the card names nuwa-hf as the library."""
    from pathlib import Path

    from huggingface_hub import ModelCard

    from nuwa_hf.models.nuwa.loading_nuwa import foreign_code_note, other_auto_maps

    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "nuwa-tiny"
    assert not list(shipped.rglob("*.py")) and not (shipped / "model_index.json").exists()
    config = json.loads((shipped / "config.json").read_text())
    assert "auto_map" not in config and "custom_pipelines" not in config
    assert other_auto_maps(shipped) == {} and foreign_code_note(config) is None
    card = ModelCard.load(shipped / "README.md")
    assert card.data.library_name == "nuwa-hf" and card.data.pipeline_tag == "text-to-image"
    assert set(json.loads((shipped / "checksums.json").read_text())["files"]) == {"model.safetensors"}


def _teacher_forced_losses(model, processor, task, rows):
    """Mean token loss of held-out examples with their own condition, with another example's, and with none."""
    from nuwa_hf.training.tasks import get_task
    from nuwa_hf.training.token_cache import encode_task_batch

    batch = encode_task_batch(rows, get_task(task), visual_tokenizer=model.vqgan, sketch_tokenizer=model.sketch_vqgan,
                              text_tokenizer=processor.tokenizer, max_text_length=model.config.max_text_length)
    labels = batch["labels"] if batch["labels"].dim() == 4 else batch["labels"][:, None]
    key = "input_ids" if "input_ids" in batch else "sketch_tokens"
    condition = batch[key] if batch[key].dim() == labels.dim() or key == "input_ids" else batch[key][:, None]
    shifted = torch.roll(condition, 1, dims=0)  # every example gets its neighbour's condition
    with torch.no_grad():
        own = model(**{key: condition}, labels=labels).loss.item()
        other = model(**{key: shifted}, labels=labels).loss.item()
    return own, other


# Loss gain (nats per token) from the right condition over a neighbour's, measured on the shipped folder (v9): t2i
# 3.04, t2v 0.255, s2i 0.84 (v8: 2.92, 0.246, 0.83). The bars are about half of that: T2V's captions change the digit
# and the motion of an otherwise predictable video (see the card's table).
MIN_CONDITION_GAIN = {"t2i": 1.4, "t2v": 0.09, "s2i": 0.4}


@pytest.mark.parametrize("task", ["t2i", "t2v", "s2i"])
def test_the_shipped_model_reads_its_condition(model, processor, sizes, task):
    """Held-out MNIST test digits / scenes: the right caption or sketch must make the true tokens clearly more likely
    than a neighbour's (a model that ignored its condition would score both alike)."""
    from nuwa_hf import data

    size, frames, _ = sizes
    if task == "t2i":
        rows = data.world_rows("t2i", "test", 24, seed=1, image_size=size)[:]
    elif task == "t2v":
        rows = data.world_rows("t2v", "test", 12, seed=1, image_size=size, num_frames=max(frames, 3))[:]
        rows = {**rows, "video": np.asarray(rows["video"])[:, :frames]}
    else:
        rows = data.scene_images("test", 24, seed=1, image_size=size)[:]
    own, other = _teacher_forced_losses(model, processor, task, rows)
    assert own < other - MIN_CONDITION_GAIN[task], (own, other)


# Share of "a {colour} {digit}" prompts (10 digits x 2 seeds) whose picture the shipped MNIST reader reads as the asked
# digit, and share of pictures in the asked colour, measured on the shipped folder with its own sampling defaults
# (MEASURED_T2I; chance is 0.1 and 1/6). The bars sit about one and a half standard errors of 20 samples below.
MEASURED_T2I = {"digit": 0.80, "colour": 1.0}  # v9 with its T2I sampling defaults (guidance 3, top-k 8); v8: 0.65, 1.0
MIN_T2I = {"digit": 0.65, "colour": 0.85}


COLOURS_OF_DIGITS = ["red", "green", "blue", "yellow", "magenta", "cyan", "red", "green", "blue", "yellow"]


def _assert_digits_and_colours_drawn(model, processor, form):
    """T2I of ``form.format(c=colour, d=digit)`` for the ten digits x seeds 0 and 1, with the folder's own sampling
    defaults, read by the shipped MNIST reader and the colour reader, against the MIN_T2I bars."""
    from nuwa_hf.evaluation.digit_reading import default_digit_reader, read_colours, read_digits

    reader = default_digit_reader(FOLDER.parent / "mnist-digit-reader")
    prompts = [form(d).format(c=COLOURS_OF_DIGITS[d], d=d) for d in range(10)]
    pipe = _pipe("nuwa-text-to-image", model, processor)
    pictures = np.stack([np.asarray(image) for seed in (0, 1) for image in pipe(prompts, seed=seed, batch_size=10)])
    digits = read_digits(reader, pictures).argmax(-1).numpy()
    read = read_colours(pictures, [(0.0, 0.0, 1.0, 1.0)] * len(pictures), pictures.shape[1])
    assert (digits == np.tile(np.arange(10), 2)).mean() >= MIN_T2I["digit"], digits
    assert np.mean([r == c for r, c in zip(read, COLOURS_OF_DIGITS * 2)]) >= MIN_T2I["colour"], read


def test_the_shipped_model_draws_the_digit_and_colour_it_is_asked_for(model, processor):
    """As a user asks: plain prompts, the folder's own sampling defaults, read by an independent MNIST CNN."""
    _assert_digits_and_colours_drawn(model, processor, lambda d: "a {c} {d}")


# Prompts as users type them, with words the model never saw ("please draw a red 0", "generate an image of a green
# 1", "a 2 colored blue", "can you make a yellow 3?", ...; 10 digits x 2 seeds): the pipeline leaves those words out
# (drop_unknown_words, default). Measured on v9: digit 0.85, colour 1.0; with the words given to the model
# (drop_unknown_words=False) digit 0.40, colour 0.70. The bars are MIN_T2I's.
WORDY_FORMS = ("please draw a {c} {d}", "generate an image of a {c} {d}", "a {d} colored {c}",
               "can you make a {c} {d}?")


def test_words_the_model_never_saw_do_not_spoil_the_picture(model, processor):
    _assert_digits_and_colours_drawn(model, processor, lambda d: WORDY_FORMS[d % len(WORDY_FORMS)])


# Motions as users phrase them, which leaving out unknown words empties ("side to side", "vertically", "hopping") or
# reorders ("upward then downward" -> "then"); (prompt, motions that obey it). The pipeline reads them in the captions'
# words (rephrase_prompt, default). Measured on v9 (16 videos): 0.94 read so, 0.56 as typed; the bars sit below.
USER_MOTIONS = (
    ("a blue eight wiggling side to side", ("left then right", "right then left")),
    ("the digit 8 moving vertically", ("up then down", "down then up")),
    ("a cyan 4 moving upward then downward", ("up then down",)),
    ("a red seven hopping", ("up then down", "down then up")),
    ("the digit 1 moving horizontally", ("left then right", "right then left")),
    ("a magenta 8 moving from left to right and back", ("left then right",)),
    ("the number 5 going down and back up", ("down then up",)),
    ("a magenta 2 moving back and forth", ("left then right", "right then left")),
)


def test_motions_as_users_phrase_them_are_drawn(model, processor):
    """T2V of USER_MOTIONS x seeds 11 and 12 with the folder's own sampling (best of 4), motion read off the digit's
    path (read_motion): with the phrasings read in the captions' words, and as typed (rephrase_prompt=False)."""
    from nuwa_hf.evaluation.digit_reading import read_motion

    pipe = _pipe("nuwa-text-to-video", model, processor)
    prompts = [prompt for prompt, _ in USER_MOTIONS]
    wanted = [motions for _, motions in USER_MOTIONS] * 2

    def accuracy(**options):
        videos = [np.stack([np.asarray(frame) for frame in video]) for seed in (11, 12)
                  for video in pipe(prompts, seed=seed, batch_size=len(prompts), **options)]
        return float(np.mean([read_motion(video) in motions for video, motions in zip(videos, wanted)]))

    rephrased, typed = accuracy(), accuracy(rephrase_prompt=False)
    assert rephrased >= 0.75 and rephrased >= typed + 0.25, (rephrased, typed)


# Teacher-forced condition gains of the shipped folder (v9, nuwa_hf.evaluation.condition_gain, 40 held-out examples):
# T2I digit 23.8 nats (true caption most likely 0.93), T2V digit 17.2 (0.93), T2V motion 11.8 (0.72; v8: 10.2, v7:
# 2.45, v6: 0.81, v5: 0.03). The bars sit well below: what they catch is a checkpoint that stops reading a part of
# its caption.
def test_the_shipped_model_uses_the_digit_and_the_motion(model, processor):
    from nuwa_hf.evaluation.condition_gain import condition_gains

    gains = condition_gains(model, processor, ("t2i", "t2v"), num_examples=40, seed=1)
    assert gains["t2i"]["digit"]["gain"] > 10 and gains["t2i"]["digit"]["true_lowest"] >= 0.7, gains["t2i"]
    assert gains["t2v"]["digit"]["gain"] > 7 and gains["t2v"]["colour"]["true_lowest"] >= 0.9, gains["t2v"]
    assert gains["t2v"]["motion"]["gain"] > 5.0, gains["t2v"]["motion"]


def test_the_shipped_tokenizer_records_the_words_of_its_training_captions():
    """checkpoints/nuwa-tiny/tokenizer_config.json holds caption_words, written by
    `examples/train_default_checkpoint.py --record-caption-words` from the captions the shipped BPE was trained on (v5:
    seed 0, large_digits, 32 px, 4 frames, 12,000 captions per task; that command checks a BPE retrained on them equals
    the shipped one). Here: the words of the first 2,000 captions per task of the same worlds are the record."""
    from nuwa_hf import data
    from nuwa_hf.processing.vocabulary import caption_words

    record = json.loads((FOLDER / "tokenizer_config.json").read_text())["caption_words"]
    world = dict(seed=0, world="large_digits", image_size=32, num_frames=4)
    captions = [str(t) for task in ("t2i", "t2v") for t in data.world_rows(task, "train", 2000, **world)["text"]]
    assert record == caption_words(captions)


def test_the_shipped_pipeline_reads_only_caption_words_and_refuses_fillers(model, processor):
    """"an" is a whole token of the shipped BPE (the end of "cyan") but no caption's word: left out and named. A prompt
    reduced to fillers is refused with what was read and the words the model knows; drop_unknown_words=False gives the
    model the whole prompt, as before."""
    assert processor.tokenizer.tokenize("an") == ["an</w>"]
    pipe = _pipe("nuwa-text-to-image", model, processor)
    ids = lambda prompt, **options: pipe.preprocess(prompt, **options)["input_ids"]  # noqa: E731
    assert torch.equal(ids("an eight in cyan"), ids("eight in cyan"))
    assert not torch.equal(ids("an eight in cyan", drop_unknown_words=False), ids("eight in cyan"))
    said = pipe.preprocess("an eight in cyan")["notices"]  # the call's warning
    assert "never saw in training: 'an';" in said and "the model reads 'eight in cyan'" in said, said
    with pytest.raises(ValueError, match=r"The prompt 'a purple cat' leaves only 'a' once the words the model never "
                                         r"saw \('purple', 'cat'\).*filler words.*\(digits: 0, 1, 2, 3, 4, 5, 6, 7, 8, "
                                         r"9, zero, .*colours: red, green, blue, yellow, magenta, cyan; motions: up "
                                         r"then down, .*drop_unknown_words=False"):
        pipe("a purple cat", seed=0)
    assert pipe.preprocess("a purple cat", drop_unknown_words=False)["input_ids"].shape == ids("a red 7").shape
    assert pipe.preprocess("a red 7")["notices"] == ""


def test_held_out_pictures_get_no_light_background_notice_and_the_same_outputs(model, processor, sizes, monkeypatch):
    """Held-out pictures of the training worlds (I2I, V2V) pass strict=True (no light-background notice: their
    border's grey level is 0) and give the same tokens with the light-background check as without it; their negative
    (dark on white) is refused by strict=True."""
    from nuwa_hf.data.task_examples import task_examples

    size, frames, _ = sizes
    for task in ("nuwa-image-completion", "nuwa-video-prediction"):
        pipe = _pipe(task, model, processor)
        ex = task_examples(task, 8, size, frames, split="test", seed=3, whole_picture=task == "nuwa-image-completion")
        checked = pipe(**ex.chunk(0, 8), seed=5, output_type="tokens", strict=True)
        with monkeypatch.context() as patch:
            patch.setattr(type(pipe), "_light_background_notes", staticmethod(lambda *args: []))
            unchecked = pipe(**ex.chunk(0, 8), seed=5, output_type="tokens")
        assert all(torch.equal(a, b) for a, b in zip(checked, unchecked))
        first = ex.chunk(0, 1)
        key = "image" if task == "nuwa-image-completion" else "video"
        negative = PIL.Image.fromarray(255 - np.asarray(first[key][0] if key == "image" else first[key][0][0]))
        first[key] = [negative] if key == "image" else [[negative]]
        with pytest.raises(ValueError, match="has a light background"):
            pipe(**first, seed=5, strict=True)
