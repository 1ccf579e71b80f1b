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


def _generate_help(capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--help"])
    return one_line(capsys.readouterr().out)


def test_every_scorer_the_model_computes_is_named_where_users_look(capsys):
    """The scorers the pipelines compute from the model (reranking.MODEL_SCORERS: likelihood, condition_gain,
    attribute_posterior) are each named in the README, the call options' docstring and `nuwa-hf generate --help`."""
    from nuwa_hf.pipelines.call_options import OPTIONS_DOC
    from nuwa_hf.pipelines.reranking import MODEL_SCORERS

    readme, options, shown = one_line((REPO / "README.md").read_text(encoding="utf-8")), one_line(OPTIONS_DOC), \
        _generate_help(capsys)
    assert "attribute_posterior" in MODEL_SCORERS
    for name in MODEL_SCORERS:
        assert f'scorer="{name}"' in readme, name
        assert f'``"{name}"``' in options, name
        assert f"'{name}'" in shown, name


def test_image_completion_defaults_stated_in_the_docs_are_the_pipelines(tiny_model_folder, capsys):
    """Image completion blanks the region and regenerates the region alone by default: a request made with no
    options carries the defaults the README, the shipped card, `nuwa-hf generate --help` and the pipeline's docstring
    state; asked for, the earlier behaviour is what the docs call it (blank_region=False)."""
    import PIL.Image
    from transformers import pipeline

    complete = pipeline("nuwa-image-completion", model=tiny_model_folder)
    picture = PIL.Image.new("RGB", (16, 16), (200, 40, 40))
    request, _ = complete.make_request({"image": picture, "mask": "bottom half"})
    blank, border = request.blank_region, request.border
    assert (blank, border) == (True, 0)
    earlier, _ = complete.make_request({"image": picture}, blank_region=False, regenerate_border=0)
    assert (earlier.blank_region, earlier.border) == (False, 0)
    readme = one_line((REPO / "README.md").read_text(encoding="utf-8"))
    card = one_line((REPO / "checkpoints" / "nuwa-tiny" / "README.md").read_text(encoding="utf-8"))
    for text in (readme, card):
        assert f"`blank_region={blank}`" in text
    assert f"`regenerate_border=N` (`--regenerate-border N`) also redraws N token rows around the region (default " \
        f"{border}:" in readme and f"`regenerate_border={border}`" in card
    assert "`blank_region=False` (`--no-blank-region`) is the earlier behaviour" in readme
    assert f"(default {border}: the region alone;" in _generate_help(capsys)
    doc = one_line(type(complete).__call__.__doc__)
    assert f"blank_region (`bool`, defaults to {blank})" in doc and f"regenerate_border (`int`, defaults to {border})" \
        in doc


def test_the_shipped_cards_limitations_are_the_templates():
    """The card template's limitations (hub.model_cards.DEFAULT_LIMITATIONS, what a re-rendered card says) are the
    shipped card's, word for word: the I2I protocol and the ring say the same in both."""
    from nuwa_hf.hub.model_cards import DEFAULT_LIMITATIONS

    card = (REPO / "checkpoints" / "nuwa-tiny" / "README.md").read_text(encoding="utf-8")
    for limitation in DEFAULT_LIMITATIONS:
        assert f"- {limitation}\n" in card, limitation[:60]


def test_the_i2i_figures_quoted_are_the_cards_and_0_70_only_as_the_earlier_protocol():
    """The card's I2I 'digit kept' row (re-measured from the known part alone) is the figure the README's table bolds
    and the limitation quotes; the README quotes the earlier protocol's 0.70 for I2I only saying so."""
    from nuwa_hf.hub.model_cards import DEFAULT_LIMITATIONS

    card = (REPO / "checkpoints" / "nuwa-tiny" / "README.md").read_text(encoding="utf-8")
    row = re.search(r"^\| I2I \| digit kept \(the original digit read in the output\): generated \| "
                    r"(\d\.\d+) \((\d\.\d+-\d\.\d+)\) \|", card, re.M)
    assert row, "the card's I2I digit-kept row"
    value, interval = f"{float(row.group(1)):.2f}", row.group(2)
    readme = one_line((REPO / "README.md").read_text(encoding="utf-8"))
    assert re.search(rf"^\| I2I \| [^|]+ \| \*\*{re.escape(value)}\*\* \({interval}\)", (REPO / "README.md").read_text(
        encoding="utf-8"), re.M), "the README's figures row"
    assert any(f"instead of {value}" in limitation for limitation in DEFAULT_LIMITATIONS)
    assert "0.70" in readme and not _i2i_070_not_called_earlier(readme)
    assert _i2i_070_not_called_earlier("I2I 0.56 -> 0.70 on held-out conditions.")  # the check catches the old text


def _i2i_070_not_called_earlier(text: str) -> list:
    """Sentences (or table cells) of ``text`` that quote 0.70 for I2I without saying it is the earlier protocol."""
    return [s for s in re.split(r"\. |\|", text) if "I2I" in s and re.search(r"\b0\.70\b", s) and "earlier" not in s]
