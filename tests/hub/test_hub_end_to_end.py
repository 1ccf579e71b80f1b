"""End to end with the real huggingface_hub client against the local Hub-compatible server on 127.0.0.1.

An untrained tiny NUWA folder is pushed with push_model_folder (and, to a second repo, with model.push_to_hub +
processor.push_to_hub); AutoModelForSeq2SeqLM / NuwaProcessor / transformers.pipeline loaded from "org/name" must
give exactly what the local folder gives. Then the server is stopped and, with HF_HUB_OFFLINE=1, everything loads
again from the cache, including the model through its remote code with nuwa_hf blocked.

The client runs in subprocesses because huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported.
Not covered (the server cannot): the real Hub's LFS / Xet large-file upload path and CDN downloads, real
authentication, rate limits.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.local_hub_server import LocalHubServer

CLIENT = Path(__file__).with_name("hub_client.py")
REPO, PARTS_REPO = "org/nuwa-tiny", "org/nuwa-tiny-parts"
MEASURED = ("model_class", "model_hash", "greedy", "vqgan_hash", "seg_vqgan_hash", "processor_input_ids",
            "processor_visual_tokens", "processor_sketch_tokens", "pipeline_image")


def run_client(mode: str, work: Path, env: dict) -> dict:
    result = subprocess.run([sys.executable, str(CLIENT), mode, str(work), REPO, PARTS_REPO], env=env,
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


def assert_same(results: dict, label: str, reference: dict, reference_label: str = "local") -> None:
    for key in MEASURED:
        np.testing.assert_array_equal(results[f"{label}/{key}"], reference[f"{reference_label}/{key}"],
                                      err_msg=f"{label}/{key}")


@pytest.mark.slow
def test_push_then_load_from_the_hub_and_offline_from_the_cache(tmp_path):
    with LocalHubServer(max_seconds=600) as hub:
        online = run_client("online", tmp_path, client_env(tmp_path, hub.url, offline=False))
        requests_while_online = len(hub.requests)
    assert not hub.running

    # push_model_folder: one commit with the whole folder, card included, byte for byte.
    local_files = [str(name) for name in online["local/files"]]
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json", "README.md",
            "modeling_nuwa.py", "modeling_vqgan.py"} <= set(local_files)
    assert not any(name.startswith("vqgan") for name in local_files), "the VQ-GANs are inside the model"
    folder = tmp_path / "tiny"
    stored = hub.files(REPO)
    assert sorted(stored) == sorted([".gitattributes", *local_files])
    assert all(stored[name] == (folder / name).read_bytes() for name in local_files)
    assert [c.summary for c in hub.history(REPO)] == ["tiny NUWA, whole folder", "initial commit"]
    assert str(online["commit_url"]) == f"{hub.url}/{REPO}/commit/{hub.history(REPO)[0].oid}"

    # Loaded from "org/name": the same weights, tokens and images as from the local folder.
    assert str(online["local/model_class"]) == "NuwaForConditionalGeneration"
    assert_same(online, "hub", online)
    assert [str(name) for name in online["hub/snapshot_files"]] == local_files  # the snapshot is complete

    # model.push_to_hub + processor.push_to_hub: two commits, a generic card instead of the project's. The model
    # part alone holds the whole model, VQ-GANs included (its hashes are measured from the Hub below).
    parts_history = hub.history(PARTS_REPO)
    assert [c.summary for c in parts_history] == ["processor part", "model part", "initial commit"]
    model_part = set(parts_history[1].files)
    assert {"config.json", "model.safetensors", "generation_config.json", "modeling_nuwa.py",
            "modeling_vqgan.py"} <= model_part
    assert not any(name.startswith(("vqgan", "tokenizer", "processor")) for name in model_part)
    assert {"processor_config.json", "tokenizer.json"} <= set(parts_history[0].files)
    assert_same(online, "parts", online)
    assert "automatically generated" in str(online["parts/card"])
    assert stored["README.md"] != parts_history[0].files["README.md"]

    # Server stopped, HF_HUB_OFFLINE=1: everything again from the cache.
    offline = run_client("offline", tmp_path, client_env(tmp_path, hub.url, offline=True))
    assert len(hub.requests) == requests_while_online
    assert_same(offline, "offline", online)
    assert_same(offline, "offline_parts", online)
    assert [str(name) for name in offline["offline/snapshot_files"]] == local_files
    assert str(offline["remote_code/model_hash"]) == str(online["local/model_hash"])
    np.testing.assert_array_equal(offline["remote_code/greedy"], online["local/greedy"])
    assert str(offline["remote_code/pipeline_module"]).startswith("transformers_modules.")
    np.testing.assert_array_equal(offline["remote_code/pipeline_image"], online["local/pipeline_image"])
    never = str(offline["never_downloaded_error"])
    assert never.startswith("OSError") and "cached files" in never
