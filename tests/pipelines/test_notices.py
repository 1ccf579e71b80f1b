"""Say what was not understood (issue 28): prompt words the model never saw and inputs resized by more than 2x are
warned about once per call; strict=True makes them errors."""

import logging

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf.processing.vocabulary import known_words, unknown_words, without_unknown_words


@pytest.fixture(scope="module")
def t2i(tiny_model_folder):
    pipe = pipeline("nuwa-text-to-image", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "nuwa_hf.pipelines"]


def test_unknown_words_are_named_once_per_call(t2i, caplog):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    t2i(["a photo of a cat in red", "a photo of a cat in red", "a red digit 3"], seed=0, batch_size=1)
    said = warnings_of(caplog)
    assert len(said) == 1 and "'photo'" in said[0] and "'cat'" in said[0] and "'red'" not in said[0]
    caplog.clear()
    t2i("a red digit 3", seed=0)
    assert warnings_of(caplog) == []


def test_strict_makes_them_errors(t2i):
    with pytest.raises(ValueError, match=r"never saw in training: 'purple'.*strict=True"):
        t2i("a purple 3", strict=True)
    with pytest.raises(TypeError, match="strict must be True or False"):
        t2i("a red 3", strict="yes")


def test_the_known_words_come_from_the_tokenizer(t2i):
    """The tiny folder's tokenizer was trained on TINY_CAPTIONS (tests/support/tiny_model_folder.py) and records their
    words: those are known, in any case; words and punctuation the captions never had are not."""
    words = known_words(t2i.tokenizer)
    assert {"red", "digit", "moving"} <= set(words) and "purple" not in words
    assert unknown_words(t2i.tokenizer, "A RED digit up then down") == []
    assert unknown_words(t2i.tokenizer, "a purple 3 on a sofa") == ["purple", "sofa"]
    assert unknown_words(t2i.tokenizer, "a red 3, up!") == [",", "!"]  # no caption had them


