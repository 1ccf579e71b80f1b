"""nuwa_hf.media's writers and the sketch colours: a GIF keeps every frame it is given, pictures drawn in the class
colours read back as class ids, enlarging is nearest neighbour."""

import numpy as np
import PIL.Image
import pytest

from nuwa_hf import media


def _frames(count=6, size=16, seed=0):
    return list(np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8))


def _durations(path):
    with PIL.Image.open(path) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        return durations


def test_a_gif_keeps_equal_frames_in_a_row(tmp_path):
    """Pillow's writer merges a frame equal to the one before it (6 frames read back as 5, durations summed); the
    package's GIF holds one frame per frame given, each showing 1000 / fps ms."""
    frames = _frames()
    frames[3] = frames[2].copy()
    frames[5] = frames[4].copy()
    path = media.save_gif(frames, tmp_path / "clip.gif", fps=4)
    assert _durations(path) == [250] * 6
    read = media.load_video(path)
    assert len(read) == 6
    assert np.array_equal(np.asarray(read[2]), np.asarray(read[3]))
    still = media.save_gif([frames[0]] * 4, tmp_path / "still.gif", fps=2)  # a video that never changes
    assert _durations(still) == [500] * 4
    # what Pillow's own writer does with the same frames (the behaviour worked around)
    pictures = [PIL.Image.fromarray(f) for f in frames]
    pictures[0].save(tmp_path / "pillow.gif", save_all=True, append_images=pictures[1:], duration=250, loop=0)
    assert len(media.load_video(tmp_path / "pillow.gif")) < 6


def test_gif_frames_match_pillows_writer_pixel_for_pixel(tmp_path):
    frames = _frames(3, 24, seed=1)  # distinct frames: Pillow's writer keeps them all
    media.save_gif(frames, tmp_path / "ours.gif", upscale=2)
    pictures = [media.upscaled(PIL.Image.fromarray(f), 2) for f in frames]
    pictures[0].save(tmp_path / "pillow.gif", save_all=True, append_images=pictures[1:], duration=250, loop=0,
                     optimize=False, disposal=2)
    ours, theirs = media.load_video(tmp_path / "ours.gif"), media.load_video(tmp_path / "pillow.gif")
    assert [f.size for f in ours] == [(48, 48)] * 3
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(ours, theirs))


def test_gif_loops_forever_or_plays_once(tmp_path):
    with PIL.Image.open(media.save_gif(_frames(2), tmp_path / "loop.gif")) as gif:
        assert gif.info["loop"] == 0 and gif.n_frames == 2
    with PIL.Image.open(media.save_gif(_frames(2), tmp_path / "once.gif", loop=False)) as gif:
        assert "loop" not in gif.info and gif.n_frames == 2
    with PIL.Image.open(media.save_gif(_frames(1), tmp_path / "one.gif")) as gif:
        assert gif.n_frames == 1


def test_save_result_writes_the_frames_given(tmp_path):
    frames = _frames(4)
    frames[1] = frames[0].copy()
    gif, strip = media.save_result(frames, tmp_path / "t2v", is_video=True, upscale=2)
    assert (gif.name, strip.name) == ("t2v.gif", "t2v.png")
    assert len(media.load_video(gif)) == 4 and PIL.Image.open(strip).size == ((4 * 16 + 3 * 2) * 2, 32)


def test_a_drawing_in_the_class_colours_reads_back_as_class_ids():
    classes = np.random.default_rng(0).integers(0, 6, (20, 30))
    picture = media.sketch_to_image(classes, num_classes=6)
    assert np.array_equal(media.drawing_to_class_map(picture, 6), classes)
    assert np.array_equal(media.class_palette(6), np.asarray(media.sketch_to_image(np.arange(6)[None], 6))[0])
    blurred = np.clip(np.asarray(picture).astype(int) + 9, 0, 255).astype(np.uint8)  # a resaved, shifted copy
    assert np.array_equal(media.drawing_to_class_map(blurred, 6), classes)
    white = np.full((4, 4, 3), 250, dtype=np.uint8)
    assert (media.drawing_to_class_map(white, 6, fill=2) == 2).all()  # an empty canvas is the fill class
    rgba = np.concatenate([np.asarray(picture), np.full((20, 30, 1), 255, dtype=np.uint8)], axis=-1)
    rgba[:5, ..., 3] = 0  # transparent rows: nothing drawn there
    read = media.drawing_to_class_map(PIL.Image.fromarray(rgba, mode="RGBA"), 6, fill=1)
    assert (read[:5] == 1).all() and np.array_equal(read[5:], classes[5:])
    big = np.zeros((700, 500, 3), dtype=np.uint8)  # past one chunk of 65,536 pixels (media._CHUNK_PIXELS)
    assert (media.drawing_to_class_map(big, 6) == 0).all()
    with pytest.raises(ValueError, match="fill=9"):
        media.drawing_to_class_map(white, 6, fill=9)


