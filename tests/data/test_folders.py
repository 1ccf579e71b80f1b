"""Loaders for users' folders, exercised on folders written here: images, MP4/GIF videos, sketch/image pairs."""

import json

import av
import numpy as np
import pytest
from datasets import Dataset, IterableDataset, Video
from PIL import Image

from nuwa_hf.data import (
    NUM_SCENE_CLASSES, decode_video, load_image_folder, load_sketch_pairs, load_video_folder, scene_images,
)


def write_metadata(folder, rows):
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    arrays = {}
    for index, (height, width) in enumerate([(12, 16), (20, 10), (8, 8)]):
        array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        name = f"sub/{index}.png" if index else f"{index}.png"
        Image.fromarray(array).save(folder / name)
        arrays[name] = array
    Image.fromarray(np.full((6, 6), 77, np.uint8), mode="L").save(folder / "gray.png")
    arrays["gray.png"] = np.full((6, 6, 3), 77, np.uint8)
    write_metadata(folder, [{"file_name": name, "text": f"caption {name}", "source": "test"} for name in arrays])
    return folder, arrays


def test_image_folder_gives_rgb_arrays_captions_and_extra_columns(image_folder):
    folder, arrays = image_folder
    ds = load_image_folder(folder)
    assert isinstance(ds, Dataset) and len(ds) == 4
    by_caption = {row["text"]: row for row in ds}
    for name, array in arrays.items():
        row = by_caption[f"caption {name}"]
        assert row["image"].dtype == np.uint8 and np.array_equal(row["image"], array)
        assert row["source"] == "test"
    resized = load_image_folder(folder, size=(8, 12))
    assert all(row["image"].shape == (8, 12, 3) for row in resized)
    streamed = load_image_folder(folder, streaming=True)
    assert isinstance(streamed, IterableDataset)
    assert {example["text"]: example["image"].tobytes() for example in streamed} == {
        text: row["image"].tobytes() for text, row in by_caption.items()}


def test_transparent_pictures_train_as_the_pipelines_read_them(tmp_path):
    """A cut-out saved by a paint program keeps white (or anything) under its transparent pixels; the training folder
    must read it as the pipelines do (over black, half-transparent blended), not show the hidden colours."""
    from nuwa_hf.media import load_image

    folder = tmp_path / "cutouts"
    folder.mkdir()
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 255                      # hidden white under the transparent part
    rgba[2:6, 2:6] = (200, 30, 30, 255)      # an opaque red square
    rgba[0, 0] = (100, 200, 50, 128)         # one half-transparent pixel
    Image.fromarray(rgba, mode="RGBA").save(folder / "cat.png")
    write_metadata(folder, [{"file_name": "cat.png", "text": "a red cat"}])
    image = load_image_folder(folder)[0]["image"]
    assert np.array_equal(image, np.asarray(load_image(folder / "cat.png")))
    assert image[1, 1].tolist() == [0, 0, 0] and image[3, 3].tolist() == [200, 30, 30]
    assert image[0, 0].tolist() == [50, 100, 25]


def test_transparent_gif_clips_train_as_the_pipelines_read_them(tmp_path):
    """The same rule for clips: a GIF with a transparent background (white kept under it) is read over black by the
    video folder (PyAV) as by the pipelines' video reader."""
    from nuwa_hf.data import load_video_folder
    from nuwa_hf.media import load_video

    folder = tmp_path / "clips"
    folder.mkdir()
    frames = []
    for t in range(3):
        rgba = np.zeros((16, 16, 4), np.uint8)
        rgba[..., :3] = 255
        rgba[4:10, 2 + t:8 + t] = (200, 30, 30, 255)
        frames.append(Image.fromarray(rgba, mode="RGBA"))
    frames[0].save(folder / "cat.gif", save_all=True, append_images=frames[1:], duration=100, loop=0, disposal=2)
    write_metadata(folder, [{"file_name": "cat.gif", "text": "a red cat moving right"}])
    video = load_video_folder(folder, num_frames=3)[0]["video"]
    assert video[:, 0, 0].tolist() == [[0, 0, 0]] * 3 and video[0, 5, 5].tolist() == [200, 30, 30]
    assert np.array_equal(video, np.stack([np.asarray(frame) for frame in load_video(folder / "cat.gif")]))


