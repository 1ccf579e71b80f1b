"""An edit instruction that names no digit and / or no colour ("make it blue") is completed from what the model itself
reads in the picture it edits ("a blue 6" for a picture it reads as "a yellow 6"), said in a notice; complete_instruction
=False reads it as given (with the open-kinds advice). The tiny folder's tokenizer knows the digits 0, 1, 3, 5, 7, 8
and the colours red, green, blue, yellow (tests/support/tiny_model_folder.py TINY_CAPTIONS), so it can be asked."""

import logging

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf.pipelines import notices
from nuwa_hf.pipelines.instruction_completion import (
    caption_form, completable_kinds, completed_caption, picture_captions, read_pictures,
)


@pytest.fixture(scope="module")
def edit(tiny_model_folder):
    pipe = pipeline("nuwa-image-manipulation", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def picture(seed):
    return PIL.Image.fromarray((np.random.RandomState(seed).rand(16, 16, 3) * 255).astype(np.uint8))


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "nuwa_hf.pipelines"]


def what_model_reads(edit, image):
    """The library's reading of one picture, and the same found caption by caption (one token_grid_losses pass each)."""
    values = picture_captions(edit.tokenizer)
    ids = torch.cat([edit._text_ids(caption_form(*v)) for v in values])
    pixels = edit.processor(images=[image], return_tensors="pt")["pixel_values"][:, 0]  # (1, 3, H, W)
    (shown,) = read_pictures(edit.model, pixels, values, ids)
    with torch.inference_mode():
        tokens = edit.model.vqgan.encode_to_indices(pixels)[:, None]
        losses = [float(edit.model.token_grid_losses(tokens, input_ids=ids[i:i + 1])) for i in range(len(values))]
    return shown, values[int(np.argmin(losses))]


def model_input_ids(edit, monkeypatch):
    """Records the input_ids each generate_visual call gets (rows of its batch)."""
    seen = []
    original = edit.model.generate_visual

    def recording(*args, **kwargs):
        seen.append(kwargs["input_ids"].cpu().clone())
        return original(*args, **kwargs)

    monkeypatch.setattr(edit.model, "generate_visual", recording)
    return seen


def test_the_model_reads_the_picture_as_its_most_likely_caption(edit):
    """The captions asked about are every known numeral x known colour; the reading is the one of least summed token
    loss, the same as scoring the captions one by one; the instruction's own values are kept in the completion."""
    values = picture_captions(edit.tokenizer)
    assert sorted({d for d, _ in values}) == ["0", "1", "3", "5", "7", "8"]
    assert sorted({c for _, c in values}) == ["blue", "green", "red", "yellow"] and len(values) == 24
    for seed in range(3):
        shown, one_by_one = what_model_reads(edit, picture(seed))
        assert shown == one_by_one
    assert completable_kinds(edit.tokenizer, "blue") == ["digit"]
    assert completable_kinds(edit.tokenizer, "8") == ["colour"]
    assert completable_kinds(edit.tokenizer, "a digit") == ["digit", "colour"]
    assert completable_kinds(edit.tokenizer, "a blue 8") == []
    assert completed_caption(edit.tokenizer, "blue", ("3", "red")) == "a blue 3"
    assert completed_caption(edit.tokenizer, "an 8", ("3", "red")) == "a red 8"
    assert completed_caption(edit.tokenizer, "a digit", ("3", "red")) == "a red 3"


def test_the_completed_caption_is_what_the_model_gets_and_the_notice_says_so(edit, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    image = picture(0)
    (digit, colour), _ = what_model_reads(edit, image)
    wanted = f"a {'green' if colour == 'blue' else 'blue'}"  # an instruction asking for another colour
    typed = "make it " + wanted.split()[1]
    completed = f"{wanted} {digit}"
    seen = model_input_ids(edit, monkeypatch)
    done = edit(image, typed, mask="center", seed=4, output_type="tokens")
    said = warnings_of(caplog)
    assert f"The instruction {typed!r} names no digit: the model reads the picture as 'a {colour} {digit}' and edits it " \
           f"with {completed!r} (complete_instruction=False reads the instruction as given)." in said
    assert not [m for m in said if "names no digit: the model reads a prompt" in m]  # not the open-kinds advice too
    caplog.clear()
    given = edit(image, completed, mask="center", seed=4, output_type="tokens", complete_instruction=False)
    assert torch.equal(done, given) and warnings_of(caplog) == []
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[0], edit._text_ids(completed))
    # the off switch: the instruction as read ("blue"), with the advice that any digit may come back
    edit(image, typed, mask="center", seed=4, output_type="tokens", complete_instruction=False)
    assert torch.equal(seen[2], edit._text_ids(wanted.split()[1])) and not torch.equal(seen[2], seen[0])
    said = warnings_of(caplog)
    assert any("names no digit: the model reads a prompt as the caption" in m for m in said)
    assert not any("reads the picture as" in m for m in said)


