"""Sharing NUWA model folders through the Hugging Face Hub.

    >>> from nuwa_hf.hub import push_model_folder, download_model_folder
    >>> push_model_folder("checkpoints/nuwa-tiny", "my-org/nuwa-tiny")          # the whole folder, one commit
    >>> folder = download_model_folder("my-org/nuwa-tiny")                      # complete snapshot, checked

Then, anywhere (``import nuwa_hf`` registers the classes; without it, pass ``trust_remote_code=True``):

    >>> AutoModelForSeq2SeqLM.from_pretrained("my-org/nuwa-tiny")               # with its VQ-GANs inside
    >>> NuwaProcessor.from_pretrained("my-org/nuwa-tiny")                       # tokenizer + image processor
    >>> pipeline("nuwa-text-to-image", model="my-org/nuwa-tiny")

``tests/support/local_hub_server.py`` holds a small Hub-compatible server on 127.0.0.1 that the tests push to
and load from with the real client (see its docstring for what it does not cover).
"""

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
    HubUnreachableError,
    push_model_folder,
    verify_remote_folder,
)

__all__ = [
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
