"""What ``save_pretrained`` writes besides transformers' files, and ``push_to_hub`` for the model and the processor.

A model folder holds data only: config.json, model.safetensors, generation_config.json, the processor files, the
checksum manifest (:func:`~.loading_nuwa.write_checksum_manifest`) and a model card, ``README.md``, written here when
the folder has none, whose metadata names the library (``library_name: nuwa-hf``) and the task (``pipeline_tag``), so
the Hub shows how to load it. Its list of the prompt words the caption tokenizer knows is brought up to date by every
later save of the model or the processor into the folder, so the card is complete in either order of saving; a card
not written here (by hand, or rendered from a template) is never changed.
"""

from __future__ import annotations

import json
import os
import re
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


# The sentence that marks a card written by write_model_card (older ones included): only such a card is refreshed.
_CARD_SIGNATURE = "saved by [nuwa-hf](https://pypi.org/project/nuwa-hf/)"


def write_model_card(folder: str | os.PathLike, *, remote_code: Optional[str] = None,
                     source: Optional[str] = None) -> Optional[Path]:
    """Write a short model card into ``folder`` unless it has one (a hand-written or rendered card is kept).

    A card this function wrote earlier gets its prompt-word list (``## Prompt words``) brought up to date with the
    folder's caption tokenizer instead: the model and the processor each call this after their save, in either order,
    and the card written by the first of them must not lack the words of the tokenizer the second one brings. Returns
    the card's path when written or changed."""
    from huggingface_hub import ModelCard, ModelCardData

    path = Path(folder) / CARD
    if path.exists():
        return path if _refresh_words(path, folder) else None
    source = source or "path/to/this/folder"
    data = ModelCardData(library_name=LIBRARY_NAME, pipeline_tag=PIPELINE_TAG, tags=list(CARD_TAGS))
    remote = _REMOTE_TEXT.format(code_repo=remote_code, source=source) if remote_code else ""
    text = f"---\n{data.to_yaml()}\n---\n" + _CARD_TEXT.format(source=source, remote=remote) + _words_text(folder)
    ModelCard(text).save(str(path))
    return path


_WORDS_HEADING = "\n## Prompt words\n"
_WORDS_TEXT = _WORDS_HEADING + """
The words of its training captions (`caption_words` in tokenizer_config.json). The pipelines keep these in a prompt;
other words are named in a warning and left out.

{lines}
"""


def _words_text(folder: str | os.PathLike) -> str:
    """The card's list of the prompt words the folder's caption tokenizer knows; "" when the folder has no tokenizer
    yet (a model saved before its processor: the processor's save then adds the list)."""
    from ...hub.model_cards import folder_vocabulary

    vocabulary = folder_vocabulary(folder)
    if not vocabulary:
        return ""
    return _WORDS_TEXT.format(lines="\n".join(f"- {kind}: {words}" for kind, words in vocabulary))


def _refresh_words(path: Path, folder: str | os.PathLike) -> bool:
    """Put the folder's current prompt-word list into a card written by :func:`write_model_card` (replacing its
    ``## Prompt words`` section, or adding one). Other cards, and folders without a tokenizer, are left as they are.
    True when the card changed."""
    from ...file_io import atomic_write_text

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    words = _words_text(folder)
    if _CARD_SIGNATURE not in text or not words:
        return False
    start = text.find(_WORDS_HEADING)
    if start == -1:
        updated = text.rstrip("\n") + "\n" + words
    else:
        end = text.find("\n#", start + len(_WORDS_HEADING))  # the next heading, or the end of the card
        updated = text[:start] + words + (text[end:] if end != -1 else "")
    if updated == text:
        return False
    atomic_write_text(path, updated)
    return True


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


# --------------------------------------------------------------------------------------------------------------------
# References to the one code repository (published by nuwa_hf.hub.code_repo.push_code) that a folder names when asked


def version_folder(version: Optional[str] = None) -> str:
    """The code repository's folder of a version: ``"0.1.0"`` -> ``"v0_1_0"`` (a module path may hold no dots)."""
    if version is None:
        from ...version import __version__ as version
    return "v" + re.sub(r"[^0-9A-Za-z]", "_", str(version))


def flat_module_name(module: str) -> str:
    """``nuwa_hf.pipelines.text_to_image`` -> ``text_to_image``; a package -> its own name (``nuwa_hf.ops`` -> ``ops``)."""
    return module.rsplit(".", 1)[-1]


def pipeline_modules() -> dict:
    """Task name -> (module, class) of the eight task pipelines, from the task table (the pipelines themselves are
    not imported: publishing reads the package, it does not run it)."""
    from ...tasks import TASKS

    return {task.name: (task.pipeline_module, task.pipeline_class) for task in TASKS}


def code_references(code_repo: str, *, version: Optional[str] = None) -> dict:
    """The references a model folder writes to point at ``code_repo`` (the code of ``version``, default the installed
    one): ``{"auto_map": ..., "custom_pipelines": ..., "processor_auto_map": ..., "image_processor_auto_map": ...}``."""
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(code_repo)
    prefix = f"{code_repo}--{version_folder(version)}/"
    model = prefix + flat_module_name("nuwa_hf.models.nuwa.modeling_nuwa")
    processor = prefix + flat_module_name("nuwa_hf.processing.processing_nuwa") + ".NuwaProcessor"
    return {
        "auto_map": {"AutoConfig": prefix + flat_module_name("nuwa_hf.models.nuwa.configuration_nuwa") + ".NuwaConfig",
                     "AutoModel": model + ".NuwaModel", "AutoModelForSeq2SeqLM": model + ".NuwaForConditionalGeneration"},
        "custom_pipelines": {
            task: {"impl": f"{prefix}{flat_module_name(module)}.{cls}", "pt": ["AutoModelForSeq2SeqLM"], "tf": [],
                   "type": "multimodal"}
            for task, (module, cls) in sorted(pipeline_modules().items())},
        "processor_auto_map": {"AutoProcessor": processor},
        "image_processor_auto_map": {
            "AutoImageProcessor": prefix + flat_module_name("nuwa_hf.processing.image_processing_nuwa") + ".NuwaImageProcessor",
            "AutoProcessor": processor},
    }


def point_folder_to_code(folder: str | os.PathLike, code_repo: Optional[str], *, version: Optional[str] = None,
                         files: tuple = ("config.json", "processor_config.json")) -> list[str]:
    """Make a model folder's ``files`` (config.json: ``auto_map`` and ``custom_pipelines``; processor_config.json:
    ``auto_map``) name the classes of ``code_repo`` (the code of ``version``, default the installed one), or, with
    ``code_repo=None``, only drop every reference to code. Returns the files changed; weights, checksum manifest and
    card are not touched."""
    from ...file_io import atomic_write_json
    from .loading_nuwa import strip_code_references

    folder = Path(folder)
    changed = set(strip_code_references(folder, tuple(files) + ("tokenizer_config.json", "preprocessor_config.json")))
    references = code_references(code_repo, version=version) if code_repo else None
    for name in files if references else ():
        path = folder / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if name == "config.json":
            data.update(auto_map=references["auto_map"], custom_pipelines=references["custom_pipelines"])
        else:
            data["auto_map"] = references["processor_auto_map"]
            if isinstance(data.get("image_processor"), dict):
                data["image_processor"]["auto_map"] = references["image_processor_auto_map"]
        atomic_write_json(path, data)
        changed.add(name)
    return sorted(changed)
