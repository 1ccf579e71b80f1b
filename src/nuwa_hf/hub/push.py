"""Push a whole NUWA model folder to the Hugging Face Hub, and check what arrived.

    >>> from nuwa_hf.hub import push_model_folder
    >>> url = push_model_folder("checkpoints/nuwa-tiny", "my-org/nuwa-tiny")    # commit URL (a str)

Three ways to share, and what each uploads:

* :func:`push_model_folder` (and ``nuwa-hf push``): the folder as it is on disk, in one commit: the NUWA config and
  weights (VQ-GANs inside), generation config, the processor files, checksums and the README.md model card. It
  first checks that the folder is complete (:func:`~nuwa_hf.hub.model_folder.check_model_folder`), and afterwards
  that every file arrived with the same size and hash (:func:`verify_remote_folder`). This is the way to publish a
  checkpoint.
* ``model.push_to_hub(repo_id)``: what ``model.save_pretrained`` writes: config.json, model.safetensors (with the
  VQ-GANs), generation_config.json, checksums.json, plus a short card (``library_name: nuwa-hf``) when the repo has
  none. The model is complete; pipelines also need the processor files.
* ``processor.push_to_hub(repo_id)`` (transformers): the tokenizer and processor files.

``model.push_to_hub`` followed by ``processor.push_to_hub`` to one repo gives a loadable repo in two commits, with a
short card; ``push_model_folder`` gives it in one commit with the folder's card.

Each of the three takes ``remote_code="my-org/nuwa-hf-code"``: the uploaded config.json and processor_config.json
then name that code repository's classes (published with :func:`nuwa_hf.hub.push_code`), so the repository also loads
with ``trust_remote_code=True`` where nuwa-hf is not installed. The folder on disk is not changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Optional

from .model_folder import IGNORE_PATTERNS, check_model_folder, file_digests, list_model_files
from .transport import HubUnreachableError, check_online, transport_errors

logger = logging.getLogger(__name__)

DEFAULT_COMMIT_MESSAGE = "Upload NUWA model folder (model, VQ-GANs, processor, model card)"


class HubPushVerificationError(RuntimeError):
    """After a push, the repository does not hold the folder's files as they are on disk."""

    def __init__(self, repo_id: str, revision: str, problems: list[str]):
        self.repo_id, self.revision, self.problems = repo_id, revision, list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"The push to {repo_id}@{revision} is incomplete or corrupted:\n{lines}")



