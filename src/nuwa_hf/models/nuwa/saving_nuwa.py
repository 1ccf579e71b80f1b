"""What ``save_pretrained`` writes besides transformers' files, and ``push_to_hub`` for the model and the processor.

A model folder holds data only: config.json, model.safetensors, generation_config.json, the processor files, the
checksum manifest (:func:`~.loading_nuwa.write_checksum_manifest`) and a model card, ``README.md``, written here when
the folder has none, whose metadata names the library (``library_name: nuwa-hf``) and the task (``pipeline_tag``), so
the Hub shows how to load it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

CARD = "README.md"
LIBRARY_NAME = "nuwa-hf"
PIPELINE_TAG = "text-to-image"
CARD_TAGS = ["nuwa", "nuwa-hf", "text-to-video", "video-prediction", "sketch-to-image", "image-to-image", "vq-gan"]

_CARD_TEXT = """
# NUWA model

A [NUWA](https://arxiv.org/abs/2111.12417) model (3D transformer encoder-decoder over VQ-GAN token grids, the VQ-GANs
inside) for eight visual synthesis tasks, saved by [nuwa-hf](https://pypi.org/project/nuwa-hf/). The folder holds data
only (config, safetensors weights, generation config, processor files, checksums); the code is the nuwa-hf package:

```python
# pip install nuwa-hf
import nuwa_hf  # registers NUWA with transformers
from transformers import pipeline

image = pipeline("nuwa-text-to-image", model="{source}")("a red 7", seed=0)
```
{remote}"""

_REMOTE_TEXT = """
Without the package, its code comes from the code repository `{code_repo}` that config.json names:
`AutoModelForSeq2SeqLM.from_pretrained("{source}", trust_remote_code=True)`, or
`pipeline("nuwa-text-to-image", model="{source}", trust_remote_code=True)`.
"""


def write_model_card(folder: str | os.PathLike, *, remote_code: Optional[str] = None,
                     source: Optional[str] = None) -> Optional[Path]:
    """Write a short model card into ``folder`` unless it has one (a hand-written or rendered card is kept).
    Returns its path when written."""
    from huggingface_hub import ModelCard, ModelCardData

    path = Path(folder) / CARD
    if path.exists():
        return None
    source = source or "path/to/this/folder"
    data = ModelCardData(library_name=LIBRARY_NAME, pipeline_tag=PIPELINE_TAG, tags=list(CARD_TAGS))
    remote = _REMOTE_TEXT.format(code_repo=remote_code, source=source) if remote_code else ""
    text = f"---\n{data.to_yaml()}\n---\n" + _CARD_TEXT.format(source=source, remote=remote)
    ModelCard(text).save(str(path))
    return path


def push_saved(obj, repo_id: str, *, remote_code: Optional[str] = None, **options):
    """``obj.push_to_hub`` for the model and the processor: :func:`save_and_push` through a temporary folder.
    Returns the ``CommitInfo``."""
    with tempfile.TemporaryDirectory() as work:
        return save_and_push(obj, work, repo_id, remote_code=remote_code, **options)[1]


def save_and_push(obj, folder: str | os.PathLike, repo_id: Optional[str] = None, *,
                  remote_code: Optional[str] = None, commit_message: Optional[str] = None,
                  commit_description: Optional[str] = None, private: Optional[bool] = None,
                  token: Optional[str | bool] = None, revision: Optional[str] = None, create_pr: bool = False,
                  endpoint: Optional[str] = None, **save_kwargs):
    """``obj.save_pretrained(folder, push_to_hub=True)`` for the model and the processor, and the one upload path of
    both: ``obj.save_pretrained(folder, remote_code=remote_code)`` as without a push (whole or not at all, with its
    code references, checksum manifest and card), then one commit to ``repo_id`` (default: the folder's name; created
    when missing) of exactly the files that save wrote, so the Hub copy is the saved one. Other files of ``folder``
    are not sent. A card the repository already has is kept; a card the save wrote names ``repo_id`` as its source.

    Returns:
        ``(what save_pretrained returned, the CommitInfo)``.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    folder = Path(folder)
    api = HfApi(endpoint=endpoint, token=token)
    repo_id = api.create_repo(repo_id or folder.resolve().name, private=private, exist_ok=True).repo_id
    before = _file_states(folder)
    saved = obj.save_pretrained(folder, remote_code=remote_code, **save_kwargs)
    written = sorted(name for name, state in _file_states(folder).items() if before.get(name) != state)
    if revision is not None and not revision.startswith("refs/pr"):
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    if CARD in written:
        (folder / CARD).unlink()
        write_model_card(folder, remote_code=remote_code, source=repo_id)
        if api.file_exists(repo_id, CARD, revision=revision):
            written.remove(CARD)
    commit = api.create_commit(
        repo_id=repo_id, operations=[CommitOperationAdd(name, str(folder / name)) for name in written],
        commit_message=commit_message or f"Upload {type(obj).__name__}", commit_description=commit_description,
        revision=revision, create_pr=create_pr,
    )
    return saved, commit


def _file_states(folder: Path) -> dict:
    """``{relative path: (inode, size, mtime in ns)}`` of the files below ``folder`` (a save replaces files whole,
    so a file it wrote has a new inode or time)."""
    states = {}
    for path in folder.rglob("*") if folder.is_dir() else ():
        if path.is_file():
            stat = path.stat()
            states[path.relative_to(folder).as_posix()] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return states
