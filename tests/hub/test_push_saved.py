"""save_pretrained(..., push_to_hub=True) and push_to_hub for the model and the processor, against the local Hub
server in this process: what the Hub receives is what the save wrote on disk, remote-code references included
(issue 29: the processor used to point its local folder at the code repository only after the upload).

The client reaches the server through ``endpoint=`` (the session runs offline; ``online`` lifts that). What the
server cannot cover: see test_push_to_local_hub.py.
"""

import json

import pytest
import torch

from nuwa_hf.models.nuwa import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.processing import NuwaImageProcessor, NuwaProcessor, train_caption_tokenizer

CODE_REPO = "org/nuwa-hf-code"
CAPTIONS = ["a red circle on a blue background", "a green square", "a yellow triangle next to a red circle"] * 4


@pytest.fixture
def hub(local_hub, online):
    return local_hub


@pytest.fixture(scope="module")
def processor():
    tokenizer = train_caption_tokenizer(CAPTIONS, vocab_size=600, model_max_length=12)
    return NuwaProcessor(NuwaImageProcessor(num_sketch_classes=4), tokenizer)


def local_files(folder) -> dict:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_processor_save_with_push_uploads_the_code_references_it_saved(processor, hub, tmp_path):
    folder = tmp_path / "nuwa-processor"
    processor.save_pretrained(folder, push_to_hub=True, repo_id="org/nuwa-processor", remote_code=CODE_REPO,
                              token=False, endpoint=hub.url, commit_message="processor with remote code")
    remote = hub.files("org/nuwa-processor")
    uploaded = json.loads(remote["processor_config.json"])
    assert uploaded["auto_map"]["AutoProcessor"].startswith(f"{CODE_REPO}--v")
    assert uploaded["auto_map"]["AutoProcessor"].endswith("/processing_nuwa.NuwaProcessor")
    assert uploaded["image_processor"]["auto_map"]["AutoImageProcessor"].endswith(
        "/image_processing_nuwa.NuwaImageProcessor")
    assert "auto_map" not in json.loads(remote["tokenizer_config.json"])
    local = local_files(folder)
    assert sorted(local) == sorted(name for name in remote if name != ".gitattributes")
    for name, content in local.items():
        assert remote[name] == content, f"{name}: the Hub copy differs from the saved one"
    assert hub.history("org/nuwa-processor")[0].summary == "processor with remote code"


def test_processor_save_with_push_uploads_only_what_it_wrote(processor, hub, tmp_path):
    """Saving the processor into a model folder and pushing sends the processor's files, not the folder's others."""
    folder = tmp_path / "model-folder"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"not the processor's")
    (folder / "README.md").write_text("---\nlibrary_name: nuwa-hf\n---\n# hand-written\n")
    processor.save_pretrained(folder, push_to_hub=True, repo_id="org/nuwa-mixed", token=False, endpoint=hub.url)
    remote = hub.files("org/nuwa-mixed")
    assert "model.safetensors" not in remote and "README.md" not in remote
    assert {"processor_config.json", "tokenizer_config.json"} <= set(remote)
    assert "auto_map" not in json.loads(remote["processor_config.json"])
    assert (folder / "README.md").read_text().endswith("# hand-written\n")


def test_model_save_with_push_uploads_checksums_card_and_references(hub, tmp_path):
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(NuwaConfig.tiny())
    folder = tmp_path / "nuwa-model"
    model.save_pretrained(folder, push_to_hub=True, repo_id="org/nuwa-model", remote_code=CODE_REPO, token=False,
                          endpoint=hub.url)
    remote = hub.files("org/nuwa-model")
    local = local_files(folder)
    assert {"checksums.json", "README.md", "config.json", "model.safetensors"} <= set(local)
    assert sorted(local) == sorted(name for name in remote if name != ".gitattributes")
    for name, content in local.items():
        assert remote[name] == content, f"{name}: the Hub copy differs from the saved one"
    assert json.loads(remote["config.json"])["auto_map"]["AutoModelForSeq2SeqLM"].startswith(f"{CODE_REPO}--v")
    assert "org/nuwa-model" in remote["README.md"].decode(), "the card names the repository it was pushed to"


def test_push_to_hub_keeps_the_card_the_repository_has(processor, hub, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=False)
    api.create_repo("org/nuwa-carded")
    api.upload_file(path_or_fileobj=b"# the repository's own card\n", path_in_repo="README.md",
                    repo_id="org/nuwa-carded")
    processor.push_to_hub("org/nuwa-carded", remote_code=CODE_REPO, token=False, endpoint=hub.url)
    remote = hub.files("org/nuwa-carded")
    assert remote["README.md"] == b"# the repository's own card\n"
    assert json.loads(remote["processor_config.json"])["auto_map"]["AutoProcessor"].startswith(f"{CODE_REPO}--v")
