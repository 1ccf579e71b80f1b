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
    big = np.zeros((700, 500, 3), dtype=np.uint8)  # past one chunk of 262,144 pixels
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