def test_a_sketch_file_drawn_in_colours_is_read_through_the_palette_when_asked(tmp_path):
    classes = np.zeros((16, 16), dtype=np.int64)
    classes[8:] = 1
    classes[4:8, 4:8] = 4
    media.sketch_to_image(classes, num_classes=6).save(tmp_path / "drawn.png")
    with pytest.raises(media.ColourSketchError, match="mode 'RGB'"):
        media.load_sketch_video(tmp_path / "drawn.png")
    assert np.array_equal(media.load_sketch_video(tmp_path / "drawn.png", num_classes=6), classes[None])
    PIL.Image.fromarray(classes.astype(np.uint8), mode="L").save(tmp_path / "ids.png")  # class ids stay class ids
    assert np.array_equal(media.load_sketch_video(tmp_path / "ids.png", num_classes=6), classes[None])


def painted_sketch(size=256, classes=6, supersample=4, colour=None):
    """A sketch as a person paints it in a paint program: the class colours of the model card's sketches, shapes drawn
    on a canvas ``supersample`` times larger and shrunk with Lanczos (anti-aliased edges). Grass over gravel (whose
    edge blends two colours whose midpoint is nearest a third class colour), a circle, a square across the edge and a
    triangle. Returns the RGB picture and the class ids the painter meant ``(size, size)`` (the same shapes drawn
    without anti-aliasing). ``colour``: {class: RGB} to paint some class in another colour."""
    import PIL.ImageDraw

    palette = {c: tuple(int(v) for v in rgb) for c, rgb in enumerate(media.class_palette(classes))}
    palette.update(colour or {})
    big = size * supersample
    picture = PIL.Image.new("RGB", (big, big), palette[1])
    ids = PIL.Image.new("L", (big, big), 1)
    for canvas, ink in ((PIL.ImageDraw.Draw(picture), palette), (PIL.ImageDraw.Draw(ids), {c: c for c in palette})):
        canvas.rectangle([0, big * 0.55, big, big], fill=ink[2])
        canvas.ellipse([big * 0.1, big * 0.1, big * 0.4, big * 0.4], fill=ink[3])
        canvas.rectangle([big * 0.6, big * 0.4, big * 0.85, big * 0.7], fill=ink[4])
        canvas.polygon([(big * 0.3, big * 0.6), (big * 0.12, big * 0.92), (big * 0.48, big * 0.92)], fill=ink[5])
    return (picture.resize((size, size), PIL.Image.LANCZOS),
            np.asarray(ids.resize((size, size), PIL.Image.NEAREST)).astype(np.int64))


def _jpeg(picture, quality=75):
    import io

    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return PIL.Image.open(io.BytesIO(buffer.getvalue()))


def test_a_painted_sketch_is_read_through_the_class_colours_and_other_pictures_are_refused(tmp_path):
    """A sketch painted in the class colours (anti-aliased, any size, PNG or JPEG, a slightly different shade) reads as
    the classes the painter meant, with no class nobody painted along the edges; a colour far from every class
    colour, a white canvas and a photograph are refused with the palette."""
    picture, meant = painted_sketch()
    for label, drawn in (("png", picture), ("jpeg", _jpeg(picture)), ("rgba", picture.convert("RGBA"))):
        read = media.read_sketch_drawing(drawn, 6)
        assert (read == meant).mean() >= 0.98, label
        assert set(np.unique(read)) == {1, 2, 3, 4, 5}, label  # brick (0) is painted nowhere
    shade, _ = painted_sketch(colour={1: (40, 95, 210), 4: (10, 215, 210)})  # near grass and square: snapped
    assert (media.read_sketch_drawing(shade, 6) == meant).mean() >= 0.98
    picture.save(tmp_path / "painted.png")
    assert np.array_equal(media.load_sketch(tmp_path / "painted.png", num_classes=6), media.read_sketch_drawing(picture, 6))
    flat = media.sketch_to_image(meant, 6)
    flat.quantize(colors=6).save(tmp_path / "indexed.png")  # an indexed PNG numbers its palette in its own order
    assert np.asarray(PIL.Image.open(tmp_path / "indexed.png"))[0, 0] != meant[0, 0]  # (so its indices are no ids)
    assert np.array_equal(media.load_sketch(tmp_path / "indexed.png", num_classes=6), meant)
    grey_ids = PIL.Image.fromarray(meant.astype(np.uint8), mode="L").convert("P")  # ids with a grey palette: ids
    assert np.array_equal(media.load_sketch(grey_ids, num_classes=6), meant)
    with pytest.raises(media.ColourSketchError, match="read_sketch_drawing"):  # without the classes: refused
        media.load_sketch(tmp_path / "painted.png")

    yellow, _ = painted_sketch(colour={2: (255, 255, 0)})  # gravel painted yellow: no class colour is near
    with pytest.raises(ValueError, match=r"far from every class colour .*\(255, 255, 0\).*1 grass \(25, 85, 229\)"):
        media.read_sketch_drawing(yellow, 6)
    white, _ = painted_sketch(colour={1: (255, 255, 255)})  # the shapes on a white canvas
    with pytest.raises(ValueError, match=r"white or transparent.*drawing_to_class_map\(picture, num_classes, fill="):
        media.read_sketch_drawing(white, 6)
    assert (media.drawing_to_class_map(white, 6, fill=1) == meant).mean() >= 0.98  # the fix the message names
    rows, cols = np.mgrid[0:64, 0:64]
    photo = np.stack([rows * 4, cols * 4, 255 - (rows + cols) * 2], axis=-1).astype(np.uint8)  # smooth shades
    with pytest.raises(ValueError, match="far from every class colour"):
        media.read_sketch_drawing(photo, 6)