@pytest.mark.parametrize("size, warned", [((1, 1), True), ((50, 20), True), ((5000, 5000), True), ((20, 30), False)])
def test_inputs_resized_more_than_twice_are_named_with_the_size_used(tiny_model_folder, caplog, size, warned):
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    pipe = pipeline("nuwa-image-completion", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    pipe(PIL.Image.fromarray(np.zeros((size[1], size[0], 3), dtype=np.uint8)), seed=0)
    said = [m for m in warnings_of(caplog) if "resized" in m]
    assert bool(said) == warned
    if warned:
        assert f"{size[0]}x{size[1]} pixels" in said[0] and "16x16" in said[0]
        with pytest.raises(ValueError, match="resized to 16x16"):
            pipe(PIL.Image.fromarray(np.zeros((size[1], size[0], 3), dtype=np.uint8)), strict=True)


def test_unknown_words_are_left_out_of_what_the_model_reads(t2i, caplog):
    """Their sub-word pieces would steer the output at random ("colored" ends in "red</w>"): the model reads the
    prompt's known words, in the tokens the clean prompt gives, and the warning says what it read."""
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    wordy, clean = "Please draw a red digit 3, thanks!", "a red digit 3"
    assert without_unknown_words(t2i.tokenizer, wordy) == (clean, ["please", "draw", ",", "thanks", "!"])
    assert without_unknown_words(t2i.tokenizer, "a red digit 3") == ("a red digit 3", [])
    ids = lambda prompt, **options: t2i.preprocess(prompt, **options)["input_ids"]  # noqa: E731
    assert torch.equal(ids(wordy), ids(clean)) and not torch.equal(ids(wordy, drop_unknown_words=False), ids(clean))
    assert np.array_equal(np.asarray(t2i(wordy, seed=3)), np.asarray(t2i(clean, seed=3)))
    said = warnings_of(caplog)
    # the words are named; the punctuation is left out unremarked
    assert len(said) == 1 and "'please', 'draw', 'thanks'; " in said[0] and f"the model reads {clean!r}" in said[0]
    caplog.clear()
    assert torch.equal(ids("a red digit 3!"), ids(clean)) and t2i.preprocess("a red digit 3!")["notices"] == ""
    t2i("a red digit 3!", seed=3)
    assert warnings_of(caplog) == []
    caplog.clear()
    t2i(wordy, seed=3, drop_unknown_words=False)
    assert "sub-word pieces" in warnings_of(caplog)[0] and "drop_unknown_words=True" in warnings_of(caplog)[0]


def test_a_prompt_with_no_known_word_is_refused_with_the_words_the_model_knows(t2i):
    with pytest.raises(ValueError, match=r"no word the model saw in training \(it never saw 'cat'\).*\bred\b.*\b7\b"):
        t2i("cat", seed=0)
    assert isinstance(t2i("cat", seed=0, drop_unknown_words=False), PIL.Image.Image)  # the old way, on request
    with pytest.raises(TypeError, match="drop_unknown_words must be True or False"):
        t2i("a red 3", drop_unknown_words="no")


def test_worded_for_changes_the_wording_in_its_block_only(t2i):
    """worded_for (the web page's way to speak to its visitors): inside the block the notices and the no-known-word
    error use its wording; outside it, and in other threads meanwhile, the library's (the argument named)."""
    import threading

    from nuwa_hf.pipelines import notices

    said = []
    page = notices.NoticeWording(keep=None, drop=None, keep_instead=None, known="Rephrase.")
    with notices.routed_warnings(said.append):
        with notices.worded_for(page):
            t2i("a purple 3", seed=0)
            other = []
            thread = threading.Thread(target=lambda: other.append(notices.notice_wording()))
            thread.start()
            thread.join()
            with pytest.raises(ValueError) as refused:
                t2i("purple cat", seed=0)
        t2i("a purple 3", seed=1)
    assert other == [notices.LIBRARY_WORDING]  # another thread (another request) keeps the library's words
    assert said[0].endswith("the model reads 'a 3'. Rephrase.") and "drop_unknown_words" not in said[0]
    assert "drop_unknown_words=False keeps them" in said[1] and "known_words(tokenizer)" in said[1]
    assert str(refused.value).endswith(")."), str(refused.value)
    with pytest.raises(ValueError, match=r"or pass drop_unknown_words=False\.$"):
        t2i("purple cat", seed=0)
    said.clear()
    with notices.routed_warnings(said.append), notices.worded_for(page):  # the words given to the model
        t2i("a purple 3", seed=0, drop_unknown_words=False)
    assert said[0].endswith("which can change the output at random. Rephrase.") and "drop_unknown" not in said[0]


def test_a_prompt_left_with_only_filler_words_is_refused_with_the_words_the_model_knows(t2i):
    """"a purple cat" would be read as "a": a picture of nothing the user asked for. The fillers are the built-in
    captions' own words (nuwa_hf.processing.vocabulary.caption_filler_words), the error names what was read and lists the words
    the model knows by kind; a prompt whose words the model all knows is read as typed, and drop_unknown_words=False
    gives the model the whole prompt as before."""
    for prompt, read in (("a purple cat", "a"), ("the purple cat is in a box", "the is in a"),
                         ("a purple digit", "a digit")):
        with pytest.raises(ValueError, match=rf"The prompt {prompt!r} leaves only {read!r} once the words the model "
                                             r"never saw \('purple'.*filler words.*\(digits: 0, 1, 3, 5, 7, 8; "
                                             r"colours: red, green, blue, yellow; motions: up then down, .*or pass "
                                             r"drop_unknown_words=False"):
            t2i.preprocess(prompt)
        assert t2i.preprocess(prompt, drop_unknown_words=False)["input_ids"].shape[0] == 1
    assert t2i.preprocess("a digit")["notices"] == ""  # every word known: read as typed, though it names no digit
    ids = lambda prompt: t2i.preprocess(prompt)["input_ids"]  # noqa: E731
    assert torch.equal(ids("a purple 3"), ids("a 3")) and torch.equal(ids("a cat in red"), ids("a in red"))
    assert isinstance(t2i("a purple cat", seed=0, drop_unknown_words=False), PIL.Image.Image)


def test_a_picture_of_another_shape_is_said_to_lose_its_sides(tiny_model_folder, caplog):
    """A 24x16 photo on a model of 16x16 frames is scaled to 24x16 and its centre 16x16 kept: the third of it at the
    sides is left out, which the user is told (with how much, and the fix); a square picture is not cropped."""
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    pipe = pipeline("nuwa-image-completion", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    pipe(PIL.Image.fromarray(np.zeros((16, 24, 3), dtype=np.uint8)), seed=0)
    said = [m for m in warnings_of(caplog) if "another shape" in m]
    assert len(said) == 1 and "24x16 pixels" in said[0] and "33% of it at the left and right sides" in said[0]
    caplog.clear()
    pipe(PIL.Image.fromarray(np.zeros((40, 32, 3), dtype=np.uint8)), seed=0)  # taller: top and bottom
    assert any("20% of it at the top and bottom" in m for m in warnings_of(caplog))
    caplog.clear()
    pipe(PIL.Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)), seed=0)
    assert not [m for m in warnings_of(caplog) if "another shape" in m]


