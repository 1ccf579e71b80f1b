"""The NUWA model owns its VQ-GANs (the Chameleon / Emu3 / Janus layout); old-layout folders convert and still load."""

import json
import logging

import pytest
import torch
from safetensors.torch import load_file

from nuwa_hf.models.nuwa import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.models.nuwa.convert_nuwa_legacy_folder import convert_legacy_folder, is_legacy_folder, main
from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN


def states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_pretrained_alone_gives_the_whole_model(tiny_model_folder, tmp_path):
    model = NuwaForConditionalGeneration.from_pretrained(tiny_model_folder)
    assert isinstance(model.vqgan, NuwaVQGAN) and isinstance(model.sketch_vqgan, NuwaSegVQGAN)
    assert model.vqgan is model.model.vqgan, "one module, reachable from the head model and the base model"
    assert not any(p.requires_grad for p in model.vqgan.parameters()), "the VQ-GANs are frozen"
    assert all(p.requires_grad for p in model.model.decoder.parameters())
    model.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved").iterdir() if p.is_dir()) == []
    again = NuwaForConditionalGeneration.from_pretrained(tmp_path / "saved")
    assert states_equal(again, model)
    pixels = torch.rand(2, 3, 3, 16, 16) * 2 - 1
    tokens = again.encode_videos(pixels)
    assert tokens.shape == (2, 3, 4, 4) and torch.equal(tokens, model.vqgan.encode_video(pixels))
    assert again.decode_visual_tokens(tokens).shape == (2, 3, 3, 16, 16)


def test_set_visual_tokenizers_checks_the_codebook_and_updates_the_config():
    model = NuwaForConditionalGeneration(NuwaConfig.tiny(visual_vocab_size=64))
    assert model.vqgan is None and model.config.vqgan_config is None
    with pytest.raises(ValueError, match=r"no VQ-GAN .*set_visual_tokenizers"):
        model.encode_images(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="has 256 codes but config.visual_vocab_size is 64"):
        model.set_visual_tokenizers(vqgan=NuwaVQGAN.tiny(codebook_size=256))
    with pytest.raises(TypeError, match="must be a NuwaSegVQGAN"):
        model.set_visual_tokenizers(sketch_vqgan=NuwaVQGAN.tiny(codebook_size=32))
    vqgan = NuwaVQGAN.tiny(codebook_size=64)
    model.set_visual_tokenizers(vqgan=vqgan)
    assert model.config.vqgan_config["num_vq_embeddings"] == 64 and "_class_name" not in model.config.vqgan_config
    assert NuwaConfig.from_dict(model.config.to_dict()).vqgan_config == model.config.vqgan_config
    with pytest.raises(ValueError, match="must be equal"):
        NuwaConfig.tiny(visual_vocab_size=32, vqgan_config=dict(vqgan.config))


def test_an_old_layout_folder_converts_to_the_same_model(tiny_model_folder, legacy_model_folder, tmp_path, caplog):
    assert is_legacy_folder(legacy_model_folder) and not is_legacy_folder(tiny_model_folder)
    converted = convert_legacy_folder(legacy_model_folder, tmp_path / "converted")
    assert not (converted / "vqgan").exists() and not (converted / "vqgan_seg").exists()
    assert (converted / "processor_config.json").is_file()
    assert not list(converted.glob("*.py")), "a converted folder holds data, not code (issue 29)"
    config = json.loads((converted / "config.json").read_text())
    assert config["vqgan_config"] and config["sketch_vqgan_config"]
    reference = load_file(f"{tiny_model_folder}/model.safetensors")
    weights = load_file(converted / "model.safetensors")
    assert weights.keys() == reference.keys() and all(torch.equal(weights[k], reference[k]) for k in weights)

    with caplog.at_level(logging.WARNING):
        on_the_fly = NuwaForConditionalGeneration.from_pretrained(legacy_model_folder)
    assert "old layout" in caplog.text
    assert states_equal(on_the_fly, NuwaForConditionalGeneration.from_pretrained(tiny_model_folder))


def test_the_conversion_command_refuses_to_overwrite_or_convert_twice(legacy_model_folder, tmp_path, capsys):
    target = tmp_path / "out"
    assert main(["--input", legacy_model_folder, "--output", str(target)]) == 0
    assert "converted" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        main(["--input", legacy_model_folder, "--output", str(target)])
    assert caught.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert main(["--input", legacy_model_folder, "--output", str(target), "--overwrite"]) == 0
    with pytest.raises(SystemExit):
        main(["--input", str(target), "--output", str(tmp_path / "again")])
    assert "not an old-layout NUWA folder" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*converting*")), "no staging folder is left behind"


def test_training_reads_the_vqgans_of_a_model_folder_without_the_transformer(tiny_model_folder, legacy_model_folder):
    from nuwa_hf.training.main import visual_tokenizers_of_model_folder

    model = NuwaForConditionalGeneration.from_pretrained(tiny_model_folder)
    for folder in (tiny_model_folder, legacy_model_folder):
        vqgan, sketch_vqgan = visual_tokenizers_of_model_folder(folder)
        assert states_equal(vqgan, model.vqgan) and states_equal(sketch_vqgan, model.sketch_vqgan)