def test_a_sketch_drawn_as_a_gif_is_read_through_its_colours(tmp_path):
    """A video sketch painted in the class colours and saved as a GIF by Pillow (an adaptive palette, whose indices
    are no class ids: they used to be read as class ids 0..127) reads as the painted classes, frame by frame."""
    frames, meant = zip(*(painted_sketch(64, supersample=4) for _ in range(3)))
    frames = [f.transpose(PIL.Image.ROTATE_90) if i == 1 else f for i, f in enumerate(frames)]
    meant = [np.rot90(m) if i == 1 else m for i, m in enumerate(meant)]
    frames[0].save(tmp_path / "drawn.gif", save_all=True, append_images=frames[1:], duration=250, loop=0)
    read = media.load_sketch_video(tmp_path / "drawn.gif", num_classes=6, fill=None)
    assert read.shape == (3, 64, 64)
    assert all((r == m).mean() >= 0.97 for r, m in zip(read, meant))
    maps = np.stack([np.full((8, 8), c) for c in (0, 1, 2)])  # a GIF of class ids is still read as its ids
    media.save_gif([PIL.Image.fromarray(m.astype(np.uint8)) for m in maps], tmp_path / "ids.gif")
    assert np.array_equal(media.load_sketch_video(tmp_path / "ids.gif", num_classes=6, fill=None), maps)


def test_upscaled_is_nearest_neighbour():
    picture = PIL.Image.fromarray(np.arange(4, dtype=np.uint8).reshape(2, 2))
    assert np.array_equal(np.asarray(media.upscaled(picture, 2)), np.kron(np.arange(4).reshape(2, 2), np.ones((2, 2))))
    assert media.upscaled(picture, 1) is picture
    with pytest.raises(ValueError, match="upscale"):
        media.upscaled(picture, 0)


def _moving_class_maps(frames=4, size=12):
    classes = np.zeros((size, size), dtype=np.int64)
    classes[:, size // 2:] = 1
    classes[2:6, 2:6] = 3  # class 2 unused: Pillow's writer renumbers the palette of such a GIF
    return np.stack([np.roll(classes, shift, axis=1) for shift in range(frames)])


def test_a_sketch_gif_reads_every_frame_as_class_ids(tmp_path):
    """Pillow hands out a GIF's frames after the first in mode RGB, which a sketch loader used to refuse ('frame 1 of
    sketch.gif is ... mode RGB'): a video sketch GIF written the usual way reads back as its class ids."""
    maps = _moving_class_maps()
    grey = [PIL.Image.fromarray(m.astype(np.uint8), mode="L") for m in maps]  # what the error messages suggest
    grey[0].save(tmp_path / "grey.gif", save_all=True, append_images=grey[1:], duration=250)
    assert np.array_equal(media.load_sketch_video(tmp_path / "grey.gif"), maps)
    palette = [200, 0, 0, 0, 200, 0, 128, 128, 128, 255, 0, 0, 0, 0, 255, 255, 255, 0]
    coloured = [PIL.Image.fromarray(m.astype(np.uint8), mode="P") for m in maps]
    for frame in coloured:
        frame.putpalette(palette)
    coloured[0].save(tmp_path / "palette.gif", save_all=True, append_images=coloured[1:], optimize=False)
    assert np.array_equal(media.load_sketch_video(tmp_path / "palette.gif"), maps)
    first_frame = media.load_sketch(tmp_path / "palette.gif")  # an image sketch reads the GIF's first frame
    assert np.array_equal(media.load_sketch_video(tmp_path / "palette.gif")[0], first_frame)


def test_a_sketch_gif_frame_with_colours_outside_the_first_palette_is_refused_with_the_fix(tmp_path):
    maps = _moving_class_maps(frames=2)
    first = PIL.Image.fromarray(maps[0].astype(np.uint8), mode="P")
    first.putpalette([200, 0, 0, 0, 200, 0, 128, 128, 128, 255, 0, 0])
    second = PIL.Image.fromarray(maps[1].astype(np.uint8), mode="P")
    second.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120])  # a local palette of other colours
    first.save(tmp_path / "two_palettes.gif", save_all=True, append_images=[second], optimize=False)
    with pytest.raises(ValueError, match=r"Frame 1 of the sketch two_palettes.gif .* not in the palette .*\.npy"):
        media.load_sketch_video(tmp_path / "two_palettes.gif")
