"""Tokenise a task's dataset once and cache the token grids: the fast path for training on CPU.

Running the VQ-GAN on every batch of every epoch costs more than a tiny transformer's training step, so the grids are
computed once with ``datasets.Dataset.map`` and stored in the dataset's cache folder under a fingerprint of
(source dataset, task, VQ-GAN weights, sketch VQ-GAN weights, text tokenizer, text length). A second run with the same
inputs reads the cached Arrow file instead of running the VQ-GAN; any change of weights gives a new fingerprint.

The cache file is kept with its sha256 beside it (``cache-<fingerprint>.arrow.sha256``, written once the file is
complete): a file that no longer matches (damaged on disk), or has no checksum (its run was killed before writing it),
is deleted with a warning and rebuilt. ``datasets`` writes the file into a temporary one and moves it into place, so a
run killed mid-way never leaves a half file under the cache name. A full disk raises
``nuwa_hf.file_io.WriteSpaceError`` naming the cache folder and about the space the grids need.

Columns of a tokenised dataset (int32, numpy format):

    labels         (T, h, w)            visual tokens (T = 1 for images)
    input_ids      (max_text_length,)   text tasks only
    sketch_tokens  (Ts, hs, ws)         sketch tasks only
"""

from __future__ import annotations

import hashlib
import logging
import os

import numpy as np
import torch
from datasets import Array3D, Dataset, Features, IterableDataset, List, Value

from ..file_io import checksum_problem, is_out_of_space, record_checksum, remove_with_checksum, space_error
from .grid_encoding import encode_sketch, encode_text, encode_visual, module_fingerprint, tokenizer_fingerprint
from .tasks import NuwaTask, get_task

logger = logging.getLogger(__name__)

LABELS = "labels"
INPUT_IDS = "input_ids"
SKETCH_TOKENS = "sketch_tokens"


def token_grid_columns(task: NuwaTask) -> tuple:
    """Columns of a tokenised dataset of ``task``: ("labels", and "input_ids" or "sketch_tokens")."""
    return (LABELS,) + {"text": (INPUT_IDS,), "sketch": (SKETCH_TOKENS,), "none": ()}[task.condition]


def is_tokenized(dataset, task: NuwaTask) -> bool:
    """Whether ``dataset`` already holds token grids for ``task`` (then the collator needs no VQ-GAN)."""
    return all(column in (dataset.column_names or ()) for column in token_grid_columns(task))


def encode_task_batch(
    batch: dict, task: NuwaTask, *, visual_tokenizer=None, sketch_tokenizer=None, text_tokenizer=None,
    max_text_length: int = 77,
) -> dict:
    """A batch of raw columns (dict of lists/arrays) -> dict of token tensors (see the module docstring), int64."""
    video = task.visual == "video"
    if task.pixel_column not in batch:
        raise KeyError(f"task {task.name!r} needs a {task.pixel_column!r} column; the examples have {sorted(batch)}.")
    out = {LABELS: encode_visual(visual_tokenizer, batch[task.pixel_column], video)}
    for column in task.condition_columns:
        if column not in batch:
            raise KeyError(f"task {task.name!r} needs a {column!r} column; the examples have {sorted(batch)}.")
    if task.condition == "text":
        out[INPUT_IDS] = encode_text(text_tokenizer, batch["text"], max_text_length)
    elif task.condition == "sketch":
        out[SKETCH_TOKENS] = encode_sketch(sketch_tokenizer, batch["sketch"], video)
    return out


