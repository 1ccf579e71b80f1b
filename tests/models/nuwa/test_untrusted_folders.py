"""Model folders from strangers (issue 30, item 4): loading with the installed package and without trust_remote_code
never runs a folder's code, whatever its config.json names (auto_map, custom_pipelines, unknown architectures) or its
weights hold (pickles), and says what was refused. Each folder's code would write a marker file; none is ever written.
"""

import json
import pickle
import shutil
import warnings

import pytest
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, AutoProcessor, pipeline

import nuwa_hf  # noqa: F401  (registers NUWA with transformers)
from nuwa_hf.cli import main as cli_main
from nuwa_hf.models.nuwa import NuwaForConditionalGeneration
from nuwa_hf.models.nuwa.loading_nuwa import NuwaModelFolderError, foreign_code_note, other_auto_maps


@pytest.fixture(autouse=True)
def one_thread(single_threaded_torch):
    yield


def hostile_code(marker) -> str:
    return (f"from pathlib import Path\nPath({str(marker)!r}).write_text('the folder ran its code')\n"
            "from transformers import PretrainedConfig, PreTrainedModel\n"
            "class EvilConfig(PretrainedConfig):\n    model_type = 'nuwa'\n"
            "class Evil(PreTrainedModel):\n    config_class = EvilConfig\n")


@pytest.fixture
def hostile_folder(tiny_model_folder, tmp_path):
    """The tiny model with code beside it that config.json points at (auto_map, custom_pipelines, architectures)."""
    folder, marker = tmp_path / "model", tmp_path / "MARKER"
    shutil.copytree(tiny_model_folder, folder)
    for name in ("modeling_evil.py", "pipeline_evil.py", "configuration_nuwa.py", "modeling_nuwa.py"):
        (folder / name).write_text(hostile_code(marker))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "modeling_evil.EvilConfig", "AutoModel": "modeling_evil.Evil",
                          "AutoModelForSeq2SeqLM": "someone/else--modeling_evil.Evil"}
    config["custom_pipelines"] = {"nuwa-text-to-image": {"impl": "pipeline_evil.Evil", "pt": ["AutoModelForSeq2SeqLM"],
                                                         "tf": [], "type": "multimodal"}}
    config["architectures"] = ["EvilForEverything"]
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("processor_config.json", "tokenizer_config.json"):  # processor files may name code too
        processor = json.loads((folder / name).read_text())
        processor["auto_map"] = {"AutoProcessor": "modeling_evil.Evil", "AutoTokenizer": ["modeling_evil.Evil", None]}
        (folder / name).write_text(json.dumps(processor))
    return folder, marker


ROUTES = {
    "NuwaForConditionalGeneration.from_pretrained": lambda f: NuwaForConditionalGeneration.from_pretrained(f),
    "AutoModelForSeq2SeqLM.from_pretrained": lambda f: AutoModelForSeq2SeqLM.from_pretrained(f),
    "AutoModel.from_pretrained": lambda f: AutoModel.from_pretrained(f),
    "AutoProcessor.from_pretrained": lambda f: AutoProcessor.from_pretrained(f),
    "pipeline()": lambda f: pipeline("nuwa-text-to-image", model=str(f)),
    "pipeline(trust_remote_code=False)": lambda f: pipeline("nuwa-text-to-image", model=str(f),
                                                            trust_remote_code=False),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_folders_code_never_runs_and_the_refusal_is_named(route, hostile_folder):
    folder, marker = hostile_folder
    if route.startswith("AutoProcessor"):  # no warning there (it does not read the model folder's weights)
        loaded = ROUTES[route](folder)
    else:
        with pytest.warns(UserWarning, match="names code that is not nuwa-hf's") as caught:
            loaded = ROUTES[route](folder)
        message = next(str(w.message) for w in caught if "not nuwa-hf's" in str(w.message))
        for named in ("auto_map AutoModel -> modeling_evil.py", "custom_pipelines nuwa-text-to-image -> pipeline_evil.py",
                      "processor_config.json auto_map AutoProcessor -> modeling_evil.py",
                      "tokenizer_config.json auto_map AutoTokenizer -> modeling_evil.py", "it was not run",
                      "trust_remote_code=True"):
            assert named in message
    assert not marker.exists()
    assert "Nuwa" in type(getattr(loaded, "model", loaded)).__name__  # the installed classes, not the folder's


def test_auto_config_uses_the_installed_class(hostile_folder):
    folder, marker = hostile_folder
    assert type(AutoConfig.from_pretrained(folder)).__name__ == "NuwaConfig"
    assert not marker.exists()


def test_the_cli_runs_the_installed_code_and_warns(hostile_folder, tmp_path, capsys):
    folder, marker = hostile_folder
    code = cli_main(["generate", "--model", str(folder), "--task", "T2I", "--prompt", "a red 3", "--out",
                     str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert not marker.exists()
    warned = [line for line in err.splitlines() if "modeling_evil.py" in line]
    assert len(warned) == 1 and warned[0].startswith("nuwa-hf: warning: ") and "it was not run" in warned[0]


def test_nuwa_hfs_own_remote_code_is_not_flagged():
    """References to nuwa-hf's code repository (nuwa_hf.hub.push_code), and the copied modules folders saved before
    issue 29 named, are nuwa-hf's own."""
    from nuwa_hf.hub.code_repo import code_references

    references = code_references("someone/nuwa-hf-code")
    config = {"auto_map": references["auto_map"], "custom_pipelines": references["custom_pipelines"]}
    others = {"processor_config.json": references["processor_auto_map"]}
    assert foreign_code_note(config, others) is None
    old = {"auto_map": {"AutoConfig": "configuration_nuwa.NuwaConfig", "AutoModel": "modeling_nuwa.NuwaModel"},
           "custom_pipelines": {"nuwa-text-to-image": {"impl": "pipeline_text_to_image.NuwaTextToImagePipeline"}}}
    assert foreign_code_note(old, {"processor_config.json": {"AutoProcessor": "processing_nuwa.NuwaProcessor"}}) is None
    assert "auto_map AutoModel -> evil.py" in foreign_code_note({"auto_map": {"AutoModel": "evil.Model"}})


class _RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('unpickled')",)


def test_pickle_only_weights_are_refused_unopened(tiny_model_folder, tmp_path):
    folder, marker = tmp_path / "model", tmp_path / "MARKER"
    shutil.copytree(tiny_model_folder, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "checksums.json").unlink(missing_ok=True)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_RunsCodeWhenUnpickled(marker)))
    for load in (NuwaForConditionalGeneration.from_pretrained, AutoModelForSeq2SeqLM.from_pretrained,
                 lambda f: pipeline("nuwa-text-to-image", model=str(f))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(NuwaModelFolderError) as caught:
                load(folder)
        assert "pickle weights ['pytorch_model.bin']" in str(caught.value)
        assert "unpickling runs code" in str(caught.value) and "save_pretrained" in str(caught.value)
        assert not marker.exists()
