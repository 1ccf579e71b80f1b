"""Issue 28 item 4b: the region to regenerate, as a user writes it in Python and on the command line.

One parser reads the text form in both places (nuwa_hf.pipelines.regions.parse_region_text), and one rule reads a box
(left, top, right, bottom): all four values in [0, 1] are fractions of the frame, any value above 1 makes the whole box
pixels. The tiny folder's images are 16x16 pixels on a 4x4 token grid.
"""

import numpy as np
import PIL.Image
import pytest
import torch

from nuwa_hf.commands.base import CommandError
from nuwa_hf.commands.generate import parse_mask
from nuwa_hf.pipelines.regions import REGION_SHORTCUTS, parse_region_text, region_to_token_mask

SIZE = 16


@pytest.fixture(scope="module")
def completion(pipes):
    return pipes("nuwa-image-completion")


def random_image(seed=0):
    return PIL.Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


def tokens(completion, region, size=(SIZE, SIZE)):
    return region_to_token_mask(region, size, completion.token_grid(), completion.processor.image_processor)


def rows(mask):
    """A token mask as text rows, e.g. ['....', '....', '####', '####'] (readable in a failed assert)."""
    return ["".join("#" if v else "." for v in row) for row in mask.tolist()]


ALL, BOTTOM = ["####"] * 4, ["...."] * 2 + ["####"] * 2


@pytest.mark.parametrize("region, expected", [
    ("0,0,1,1", ALL),                       # what the user typed: the whole image, not "Unknown region"
    ("0,0.5,1,1", BOTTOM),                  # the CLI's documented example, now in Python too
    (" (0, 0.5, 1, 1) ", BOTTOM),           # spaces and brackets are fine
    ("0 0.5 1 1", BOTTOM),
    ((0, 0, 1, 1), ALL),                    # ints all in [0, 1]: fractions (it was a 1-pixel box)
    ((0.0, 0.0, 1.0, 1.0), ALL),
    ([0, 0.5, 1, 1], BOTTOM),
    ((np.int64(0), np.float32(0.5), 1, 1), BOTTOM),  # numpy numbers count as numbers
    ((0, 8, 16, 16), BOTTOM),               # a value above 1: pixels
    ("0,8,16,16", BOTTOM),
    ((0.0, 8.0, 16.0, 16.0), BOTTOM),       # floats above 1 are pixels too: the rule looks at values, not types
    ((0, 0, 4, 4), ["#...", "....", "....", "...."]),  # a pixel box of one token cell
    ((0.5, 0, 4, 4), ["#...", "....", "....", "...."]),  # ambiguous mix: any value > 1 -> all pixels (0.5 px)
    ((0, 0, 2, 2), ["#...", "....", "....", "...."]),  # a part of a cell covers the cell
    ((0, 0, 0.25, 0.25), ["#...", "....", "....", "...."]),  # fractions: a quarter of each side
    ("bottom half", BOTTOM),
])
def test_box_rule_and_text_form(completion, region, expected):
    assert rows(tokens(completion, region)) == expected


def test_fractions_scale_with_the_image_and_pixels_do_not(completion):
    # A 32x32 input: fractions still cover the same part; a pixel box covers pixels of the input image.
    assert rows(tokens(completion, (0, 0.5, 1, 1), size=(32, 32))) == BOTTOM
    assert rows(tokens(completion, (0, 16, 32, 32), size=(32, 32))) == BOTTOM
    assert rows(tokens(completion, (0, 0, 8, 8), size=(32, 32))) == ["#...", "....", "....", "...."]


def test_the_first_pixel_alone_is_given_as_fractions_or_a_mask(completion):
    # (0, 0, 1, 1) reads as the whole image, so the documented way to one pixel is fractions (or a mask array).
    assert rows(tokens(completion, (0, 0, 1 / SIZE, 1 / SIZE))) == ["#...", "....", "....", "...."]
    one_pixel = np.zeros((SIZE, SIZE), dtype=bool)
    one_pixel[0, 0] = True
    assert rows(tokens(completion, one_pixel)) == ["#...", "....", "....", "...."]


def test_the_users_call_regenerates_the_whole_image(completion):
    image = random_image()
    ours = completion(image, mask="0,0,1,1", seed=0, output_type="np")
    assert np.array_equal(ours, completion(image, mask=(0, 0, 1, 1), seed=0, output_type="np"))
    assert np.array_equal(ours, completion(image, mask="all", seed=0, output_type="np"))


@pytest.mark.parametrize("text", ["0,0.5,1,1", "0,0,1,1", "0,8,16,16", "0.0,0.5,1.0,1.0", "bottom half", "top left"])
def test_cli_and_python_read_the_text_the_same_way(text):
    assert parse_mask(text) == parse_region_text(text)


def test_unknown_region_names_the_accepted_forms(completion):
    with pytest.raises(ValueError, match="Unknown region 'the cat'") as error:
        completion(random_image(), mask="the cat")
    for form in (*REGION_SHORTCUTS, "0,0.5,1,1", "fractions", "pixels", "mask image"):
        assert form in str(error.value), form


