"""Download a NUWA model repository and make sure the snapshot is complete.

``snapshot_download`` can return an INCOMPLETE snapshot without raising: when the Hub's file listing
(``/api/models/{id}/tree/{rev}``) fails (a proxy, a mirror without that route, a transient error), it falls back to
whatever is already cached for the revision, for instance the config.json and weights that ``from_pretrained`` fetched
one by one. Loading the processor from such a folder then fails with a misleading message, or silently comes back
without its VQ-GAN. :func:`download_model_folder` checks the snapshot against the cached listing and against the
model-folder layout, and says what is missing and why.

Works offline (``HF_HUB_OFFLINE=1`` or ``local_files_only=True``) from the cache filled by an earlier download.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..models.nuwa.loading_nuwa import snapshot_problems
from .model_folder import IncompleteModelFolderError, check_model_folder


def download_model_folder(
    repo_id_or_path: str | os.PathLike,
    *,
    revision: Optional[str] = None,
    token: Optional[str | bool] = None,
    cache_dir: Optional[str | os.PathLike] = None,
    local_files_only: bool = False,
    require_sketch_vqgan: bool = False,
    endpoint: Optional[str] = None,
) -> Path:
    """A complete local NUWA model folder for a local path or a Hub repo id (downloaded into the HF cache).

    Raises:
        IncompleteModelFolderError: the snapshot (or folder) lacks files; the message says whether the Hub's listing
            was available and how to fix it.
        huggingface_hub.errors.LocalEntryNotFoundError: offline and nothing cached for this revision.
        huggingface_hub.errors.RepositoryNotFoundError / RevisionNotFoundError: from the Hub.
    """
    if os.path.isdir(repo_id_or_path):
        check_model_folder(repo_id_or_path, require_sketch_vqgan=require_sketch_vqgan)
        return Path(repo_id_or_path)
    from huggingface_hub import snapshot_download

    repo_id = str(repo_id_or_path)
    snapshot = snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir,
                                 local_files_only=local_files_only, endpoint=endpoint)
    problems = snapshot_problems(snapshot, repo_id, revision=revision, cache_dir=cache_dir)
    if problems:
        raise IncompleteModelFolderError(snapshot, [
            *problems, f"re-download online: snapshot_download({repo_id!r}, force_download=True)"])
    try:
        check_model_folder(snapshot, require_sketch_vqgan=require_sketch_vqgan)
    except IncompleteModelFolderError as error:
        if problems is None:  # no listing: the snapshot may just be partial
            error.missing.append(
                "the Hub's file listing (/api/models/{id}/tree/{rev}) could not be fetched, so this snapshot holds "
                "only the files fetched one by one before: retry when the Hub answers, or download the missing "
                "files with hf_hub_download"
            )
            raise IncompleteModelFolderError(error.folder, error.missing) from None
        raise
    return Path(snapshot)
