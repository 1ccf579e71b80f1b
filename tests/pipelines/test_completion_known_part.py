"""Image completion from the known part alone: ``blank_region`` blacks the region out before the VQ-GAN encodes the
picture (as diffusers' inpainting blanks the masked image), so what lies under the region cannot reach the output;
``regenerate_border`` also samples the ring of tokens around the region (encoded seeing the region's edge), while the
input's pixels outside the region are still pasted back (docs/pilot_study.md, "Completing from the known part
alone")."""

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf.pipelines.regions import blank_pixels, grow_token_mask

SIZE = 16  # the tiny model: 16 px, 4x4 tokens of 4 px; "bottom half" = token rows 2-3 = pixel rows 8-15


def picture(seed, bottom_from=None):
    """A random picture; with ``bottom_from`` its bottom half (rows 8..15) is that seed's instead."""
    array = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    if bottom_from is not None:
        array[SIZE // 2:] = np.random.default_rng(bottom_from).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)[8:]
    return PIL.Image.fromarray(array)


@pytest.fixture
def complete(tiny_model_folder):
    pipe = pipeline("nuwa-image-completion", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_grow_token_mask_adds_a_ring_clipped_to_the_grid():
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[3, 3] = True
    assert torch.equal(grow_token_mask(mask, 0), mask)
    grown = grow_token_mask(mask, 1)
    assert grown[2:, 2:].all() and int(grown.sum()) == 4  # the corner's ring: 3 neighbours inside the grid
    assert int(grow_token_mask(mask, 2).sum()) == 9
    with pytest.raises(ValueError, match="border must be a whole number of tokens"):
        grow_token_mask(mask, -1)


def test_blank_pixels_blacks_out_exactly_the_region_cells():
    pixels = torch.rand(1, 1, 3, SIZE, SIZE) * 2 - 1
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[2:, 1] = True  # token column 1 of the bottom half: pixels rows 8..15, columns 4..7
    out = blank_pixels(pixels, mask)
    assert torch.all(out[..., 8:, 4:8] == -1)
    region = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    region[8:, 4:8] = True
    assert torch.equal(out[..., ~region], pixels[..., ~region])


def test_blank_region_makes_the_output_independent_of_what_lies_under_the_region(complete):
    a, b = picture(0), picture(0, bottom_from=1)  # the same known (top) half, different pixels under the region
    same = [complete(p, mask="bottom half", seed=3, blank_region=True, output_type="np") for p in (a, b)]
    assert np.array_equal(same[0], same[1])
    # encoded as given, the region's pixels reach the kept tokens (the VQ-GAN's receptive field crosses cells)
    leaky = [complete(p, mask="bottom half", seed=3, blank_region=False, output_type="tokens") for p in (a, b)]
    assert not torch.equal(torch.as_tensor(leaky[0]), torch.as_tensor(leaky[1]))
    # blanking in the pipeline is the same as giving the picture with the region already black
    black = np.asarray(a).copy()
    black[SIZE // 2:] = 0
    given_black = complete(PIL.Image.fromarray(black), mask="bottom half", seed=3, blank_region=False,
                           output_type="np")
    assert np.array_equal(same[0], given_black)


def test_regenerate_border_samples_the_ring_and_keeps_the_pixels_outside_the_region(complete):
    image = picture(2)
    kept = complete(image, mask="bottom half", seed=0, regenerate_border=0, output_type="tokens")  # (4, 4)
    ringed = complete(image, mask="bottom half", seed=0, regenerate_border=1, output_type="tokens",
                      num_outputs_per_input=6)
    ringed = [torch.as_tensor(t) for t in ringed]
    kept = torch.as_tensor(kept)
    for tokens in ringed:  # above the ring (token row 0) the known tokens are kept
        assert torch.equal(tokens[0], kept[0])
    assert any(not torch.equal(tokens[1], kept[1]) for tokens in ringed), "the ring row (token row 1) is sampled"
    # the pixels outside the region, beyond the 2-pixel seam, are still the input's own (rows 0..5)
    for output in complete(image, mask="bottom half", seed=0, regenerate_border=1, num_outputs_per_input=3):
        assert np.array_equal(np.asarray(output)[:6], np.asarray(image)[:6])


def test_by_default_the_region_is_blanked_and_regenerated_alone(complete):
    """The ring is an option, not the default (it loses the known part's colour: benchmarks/README.md)."""
    assert (complete.default_blank_region, complete.default_regenerate_border) == (True, 0)
    image = picture(4)
    explicit = complete(image, seed=1, output_type="np", blank_region=True, regenerate_border=0)
    assert np.array_equal(complete(image, seed=1, output_type="np"), explicit)
    other = complete(picture(4, bottom_from=5), seed=1, output_type="np")  # another bottom half: the same output
    assert np.array_equal(complete(image, seed=1, output_type="np"), other)
    as_before = complete(image, seed=1, output_type="np", blank_region=False)
    assert not np.array_equal(as_before, explicit)
    assert not np.array_equal(complete(image, seed=1, output_type="np", regenerate_border=1), explicit)


@pytest.mark.parametrize("options, error, words", [
    ({"blank_region": "yes"}, TypeError, "blank_region must be True or False"),
    ({"regenerate_border": -1}, ValueError, "regenerate_border is a number of token rows / columns"),
    ({"regenerate_border": 1.5}, ValueError, "regenerate_border is a number of token rows / columns"),
    ({"regenerate_border": True}, ValueError, "regenerate_border is a number of token rows / columns"),
])
def test_bad_values_are_named(complete, options, error, words):
    with pytest.raises(error, match=words):
        complete(picture(0), **options)