@pytest.mark.parametrize("region, message", [
    ("1,2", "has 2 number"),
    ("0,0,1,1,1", "has 5 number"),
    ((0, 0, 100, 100), r"read as pixels\) does not fit the 16x16 image"),
    ((0.5, 0.5, 0.5, 1), r"read as fractions of the frame\) does not fit"),
    ((0, 0, float("nan"), 1), "NaN"),
    ((1, 2, 3), "got 3 numbers"),
])
def test_bad_boxes_say_what_is_wrong(completion, region, message):
    with pytest.raises(ValueError, match=message):
        completion(random_image(), mask=region)


def test_cli_refuses_a_box_of_the_wrong_length():
    with pytest.raises(CommandError, match="--mask '1,2': The region '1,2' has 2 number"):
        parse_mask("1,2")


def test_a_token_mask_drawn_at_pixel_size():
    from nuwa_hf.pipelines.regions import token_mask_to_pixels

    tokens = np.array([[True, False], [False, False]])
    pixels = token_mask_to_pixels(torch.from_numpy(tokens), (8, 4))  # (width, height)
    assert pixels.shape == (4, 8) and pixels[:2, :4].all() and pixels.sum() == 8
    with pytest.raises(ValueError, match="token grid"):
        token_mask_to_pixels(tokens, (5, 4))


def test_a_black_and_white_mask_saved_in_rgb_reads_as_its_greys(pipes, tmp_path):
    """Paint programs save a black-and-white mask as RGB; it used to be refused ('mode RGB ... mask.convert('L')'),
    which a command-line user cannot do. Greys in RGB read as the same mask in mode L; real colours are refused."""
    generate = pipes("nuwa-image-completion")
    grey = np.zeros((SIZE, SIZE), dtype=np.uint8)
    grey[SIZE // 2:] = 255
    PIL.Image.fromarray(np.stack([grey] * 3, axis=-1), mode="RGB").save(tmp_path / "mask.png")
    assert rows(tokens(generate, str(tmp_path / "mask.png"))) == BOTTOM
    image = random_image(3)
    via_rgb = generate(image, mask=str(tmp_path / "mask.png"), seed=0, output_type="tokens")
    assert torch.equal(via_rgb, generate(image, mask=PIL.Image.fromarray(grey, mode="L"), seed=0, output_type="tokens"))
    red = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    red[SIZE // 2:, :, 0] = 255
    with pytest.raises(ValueError, match="mode 'RGB' with colours other than greys.*Paint the region white on black"):
        generate(image, mask=PIL.Image.fromarray(red, mode="RGB"))  # (in grayscale this red is 76: not regenerated)


def test_a_mask_of_the_images_shape_at_another_size_is_scaled_and_other_shapes_refused(pipes, tmp_path):
    """A user draws the mask at another size than the picture (at the model's 16x16 for a 64x64 photo, or larger, with
    a soft brush) and exports it from a paint program (RGBA, opaque). Such a mask with the picture's shape regenerates
    what the same mask at the picture's size does; a mask of another shape, and one with transparent pixels (strokes on
    a layer, or holes to fill?), are refused with the fix."""
    generate = pipes("nuwa-image-completion")
    image = random_image(5).resize((4 * SIZE, 4 * SIZE), PIL.Image.NEAREST)  # 64x64 picture
    full = np.zeros((4 * SIZE, 4 * SIZE), dtype=np.uint8)
    full[40:, 8:] = 255  # bottom right part, in pixels of the picture
    small = PIL.Image.fromarray(full).resize((SIZE, SIZE), PIL.Image.NEAREST)  # the same mask at 16x16
    small.save(tmp_path / "small.png")
    expected = tokens(generate, PIL.Image.fromarray(full), (4 * SIZE, 4 * SIZE))
    assert torch.equal(tokens(generate, str(tmp_path / "small.png"), (4 * SIZE, 4 * SIZE)), expected)
    soft = PIL.Image.fromarray(full).resize((8 * SIZE, 8 * SIZE), PIL.Image.BICUBIC)  # 2x larger, soft edges
    soft.convert("RGBA").save(tmp_path / "soft.png")  # exported with an (opaque) alpha channel
    assert torch.equal(tokens(generate, str(tmp_path / "soft.png"), (4 * SIZE, 4 * SIZE)), expected)
    out = generate(image, mask=str(tmp_path / "small.png"), seed=0, output_type="tokens")
    assert torch.equal(out, generate(image, mask=PIL.Image.fromarray(full), seed=0, output_type="tokens"))
    with pytest.raises(ValueError, match=r"is 16x12 .* a different shape: resize the mask"):
        generate(image, mask=np.ones((12, 16), dtype=bool))
    layer = np.zeros((4 * SIZE, 4 * SIZE, 4), dtype=np.uint8)
    layer[..., :3] = 255
    layer[40:, :, 3] = 255  # white strokes on a transparent layer
    with pytest.raises(ValueError, match="transparent pixels"):
        generate(image, mask=PIL.Image.fromarray(layer, mode="RGBA"))
