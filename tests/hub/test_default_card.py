"""The default checkpoint's card is rendered by code (``write_default_card``): what it must say about training."""

from huggingface_hub import ModelCard

from nuwa_hf.hub.model_cards import write_default_card

from .conftest import write_layout


def render(tmp_path, nuwa_argv):
    folder = tmp_path / "nuwa-tiny"
    write_layout(folder)
    path = write_default_card(
        folder, evaluation={}, timings={"nuwa": {"seconds": 12.5, "threads": 1}}, command="python reproduce.py",
        nuwa_argv=nuwa_argv, settings={"seed": 0, "image_size": 48, "num_frames": 4, "threads": 1},
    )
    return ModelCard.load(path)


def test_card_lists_every_nuwa_run_in_order_with_quoted_arguments(tmp_path):
    first = ["--output-dir", "runs/x/nuwa", "--task-weights", "t2i=3,t2v=3", "--model-config", '{"hidden_size": 128}']
    second = ["--output-dir", "runs/x/nuwa_continued", "--init-from", "runs/x/nuwa"]
    card = render(tmp_path, [first, second])
    lines = [line for line in card.text.splitlines() if line.startswith("nuwa-hf train ")]
    assert lines == [
        "nuwa-hf train --output-dir runs/x/nuwa --task-weights t2i=3,t2v=3 --model-config '{\"hidden_size\": 128}'",
        "nuwa-hf train --output-dir runs/x/nuwa_continued --init-from runs/x/nuwa",
    ]
    assert card.data.pipeline_tag and card.data.license
    assert "python reproduce.py" in card.text and "_Not evaluated yet._" in card.text


def test_card_takes_a_single_run_too(tmp_path):
    card = render(tmp_path, ["--output-dir", "runs/x/nuwa"])
    assert [line for line in card.text.splitlines() if line.startswith("nuwa-hf train ")] == [
        "nuwa-hf train --output-dir runs/x/nuwa"]


def test_card_lists_the_sketch_class_ids_from_the_code(tmp_path):
    """Issue 28 item 5: the card says which class id paints what, from nuwa_hf.data.SCENE_CLASSES."""
    from nuwa_hf.data import SCENE_CLASSES

    card = render(tmp_path, ["--output-dir", "runs/x/nuwa"])
    expected = ", ".join(f"{index} {name}" for index, name in enumerate(SCENE_CLASSES))
    assert expected in " ".join(card.text.split())


def test_card_shows_every_sample_picture_with_its_caption(tmp_path):
    """samples/prompts.json: a T2I sheet (prompts per column), T2V GIFs (their prompt), and pictures that carry their
    own caption (the S2I sheet); a listed file that is missing is left out of the card."""
    import json

    folder = tmp_path / "nuwa-tiny"
    write_layout(folder)
    samples = folder / "samples"
    samples.mkdir(exist_ok=True)
    for name in ("t2i_digits.png", "t2v_0.gif", "s2i_sketches.png"):
        (samples / name).write_bytes(b"picture")
    (samples / "prompts.json").write_text(json.dumps({
        "t2i_digits.png": {"rows": ["seed 0"], "prompts": ["a red 0", "a green 1"]},
        "t2v_0.gif": "a red 7 moving up",
        "s2i_sketches.png": {"caption": "Sketch-to-image: sketches, pictures, real scenes."},
        "gone.gif": "never drawn",
    }))
    path = write_default_card(
        folder, evaluation={}, timings={}, command="python reproduce.py", nuwa_argv=["--output-dir", "x"],
        settings={"seed": 0, "image_size": 32, "num_frames": 6, "threads": 1},
    )
    text = ModelCard.load(path).text
    assert "![Sketch-to-image: sketches, pictures, real scenes.](samples/s2i_sketches.png)" in text
    assert "samples/t2v_0.gif" in text and "`a red 0`, `a green 1`" in text
    assert "gone.gif" not in text


def test_the_recipe_draws_held_out_sketches_beside_the_pictures_and_the_real_scenes(tmp_path):
    """The default recipe's sketch sheet, made from the shipped checkpoint: three rows (sketch, picture, real scene)
    of 8 held-out sketches, each picture the size of the model's output x3."""
    import importlib.util
    from pathlib import Path

    import numpy as np
    import PIL.Image

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("train_default_checkpoint",
                                                  root / "examples" / "train_default_checkpoint.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    caption = recipe.sketch_samples(root / "checkpoints" / "nuwa-tiny", tmp_path / "s2i.png", seed=0, image_size=32)
    sheet = np.asarray(PIL.Image.open(tmp_path / "s2i.png").convert("RGB"))
    assert sheet.shape == (3 * 96, recipe.SKETCH_SAMPLES * 96, 3)
    sketch_row, picture_row, real_row = sheet[:96], sheet[96:192], sheet[192:]
    # a sketch is drawn in flat class colours (few distinct colours); the pictures and real scenes are textured
    assert len(np.unique(sketch_row.reshape(-1, 3), axis=0)) <= 7
    assert len(np.unique(picture_row.reshape(-1, 3), axis=0)) > 50
    assert len(np.unique(real_row.reshape(-1, 3), axis=0)) > 50
    assert "sketch" in caption and str(recipe.SKETCH_SAMPLES) in caption
