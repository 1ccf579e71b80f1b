"""What the loaders of users' own folders share: finding the folder, checking ``metadata.jsonl``, decoding lazily.

A user folder holds media files and a ``metadata.jsonl`` with one JSON object per line naming each file (relative
path) and its caption, the convention of ``datasets``' ``imagefolder``:

    {"file_name": "cats/001.jpg", "text": "a cat on a sofa"}

The whole file is checked before anything is loaded, so a typo fails at once with the line number instead of
mid-training. Media are decoded lazily, one example at a time: ``Dataset.with_transform`` for map-style datasets and
``IterableDataset.map`` for streaming, so neither needs the decoded data set to fit in memory or on disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from datasets import Dataset, IterableDataset

METADATA_FILE = "metadata.jsonl"


def resolve_folder(data_dir: str | Path, split: str | None) -> Path:
    """``data_dir`` or ``data_dir/split``; raise a clear error when it is not a folder with ``metadata.jsonl``."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} does not exist or is not a folder.")
    folder = root / split if split is not None else root
    if split is not None and not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(f"No split folder {folder}; split folders present: {present or 'none'}.")
    if not (folder / METADATA_FILE).is_file():
        hint = ""
        if (folder / "metadata.csv").is_file():
            hint = " A metadata.csv is there: these loaders read metadata.jsonl (one JSON object per line)."
        subfolders = [p.name for p in folder.iterdir() if p.is_dir() and (p / METADATA_FILE).is_file()]
        if subfolders:
            first = sorted(subfolders)[0]
            hint += (f" Subfolders {sorted(subfolders)} have one: give that folder itself ({folder / first}; on the "
                     f"command line --train-data TASK={folder / first}), or pass split={first!r}.")
        raise FileNotFoundError(
            f"{folder} has no {METADATA_FILE}. Write one line per file, e.g. "
            '{"file_name": "0001.png", "text": "a red circle"}.' + hint
        )
    return folder


def read_metadata(
    folder: Path, file_keys: Sequence[str], text_required: bool = True
) -> list[dict]:
    """Parse and check ``folder/metadata.jsonl``.

    Args:
        folder: a folder returned by :func:`resolve_folder`.
        file_keys: keys whose values are file paths relative to ``folder`` (``"file_name"``, ``"sketch_file_name"``);
            each must be present on every line and name an existing file inside the folder.
        text_required: every line must have a string ``"text"``; when false, ``"text"`` must be on all lines or none.

    Returns:
        The parsed lines, in file order.
    """
    path = folder / METADATA_FILE
    rows: list[dict] = []
    line_numbers: list[int] = []
    with open(path, encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line_number} is not valid JSON ({error.msg}).") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line_number} must be a JSON object, got {type(row).__name__}.")
            for key in file_keys:
                if not isinstance(row.get(key), str) or not row[key]:
                    raise ValueError(f"{path}:{line_number} needs a {key!r} string (a path relative to {folder}).")
            if text_required and not isinstance(row.get("text"), str):
                raise ValueError(f"{path}:{line_number} needs a 'text' string (the caption).{_caption_key_hint(row)}")
            rows.append(row)
            line_numbers.append(line_number)
    if not rows:
        raise ValueError(f"{path} lists no files.")
    if not text_required:
        with_text = sum("text" in row for row in rows)
        if with_text not in (0, len(rows)):
            raise ValueError(f"{path}: {with_text} of {len(rows)} lines have a 'text'; give every line one or none.")
    resolved_folder = folder.resolve()
    missing = []
    for row, line_number in zip(rows, line_numbers):
        for key in file_keys:
            target = _inside(folder, resolved_folder, row[key], f"{path}:{line_number}: {key}={row[key]!r}")
            if not target.is_file():
                missing.append(row[key])
    refuse_links_out(folder)
    if missing:
        raise FileNotFoundError(f"{path} names {len(missing)} missing file(s), e.g. {missing[:5]}.")
    return rows


