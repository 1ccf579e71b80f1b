"""push_model_folder and the local Hub server, in this process (the client reaches the server through endpoint=).

What these tests cannot cover: the real Hub's large-file path (LFS / Xet uploads, CDN redirects), real
authentication and token scopes, rate limits. The server answers every file as a "regular" (inline) upload.
"""

import json
import os
import shutil
import time
import urllib.error
import urllib.request

import pytest
import torch
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from safetensors.torch import save_file
from huggingface_hub.errors import (
    HfHubHTTPError,
    IncompleteSnapshotError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)

from nuwa_hf.hub import (
    HubUnreachableError,
    IncompleteModelFolderError,
    download_model_folder,
    list_model_files,
    push_model_folder,
    verify_remote_folder,
)
from support.local_hub_server import LocalHubServer

REPO = "org/nuwa-test"


def read(folder, name):
    with open(os.path.join(folder, *name.split("/")), "rb") as handle:
        return handle.read()


def test_push_uploads_the_whole_folder_in_one_commit(layout, local_hub, online):
    os.makedirs(os.path.join(layout, "__pycache__"))
    for junk in (".DS_Store", "__pycache__/m.pyc", "samples/.partial.tmp"):
        open(os.path.join(layout, *junk.split("/")), "w").close()
    url = push_model_folder(layout, REPO, endpoint=local_hub.url, token=False, commit_message="first")
    head = local_hub.history(REPO)[0]
    assert url == f"{local_hub.url}/{REPO}/commit/{head.oid}" and url.oid == head.oid
    assert [c.summary for c in local_hub.history(REPO)] == ["first", "initial commit"]
    remote = local_hub.files(REPO)
    assert sorted(remote) == sorted([".gitattributes", *list_model_files(layout)])
    assert {"README.md", "model.safetensors", "processor_config.json", "samples/prompts.json"} <= set(remote)
    for name in list_model_files(layout):
        assert remote[name] == read(layout, name), name
    assert not any(name.endswith((".pyc", ".tmp", ".DS_Store")) for name in remote)
    assert verify_remote_folder(layout, REPO, endpoint=local_hub.url, token=False) == []

    # Nothing changed: the client skips every file and no commit is made.
    again = push_model_folder(layout, REPO, endpoint=local_hub.url, token=False, commit_message="second")
    assert again.oid == head.oid and len(local_hub.history(REPO)) == 2

    # One file changed: only it is sent.
    with open(os.path.join(layout, "README.md"), "a") as handle:
        handle.write("more\n")
    sent_before = len(local_hub.requests)
    third = push_model_folder(layout, REPO, endpoint=local_hub.url, token=False, commit_message="card")
    assert third.oid == local_hub.history(REPO)[0].oid != head.oid
    assert local_hub.files(REPO)["README.md"].endswith(b"more\n")
    assert sum("/commit/" in path for _, path in local_hub.requests[sent_before:]) == 1


def test_incomplete_folder_or_offline_mode_fails_before_any_request(layout, local_hub):
    kept = read(layout, "processor_config.json")
    os.remove(os.path.join(layout, "processor_config.json"))
    with pytest.raises(IncompleteModelFolderError, match="processor_config.json"):
        push_model_folder(layout, REPO, endpoint=local_hub.url, token=False)
    with open(os.path.join(layout, "processor_config.json"), "wb") as handle:
        handle.write(kept)
    with pytest.raises(OfflineModeIsEnabled, match="HF_HUB_OFFLINE"):  # the session runs offline
        push_model_folder(layout, REPO, endpoint=local_hub.url, token=False)
    with pytest.raises(ValueError):
        push_model_folder(layout, "a/b/c", endpoint=local_hub.url, token=False)
    assert local_hub.requests == [] and local_hub.repos == {}


def test_unreachable_endpoint_is_a_connection_error(layout, online):
    hub = LocalHubServer().start()
    url = hub.url
    hub.stop()
    with pytest.raises(HubUnreachableError, match=f"Could not reach the Hub at {url}") as caught:
        push_model_folder(layout, REPO, endpoint=url, token=False)
    assert isinstance(caught.value, ConnectionError)


def test_missing_sketch_vqgan_warns_but_pushes(layout, local_hub, online):
    with open(os.path.join(layout, "config.json")) as handle:
        config = json.load(handle)
    del config["sketch_vqgan_config"]
    with open(os.path.join(layout, "config.json"), "w") as handle:
        json.dump(config, handle)
    with pytest.warns(UserWarning, match="no sketch VQ-GAN"):
        push_model_folder(layout, REPO, endpoint=local_hub.url, token=False)
    assert "model.safetensors" in local_hub.files(REPO)


def test_revision_branch_and_stale_files(layout, local_hub, online, tmp_path):
    save_file({"old": torch.zeros(2)}, os.path.join(layout, "model-00001-of-00002.safetensors"))
    push_model_folder(layout, REPO, endpoint=local_hub.url, token=False)
    os.remove(os.path.join(layout, "model-00001-of-00002.safetensors"))
    push_model_folder(layout, REPO, endpoint=local_hub.url, token=False)
    assert "model-00001-of-00002.safetensors" in local_hub.files(REPO)  # kept by default
    push_model_folder(layout, REPO, endpoint=local_hub.url, token=False, delete_stale=True)
    assert sorted(local_hub.files(REPO)) == sorted([".gitattributes", *list_model_files(layout)])

    push_model_folder(layout, "org/branched", endpoint=local_hub.url, token=False, revision="dev")
    assert sorted(local_hub.files("org/branched", "dev")) == sorted([".gitattributes", *list_model_files(layout)])
    assert list(local_hub.files("org/branched", "main")) == [".gitattributes"]