def test_frames_a_video_prediction_does_not_read_are_said(tiny_model_folder, caplog):
    """A clip longer than the frames video prediction conditions on: the frames left out are named, with the fix."""
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    pipe = pipeline("nuwa-video-prediction", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    trained = pipe.max_frames
    clip = [PIL.Image.fromarray(np.full((16, 16, 3), 40 * i, dtype=np.uint8)) for i in range(trained + 2)]
    pipe(clip, seed=0)
    said = [m for m in warnings_of(caplog) if "were left out" in m]
    assert len(said) == 1
    assert f"has {trained + 2} frames" in said[0] and f"frames {trained}-{trained + 2} were left out" in said[0]
    caplog.clear()
    pipe(clip[:1], seed=0)
    assert not [m for m in warnings_of(caplog) if "were left out" in m]


def test_an_edit_of_the_whole_picture_says_the_picture_is_not_read(tiny_model_folder, caplog):
    """'make it blue' over the whole picture (mask='all') cannot keep the digit: no token of the picture is kept, so
    the model never reads it (it reads "blue"; the shipped model kept the digit in 2 of 30 such edits, 29 of 30 with
    'turn the 3 blue'). The user is told, with what the model reads and the two fixes; a partial region is not."""
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    pipe = pipeline("nuwa-image-manipulation", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    image = PIL.Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8))
    pipe(image, "make it blue", mask="all", seed=0)
    said = [m for m in warnings_of(caplog) if "whole image" in m]
    assert len(said) == 1 and "the model reads 'blue'" in said[0] and "mask='bottom half'" in said[0]
    with pytest.raises(ValueError, match="nothing of the image is kept or read"):
        pipe(image, "a blue 3", mask=(0, 0, 1, 1), strict=True)
    caplog.clear()
    pipe(image, "a blue 3", mask="bottom half", seed=0)
    assert not [m for m in warnings_of(caplog) if "whole image" in m]
    from nuwa_hf.pipelines import notices  # a page's visitors are told what to do on the page, not an argument

    page = notices.NoticeWording(keep=None, drop=None, keep_instead=None, known="", part_of_image="paint less")
    said = []
    with notices.routed_warnings(said.append), notices.worded_for(page):
        pipe(image, "make it blue", mask="all", seed=0)
    whole = [m for m in said if "whole image" in m]
    assert len(whole) == 1 and "To edit the picture, paint less;" in whole[0] and "mask=" not in whole[0]