def _example_digest(batch: dict, task: NuwaTask) -> str:
    digest = hashlib.sha256()
    for column in (task.pixel_column, *task.condition_columns):
        for value in batch.get(column, ()):
            array = np.asarray(value)
            digest.update(f"{column}{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes() if array.dtype != object else str(value).encode())
    return digest.hexdigest()[:16]


def tokenize_task_dataset(
    dataset: Dataset,
    task: str | NuwaTask,
    *,
    visual_tokenizer=None,
    sketch_tokenizer=None,
    text_tokenizer=None,
    max_text_length: int = 77,
    batch_size: int = 64,
    load_from_cache_file: bool = True,
) -> Dataset:
    """Tokenise every example of ``dataset`` for ``task`` once; returns a dataset of token grids (module docstring).

    Args:
        dataset: a map-style ``datasets.Dataset`` with the task's raw columns ("image"/"video" uint8, "text",
            "sketch"), e.g. a built-in world.
        task: "t2i", "t2v", "v2v", "s2i", "s2v" or a :class:`NuwaTask`.
        visual_tokenizer: the VQ-GAN (``encode_to_indices`` (B, 3, H, W) -> (B, h, w), ``encode_video``).
        sketch_tokenizer: the VQ-GAN-Seg, for sketch tasks.
        text_tokenizer: the caption tokenizer, for text tasks.
        max_text_length: prompts are padded (and truncated) to this many ids; use the model's ``max_text_length``.
        batch_size: examples pushed through the VQ-GAN at once.
        load_from_cache_file: reuse a cached result with the same fingerprint (set False to recompute).
    """
    task = task if isinstance(task, NuwaTask) else get_task(task)
    if isinstance(dataset, IterableDataset):
        raise TypeError(
            "tokenize_task_dataset needs a map-style datasets.Dataset (it caches the grids on disk); for streaming data "
            "let NuwaTaskCollator tokenise each batch on the fly (pass it the VQ-GAN)."
        )
    if is_tokenized(dataset, task):
        return dataset
    if len(dataset) == 0:
        raise ValueError(f"the {task.name} dataset is empty.")
    # One example first: it fixes the grid shapes of the Arrow features and fails fast on bad input.
    probe = dataset[:1]
    first = encode_task_batch(
        probe, task, visual_tokenizer=visual_tokenizer, sketch_tokenizer=sketch_tokenizer,
        text_tokenizer=text_tokenizer, max_text_length=max_text_length,
    )
    columns = {LABELS: Array3D(tuple(first[LABELS].shape[1:]), "int32")}
    if INPUT_IDS in first:
        columns[INPUT_IDS] = List(Value("int32"), length=max_text_length)
    if SKETCH_TOKENS in first:
        columns[SKETCH_TOKENS] = Array3D(tuple(first[SKETCH_TOKENS].shape[1:]), "int32")
    features = Features(columns)

    key = "|".join([
        "nuwa-token-grids-v1", str(getattr(dataset, "_fingerprint", None)), task.name,
        module_fingerprint(visual_tokenizer),
        module_fingerprint(sketch_tokenizer) if task.condition == "sketch" else "-",
        tokenizer_fingerprint(text_tokenizer) if task.condition == "text" else "-",
        str(max_text_length) if task.condition == "text" else "-",
        # A transform applied on access (e.g. the folder loaders' resizing) is not part of the source fingerprint;
        # the first example as the transform delivers it is.
        _example_digest(probe, task),
    ])
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:32]

    def encode(batch):
        out = encode_task_batch(
            batch, task, visual_tokenizer=visual_tokenizer, sketch_tokenizer=sketch_tokenizer,
            text_tokenizer=text_tokenizer, max_text_length=max_text_length,
        )
        return {name: tensor.to(torch.int32).numpy() for name, tensor in out.items()}

    cache_file = _cache_file(dataset, fingerprint)
    if cache_file is not None and load_from_cache_file and os.path.exists(cache_file):
        problem = checksum_problem(cache_file)
        if problem:
            logger.warning("The token cache %s %s; deleting it and tokenising again.", cache_file, problem)
            remove_with_checksum(cache_file)
    folder = os.path.dirname(cache_file) if cache_file is not None else None
    before = set(os.listdir(folder)) if folder is not None else set()
    try:
        tokenized = dataset.map(
            encode, batched=True, batch_size=batch_size, remove_columns=dataset.column_names, features=features,
            new_fingerprint=fingerprint, load_from_cache_file=load_from_cache_file,
            desc=f"Tokenising {task.name} ({task.description})",
        )
    except Exception as error:
        if cache_file is None or not is_out_of_space(error):
            raise
        for name in set(os.listdir(folder)) - before:  # datasets' temporary file, not always removed on this error
            if name.startswith("tmp") or name == os.path.basename(cache_file):
                remove_with_checksum(os.path.join(folder, name))
        per_example = sum(value.numel() * 4 for value in first.values())  # int32 grids
        raise space_error(error, os.path.dirname(cache_file), f"the {task.name} token cache",
                          needed=len(dataset) * per_example) from error
    if cache_file is not None and os.path.exists(cache_file) and checksum_problem(cache_file):
        record_checksum(cache_file)  # a new (or re-made) file: record it
    return tokenized.with_format("numpy", dtype=None)


def _cache_file(dataset: Dataset, fingerprint: str) -> str | None:
    """Where ``datasets`` keeps the map result with ``fingerprint`` (None: the dataset is in memory, nothing cached)."""
    if not dataset.cache_files:
        return None
    from datasets import is_caching_enabled

    if not is_caching_enabled():
        return None
    return os.path.join(os.path.dirname(dataset.cache_files[0]["filename"]), f"cache-{fingerprint}.arrow")