def test_a_digit_change_keeps_the_colour_read_and_strict_does_not_refuse(edit, caplog):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    image = picture(1)
    (digit, colour), _ = what_model_reads(edit, image)
    new = "8" if digit != "8" else "3"
    done = edit(image, f"swap the {digit} for a {new}", mask="center", seed=0, output_type="tokens", strict=False)
    said = [m for m in warnings_of(caplog) if "reads the picture as" in m]
    assert said == [f"The instruction 'swap the {digit} for a {new}' names no colour: the model reads the picture as "
                    f"'a {colour} {digit}' and edits it with 'a {colour} {new}' (complete_instruction=False reads the "
                    "instruction as given)."]
    # advice, not refused by strict (the rephrasing notice is: strict refuses reading the edit, so give the caption's
    # own words: "8" names no colour)
    strict = edit(image, new, mask="center", seed=0, output_type="tokens", strict=True)
    same = edit(image, f"a {colour} {new}", mask="center", seed=0, output_type="tokens", complete_instruction=False)
    assert torch.equal(strict, same)
    assert done.shape == strict.shape


def test_a_mixed_batch_gives_what_single_calls_give(edit, monkeypatch):
    """Inputs needing completion (no digit, no colour, neither) and one naming both, in one batch and one by one: the
    same tokens (seed=s gives input i the seed s + i), and one generate pass gets each input's completed ids."""
    images = [picture(seed) for seed in range(4)]
    prompts = ["make it blue", "a blue 8", "turn it into a 3", "a digit"]
    seen = model_input_ids(edit, monkeypatch)
    batch = edit([{"image": i, "prompt": p, "mask": "center"} for i, p in zip(images, prompts)], seed=7, batch_size=4,
                 output_type="tokens")
    assert len(seen) == 1 and seen[0].shape[0] == 4
    for index, (image, prompt) in enumerate(zip(images, prompts)):
        alone = edit(image, prompt, mask="center", seed=7 + index, output_type="tokens")
        assert torch.equal(batch[index], alone), prompt
        assert torch.equal(seen[0][index], seen[-1][0]), prompt
    assert torch.equal(seen[0][1], edit._text_ids("a blue 8")[0])  # named both: read as given
    shown, _ = what_model_reads(edit, images[3])
    assert torch.equal(seen[0][3], edit._text_ids(caption_form(*shown))[0])  # "a digit": the picture's own caption


def test_the_notice_is_worded_for_each_front_end(edit):
    from nuwa_hf.commands.generate import _cli_wording

    image = picture(0)
    for wording, switch in ((_cli_wording(), " (--no-complete-instruction reads the instruction as given)."),
                            (notices.NoticeWording(keep=None, drop=None, keep_instead=None, known="Rephrase."), ".")):
        said = []
        with notices.routed_warnings(said.append), notices.worded_for(wording):
            edit(image, "make it blue", mask="center", seed=0, output_type="tokens")
        (note,) = [m for m in said if "reads the picture as" in m]
        assert note.endswith(switch) and "complete_instruction" not in note


def test_other_tasks_refuse_the_option_and_it_must_be_a_bool(edit, pipes):
    with pytest.raises(TypeError, match=r"complete_instruction completes an edit instruction .* "
                                        r"NuwaTextToImagePipeline edits no picture .*only image manipulation"):
        pipes("nuwa-text-to-image")("a red 3", complete_instruction=True)
    with pytest.raises(TypeError, match="NuwaTextToVideoPipeline edits no picture"):
        pipes("nuwa-text-to-video")("the digit 3", complete_instruction=False)
    with pytest.raises(TypeError, match="complete_instruction must be True or False, got 'no'"):
        edit(picture(0), "make it blue", mask="center", complete_instruction="no")
