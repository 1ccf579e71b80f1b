"""Reaching the Hub: the errors and checks every upload shares (model folders, processors, the code repository)."""

from __future__ import annotations


class HubUnreachableError(ConnectionError):
    """The Hub endpoint could not be reached (connection refused, DNS, timeout, proxy)."""


def transport_errors() -> tuple:
    """The HTTP client's network-error base class (httpx2 in huggingface_hub 2.x, httpx before)."""
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        return (module.TransportError,)
    return ()


def check_online() -> None:
    """Refuse an upload at once, with the reason, when huggingface_hub is in offline mode."""
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    if constants.is_offline_mode():
        raise OfflineModeIsEnabled(
            "HF_HUB_OFFLINE is set, so nothing can be pushed: unset it (huggingface_hub reads it when it is first "
            "imported, so set it before starting Python)."
        )