def verify_remote_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    revision: Optional[str] = None,
    token: Optional[str | bool] = None,
    endpoint: Optional[str] = None,
    files: Optional[list[str]] = None,
) -> list[str]:
    """Compare the repo at ``revision`` with the model files of ``folder`` (one tree listing, no download).

    A regular file must have the same git blob id; an LFS / Xet file the same sha256 (the Hub keeps the pointer's id
    as the blob id); both the same size. Files the repo has beyond the folder's are not problems.

    Returns:
        The problems found, one line each (empty when the repo holds every file as it is on disk).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=endpoint, token=token)
    remote = {entry.path: entry for entry in api.list_repo_tree(repo_id, recursive=True, revision=revision)
              if isinstance(entry, RepoFile)}
    problems = []
    for name in files if files is not None else list_model_files(folder):
        entry = remote.get(name)
        if entry is None:
            problems.append(f"{name}: not in the repository")
            continue
        size, sha1, sha256 = file_digests(Path(folder) / name)
        if entry.size != size:
            problems.append(f"{name}: {entry.size} bytes in the repository, {size} on disk")
        elif entry.lfs is not None:
            if entry.lfs.sha256 != sha256:
                problems.append(f"{name}: LFS sha256 {entry.lfs.sha256} differs from the file's {sha256}")
        elif entry.blob_id != sha1:
            problems.append(f"{name}: blob id {entry.blob_id} differs from the file's {sha1}")
    return problems


@contextlib.contextmanager
def _staged_with_code_references(folder, files: list[str], remote_code: str):
    """A temporary copy of the folder's ``files`` (weights hard-linked where possible) whose config.json and
    processor_config.json name ``remote_code``'s classes."""
    from .code_repo import point_folder_to_code

    with tempfile.TemporaryDirectory(prefix="nuwa-hf-push-") as staging:
        for name in files:
            target = Path(staging, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(Path(folder, name), target)
            except OSError:
                shutil.copy2(Path(folder, name), target)
        point_folder_to_code(staging, remote_code)  # atomic replaces: the linked originals are not written
        yield staging


def push_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: Optional[str | bool] = None,
    private: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    commit_description: Optional[str] = None,
    revision: Optional[str] = None,
    delete_stale: bool = False,
    verify: bool = True,
    require_sketch_vqgan: bool = False,
    endpoint: Optional[str] = None,
    remote_code: Optional[str] = None,
):
    """Upload a complete NUWA model folder (model, VQ-GANs, processor, model card) to a Hub model repository.

    Uses the real ``huggingface_hub`` client: ``create_repo(exist_ok=True)``, ``create_branch`` (for a
    ``revision`` other than main), then ``upload_folder``. Files that did not change are skipped by the client;
    when nothing changed no commit is made and the URL of the current head is returned.

    Args:
        folder: the model folder (see :mod:`nuwa_hf.hub.model_folder` for the layout).
        repo_id: ``"owner/name"`` (or ``"name"`` for the token's own namespace).
        token: Hub token; default ``HF_TOKEN`` or the saved login.
        private: create the repo private (ignored when it exists).
        commit_message, commit_description: of the commit.
        revision: the branch to push to (created from main when missing); default main.
        delete_stale: also delete the repo's files that are not in the folder (e.g. shards of an older save), in
            the same commit. ``.gitattributes`` is always kept.
        verify: after the upload, list the repo and check that each file arrived with its size and hash.
        require_sketch_vqgan: fail (instead of warning) when the model has no sketch VQ-GAN.
        endpoint: Hub URL; default ``HF_ENDPOINT`` (read when huggingface_hub is imported) or huggingface.co.
        remote_code: a code repository published with :func:`~nuwa_hf.hub.push_code`: the uploaded config.json and
            processor_config.json name its classes (``auto_map``, ``custom_pipelines``); the folder is not changed.

    Returns:
        The commit URL (a ``huggingface_hub.CommitInfo``, which is a ``str``; ``.oid`` and ``.repo_url`` too).

    Raises:
        IncompleteModelFolderError: the folder lacks config, weights, processor files or the VQ-GAN (all listed).
        huggingface_hub.errors.OfflineModeIsEnabled: HF_HUB_OFFLINE is set.
        huggingface_hub.errors.HfHubHTTPError: the Hub refused a request (auth, permissions, ...).
        HubUnreachableError: the endpoint could not be reached (a ``ConnectionError``).
        HubPushVerificationError: ``verify`` found files missing or different after the push.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import validate_repo_id

    report = check_model_folder(folder, require_sketch_vqgan=require_sketch_vqgan)
    for remark in report.warnings:
        warnings.warn(f"{folder}: {remark}", UserWarning, stacklevel=2)
    validate_repo_id(repo_id)
    check_online()
    if remote_code:
        with _staged_with_code_references(folder, report.files, remote_code) as staged:
            return push_model_folder(
                staged, repo_id, token=token, private=private, commit_message=commit_message,
                commit_description=commit_description, revision=revision, delete_stale=delete_stale, verify=verify,
                require_sketch_vqgan=require_sketch_vqgan, endpoint=endpoint)

    api = HfApi(endpoint=endpoint, token=token)
    try:
        repo_url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        repo_id = repo_url.repo_id
        if revision is not None and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        logger.info("Uploading %d files of %s to %s", len(report.files), folder, repo_id)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            revision=revision,
            commit_message=commit_message,
            commit_description=commit_description,
            ignore_patterns=list(IGNORE_PATTERNS),
            delete_patterns="*" if delete_stale else None,
        )
    except transport_errors() as error:
        raise HubUnreachableError(f"Could not reach the Hub at {api.endpoint}: {error}") from error
    if verify:
        problems = verify_remote_folder(folder, repo_id, revision=commit.oid or revision, token=token,
                                        endpoint=endpoint, files=report.files)
        if problems:
            raise HubPushVerificationError(repo_id, commit.oid or revision or "main", problems)
    return commit