def test_verify_detects_missing_and_corrupted_files(layout, local_hub, online):
    push_model_folder(layout, REPO, endpoint=local_hub.url, token=False)
    head = local_hub.history(REPO)[0]
    del head.files["samples/prompts.json"]
    head.files["model.safetensors"] = head.files["model.safetensors"][:-1] + b"!"
    head.files["README.md"] = b"x" * len(read(layout, "README.md"))
    problems = verify_remote_folder(layout, REPO, endpoint=local_hub.url, token=False)
    assert problems == [
        "README.md: blob id " + problems[0].split("blob id ")[1],
        "model.safetensors: blob id " + problems[1].split("blob id ")[1],
        "samples/prompts.json: not in the repository",
    ]
    assert all("differs from the file's" in p for p in problems[:2])


def test_token_and_private_repos(layout, online):
    with LocalHubServer(token="hf_secret", max_seconds=60) as hub:
        with pytest.raises(HfHubHTTPError) as caught:
            push_model_folder(layout, REPO, endpoint=hub.url, token="hf_wrong")
        assert caught.value.response.status_code == 401 and hub.repos == {}
        push_model_folder(layout, REPO, endpoint=hub.url, token="hf_secret", private=True)
        assert hub.repos[REPO].private
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.url, token=False).model_info(REPO)
        assert HfApi(endpoint=hub.url, token="hf_secret").model_info(REPO).private is True
        assert HfApi(endpoint=hub.url, token="hf_secret").whoami()["name"] == "tester"


def test_tree_listing_is_paginated_and_ranges_are_served(layout, online):
    with LocalHubServer(page_size=3, max_seconds=60) as hub:
        push_model_folder(layout, REPO, endpoint=hub.url, token=False)
        api = HfApi(endpoint=hub.url, token=False)
        entries = list(api.list_repo_tree(REPO, recursive=True))
        assert sum("cursor=" in path for _, path in hub.requests) >= len(entries) // 3 - 1
        files = sorted(e.path for e in entries if e.__class__.__name__ == "RepoFile")
        assert files == sorted([".gitattributes", *list_model_files(layout)])
        assert {e.path for e in entries if e.__class__.__name__ == "RepoFolder"} == {"samples"}
        top = sorted(e.path for e in api.list_repo_tree(REPO))
        assert "samples" in top and "samples/prompts.json" not in top
        request = urllib.request.Request(f"{hub.url}/{REPO}/resolve/main/model.safetensors",
                                         headers={"Range": "bytes=10-19"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 206 and response.read() == read(layout, "model.safetensors")[10:20]
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{hub.url}/{REPO}/resolve/main/nothing.txt", timeout=10)
        assert caught.value.code == 404 and caught.value.headers["X-Error-Code"] == "EntryNotFound"


def test_snapshot_is_checked_when_the_tree_listing_fails(layout, local_hub, online, tmp_path, monkeypatch):
    """The trap: with /tree answering 404, snapshot_download returns a partial snapshot WITHOUT raising."""
    from huggingface_hub import constants

    cache = tmp_path / "cache"
    push_model_folder(layout, REPO, endpoint=local_hub.url, token=False)
    local_hub.disabled_routes.add("tree")
    # What from_pretrained does first: fetch config.json alone (this records refs/main and a snapshot folder).
    hf_hub_download(REPO, "config.json", cache_dir=cache, endpoint=local_hub.url, token=False)
    partial = snapshot_download(REPO, cache_dir=cache, endpoint=local_hub.url, token=False)
    assert os.listdir(partial) == ["config.json"]  # no error, and no processor files, no weights
    with pytest.raises(IncompleteModelFolderError) as caught:
        download_model_folder(REPO, cache_dir=cache, endpoint=local_hub.url, token=False)
    assert "file listing" in str(caught.value) and "no processor_config.json" in str(caught.value)

    local_hub.disabled_routes.discard("tree")
    folder = download_model_folder(REPO, cache_dir=cache, endpoint=local_hub.url, token=False)
    assert list_model_files(folder) == list_model_files(layout)
    assert all(read(folder, name) == read(layout, name) for name in list_model_files(layout))

    # Offline, with the server gone: the same folder from the cache, checked against the cached listing.
    local_hub.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert download_model_folder(REPO, cache_dir=cache, token=False) == folder
    os.remove(os.path.join(folder, "processor_config.json"))  # a damaged cache is reported, not returned
    with pytest.raises((IncompleteModelFolderError, IncompleteSnapshotError), match="processor_config.json"):
        download_model_folder(REPO, cache_dir=cache, token=False)


def test_server_stops_by_itself_and_listens_on_loopback():
    hub = LocalHubServer(max_seconds=0.3).start()
    assert hub.url.startswith("http://127.0.0.1:")
    port = hub.url.rsplit(":", 1)[1]
    deadline = time.monotonic() + 10
    while hub.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not hub.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/whoami-v2", timeout=2)
    hub.stop()  # idempotent
