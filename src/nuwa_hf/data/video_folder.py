"""Users' own captioned videos: a folder of video files plus ``metadata.jsonl``, decoded with PyAV."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, IterableDataset, Video

from ..frame_conversion import normalize_size
from .user_folders import attach_decoder, read_metadata, resolve_folder
from .video_decoding import decode_video


def load_video_folder(
    data_dir: str | Path,
    *,
    split: str | None = None,
    num_frames: int | None = None,
    frame_stride: int = 1,
    size: int | tuple[int, int] | None = None,
    streaming: bool = False,
    num_shards: int = 1,
) -> Dataset | IterableDataset:
    """Load captioned videos from ``data_dir`` (or ``data_dir/split``).

    The folder holds video files in any format FFmpeg reads (MP4, AVI, MKV, WebM, GIF, ...) and ``metadata.jsonl``
    with one ``{"file_name": "clips/a.mp4", "text": "a caption"}`` per video (more keys become more columns).

    Args:
        data_dir: the folder, or the parent of split folders.
        split: a subfolder name (``"train"``, ``"test"``, ...) or ``None`` for ``data_dir`` itself.
        num_frames: frames per example (the first ones at ``frame_stride``); ``None`` keeps every frame.
            A video that is too short raises ``ValueError`` when it is read.
        frame_stride: keep every n-th frame (e.g. 2 halves a 30 fps clip to 15 fps).
        size: int or ``(height, width)``: centre-crop and resize frames to it; ``None`` keeps each file's size.
        streaming: return an ``IterableDataset`` (examples decoded as iterated) instead of a ``Dataset``.
        num_shards: shards of the streaming dataset (for DataLoader workers / processes).

    Returns:
        Examples ``{"video": uint8 ndarray (T, H, W, 3), "text": str, ...}``, decoded lazily on access. The
        underlying column is ``datasets.Video(decode=False)``; ``ds.reset_format()`` shows it undecoded.
    """
    folder = resolve_folder(data_dir, split)
    size = normalize_size(size)
    rows = read_metadata(folder, ("file_name",))
    keys = list(dict.fromkeys(key for row in rows for key in row if key != "file_name"))
    columns = {key: [row.get(key) for row in rows] for key in keys}
    columns["video"] = [str(folder / row["file_name"]) for row in rows]
    dataset = Dataset.from_dict(columns).cast_column("video", Video(decode=False))
    # Fail on the first file now rather than in the middle of training.
    decode_video(dataset[0]["video"], num_frames=num_frames, frame_stride=frame_stride, size=size)
    if streaming:
        dataset = dataset.to_iterable_dataset(num_shards=num_shards)

    def decode_example(example: dict) -> dict:
        video = decode_video(example["video"], num_frames=num_frames, frame_stride=frame_stride, size=size)
        return {**example, "video": video}

    return attach_decoder(dataset, decode_example)
