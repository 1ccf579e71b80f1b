"""Issue 29: model folders hold data; the remote code is built once per version into a code repository
(nuwa_hf.hub.code_repo). Loading it without nuwa_hf, through the Hub: tests/hub/test_hub_end_to_end.py."""

import ast
import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForSeq2SeqLM, AutoProcessor, pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf import NuwaForConditionalGeneration, NuwaProcessor
from nuwa_hf.hub import build_code_folder, code_references, point_folder_to_code
from nuwa_hf.hub.code_repo import version_folder
from nuwa_hf.tasks import TASKS

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "nuwa-tiny"
CODE_REPO = "someone/nuwa-hf-code"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    target = tmp_path_factory.mktemp("code")
    return target, build_code_folder(target)


def _defines(path: Path, name: str) -> bool:
    return any(isinstance(node, ast.ClassDef) and node.name == name for node in ast.parse(path.read_text()).body)


def test_every_reference_names_a_built_module_that_defines_the_class(built):
    target, written = built
    folder = version_folder()
    assert "README.md" in written and all(name.startswith(f"{folder}/") for name in written if name != "README.md")
    references = code_references(CODE_REPO)
    named = [*references["auto_map"].values(), *references["processor_auto_map"].values(),
             *references["image_processor_auto_map"].values(),
             *(entry["impl"] for entry in references["custom_pipelines"].values())]
    assert sorted(references["custom_pipelines"]) == sorted(task.name for task in TASKS)
    for reference in named:
        repo, rest = reference.split("--")  # transformers: repo_id, "module.Class" (one dot)
        module, cls = rest.split(".")
        assert repo == CODE_REPO and module.startswith(f"{folder}/"), reference
        assert _defines(target / f"{module}.py", cls), reference


def test_built_modules_import_only_each_other(built):
    """transformers follows `from .name import` (each a file beside the module); any other import of nuwa_hf is one
    of an unpublished module inside a function, wrapped so that it names the package to install."""
    target, written = built
    files = {Path(name).stem for name in written if name.endswith(".py")}
    for name in written:
        if not name.endswith(".py"):
            continue
        text = (target / name).read_text()
        compile(text, name, "exec")
        for module in re.findall(r"^\s*from\s+\.(\S+)\s+import", text, flags=re.MULTILINE):
            assert module in files, f"{name} imports .{module}, which is not published"
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("nuwa_hf"):
                assert node not in tree.body and any(
                    isinstance(t, ast.Try) and node in t.body for t in ast.walk(tree)), (name, node.lineno)
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                raise AssertionError(f"{name}:{node.lineno} imports from a parent package")
    assert "evaluation.py" not in {Path(name).name for name in written}, "the evaluation package is not published"


def test_point_folder_to_code_and_back(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(SHIPPED, folder)
    before = {name: (folder / name).read_bytes() for name in ("config.json", "processor_config.json",
                                                               "tokenizer_config.json", "model.safetensors")}
    assert point_folder_to_code(folder, CODE_REPO) == ["config.json", "processor_config.json"]
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == code_references(CODE_REPO)["auto_map"]
    assert (folder / "model.safetensors").read_bytes() == before["model.safetensors"]
    assert point_folder_to_code(folder, None) == ["config.json", "processor_config.json"]
    assert {name: (folder / name).read_bytes() for name in before} == before


# --------------------------------------------------------------------------------------------------------------------
# Folders written before issue 29 carried a flat copy of the package (.py files), config.json's auto_map and
# custom_pipelines naming it, the processor's auto_map, and diffusers' model_index.json + module. The installed
# package loads them and never runs their code (here: each .py writes a marker file if imported).

OLD_MODULES = ["configuration_nuwa", "modeling_nuwa", "processing_nuwa", "image_processing_nuwa", "nuwa_ops",
               "remote_code", "nuwa_diffusers_pipeline"] + [f"pipeline_{task.name[5:].replace('-', '_')}" for task in TASKS]


def write_old_folder(folder: Path) -> Path:
    shutil.copytree(SHIPPED, folder)
    marker = folder.parent / "old_code_ran"
    for module in OLD_MODULES:
        (folder / f"{module}.py").write_text(f"open({str(marker)!r}, 'a').write({module!r})\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_nuwa.NuwaConfig", "AutoModel": "modeling_nuwa.NuwaModel",
                          "AutoModelForSeq2SeqLM": "modeling_nuwa.NuwaForConditionalGeneration"}
    config["custom_pipelines"] = {
        task.name: {"impl": f"pipeline_{task.name[5:].replace('-', '_')}.{task.pipeline_class}",
                    "pt": ["AutoModelForSeq2SeqLM"], "tf": [], "type": "multimodal"} for task in TASKS}
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in ("processor_config.json", "tokenizer_config.json"):
        data = json.loads((folder / name).read_text())
        data["auto_map"] = {"AutoProcessor": "processing_nuwa.NuwaProcessor"}
        (folder / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": ["nuwa_diffusers_pipeline", "NuwaDiffusionPipeline"],
        "transformer": ["nuwa_hf.models.nuwa.modeling_nuwa", "NuwaForConditionalGeneration"],
        "processor": ["nuwa_hf.processing.processing_nuwa", "NuwaProcessor"]}))
    return marker


def test_folders_of_earlier_versions_load_with_the_installed_package(tmp_path):
    folder = tmp_path / "old"
    marker = write_old_folder(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nuwa-hf's own copied code is not "foreign"
        model = NuwaForConditionalGeneration.from_pretrained(folder).eval()
        assert type(AutoModelForSeq2SeqLM.from_pretrained(folder)) is NuwaForConditionalGeneration
        assert type(AutoModel.from_pretrained(folder)).__module__.startswith("nuwa_hf.")
        assert type(AutoProcessor.from_pretrained(folder)) is NuwaProcessor
        generate = pipeline("nuwa-text-to-image", model=str(folder))
    generate.set_progress_bar_config(disable=True)
    assert type(generate).__module__.startswith("nuwa_hf.")
    shipped = pipeline("nuwa-text-to-image", model=str(SHIPPED))
    shipped.set_progress_bar_config(disable=True)
    assert torch.equal(generate("a red 3", seed=0, output_type="tokens"),
                       shipped("a red 3", seed=0, output_type="tokens"))
    reference = NuwaForConditionalGeneration.from_pretrained(SHIPPED).eval()
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(model.generate(input_ids=ids, visual_grid=(1, 2, 2), do_sample=False),
                       reference.generate(input_ids=ids, visual_grid=(1, 2, 2), do_sample=False))
    assert not marker.exists(), "a folder's old copy of the code ran"
    # Re-saving gives today's data-only folder.
    model.save_pretrained(tmp_path / "resaved")
    assert not list((tmp_path / "resaved").glob("*.py"))
    assert "auto_map" not in json.loads((tmp_path / "resaved" / "config.json").read_text())
