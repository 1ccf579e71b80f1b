"""Issue 28 item 5, docs match behaviour: the sketch class ids a user must paint (nuwa_hf.data.SCENE_CLASSES) are
stated where users look (the README, `nuwa-hf generate --help`; the model card in tests/hub), each the same list, built
from the code; and the prompts the docs show are ones the default model knows (one digit, no place)."""

import json
import re
from pathlib import Path

import pytest

from nuwa_hf.cli import build_parser
from nuwa_hf.data import SCENE_CLASSES, sketch_class_legend
from nuwa_hf.data.attributes import POSITIONS

REPO = Path(__file__).resolve().parents[1]
# Built here from SCENE_CLASSES itself (not from the helper under test): "0 brick, 1 grass, ..."
EXPECTED = ", ".join(f"{index} {name}" for index, name in enumerate(SCENE_CLASSES))


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_the_legend_is_the_code_order():
    assert sketch_class_legend() == EXPECTED
    assert EXPECTED.startswith("0 brick, 1 grass, 2 gravel, 3 circle")  # what the user was told to paint


def test_readme_lists_the_sketch_class_ids():
    assert EXPECTED in one_line((REPO / "README.md").read_text(encoding="utf-8"))


def test_generate_help_lists_the_sketch_class_ids(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--help"])
    assert EXPECTED in one_line(capsys.readouterr().out)


def test_the_class_colours_a_sketch_is_painted_in_are_stated_where_users_look(capsys):
    """The colours a painted sketch is read through (media.class_palette, the web page's brushes and the model card's
    sketch pictures) are listed in the README, `nuwa-hf generate --help` and the shipped card, and a picture painted in
    exactly the listed colours reads back as the listed ids."""
    import numpy as np

    from nuwa_hf import media

    listed = [tuple(int(v) for v in rgb) for rgb in media.class_palette(len(SCENE_CLASSES))]
    readme = one_line((REPO / "README.md").read_text(encoding="utf-8"))
    card = one_line((REPO / "checkpoints" / "nuwa-tiny" / "README.md").read_text(encoding="utf-8"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--help"])
    shown = one_line(capsys.readouterr().out)
    for index, (name, rgb) in enumerate(zip(SCENE_CLASSES, listed)):
        assert f"{index} {name} {rgb}" in readme and f"{index} {name} {rgb}" in card
        assert f"{index} {rgb}" in shown
    painted = np.array([listed], dtype=np.uint8).repeat(4, axis=0)  # (4, 6, 3): one column per listed colour
    assert np.array_equal(media.read_sketch_drawing(painted, len(SCENE_CLASSES))[0], np.arange(len(SCENE_CLASSES)))


def test_the_shipped_model_reads_that_many_classes():
    config = json.loads((REPO / "checkpoints" / "nuwa-tiny" / "config.json").read_text())
    processor = json.loads((REPO / "checkpoints" / "nuwa-tiny" / "processor_config.json").read_text())
    assert config["sketch_vqgan_config"]["num_classes"] == len(SCENE_CLASSES)
    assert re.search(r'"num_sketch_classes":\s*%d\b' % len(SCENE_CLASSES), json.dumps(processor))


def _shown_prompts(text: str) -> list:
    """Text-to-image prompts the docs show: prompt="..." arguments and --prompt "..." flags."""
    return re.findall(r'prompt="([^"]+)"', text) + re.findall(r'--prompt \\?"([^"\\]+)', text)


def _names_a_place(prompt: str) -> bool:
    return any(re.search(rf"\b(in|at) the {place}\b", prompt) for place in POSITIONS)


def test_readme_and_help_prompts_are_ones_the_default_model_knows(capsys):
    """The default world draws one digit with no place: "a red 7 in the top left" (the README's diffusers example) is
    out of distribution, so the docs show prompts such as "a red 7"."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--help"])
    shown = _shown_prompts(readme) + _shown_prompts(capsys.readouterr().out)
    assert "a red 7" in shown, "the README's diffusers example asks for a prompt the default model knows"
    assert shown and not [prompt for prompt in shown if _names_a_place(prompt)]
    assert _names_a_place("a red 7 in the top left")  # the check itself catches the old example


def test_generate_help_and_card_list_the_words_the_shipped_checkpoint_knows(capsys):
    """Issue 28 item 3: the vocabulary is written from the checkpoint's tokenizer, not by hand."""
    from pathlib import Path

    from tokenizers import Tokenizer

    from nuwa_hf.cli import main
    from nuwa_hf.hub.model_cards import folder_vocabulary
    from nuwa_hf.processing.vocabulary import vocabulary_by_kind

    folder = Path(__file__).resolve().parents[1] / "checkpoints" / "nuwa-tiny"
    kinds = vocabulary_by_kind(Tokenizer.from_file(str(folder / "tokenizer.json")))
    assert "red" in kinds["colours"] and "purple" not in kinds["colours"] and "up then down" in kinds["motions"]
    assert main(["generate", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    for kind, items in kinds.items():
        assert f"{kind}: {', '.join(items)}" in shown, kind
    assert dict(folder_vocabulary(folder)) == {kind: ", ".join(items) for kind, items in kinds.items() if items}
