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


def push_saved(obj, repo_id: str, *, remote_code: Optional[str] = None, commit_message: Optional[str] = None,
               commit_description: Optional[str] = None, private: Optional[bool] = None,
               token: Optional[str | bool] = None, revision: Optional[str] = None, create_pr: bool = False,
               **save_kwargs):
    """``obj.push_to_hub`` for the model and the processor: ``obj.save_pretrained`` into a temporary folder (with
    ``remote_code``), then one commit to ``repo_id`` (created when missing). A card the repository already has is
    kept; otherwise the folder's card (``library_name: nuwa-hf``) is uploaded. Returns the ``CommitInfo``."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory() as work:
        obj.save_pretrained(work, remote_code=remote_code, **save_kwargs)
        if api.file_exists(repo_id, CARD, revision=revision):
            os.remove(os.path.join(work, CARD))
        else:
            os.remove(os.path.join(work, CARD))
            write_model_card(work, remote_code=remote_code, source=repo_id)
        return api.upload_folder(
            repo_id=repo_id, folder_path=work, commit_message=commit_message or f"Upload {type(obj).__name__}",
            commit_description=commit_description, revision=revision, create_pr=create_pr,
        )
