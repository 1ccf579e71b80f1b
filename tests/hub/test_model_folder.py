"""check_model_folder: a complete folder passes; each missing or broken part is named with its fix."""

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import save_file

from nuwa_hf.hub import IncompleteModelFolderError, check_model_folder, list_model_files


def test_complete_folder_lists_its_files_and_skips_junk(layout):
    for junk in (".DS_Store", "__pycache__/modeling_nuwa.cpython-311.pyc", "samples/.prompts.json.tmp", "x.tmp",
                 ".cache/huggingface/download/a.lock"):
        path = os.path.join(layout, *junk.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    report = check_model_folder(layout)
    assert report.warnings == []
    assert report.has_sketch_vqgan and report.has_model_card
    assert report.files == list_model_files(layout)
    assert "model.safetensors" in report.files and "samples/prompts.json" in report.files and "README.md" in report.files
    assert not [name for name in report.files if name.startswith((".", "__pycache__")) or "/." in name
                or name.endswith(".tmp")]


@pytest.mark.parametrize("remove, expected", [
    ("config.json", "no config.json"),
    ("model.safetensors", "model weights: no model.safetensors"),
    ("processor_config.json", "no processor_config.json"),
    ("tokenizer_config.json", "no tokenizer_config.json"),
])
def test_missing_required_part_is_named(layout, remove, expected):
    path = os.path.join(layout, *remove.split("/"))
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    with pytest.raises(IncompleteModelFolderError) as caught:
        check_model_folder(layout)
    assert len(caught.value.missing) == 1
    assert caught.value.missing[0].startswith(expected)
    assert "save" in caught.value.missing[0]  # the fix is part of the message
    assert expected in str(caught.value)


def edit_config(layout, **changes):
    path = os.path.join(layout, "config.json")
    with open(path) as handle:
        config = json.load(handle)
    for key, value in changes.items():
        config.pop(key) if value is None else config.__setitem__(key, value)
    with open(path, "w") as handle:
        json.dump(config, handle)


def test_a_model_without_its_vqgan_is_named_with_the_fix(layout):
    edit_config(layout, vqgan_config=None)
    with pytest.raises(IncompleteModelFolderError) as caught:
        check_model_folder(layout)
    assert len(caught.value.missing) == 1
    assert caught.value.missing[0].startswith("config.json has no vqgan_config")
    assert "set_visual_tokenizers" in caught.value.missing[0] and "save" in caught.value.missing[0]


def test_all_problems_are_reported_at_once(layout):
    os.remove(os.path.join(layout, "model.safetensors"))
    edit_config(layout, vqgan_config=None)
    with pytest.raises(IncompleteModelFolderError) as caught:
        check_model_folder(layout)
    assert [m.split(":")[0] for m in caught.value.missing] == ["model weights", "config.json has no vqgan_config"]


def test_old_layout_passes_with_a_warning_unless_half_written(tmp_path, make_layout):
    legacy = make_layout(tmp_path / "legacy", legacy=True)
    report = check_model_folder(legacy)
    assert report.has_sketch_vqgan
    assert any("old layout" in w and "convert_nuwa_legacy_folder" in w for w in report.warnings)
    os.remove(os.path.join(legacy, "vqgan_seg", "config.json"))
    with pytest.raises(IncompleteModelFolderError, match=r"vqgan_seg/ \(old layout\): no vqgan_seg/config.json"):
        check_model_folder(legacy)


def test_not_a_folder_and_not_nuwa(tmp_path, layout):
    with pytest.raises(IncompleteModelFolderError, match="no such folder"):
        check_model_folder(tmp_path / "nowhere")
    with open(os.path.join(layout, "config.json"), "w") as handle:
        json.dump({"model_type": "bert"}, handle)
    with pytest.raises(IncompleteModelFolderError, match="model_type 'bert', not 'nuwa'"):
        check_model_folder(layout)
    with open(os.path.join(layout, "config.json"), "w") as handle:
        handle.write("{not json")
    with pytest.raises(IncompleteModelFolderError, match="not valid JSON"):
        check_model_folder(layout)


def test_pickle_weights_and_sharded_weights(layout):
    os.rename(os.path.join(layout, "model.safetensors"), os.path.join(layout, "pytorch_model.bin"))
    with pytest.raises(IncompleteModelFolderError, match="pickle weights"):
        check_model_folder(layout)
    os.remove(os.path.join(layout, "pytorch_model.bin"))
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    with open(os.path.join(layout, "model.safetensors.index.json"), "w") as handle:
        json.dump(index, handle)
    save_file({"a": torch.zeros(2)}, os.path.join(layout, "model-00001-of-00002.safetensors"))
    with pytest.raises(IncompleteModelFolderError, match=r"shards that are missing: \['model-00002-of-00002"):
        check_model_folder(layout)
    save_file({"b": torch.zeros(2)}, os.path.join(layout, "model-00002-of-00002.safetensors"))
    assert check_model_folder(layout).warnings == []


def test_optional_parts_only_warn(layout):
    edit_config(layout, sketch_vqgan_config=None)
    for name in ("README.md", "generation_config.json"):
        os.remove(os.path.join(layout, name))
    # a folder saved before issue 29 names code in itself
    edit_config(layout, auto_map={"AutoModelForSeq2SeqLM": "modeling_nuwa.NuwaForConditionalGeneration"})
    report = check_model_folder(layout)
    text = "\n".join(report.warnings)
    assert "no sketch VQ-GAN" in text and "sketch tasks" in text
    assert "no README.md" in text and "no generation_config.json" in text
    assert "['modeling_nuwa.py']" in text and "data only" in text and "push_code" in text
    assert not report.has_sketch_vqgan and not report.has_model_card
    with pytest.raises(IncompleteModelFolderError, match="no sketch VQ-GAN"):
        check_model_folder(layout, require_sketch_vqgan=True)


def test_truncated_weights_are_not_published(layout):
    """The folder check reads the weights as loading does: a cut-short model.safetensors is refused before upload."""
    path = os.path.join(layout, "model.safetensors")
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    with pytest.raises(IncompleteModelFolderError, match="model.safetensors is truncated.*save_pretrained"):
        check_model_folder(layout)
