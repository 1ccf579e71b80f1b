"""End to end with the real huggingface_hub client against the local Hub-compatible server on 127.0.0.1.

The remote code of the installed package is published to a code repository (push_code). An untrained tiny NUWA
folder (data only, no .py) is pushed with push_model_folder (and, to a second repo, with model.push_to_hub +
processor.push_to_hub), both pointing at the code repository (remote_code=); AutoModelForSeq2SeqLM / NuwaProcessor /
transformers.pipeline loaded from "org/name" must give exactly what the local folder gives. In a process that cannot
import nuwa_hf, trust_remote_code=True loads both model repos through the code repository and gives the same weights,
tokens and image for the same seed. Then the server is stopped and, with HF_HUB_OFFLINE=1, everything loads again from
the cache, the remote code included.

The client runs in subprocesses because huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported.
Not covered (the server cannot): the real Hub's LFS / Xet large-file upload path and CDN downloads, real
authentication, rate limits.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nuwa_hf.hub.code_repo import code_references
from support.local_hub_server import LocalHubServer

CLIENT = Path(__file__).with_name("hub_client.py")
REPO, PARTS_REPO, CODE_REPO = "org/nuwa-tiny", "org/nuwa-tiny-parts", "org/nuwa-hf-code"
MEASURED = ("model_class", "model_hash", "greedy", "vqgan_hash", "seg_vqgan_hash", "processor_input_ids",
            "processor_visual_tokens", "processor_sketch_tokens", "pipeline_image")


def run_client(mode: str, work: Path, env: dict) -> dict:
    result = subprocess.run([sys.executable, str(CLIENT), mode, str(work), REPO, PARTS_REPO, CODE_REPO], env=env,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, f"{mode} client failed:\n{result.stderr[-4000:]}"
    return dict(np.load(work / f"{mode}.npz"))


def client_env(work: Path, endpoint: str, offline: bool) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_MODULES_CACHE",
                          "HF_HUB_DISABLE_XET", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(work / "hf_home"), HF_HUB_OFFLINE="1" if offline else "0",
               HF_TOKEN="hf_local_test", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    return env


def assert_same(results: dict, label: str, reference: dict, reference_label: str = "local",
                keys: tuple = MEASURED) -> None:
    for key in keys:
        np.testing.assert_array_equal(results[f"{label}/{key}"], reference[f"{reference_label}/{key}"],
                                      err_msg=f"{label}/{key}")


REMOTE_MEASURED = ("model_hash", "greedy", "pipeline_image")


def assert_names_the_code_repo(files: dict) -> None:
    """config.json and processor_config.json name the code repository's classes, of the installed version."""
    from nuwa_hf.hub.code_repo import code_references

    references = code_references(CODE_REPO)
    config, processor = json.loads(files["config.json"]), json.loads(files["processor_config.json"])
    assert config["auto_map"] == references["auto_map"]
    assert config["custom_pipelines"] == references["custom_pipelines"]
    assert processor["auto_map"] == references["processor_auto_map"]
    assert config["auto_map"]["AutoModelForSeq2SeqLM"].startswith(f"{CODE_REPO}--v")


@pytest.mark.slow
def test_push_then_load_from_the_hub_and_offline_from_the_cache(tmp_path):
    with LocalHubServer(max_seconds=900) as hub:
        online = run_client("online", tmp_path, client_env(tmp_path, hub.url, offline=False))
        remote = run_client("remote", tmp_path, client_env(tmp_path, hub.url, offline=False))
        requests_while_online = len(hub.requests)
    assert not hub.running

    # The code repository: this version's modules in one folder, and no model data.
    code = hub.files(CODE_REPO)
    version = code_references(CODE_REPO)["auto_map"]["AutoModel"].split("--")[1].split("/")[0]
    assert {f"{version}/modeling_nuwa.py", f"{version}/configuration_nuwa.py", f"{version}/processing_nuwa.py",
            f"{version}/text_to_image.py", "README.md"} <= set(code)
    assert not any(name.endswith((".json", ".safetensors")) for name in code)

    # push_model_folder: one commit with the whole folder, card included; data only, byte for byte but for the two
    # files that name the code repository (the folder on disk is left as it was).
    local_files = [str(name) for name in online["local/files"]]
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json", "README.md",
            "checksums.json"} <= set(local_files)
    assert not any(name.endswith(".py") for name in local_files), "model folders hold no code"
    assert not any(name.startswith("vqgan") for name in local_files), "the VQ-GANs are inside the model"
    folder = tmp_path / "tiny"
    stored = hub.files(REPO)
    assert sorted(stored) == sorted([".gitattributes", *local_files])
    pointing = {"config.json", "processor_config.json"}
    assert all(stored[name] == (folder / name).read_bytes() for name in local_files if name not in pointing)
    assert "auto_map" not in json.loads((folder / "config.json").read_text())
    assert_names_the_code_repo(stored)
    assert [c.summary for c in hub.history(REPO)] == ["tiny NUWA, whole folder", "initial commit"]
    assert str(online["commit_url"]) == f"{hub.url}/{REPO}/commit/{hub.history(REPO)[0].oid}"

    # Loaded from "org/name": the same weights, tokens and images as from the local folder.
    assert str(online["local/model_class"]) == "NuwaForConditionalGeneration"
    assert_same(online, "hub", online)
    assert [str(name) for name in online["hub/snapshot_files"]] == local_files  # the snapshot is complete

    # model.push_to_hub + processor.push_to_hub: two commits, nuwa-hf's short card instead of the folder's. The model
    # part alone holds the whole model, VQ-GANs included (its hashes are measured from the Hub below).
    parts_history = hub.history(PARTS_REPO)
    assert [c.summary for c in parts_history] == ["processor part", "model part", "initial commit"]
    model_part = set(parts_history[1].files)
    assert {"config.json", "model.safetensors", "generation_config.json", "checksums.json", "README.md"} <= model_part
    assert not any(name.startswith(("vqgan", "tokenizer", "processor")) or name.endswith(".py") for name in model_part)
    assert {"processor_config.json", "tokenizer.json"} <= set(parts_history[0].files)
    assert_names_the_code_repo(hub.files(PARTS_REPO))
    assert_same(online, "parts", online)
    card = str(online["parts/card"])
    assert "library_name: nuwa-hf" in card and "pipeline_tag: text-to-image" in card and CODE_REPO in card
    assert stored["README.md"] != hub.files(PARTS_REPO)["README.md"]

    # Without nuwa_hf: trust_remote_code=True runs the code repository's modules, with the same results.
    for label in ("remote_code", "remote_code_parts"):
        assert_same(remote, label, online, keys=REMOTE_MEASURED)
        assert str(remote[f"{label}/model_module"]).startswith("transformers_modules.org.nuwa_hyphen_hf_hyphen_code.")
        assert str(remote[f"{label}/pipeline_module"]).startswith("transformers_modules.")
        np.testing.assert_array_equal(remote[f"{label}/processor_input_ids"], online["local/processor_input_ids"])

    # Server stopped, HF_HUB_OFFLINE=1: everything again from the cache.
    offline = run_client("offline", tmp_path, client_env(tmp_path, hub.url, offline=True))
    assert len(hub.requests) == requests_while_online
    assert_same(offline, "offline", online)
    assert_same(offline, "offline_parts", online)
    assert [str(name) for name in offline["offline/snapshot_files"]] == local_files
    assert_same(offline, "remote_code", online, keys=REMOTE_MEASURED)
    assert str(offline["remote_code/pipeline_module"]).startswith("transformers_modules.")
    never = str(offline["never_downloaded_error"])
    assert never.startswith("OSError") and "cached files" in never