def test_folder_errors_name_the_problem_and_the_fix(tmp_path, image_folder):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metadata.csv").write_text("file_name,text\n")
    with pytest.raises(FileNotFoundError, match="metadata.jsonl.*metadata.csv"):
        load_image_folder(empty)
    parent = tmp_path / "parent"
    (parent / "train").mkdir(parents=True)
    write_metadata(parent / "train", [{"file_name": "x.png", "text": "x"}])
    with pytest.raises(FileNotFoundError, match="give that folder itself .*train.*, or pass split='train'"):
        load_image_folder(parent)
    with pytest.raises(FileNotFoundError, match="No split folder"):
        load_image_folder(parent, split="test")
    with pytest.raises(FileNotFoundError, match="missing file"):
        load_image_folder(parent, split="train")
    folder, _ = image_folder
    cases = {
        '{"file_name": "0.png", "text": "ok"}\n{"file_name": "0.png", "text": ': "metadata.jsonl:2 is not valid JSON",
        '{"file_name": "0.png"}': "metadata.jsonl:1 needs a 'text'",
        '{"text": "no file"}': "needs a 'file_name'",
        '{"file_name": "../elsewhere.png", "text": "x"}': "metadata.jsonl:1: file_name='../elsewhere.png' climbs out",
    }
    for content, message in cases.items():
        (folder / "metadata.jsonl").write_text(content)
        with pytest.raises((ValueError, FileNotFoundError), match=message):
            load_image_folder(folder)


def write_mp4(path, frames, fps=8):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def moving_square(num_frames, height, width):
    """uint8 (T, H, W, 3): a white 8x8 square stepping 2 px right per frame on dark blue."""
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    frames[..., 2] = 90
    for t in range(num_frames):
        frames[t, 8:16, 2 * t : 2 * t + 8] = 255
    return frames


