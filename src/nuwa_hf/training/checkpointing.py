"""Crash-safe checkpoints: a ``checkpoint-N`` folder either holds a whole checkpoint or does not exist.

``Trainer`` writes ``checkpoint-N`` in place, file after file; a crash mid-save leaves a folder that
``get_last_checkpoint`` would happily resume from. Here a checkpoint is written into a staging folder
(``<output_dir>/_incomplete_checkpoints/checkpoint-N``), every file is flushed to disk, a completion marker listing
every file and its size is written last, and only then is the folder renamed into place (``os.rename`` within one
file system is atomic). Resuming only considers folders whose marker is present and matches the files on disk, so
even a checkpoint folder produced some other way (copied, half-deleted) is never taken for complete.

The staging folder starts with "_" so that ``Trainer``'s Hub uploads (which ignore ``_*``) never send it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import List, Optional, Tuple

from ..file_io import fsync_path, fsync_tree, write_json_durably

CHECKPOINT_MARKER = "checkpoint_complete.json"
STAGING_DIRNAME = "_incomplete_checkpoints"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def _listing(directory: str) -> dict:
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, directory)
            if relative != CHECKPOINT_MARKER:
                files[relative.replace(os.sep, "/")] = os.path.getsize(path)
    return files


def write_completion_marker(directory: str, global_step: int) -> None:
    """Write the marker listing every file of ``directory`` with its size (written atomically, after a flush)."""
    fsync_tree(directory)
    payload = {"global_step": int(global_step), "files": _listing(directory)}
    write_json_durably(os.path.join(directory, CHECKPOINT_MARKER), payload)


def is_complete_checkpoint(directory: str) -> bool:
    """Whether ``directory`` holds a finished checkpoint: marker present, and every listed file there with its size."""
    marker = os.path.join(directory, CHECKPOINT_MARKER)
    try:
        with open(marker, encoding="utf-8") as handle:
            payload = json.load(handle)
        files = payload["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(files, dict) or not files:
        return False
    for relative, size in files.items():
        path = os.path.join(directory, *relative.split("/"))
        if not os.path.isfile(path) or os.path.getsize(path) != size:
            return False
    return True


def complete_checkpoints(output_dir: str) -> List[Tuple[int, str]]:
    """``(step, path)`` of every complete ``checkpoint-N`` folder of ``output_dir``, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = _CHECKPOINT_RE.match(name)
        path = os.path.join(output_dir, name)
        if match and os.path.isdir(path) and is_complete_checkpoint(path):
            found.append((int(match.group(1)), path))
    return sorted(found)


def last_complete_checkpoint(output_dir: str) -> Optional[str]:
    """The newest complete checkpoint of ``output_dir``, or None. Incomplete ``checkpoint-N`` folders are skipped."""
    found = complete_checkpoints(output_dir)
    return found[-1][1] if found else None


def _remove_tree(path: str, trash_root: str) -> None:
    """Delete a folder so that it can never look complete half-way: marker first, then an atomic move out of sight."""
    marker = os.path.join(path, CHECKPOINT_MARKER)
    if os.path.exists(marker):
        os.remove(marker)
        fsync_path(path)
    os.makedirs(trash_root, exist_ok=True)
    trash = os.path.join(trash_root, "deleting-" + os.path.basename(path))
    if os.path.exists(trash):
        shutil.rmtree(trash)
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def staging_path(output_dir: str, checkpoint_name: str) -> str:
    """Where ``checkpoint_name`` is written before it is published."""
    return os.path.join(output_dir, STAGING_DIRNAME, checkpoint_name)


def clear_staging(output_dir: str, checkpoint_name: str) -> None:
    """Remove what a crashed save may have left in the staging area for ``checkpoint_name``."""
    path = staging_path(output_dir, checkpoint_name)
    if os.path.exists(path):
        shutil.rmtree(path)


def publish_checkpoint(staged: str, final: str, global_step: int) -> None:
    """Mark ``staged`` complete and rename it to ``final`` (replacing an older folder of that name)."""
    normalise_permissions(staged)
    write_completion_marker(staged, global_step)
    parent = os.path.dirname(final)
    if os.path.exists(final):
        _remove_tree(final, os.path.join(parent, STAGING_DIRNAME))
    os.rename(staged, final)
    fsync_path(parent)


def rotate_complete_checkpoints(output_dir: str, save_total_limit: Optional[int], keep: Optional[str] = None) -> None:
    """Keep the newest ``save_total_limit`` complete checkpoints (and ``keep``, e.g. the best one); delete the rest.

    Incomplete ``checkpoint-N`` folders older than the newest complete one are deleted too: they can never be resumed.
    """
    if save_total_limit is None or save_total_limit <= 0:
        return
    complete = complete_checkpoints(output_dir)
    keep_paths = {path for _, path in complete[-save_total_limit:]}
    if keep:
        keep_paths.add(os.path.abspath(keep))
        keep_paths.add(keep)
    newest = complete[-1][0] if complete else None
    trash_root = os.path.join(output_dir, STAGING_DIRNAME)
    for name in sorted(os.listdir(output_dir)):
        match = _CHECKPOINT_RE.match(name)
        path = os.path.join(output_dir, name)
        if not match or not os.path.isdir(path) or path in keep_paths or os.path.abspath(path) in keep_paths:
            continue
        is_complete = any(path == p for _, p in complete)
        if is_complete or (newest is not None and int(match.group(1)) < newest):
            _remove_tree(path, trash_root)


