"""Pictures on a light background (dark ink on white paper) against a model trained on light digits on black: the
pipelines that read a picture say so (nuwa_hf.pipelines.backgrounds, notices.light_background_notice), a picture of
the training kind gets no such notice and the same outputs."""

import logging

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageOps
import pytest
import torch

import nuwa_hf  # noqa: F401
from nuwa_hf.pipelines import backgrounds, notices


SIZE = 16  # the tiny folder's frame size


def digit_on_black(size: int = SIZE, colour=(255, 200, 0), shift: int = 0) -> PIL.Image.Image:
    """A light, coloured "7" on black, as the training pictures are drawn."""
    image = PIL.Image.new("RGB", (size, size), (0, 0, 0))
    draw = PIL.ImageDraw.Draw(image)
    draw.line([(4 + shift, 4), (11 + shift, 4), (7 + shift, 12)], fill=colour, width=2)
    return image


def ink_on_paper(size: int = SIZE, paper: int = 245) -> PIL.Image.Image:
    """The same "7" in dark ink on off-white paper: a scan of a handwritten digit."""
    grey = np.asarray(digit_on_black(size)).max(axis=-1).astype(np.float32)
    return PIL.Image.fromarray(np.repeat((paper - 0.8 * grey).clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1))


def said(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "nuwa_hf.pipelines"
            and "light background" in r.getMessage()]


def pixels_of(image: PIL.Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)  # (3, H, W)


def test_the_border_brightness_tells_ink_on_paper_from_a_digit_on_black():
    assert backgrounds.border_brightness(pixels_of(digit_on_black())) == 0.0
    assert backgrounds.border_brightness(pixels_of(ink_on_paper())) == pytest.approx(245 / 255, abs=0.01)
    assert backgrounds.is_light_background(pixels_of(ink_on_paper()))
    assert not backgrounds.is_light_background(pixels_of(digit_on_black()))
    # a digit crossing the border covers a few of its pixels, not half: still a dark background
    assert not backgrounds.is_light_background(pixels_of(digit_on_black(shift=5)))
    # random noise has no background: its grey levels' median is about 0.5, under the rule's 0.6
    noise = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert 0.4 < backgrounds.border_brightness(pixels_of(noise)) < backgrounds.LIGHT_BORDER
    with pytest.raises(ValueError, match=r"one picture \(3, H, W\)"):
        backgrounds.border_brightness(pixels_of(noise)[None])


def test_the_region_is_left_out_of_the_border_read():
    """Paper whose bottom half the user blacked out (the region to complete): the kept part is white paper."""
    picture = np.asarray(ink_on_paper()).copy()
    picture[SIZE // 2:] = 0
    pixels = pixels_of(PIL.Image.fromarray(picture))
    region = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    region[SIZE // 2:] = True
    assert backgrounds.is_light_background(pixels, ignore=region)
    every = torch.ones(SIZE, SIZE, dtype=torch.bool)
    assert backgrounds.border_brightness(pixels, ignore=every) == 0.0


@pytest.mark.parametrize("task", ["nuwa-image-completion", "nuwa-image-manipulation"])
def test_image_tasks_say_a_light_background_with_the_fix(pipes, caplog, task):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    pipe = pipes(task)
    args = ("a red 7",) if task == "nuwa-image-manipulation" else ()
    pipe(ink_on_paper(), *args, mask="bottom half", seed=0, output_type="tokens")
    messages = said(caplog)
    assert len(messages) == 1
    assert messages[0].startswith("The image has a light background (its border's median grey level is 0.96")
    assert "PIL.ImageOps.invert(image.convert('RGB'))" in messages[0]
    caplog.clear()
    pipe(digit_on_black(), *args, mask="bottom half", seed=0, output_type="tokens")
    pipe(PIL.ImageOps.invert(ink_on_paper()), *args, mask="bottom half", seed=0, output_type="tokens")  # the fix
    assert said(caplog) == []


def test_a_light_picture_whose_region_was_blacked_out_is_still_said(pipes, caplog):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    picture = np.asarray(ink_on_paper()).copy()
    picture[SIZE // 2:] = 0
    pipes("nuwa-image-completion")(PIL.Image.fromarray(picture), mask="bottom half", seed=0,
                                        output_type="tokens")
    assert len(said(caplog)) == 1


@pytest.mark.parametrize("task", ["nuwa-video-prediction", "nuwa-video-manipulation"])
def test_video_tasks_say_which_given_frames_are_light(pipes, caplog, task):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    pipe = pipes(task)
    if task == "nuwa-video-manipulation":
        args, frames = ("the digit 7 is moving up then down",), {"num_condition_frames": 2, "num_frames": 3}
    else:
        args, frames = (), {"num_condition_frames": 2, "num_frames_to_predict": 1}
    pipe([ink_on_paper(), digit_on_black()], *args, seed=0, output_type="tokens", **frames)
    messages = said(caplog)
    assert len(messages) == 1 and messages[0].startswith("1 of the 2 given frame(s) of the video has a light background")
    caplog.clear()
    pipe([digit_on_black(), digit_on_black(shift=1)], *args, seed=0, output_type="tokens", **frames)
    assert said(caplog) == []


def test_strict_refuses_a_light_background_and_passes_a_picture_of_the_training_kind(pipes):
    pipe = pipes("nuwa-image-completion")
    with pytest.raises(ValueError, match="has a light background.*strict=True turns this warning into an error"):
        pipe(ink_on_paper(), mask="bottom half", seed=0, strict=True)
    assert isinstance(pipe(digit_on_black(), mask="bottom half", seed=0, strict=True), PIL.Image.Image)


def test_the_check_changes_no_output(pipes, monkeypatch):
    """The same tokens with the check as without it, for a picture of the training kind and for ink on paper (the
    notice is said, nothing is inverted or changed)."""
    pipe = pipes("nuwa-image-completion")
    pictures = [digit_on_black(), ink_on_paper()]
    checked = pipe(pictures, mask="bottom half", seed=3, output_type="tokens")
    monkeypatch.setattr(type(pipe), "_light_background_notes", staticmethod(lambda *args: []))
    unchecked = pipe(pictures, mask="bottom half", seed=3, output_type="tokens")
    for a, b in zip(checked, unchecked):
        assert torch.equal(a, b)


def test_the_notice_is_worded_for_its_reader():
    from dataclasses import replace

    with notices.worded_for(replace(notices.LIBRARY_WORDING, invert="invert it in an image editor")):
        message = notices.light_background_notice("image", 0.93)
    assert "To draw from it, invert it in an image editor (dark ink on white" in message and "PIL" not in message
    assert "0.93" in message
    assert not notices.says_how_read(message)  # what the model will not honour, not a reading on the user's behalf