def test_common_phrasings_of_a_motion_are_read_in_the_captions_words_and_said(tiny_model_folder, caplog):
    """"bouncing up and down" is read as "up then down" (the tiny folder's captions say motions so), before the words
    the model never saw are left out: the model reads what it reads for the caption form, the warning says how the
    prompt was read and how to read it as typed, and rephrase_prompt=False reads it as typed (the motion is lost:
    "and" is left out, "up down" is what is read)."""
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    t2v = pipeline("nuwa-text-to-video", model=tiny_model_folder)
    t2v.set_progress_bar_config(disable=True)
    ids = lambda prompt, **options: t2v.preprocess(prompt, **options)["input_ids"]  # noqa: E731
    typed = "the digit 3 bouncing up and down"
    assert torch.equal(ids(typed), ids("the digit 3 up then down"))
    assert torch.equal(ids(typed, rephrase_prompt=False), ids("the digit 3 up down"))
    assert torch.equal(ids("the digit 3 moving side to side"), ids("the digit 3 moving left then right"))
    assert torch.equal(ids("the digit 3 jumping"), ids("the digit 3 moving up then down"))
    assert np.array_equal(np.asarray(t2v(typed, seed=1, output_type="np")),
                          np.asarray(t2v("the digit 3 up then down", seed=1, output_type="np")))
    said = warnings_of(caplog)
    assert said[0] == ("The prompt 'the digit 3 bouncing up and down' was read as 'the digit 3 bouncing up then down': "
                       "'up and down' as 'up then down', the words the training captions say these motions with "
                       "(rephrase_prompt=False reads it as typed).")
    assert "never saw in training: 'bouncing';" in said[1] and "reads 'the digit 3 up then down'" in said[1]
    caplog.clear()
    t2v("the digit 3 is moving up then down", seed=1)  # the captions' own words: nothing is said
    assert warnings_of(caplog) == []
    with pytest.raises(ValueError, match=r"was read as 'the digit 3 up then down'.*strict=True"):
        t2v("the digit 3 up and down", strict=True)
    with pytest.raises(TypeError, match="rephrase_prompt must be True or False"):
        t2v(typed, rephrase_prompt="no")


def test_video_manipulation_reads_the_new_motion_the_same_way(tiny_model_folder):
    """TV2V's prompt says the new motion ("make it go left and right"): read as the captions say it too."""
    tv2v = pipeline("nuwa-video-manipulation", model=tiny_model_folder)
    tv2v.set_progress_bar_config(disable=True)
    frames = [PIL.Image.fromarray(np.full((32, 32, 3), 40 * i, dtype=np.uint8)) for i in range(4)]
    ids = lambda prompt, **options: tv2v.preprocess({"video": frames, "prompt": prompt}, **options)  # noqa: E731
    rephrased = ids("the digit 3 moving left and right")
    assert torch.equal(rephrased["input_ids"], ids("the digit 3 moving left then right")["input_ids"])
    assert "was read as 'the digit 3 moving left then right'" in rephrased["notices"]
    assert not torch.equal(ids("the digit 3 moving left and right", rephrase_prompt=False)["input_ids"],
                           rephrased["input_ids"])


