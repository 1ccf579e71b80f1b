"""The I2I evaluation gives the completion only the known part: the held-out picture with the region (the bottom
half) black. With the whole picture as input the VQ-GAN encoder carries the region's own pixels into the kept tokens
beside it, and the completion is scored partly on what it was shown (benchmarks/README.md, "Completing from the known
part alone")."""

import numpy as np

from nuwa_hf.data.task_examples import task_examples


def test_i2i_inputs_show_the_known_half_and_black_where_the_completion_goes(world_cache):
    ex = task_examples("nuwa-image-completion", 6, 32, 1, split="test", seed=0)
    assert ex.inputs["mask"] == ["bottom half"] * 6
    given = np.stack([np.asarray(image) for image in ex.inputs["image"]])  # (6, 32, 32, 3)
    references = np.asarray(ex.references)
    assert np.all(given[:, 16:] == 0), "the region is black in the input"
    assert np.array_equal(given[:, :16], references[:, :16]), "the known half is the held-out picture's"
    assert (references[:, 16:].max(axis=(1, 2, 3)) > 60).all(), "the references keep their bottom halves (digits)"


def test_whole_picture_gives_the_earlier_protocol_for_comparisons(world_cache):
    whole = task_examples("nuwa-image-completion", 4, 32, 1, split="test", seed=0, whole_picture=True)
    known = task_examples("nuwa-image-completion", 4, 32, 1, split="test", seed=0)
    assert np.array_equal(np.stack([np.asarray(i) for i in whole.inputs["image"]]), np.asarray(whole.references))
    assert np.array_equal(np.asarray(whole.references), np.asarray(known.references))
