"""negative_prompt: guidance against a text the user gives instead of the empty prompt (diffusers' option), through
the transformers pipelines, the diffusers entry point and the command line."""

import numpy as np
import pytest
import torch
from transformers import pipeline

import nuwa_hf  # noqa: F401  (registers the pipelines)
from nuwa_hf import NuwaDiffusionPipeline
from nuwa_hf.cli import main

PROMPTS = ["a red 3", "a blue 8"]


@pytest.fixture(scope="module")
def t2i(tiny_model_folder):
    pipe = pipeline("nuwa-text-to-image", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tokens(pipe, prompt, **options):
    return pipe(prompt, seed=0, guidance_scale=3.0, output_type="tokens", **options)


def test_the_negative_prompt_is_what_guidance_samples_against(t2i):
    """The pipeline's tokens equal the model's generate() with the processor's ids of the negative prompt in place of
    the null prompt, and differ from guidance toward the empty prompt."""
    steered = tokens(t2i, PROMPTS[0], negative_prompt="a blue 8")
    assert not torch.equal(torch.as_tensor(steered), torch.as_tensor(tokens(t2i, PROMPTS[0])))
    again = tokens(t2i, PROMPTS[0], negative_prompt="a blue 8")
    assert torch.equal(torch.as_tensor(steered), torch.as_tensor(again))
    # the same call, one level down: the model's generate_visual with the negative prompt's ids
    ids = t2i._text_ids("a red 3")
    negative = t2i._text_ids("a blue 8")
    grid = (1, *t2i.token_grid())
    config = t2i.model.visual_generation_config(t2i.task_name, "text", guidance_scale=3.0)
    for generator_seed in range(3):  # the pipeline's generator for seed 0 is one of torch's seeded ones
        direct = t2i.model.generate_visual(input_ids=ids, negative_prompt_ids=negative, visual_grid=grid,
                                           generation_config=config, return_pixels=False,
                                           generator=[torch.Generator().manual_seed(generator_seed)]).tokens
        if torch.equal(direct[0, 0], torch.as_tensor(steered)):
            break
    else:
        pytest.fail("the pipeline's negative prompt does not give what generate_visual(negative_prompt_ids=...) gives")


def test_a_batch_with_a_negative_prompt_equals_single_calls(t2i):
    batch = t2i(PROMPTS, seed=0, guidance_scale=3.0, negative_prompt="a green 5", batch_size=2, output_type="np")
    single = t2i(PROMPTS[1], seed=1, guidance_scale=3.0, negative_prompt="a green 5", output_type="np")
    np.testing.assert_array_equal(batch[1], single)


def test_negative_prompt_errors_and_notices(t2i, tiny_model_folder, caplog):
    with pytest.raises(ValueError, match="guidance_scale > 1"):
        t2i(PROMPTS[0], negative_prompt="a blue 8", guidance_scale=1.0)
    with pytest.raises(TypeError, match="non-empty string"):
        t2i(PROMPTS[0], negative_prompt="  ", guidance_scale=3.0)
    # (it asks for what to steer away from, not for a description of the picture)
    with pytest.raises(ValueError, match="The negative prompt 'purple kittens' has no word.*: say what to steer away "
                                         "from in the words it knows"):
        t2i(PROMPTS[0], negative_prompt="purple kittens", guidance_scale=3.0)
    with caplog.at_level("WARNING", logger="nuwa_hf.pipelines"):
        t2i(PROMPTS[0], negative_prompt="a purple 8", guidance_scale=3.0)
    assert "The negative prompt 'a purple 8' has word(s) the model never saw in training: 'purple'" in caplog.text
    assert "the model reads 'a 8'" in caplog.text
    with pytest.raises(ValueError, match="negative prompt 'a purple 8'.*strict"):
        t2i(PROMPTS[0], negative_prompt="a purple 8", guidance_scale=3.0, strict=True)
    prediction = pipeline("nuwa-video-prediction", model=tiny_model_folder)
    with pytest.raises(TypeError, match="takes no prompt"):
        prediction([np.zeros((16, 16, 3), np.uint8)], negative_prompt="a blue 8")


def test_diffusers_users_give_unsupported_diffusion_options_and_learn_why(t2i):
    with pytest.raises(TypeError, match=r"height=, width=: NUWA draws at the size it was trained at \(16x16 pixels\)"):
        t2i(PROMPTS[0], height=64, width=64)
    with pytest.raises(TypeError, match="num_inference_steps=: NUWA is autoregressive"):
        t2i(PROMPTS[0], num_inference_steps=50)


def test_the_diffusers_entry_point_and_the_command_line_take_it(tiny_model_folder, t2i, tmp_path, capsys):
    pipe = NuwaDiffusionPipeline.from_pretrained(tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("text-to-image", prompt=PROMPTS[0], negative_prompt="a blue 8", guidance_scale=3.0,
               generator=torch.Generator().manual_seed(0), output_type="latent").images
    plain = pipe("text-to-image", prompt=PROMPTS[0], guidance_scale=3.0, generator=torch.Generator().manual_seed(0),
                 output_type="latent").images
    assert not torch.equal(out, plain)
    argv = ["generate", "--task", "T2I", "--model", tiny_model_folder, "--prompt", PROMPTS[0], "--guidance-scale",
            "3", "--quiet"]
    assert main([str(a) for a in argv + ["--out", tmp_path / "plain"]]) == 0
    assert main([str(a) for a in argv + ["--out", tmp_path / "steered", "--negative-prompt", "a blue 8"]]) == 0
    (plain_png,), (steered_png,) = sorted((tmp_path / "plain").glob("*.png")), sorted((tmp_path / "steered").glob("*.png"))
    assert plain_png.read_bytes() != steered_png.read_bytes()
    assert main([str(a) for a in argv[:-3] + ["--guidance-scale", "1", "--negative-prompt", "a blue 8", "--out",
                                                tmp_path / "off"]]) == 2
    assert "guidance_scale > 1" in capsys.readouterr().err
