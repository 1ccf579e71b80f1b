"""Sharing NUWA model folders through the Hugging Face Hub.

    >>> from nuwa_hf.hub import push_model_folder, download_model_folder
    >>> push_model_folder("checkpoints/nuwa-tiny", "my-org/nuwa-tiny")          # the whole folder, one commit
    >>> folder = download_model_folder("my-org/nuwa-tiny")                      # complete snapshot, checked

Then, anywhere nuwa-hf is installed (``import nuwa_hf`` registers the classes; no ``trust_remote_code``):

    >>> AutoModelForSeq2SeqLM.from_pretrained("my-org/nuwa-tiny")               # with its VQ-GANs inside
    >>> NuwaProcessor.from_pretrained("my-org/nuwa-tiny")                       # tokenizer + image processor
    >>> pipeline("nuwa-text-to-image", model="my-org/nuwa-tiny")

Model folders hold data only. For people who cannot install nuwa-hf, the code is published once per version to one
code repository (:func:`push_code`, ``nuwa-hf push-code``), and a model repository points at it when asked
(``push_model_folder(..., remote_code="my-org/nuwa-hf-code")``, ``model.push_to_hub(..., remote_code=...)``); then
``trust_remote_code=True`` loads it without the package (see :mod:`nuwa_hf.hub.code_repo`).

``tests/support/local_hub_server.py`` holds a small Hub-compatible server on 127.0.0.1 that the tests push to
and load from with the real client (see its docstring for what it does not cover).
"""

from .code_repo import CodeBuildError, build_code_folder, code_references, point_folder_to_code, push_code
from .download import download_model_folder, snapshot_problems
from .model_folder import (
    IGNORE_PATTERNS,
    IncompleteModelFolderError,
    ModelFolderReport,
    check_model_folder,
    list_model_files,
)
from .push import (
    DEFAULT_COMMIT_MESSAGE,
    HubPushVerificationError,
    push_model_folder,
    verify_remote_folder,
)
from .transport import HubUnreachableError

__all__ = [
    "CodeBuildError",
    "build_code_folder",
    "code_references",
    "point_folder_to_code",
    "push_code",
    "DEFAULT_COMMIT_MESSAGE",
    "HubPushVerificationError",
    "HubUnreachableError",
    "IGNORE_PATTERNS",
    "IncompleteModelFolderError",
    "ModelFolderReport",
    "check_model_folder",
    "download_model_folder",
    "list_model_files",
    "push_model_folder",
    "snapshot_problems",
    "verify_remote_folder",
]