def test_an_edit_is_read_as_the_picture_it_asks_for_and_said(tiny_model_folder, caplog):
    """Image manipulation reads its prompt as the caption of the whole edited picture: "change the red 3 to a blue 8"
    is read as "a blue 8" (as typed, less unknown words, it would be "the red 3 a blue 8": two digits, and the shipped
    model draws the old one again). The output is the one "a blue 8" gives, the warning says how it was read and how to
    read it as typed; rephrase_prompt=False reads it as typed, and text-to-image, which edits nothing, is not
    rewritten."""
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    edit = pipeline("nuwa-image-manipulation", model=tiny_model_folder)
    edit.set_progress_bar_config(disable=True)
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    typed = "change the red 3 to a blue 8"
    ids = lambda prompt, **options: edit.preprocess(  # noqa: E731
        {"image": image, "prompt": prompt, "mask": "center"}, **options)["input_ids"]
    assert torch.equal(ids(typed), ids("a blue 8"))
    assert torch.equal(ids(typed, rephrase_prompt=False), ids("the red 3 a blue 8"))
    assert np.array_equal(np.asarray(edit(image, typed, mask="center", seed=2)),
                          np.asarray(edit(image, "a blue 8", mask="center", seed=2)))
    said = [m for m in warnings_of(caplog) if "was read as" in m]
    assert said == [f"The prompt {typed!r} was read as 'a blue 8': {typed!r} as 'a blue 8', the picture the edit asks "
                    "for (the model reads a prompt as the caption of the whole edited picture, so what the edit "
                    "replaces is left out) (rephrase_prompt=False reads it as typed)."]
    with pytest.raises(ValueError, match=r"was read as 'a blue 8'.*strict=True"):
        edit(image, typed, mask="center", strict=True)
    t2i = pipeline("nuwa-text-to-image", model=tiny_model_folder)
    assert torch.equal(t2i.preprocess(typed)["input_ids"], t2i.preprocess("the red 3 a blue 8")["input_ids"])


def test_an_edit_that_names_no_digit_or_colour_is_told_the_model_may_draw_any(tiny_model_folder, caplog):
    """"make it blue" is read as "blue": the region is redrawn from the prompt, which names no digit, so the model may
    draw any digit there (the shipped model kept the digit in 0.19 of such edits, 0.68 with the caption "a blue 6":
    benchmarks/bench_user_edit_prompts.py). With complete_instruction=False (by default the instruction is completed
    from the picture instead: test_instruction_completion.py) the warning says so with a caption that names it; a
    prompt naming both is not warned; strict=True does not refuse it (leaving the digit open can be meant); an edit of
    the whole picture gets the whole-region notice instead."""
    caplog.set_level(logging.WARNING, logger="nuwa_hf.pipelines")
    edit = pipeline("nuwa-image-manipulation", model=tiny_model_folder)
    edit.set_progress_bar_config(disable=True)
    image = PIL.Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8))

    def open_notices(prompt, **options):
        caplog.clear()
        edit(image, prompt, seed=0, complete_instruction=False, **options)
        return [m for m in warnings_of(caplog) if "names no" in m]

    said = open_notices("make it blue", mask="center")
    assert said == ["The prompt 'make it blue' (read as 'blue') names no digit: the model reads a prompt as the caption "
                    "of the whole edited picture and redraws the region from it, not from what the region shows now, "
                    "so it may draw any digit there. To keep the picture's digit, name it as a caption does (e.g. "
                    "'a blue 7')."]
    said = open_notices("swap the 3 for an 8", mask="bottom half")
    assert len(said) == 1 and "(read as '8') names no colour:" in said[0] and "(e.g. 'a red 8')" in said[0]
    said = open_notices("a digit", mask="center")
    assert len(said) == 1 and "names no digit and no colour:" in said[0] and "any digit there in any colour" in said[0]
    assert open_notices("a blue 8", mask="center") == []
    assert open_notices("blue", mask="center", strict=True) != []  # said, not refused
    assert open_notices("make it blue", mask="all") == []
    assert [m for m in warnings_of(caplog) if "whole image" in m]


def _every_sentence_about_the_prompt() -> list:
    """Each notice and error that names the prompt, worded by the current wording."""
    from nuwa_hf.pipelines import notices

    return [notices.prompt_notice("make it blue", ["make", "it"], "blue"),
            notices.prompt_notice("make it blue", ["make", "it"], None),
            notices.rephrase_notice("a 3 up and down", "a 3 up then down", [("up and down", "up then down")]),
            notices.rephrase_notice("turn the 6 into an 8", "an 8", [], [("turn the 6 into an 8", "an 8")]),
            notices.open_kinds_notice("make it blue", "blue", ["digit"], "a blue 7"),
            notices.no_known_word_error("purple cat", ["purple", "cat"], ["red", "7"]),
            notices.fillers_only_error("a purple cat", "a", ["purple", "cat"], "colours: red"),
            notices.whole_region_notice("a blue 7"),
            notices.whole_region_notice(None)]