# --------------------------------------------------------------------------------------------------------------------
# Final model folders: published as a whole, with the usual file permissions

PUBLISH_JOURNAL = "model-publish.json"
# Weight files of an earlier model that a new save may not overwrite by name (other shard counts, another format):
# removed when a new model is published, so that a folder never pairs new weights with an old index or shard.
_OLD_WEIGHT_PREFIXES = ("model.safetensors", "model-", "pytorch_model")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def normalise_permissions(directory: str) -> None:
    """Give every file under ``directory`` the permissions of a file created normally (``0o666`` less the umask).

    safetensors writes its files with mode 0600 (owner only), so a model folder saved by one user could not be read by
    the others who share a machine or a mounted volume."""
    mode = 0o666 & ~_current_umask()
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, mode)


def publish_model_folder(staged: str, target: str) -> None:
    """Move the model saved in ``staged`` into ``target`` as a whole, replacing an earlier model there.

    Sub-folders (``vqgan/``, ``vqgan_seg/``) are swapped with one rename each; the root's files (which share ``target``
    with checkpoints and logs, so the root cannot be renamed) are replaced with ``os.replace`` under a journal
    (``_incomplete_checkpoints/model-publish.json``, written before the first move): if the process dies midway, the
    next :func:`clear_stale_staging` (at the start of every training run) finishes the move, so the folder ends up all
    new. Old weight files the new model does not have (other shards, an old index) are removed. Files get the usual
    permissions (:func:`normalise_permissions`).
    """
    normalise_permissions(staged)
    fsync_tree(staged)
    os.makedirs(target, exist_ok=True)
    entries = sorted(os.listdir(staged))
    stale = sorted(
        name for name in os.listdir(target)
        if name.startswith(_OLD_WEIGHT_PREFIXES) and name not in entries and os.path.isfile(os.path.join(target, name))
    )
    journal = {"staged": os.path.relpath(staged, target), "entries": entries, "remove": stale}
    staging_root = os.path.join(target, STAGING_DIRNAME)
    os.makedirs(staging_root, exist_ok=True)
    write_json_durably(os.path.join(staging_root, PUBLISH_JOURNAL), journal)
    finish_model_publish(target)


def finish_model_publish(target: str) -> bool:
    """Complete a :func:`publish_model_folder` that was interrupted (its journal is still there); True if one was."""
    staging_root = os.path.join(target, STAGING_DIRNAME)
    journal_path = os.path.join(staging_root, PUBLISH_JOURNAL)
    try:
        with open(journal_path, encoding="utf-8") as handle:
            journal = json.load(handle)
        staged = os.path.normpath(os.path.join(target, journal["staged"]))
        entries, stale = list(journal["entries"]), list(journal.get("remove", []))
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):
        os.remove(journal_path)  # a journal that was never completely written: the publish had not started moving
        return False
    for name in entries:
        source, destination = os.path.join(staged, name), os.path.join(target, name)
        if not os.path.lexists(source):
            continue  # moved before the interruption
        if os.path.isdir(source):
            if os.path.lexists(destination):
                replaced = os.path.join(staging_root, "replaced-" + name)
                if os.path.lexists(replaced):
                    shutil.rmtree(replaced)
                os.rename(destination, replaced)
            os.rename(source, destination)
        else:
            os.replace(source, destination)
    for name in stale:
        path = os.path.join(target, name)
        if os.path.isfile(path):
            os.remove(path)
    fsync_path(target)
    os.remove(journal_path)
    fsync_path(staging_root)
    shutil.rmtree(staged, ignore_errors=True)
    for name in entries:
        shutil.rmtree(os.path.join(staging_root, "replaced-" + name), ignore_errors=True)
    return True


def clear_stale_staging(output_dir: str) -> List[str]:
    """At the start of a run: finish an interrupted model publish, then remove everything a crashed save left in
    ``<output_dir>/_incomplete_checkpoints`` (half-written checkpoints, ``deleting-checkpoint-N`` folders of an
    interrupted rotation, staged models). Returns the names removed."""
    staging_root = os.path.join(output_dir, STAGING_DIRNAME)
    if not os.path.isdir(staging_root):
        return []
    finish_model_publish(output_dir)
    removed = []
    for name in sorted(os.listdir(staging_root)):
        path = os.path.join(staging_root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
        removed.append(name)
    try:
        os.rmdir(staging_root)
    except OSError:
        pass
    return removed
