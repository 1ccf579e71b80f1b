"""Loading errors in NUWA's terms (issue 20, deliverable 5): through from_pretrained, pipeline() and the CLI, each bad
folder gives a NuwaModelFolderError naming the folder, the file and the fix; corrupted weights are refused by the
checksum manifest that save_pretrained writes."""

import json
import shutil

import pytest
from transformers import AutoModelForSeq2SeqLM, pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf.cli import main as cli_main
from nuwa_hf.models.nuwa import NuwaForConditionalGeneration
from nuwa_hf.models.nuwa.loading_nuwa import CHECKSUM_MANIFEST, NuwaModelFolderError
from nuwa_hf.pipelines import NuwaModelFolderError as PipelineFolderError


def damaged(tiny_model_folder, tmp_path, damage):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_folder, folder)
    damage(folder)
    return folder


def truncate(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def flip_a_byte(folder):
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # a finite-looking change deep in the tensor data: only the checksum can tell
    weights.write_bytes(bytes(data))


def set_model_type(folder, model_type="bert"):
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    (folder / "config.json").write_text(json.dumps(config))


CASES = {
    "missing config": (lambda f: (f / "config.json").unlink(), "no config.json, so it is not a saved model folder"),
    "broken config": (lambda f: (f / "config.json").write_text("{not json"), "config.json is not valid JSON"),
    "other model type": (set_model_type, "model_type 'bert', not 'nuwa'"),
    "missing weights": (lambda f: (f / "model.safetensors").unlink(), "has no model.safetensors"),
    "empty weights": (lambda f: (f / "model.safetensors").write_bytes(b""), "model.safetensors is empty"),
    "truncated weights": (truncate, "model.safetensors is truncated"),
    "corrupted weights": (flip_a_byte, f"does not match its sha256 in {CHECKSUM_MANIFEST}"),
}


def test_save_pretrained_writes_the_checksum_manifest(tiny_model_folder):
    manifest = json.loads(open(f"{tiny_model_folder}/{CHECKSUM_MANIFEST}").read())
    assert manifest["algorithm"] == "sha256" and set(manifest["files"]) == {"model.safetensors"}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_folders_are_named_through_from_pretrained_and_pipeline(tiny_model_folder, tmp_path, case):
    damage, message = CASES[case]
    folder = damaged(tiny_model_folder, tmp_path, damage)
    with pytest.raises(NuwaModelFolderError, match=message) as caught:
        NuwaForConditionalGeneration.from_pretrained(folder)
    assert str(folder) in str(caught.value)
    if case not in ("missing config", "broken config", "other model type"):
        # (transformers' Auto classes and pipeline() read config.json themselves before the model class is chosen)
        with pytest.raises(NuwaModelFolderError, match=message):
            AutoModelForSeq2SeqLM.from_pretrained(folder)
        with pytest.raises(PipelineFolderError, match=message):
            pipeline("nuwa-text-to-image", model=str(folder))


def test_paths_that_are_not_folders(tiny_model_folder, tmp_path):
    with pytest.raises(NuwaModelFolderError, match="does not exist"):
        NuwaForConditionalGeneration.from_pretrained(str(tmp_path / "nowhere"))
    with pytest.raises(NuwaModelFolderError, match="is a file, not a model folder"):
        NuwaForConditionalGeneration.from_pretrained(f"{tiny_model_folder}/model.safetensors")


def test_weights_that_do_not_fit_the_config(tiny_model_folder, tmp_path):
    def widen(folder):
        config = json.loads((folder / "config.json").read_text())
        config["intermediate_size"] *= 2
        (folder / "config.json").write_text(json.dumps(config))

    folder = damaged(tiny_model_folder, tmp_path, widen)
    with pytest.raises(NuwaModelFolderError, match="do not fit its config.json"):
        NuwaForConditionalGeneration.from_pretrained(folder)


@pytest.mark.parametrize("case", ["truncated weights", "corrupted weights", "other model type"])
def test_the_cli_exits_3_without_a_traceback(tiny_model_folder, tmp_path, capsys, case):
    folder = damaged(tiny_model_folder, tmp_path, CASES[case][0])
    code = cli_main(["generate", "--task", "T2I", "--model", str(folder), "--prompt", "a red 3",
                     "--out", str(tmp_path / "out"), "--quiet"])
    stderr = capsys.readouterr().err
    assert code == 3 and CASES[case][1] in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