@pytest.fixture
def video_folder(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    frames = moving_square(8, 32, 32)
    write_mp4(folder / "square.mp4", frames)
    gif_frames = [Image.fromarray(frame) for frame in moving_square(7, 24, 24)]
    gif_frames[0].save(folder / "square.gif", save_all=True, append_images=gif_frames[1:], duration=100, loop=0)
    write_metadata(folder, [{"file_name": "square.mp4", "text": "a square moves right"},
                            {"file_name": "square.gif", "text": "a gif square moves right"}])
    return folder, frames


def square_column(frame):
    """Left edge of the bright square in a decoded frame."""
    return int(np.flatnonzero(frame[12, :, 0] > 128)[0])


def test_video_folder_decodes_mp4_and_gif_with_pyav(video_folder):
    folder, frames = video_folder
    ds = load_video_folder(folder, num_frames=4, frame_stride=2)
    assert ds.features["video"] == Video(decode=False)
    mp4, gif = ds[0], ds[1]
    assert mp4["text"] == "a square moves right" and gif["text"] == "a gif square moves right"
    assert mp4["video"].shape == (4, 32, 32, 3) and mp4["video"].dtype == np.uint8
    assert gif["video"].shape == (4, 24, 24, 3)
    # Frames 0, 2, 4, 6: the square steps 4 px right each kept frame; lossy H.264 stays close to the source.
    assert [square_column(f) for f in mp4["video"]] == [0, 4, 8, 12]
    assert [square_column(f) for f in gif["video"]] == [0, 4, 8, 12]
    assert np.abs(mp4["video"].astype(int) - frames[::2].astype(int)).mean() < 4
    whole = load_video_folder(folder, size=16)
    assert whole[0]["video"].shape == (8, 16, 16, 3) and whole[1]["video"].shape == (7, 16, 16, 3)
    streamed = list(load_video_folder(folder, num_frames=4, frame_stride=2, streaming=True))
    assert np.array_equal(streamed[0]["video"], mp4["video"]) and np.array_equal(streamed[1]["video"], gif["video"])


def test_video_errors_are_clear(video_folder, tmp_path):
    folder, _ = video_folder
    too_long = load_video_folder(folder, num_frames=8)
    assert too_long[0]["video"].shape[0] == 8
    with pytest.raises(ValueError, match="square.gif gives 7 frame"):
        too_long[1]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.mp4").write_bytes(b"not a video at all")
    write_metadata(broken, [{"file_name": "bad.mp4", "text": "x"}])
    with pytest.raises(ValueError, match="Cannot decode video .*bad.mp4"):
        load_video_folder(broken)
    with pytest.raises(ValueError, match="frame_stride"):
        decode_video(str(folder / "square.mp4"), frame_stride=0)


def test_sketch_pairs_round_trip_the_scene_world_exactly(world_cache, tmp_path):
    scenes = scene_images("train", 4, seed=2, image_size=32)
    folder = tmp_path / "pairs"
    (folder / "images").mkdir(parents=True)
    (folder / "sketches").mkdir()
    rows = []
    for index, row in enumerate(scenes):
        Image.fromarray(row["image"]).save(folder / "images" / f"{index}.png")
        Image.fromarray(row["sketch"].astype(np.uint8), mode="L").save(folder / "sketches" / f"{index}.png")
        rows.append({"file_name": f"images/{index}.png", "sketch_file_name": f"sketches/{index}.png",
                     "text": str(row["text"])})
    write_metadata(folder, rows)
    pairs = load_sketch_pairs(folder, num_classes=NUM_SCENE_CLASSES)
    assert len(pairs) == 4
    by_text = {example["text"]: example for example in pairs}
    for row in scenes:
        example = by_text[str(row["text"])]
        assert example["sketch"].dtype == np.int64
        assert np.array_equal(example["sketch"], row["sketch"]) and np.array_equal(example["image"], row["image"])
    small = load_sketch_pairs(folder, size=16)[0]
    assert small["image"].shape == (16, 16, 3) and small["sketch"].shape == (16, 16)
    assert set(np.unique(small["sketch"])) <= set(range(NUM_SCENE_CLASSES))  # nearest: no invented classes
    with pytest.raises(ValueError, match="outside 0..1"):
        [example for example in load_sketch_pairs(folder, num_classes=2)]
    streamed = list(load_sketch_pairs(folder, streaming=True))
    assert {e["text"]: e["sketch"].tobytes() for e in streamed} == {t: e["sketch"].tobytes() for t, e in by_text.items()}


def test_sketch_pairs_refuse_colour_maps_and_size_mismatches(tmp_path):
    folder = tmp_path / "bad_pairs"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "image.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "rgb_sketch.png")
    Image.fromarray(np.zeros((8, 9), np.uint8), mode="L").save(folder / "wide_sketch.png")
    palette = Image.fromarray(np.ones((8, 8), np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0] * 128)
    palette.save(folder / "palette_sketch.png")
    write_metadata(folder, [{"file_name": "image.png", "sketch_file_name": "rgb_sketch.png"}])
    with pytest.raises(ValueError, match="mode RGB"):
        load_sketch_pairs(folder)
    write_metadata(folder, [{"file_name": "image.png", "sketch_file_name": "wide_sketch.png"}])
    with pytest.raises(ValueError, match="must match pixel for pixel"):
        load_sketch_pairs(folder)
    write_metadata(folder, [{"file_name": "image.png", "sketch_file_name": "palette_sketch.png"}])
    example = load_sketch_pairs(folder)[0]
    assert "text" not in example and np.array_equal(example["sketch"], np.ones((8, 8), np.int64))


def test_cropped_files_names_the_pictures_whose_edges_the_loaders_cut(image_folder, video_folder):
    """cropped_files reads the headers and names exactly the pictures fit() crops for a size: those whose aspect
    ratio differs from the target's (here the 16x12 and 10x20 ones for a square; the 16x12 one is whole at 12x16);
    a picture it does not name is loaded whole."""
    from nuwa_hf.data.user_folders import cropped_files

    folder, arrays = image_folder
    assert cropped_files(folder, 4) == [("0.png", (16, 12)), ("sub/1.png", (10, 20))]
    assert cropped_files(folder, (12, 16)) == [("sub/1.png", (10, 20)), ("sub/2.png", (8, 8)), ("gray.png", (6, 6))]
    whole = load_image_folder(folder, size=(12, 16))  # 0.png is 16 wide, 12 high: kept whole, not even resized
    assert np.array_equal(next(row["image"] for row in whole if row["text"] == "caption 0.png"), arrays["0.png"])
    # a GIF clip is checked from its header too; an MP4 is not a picture PIL reads and is left out
    videos, _ = video_folder
    assert cropped_files(videos, 16) == [] and cropped_files(videos, (16, 32)) == [("square.gif", (24, 24))]