def test_a_wording_names_the_prompt_as_its_reader_knows_it():
    """NoticeWording.prompt (the web page: "instruction" on its manipulation tabs) renames the text in every notice
    and error about it, article included, and in nothing else; the default wording says "prompt", and a negative
    prompt keeps its own name."""
    from dataclasses import replace

    from nuwa_hf.pipelines import notices

    page = notices.NoticeWording(keep=None, drop=None, keep_instead=None, known="Rephrase.")
    with notices.worded_for(page):
        as_prompt = _every_sentence_about_the_prompt()
    with notices.worded_for(replace(page, prompt="instruction")):
        as_instruction = _every_sentence_about_the_prompt()
        negative = notices.prompt_notice("a purple 8", ["purple"], "a 8", what_prompt="negative prompt")
        negative_error = notices.no_known_word_error("purple cat", ["purple", "cat"], ["red"],
                                                     what_prompt="negative prompt")
    for before, after in zip(as_prompt, as_instruction):
        assert "prompt" in before and "prompt" not in after, after
        assert after == before.replace("a prompt", "an instruction").replace("prompt", "instruction"), after
    assert as_instruction[4].startswith("The instruction 'make it blue' (read as 'blue') names no digit: the model "
                                        "reads an instruction as the caption"), as_instruction[4]
    assert negative.startswith("The negative prompt 'a purple 8' has word(s)")
    assert negative_error.startswith("The negative prompt 'purple cat' has no word")
    assert notices.LIBRARY_WORDING.prompt == "prompt"  # the pipelines' own wording: their argument
    assert notices.prompt_notice("a purple 3", ["purple"], "a 3").startswith("The prompt 'a purple 3' has")


def test_says_how_read_tells_a_reading_from_what_the_model_will_not_honour():
    """The rephrasing and completion notices say how the input was read on the user's behalf; the others (unknown
    words, open kinds, whole region, resize, crop, errors) what the model will not honour: whatever the wording calls
    the prompt, and whatever the prompt says ("was read as", quotes)."""
    from dataclasses import replace

    from nuwa_hf.pipelines import notices

    for wording in (notices.LIBRARY_WORDING, replace(notices.LIBRARY_WORDING, prompt="instruction")):
        with notices.worded_for(wording):
            readings = [notices.rephrase_notice("a 3 up and down", "a 3 up then down",
                                                [("up and down", "up then down")]),
                        notices.rephrase_notice("turn the 6 into an 8", "an 8", [], [("turn the 6 into an 8", "an 8")]),
                        notices.rephrase_notice("the 6's twin up and down", "the 6's twin up then down",
                                                [("up and down", "up then down")]),
                        notices.completion_notice("make it blue", ["digit"], "a yellow 6", "a blue 6"),
                        notices.completion_notice("an 8", ["colour"], "a red 3", "a red 8")]
            others = [m for m in _every_sentence_about_the_prompt() if m not in readings] + [
                notices.prompt_notice("it was read as 'a 3' up and down", ["it", "was", "read", "as"], "'a 3' up"),
                notices.prompt_notice("a 3 was read as a 4", ["was", "read", "as"], "a 3 a 4"),
                notices.open_kinds_notice("make it blue", "blue", ["digit", "colour"], "a blue 7"),
                notices.resize_notice("image", (256, 256), (32, 32)),
                notices.crop_notice("image", (64, 32), (64, 32), (32, 32))]
            assert all(notices.says_how_read(message) for message in readings), readings
            assert not any(notices.says_how_read(message) for message in others), others
