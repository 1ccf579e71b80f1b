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