def _caption_key_hint(row: dict) -> str:
    """For a metadata line without ``"text"``: the key that looks like the caption under another name, and the fix."""
    if "text" in row:
        return f" It has 'text' = {row['text']!r} ({type(row['text']).__name__}); give the caption as a string."
    named = [key for key, value in row.items() if key != "file_name" and isinstance(value, str)
             and key.lower().strip() in CAPTION_KEY_NAMES]
    if named:
        return (f" It has {named[0]!r} instead: rename that key to 'text' on every line (the column name of datasets' "
                "imagefolder, which these loaders follow).")
    others = [key for key in row if key != "file_name"]
    return f" Its keys besides 'file_name': {others or 'none'}."


# keys people give the caption under when they do not know the imagefolder convention ("text")
CAPTION_KEY_NAMES = ("caption", "captions", "prompt", "prompts", "description", "label", "title", "sentence",
                     "txt", "text_caption", "alt_text", "alt")


FOLDER_RULE = ("a training folder may name only its own files: give a path relative to the folder, without '..', "
               "and copy the file into the folder instead of linking to it")


def _inside(folder: Path, resolved_folder: Path, name: str, where: str) -> Path:
    """The file ``name`` (a line of metadata.jsonl, ``where``) resolved inside ``folder``; a ValueError naming the line
    when it is absolute, climbs out with ``..``, or is (or passes through) a symlink that leaves the folder."""
    if "\x00" in name or any(ord(c) < 32 for c in name):
        raise ValueError(f"{where} holds control characters; refused ({FOLDER_RULE}).")
    if Path(name).is_absolute() or name.startswith(("~", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ValueError(f"{where} is an absolute path; refused ({FOLDER_RULE}).")
    target = (folder / name).resolve()
    if resolved_folder == target or resolved_folder not in target.parents:
        how = "climbs out of the folder with '..'" if ".." in Path(name).parts else \
            f"is or passes through a symlink that leads outside the folder (to {target})"
        raise ValueError(f"{where} {how}; refused ({FOLDER_RULE}).")
    return target


def refuse_links_out(folder: Path) -> None:
    """Refuse a folder holding a symlink (to a file or a folder) that leads outside it: loaders that scan the folder
    (``datasets``' imagefolder) would read through it even when metadata.jsonl does not name it."""
    resolved_folder = folder.resolve()
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            entry = Path(root) / name
            if entry.is_symlink():
                target = entry.resolve()
                if resolved_folder not in target.parents:
                    raise ValueError(f"{entry} is a symlink that leads outside {folder} (to {target}); refused "
                                     f"({FOLDER_RULE}).")


def attach_decoder(
    dataset: Dataset | IterableDataset, decode_example: Callable[[dict], dict]
) -> Dataset | IterableDataset:
    """Decode each example lazily with ``decode_example(example) -> example`` (returns a new dict).

    Map-style datasets get a ``with_transform`` (note: ``ds.with_format(...)`` or ``ds.reset_format()`` replaces it and
    gives back the raw columns); streaming datasets get a lazy ``map``.
    """
    if isinstance(dataset, IterableDataset):
        return dataset.map(decode_example)

    def decode_batch(batch: dict) -> dict:
        count = len(next(iter(batch.values())))
        decoded = [decode_example({key: values[i] for key, values in batch.items()}) for i in range(count)]
        return {key: [example[key] for example in decoded] for key in decoded[0]}

    return dataset.with_transform(decode_batch)


def cropped_files(data_dir: str | Path, size: int | tuple[int, int]) -> list[tuple[str, tuple[int, int]]]:
    """The files of a user folder (its ``metadata.jsonl`` ``file_name``s) that
    :func:`~nuwa_hf.frame_conversion.fit` crops for ``size``: their aspect ratio differs from the target's, so the
    loaders cut their edges off. ``[(file_name, (width, height))]`` in metadata order, read from the file headers
    (nothing decoded); files PIL cannot open (MP4 and other videos) are left out."""
    from PIL import Image

    from ..frame_conversion import crop_box, normalize_size

    folder, size = Path(data_dir), normalize_size(size)
    cropped = []
    for row in read_metadata(folder, ("file_name",), text_required=False):
        try:
            with Image.open(folder / row["file_name"]) as image:
                source_size = image.size
        except (OSError, ValueError):  # not a picture PIL reads (a video): not checked here
            continue
        if crop_box(source_size, size) != (0, 0, *source_size):
            cropped.append((row["file_name"], source_size))
    return cropped
